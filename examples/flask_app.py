# SPDX-License-Identifier: MIT
"""Flask: the session endpoint as one view, for signed-in users only, beside ``chatbotkit_session.py``.

    CHATBOTKIT_API_SECRET=... CHATBOTKIT_BOT_ID=... FLASK_SECRET_KEY=... flask --app flask_app run

Your login view puts the user's id in Flask's session (``session["user_id"] = user.id``). A page of this
app (or of an origin in CHATBOTKIT_ALLOWED_ORIGINS that sends the cookie) posts ``{}`` or
``{"message": "..."}`` to /chat-session and gets ``{conversationId, token, expiresAt}``; each conversation
carries the user's id as its ``meta``, and a visitor who is not signed in gets ``403 NOT_AUTHORIZED``.
"""

import os
import secrets
from typing import Dict, Union

from flask import Flask, Response, request, session

from chatbotkit_session import BotSessionClient, EndpointRequest, KeepAliveTransport, SessionEndpoint

app = Flask(__name__)
app.secret_key = os.environ.get("FLASK_SECRET_KEY") or secrets.token_hex(32)


def signed_in_user(chat: EndpointRequest) -> Union[bool, Dict[str, str]]:
    """Mint only for a signed-in user, and say which one in the conversation's meta."""
    user_id = session.get("user_id")  # set by your login view
    return {"userId": str(user_id)} if user_id is not None else False


# Kept-alive connections to ChatBotKit: a web backend makes many calls.
endpoint = SessionEndpoint.from_env(BotSessionClient(transport=KeepAliveTransport()), authorize=signed_in_user)


@app.route("/chat-session", methods=["POST", "OPTIONS"])
def chat_session() -> Response:
    answer = endpoint.handle(request.method, request.headers, request.stream, remote_addr=request.remote_addr)
    return Response(answer.body, answer.status, list(answer.headers))
