# SPDX-License-Identifier: MIT
"""FastAPI: the session endpoint as one route, awaiting the asyncio client, beside ``chatbotkit_session.py``.

    CHATBOTKIT_API_SECRET=... CHATBOTKIT_BOT_ID=... uvicorn fastapi_app:app

A page on https://shop.example (another origin) posts ``{}`` or ``{"message": "..."}`` to /chat-session
and gets ``{conversationId, token, expiresAt}``. (With no route of your own around it, ``endpoint.asgi``
is the whole ASGI application.)
"""

import os

from fastapi import FastAPI, Request, Response

from chatbotkit_session import AsyncBotSessionClient, SessionEndpoint

app = FastAPI()
endpoint = SessionEndpoint(
    AsyncBotSessionClient(),  # reads CHATBOTKIT_API_SECRET
    os.environ["CHATBOTKIT_BOT_ID"],
    allowed_origins=["https://shop.example"],
)


@app.api_route("/chat-session", methods=["POST", "OPTIONS"])
async def chat_session(request: Request) -> Response:
    # Check your own user session (or a rate limit) here, before a session is minted for this browser.
    answer = await endpoint.ahandle(request.method, request.headers, request.stream())
    return Response(answer.body, answer.status, dict(answer.headers))
