# SPDX-License-Identifier: MIT
"""Django: the session endpoint as a view, with Django's CSRF protection left on, in one file.

    CHATBOTKIT_API_SECRET=... CHATBOTKIT_BOT_ID=... python django_app.py runserver

The page at / is served by Django itself (same origin), so no CORS is needed; it passes the CSRF check
by sending the token Django put in the page as the ``X-CSRFToken`` header, and checks ``answer.ok``
before reading JSON (a 403 from Django is an HTML page).
"""

import os
import secrets
import sys

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
    MIDDLEWARE=["django.middleware.csrf.CsrfViewMiddleware"],  # CSRF protection stays on
)
django.setup()

from chatbotkit_session import BotSessionClient, SessionEndpoint  # noqa: E402

endpoint = SessionEndpoint(BotSessionClient(), os.environ["CHATBOTKIT_BOT_ID"])  # reads CHATBOTKIT_API_SECRET

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
    # Check your own user session here (request.user with django.contrib.auth) before minting.
    answer = endpoint.handle(request.method or "", request.headers, request)
    response = HttpResponse(answer.body, status=answer.status)
    for name, value in answer.headers:
        response[name] = value
    return response


urlpatterns = [path("", page), path("chat-session", chat_session)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
