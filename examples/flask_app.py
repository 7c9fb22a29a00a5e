# SPDX-License-Identifier: MIT
"""Flask: the session endpoint as one view, beside ``chatbotkit_session.py``.

    CHATBOTKIT_API_SECRET=... CHATBOTKIT_BOT_ID=... flask --app flask_app run

A page on https://shop.example (another origin) posts ``{}`` or ``{"message": "..."}`` to /chat-session
and gets ``{conversationId, token, expiresAt}``.
"""

import os

from flask import Flask, Response, request

from chatbotkit_session import BotSessionClient, SessionEndpoint

app = Flask(__name__)
endpoint = SessionEndpoint(
    BotSessionClient(),  # reads CHATBOTKIT_API_SECRET
    os.environ["CHATBOTKIT_BOT_ID"],
    allowed_origins=["https://shop.example"],
)


@app.route("/chat-session", methods=["POST", "OPTIONS"])
def chat_session() -> Response:
    # Check your own user session (or a rate limit) here, before a session is minted for this browser.
    answer = endpoint.handle(request.method, request.headers, request.stream)
    return Response(answer.body, answer.status, list(answer.headers))
