# SPDX-License-Identifier: MIT
"""Django: the session endpoint as a view for signed-in users, with Django's CSRF protection left on.

    CHATBOTKIT_API_SECRET=... CHATBOTKIT_BOT_ID=... DJANGO_SECRET_KEY=... python django_app.py runserver

The page at / is served by Django itself (same origin), so no CORS is needed; it passes the CSRF check
by sending the token Django put in the page as the ``X-CSRFToken`` header, and checks ``answer.ok``
before reading JSON (a 403 from Django is an HTML page). Your login view puts the user's id in the
session (``request.session["user_id"] = user.pk``; with ``django.contrib.auth``, read ``request.user``
instead); a visitor who is not signed in gets ``403 NOT_AUTHORIZED``, and each conversation carries the
user's id as its ``meta``.
"""

import os
import secrets
import sys
from typing import Dict, Union

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY") or secrets.token_urlsafe(32),
    ALLOWED_HOSTS=["localhost", "127.0.0.1", "testserver"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",  # CSRF protection stays on
    ],
    SESSION_ENGINE="django.contrib.sessions.backends.signed_cookies",  # no database needed for the sample
)
django.setup()

from chatbotkit_session import (  # noqa: E402
    BotSessionClient,
    EndpointRequest,
    KeepAliveTransport,
    SessionEndpoint,
)


def signed_in_user(chat: EndpointRequest) -> Union[bool, Dict[str, str]]:
    """Mint only for a signed-in user (the view passes its HttpRequest as the event)."""
    user_id = chat.event.session.get("user_id")
    return {"userId": str(user_id)} if user_id is not None else False


# Kept-alive connections to ChatBotKit: a web backend makes many calls.
endpoint = SessionEndpoint.from_env(BotSessionClient(transport=KeepAliveTransport()), authorize=signed_in_user)

PAGE = """<!doctype html>
<meta name="csrf-token" content="%s">
<script>
async function openChatSession(message) {
  const answer = await fetch("/chat-session", {
    method: "POST",
    headers: {
      "Content-Type": "application/json",
      "X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content,
    },
    body: JSON.stringify(message ? { message } : {}),
  })
  if (!answer.ok) throw new Error("chat session: HTTP " + answer.status)
  return answer.json()  // { conversationId, token, expiresAt }
}
</script>
"""


def page(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE % get_token(request))  # get_token also sets the CSRF cookie


def chat_session(request: HttpRequest) -> HttpResponse:
    address = request.META.get("REMOTE_ADDR")
    answer = endpoint.handle(request.method or "", request.headers, request, remote_addr=address, event=request)
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response


urlpatterns = [path("", page), path("chat-session", chat_session)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
