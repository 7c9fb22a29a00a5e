# SPDX-License-Identifier: MIT
"""FastAPI: the session endpoint as one route, awaiting the asyncio client, beside ``chatbotkit_session.py``.

    CHATBOTKIT_API_SECRET=... CHATBOTKIT_BOT_ID=... CHATBOTKIT_ALLOWED_ORIGINS=https://shop.example \\
    APP_TOKEN_KEY=... uvicorn fastapi_app:app

A page on https://shop.example (another origin) posts ``{}`` or ``{"message": "..."}`` to /chat-session
with ``Authorization: Bearer <token>``, the token your app gave the user at sign-in (here ``user.signature``,
an HMAC of the user id under APP_TOKEN_KEY), and gets ``{conversationId, token, expiresAt}``; each
conversation carries the user id as its ``meta``. (With no route of your own around it,
``endpoint.asgi`` is the whole ASGI application.)
"""

import hashlib
import hmac
import os
from contextlib import asynccontextmanager
from typing import AsyncIterator, Dict, Union

from fastapi import FastAPI, Request, Response

from chatbotkit_session import AsyncBotSessionClient, EndpointRequest, SessionEndpoint

APP_TOKEN_KEY = os.environ["APP_TOKEN_KEY"].encode()


def app_token(user_id: str) -> str:
    """The bearer token your sign-in hands a user: their id, signed."""
    return user_id + "." + hmac.new(APP_TOKEN_KEY, user_id.encode(), hashlib.sha256).hexdigest()


def bearer_user(chat: EndpointRequest) -> Union[bool, Dict[str, str]]:
    """Mint only for a request that carries a token this app signed, and name its user in the meta."""
    scheme, _, token = chat.headers.get("authorization", "").partition(" ")
    user_id = token.rpartition(".")[0]
    if scheme.lower() != "bearer" or not user_id or not hmac.compare_digest(token, app_token(user_id)):
        return False
    return {"userId": user_id}


client = AsyncBotSessionClient()  # reads CHATBOTKIT_API_SECRET
endpoint = SessionEndpoint.from_env(client, authorize=bearer_user)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    await client.aclose()  # the pooled connections close with the app


app = FastAPI(lifespan=lifespan)


@app.api_route("/chat-session", methods=["POST", "OPTIONS"])
async def chat_session(request: Request) -> Response:
    address = request.client.host if request.client else None
    answer = await endpoint.ahandle(request.method, request.headers, request.stream(), remote_addr=address)
    return Response(answer.body, answer.status, dict(answer.headers))
