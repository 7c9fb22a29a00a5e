# SPDX-License-Identifier: MIT
"""AWS Lambda handler that opens a ChatBotKit bot session for a browser widget.

Deploy this file with ``chatbotkit_session.py`` beside it (no layer, no dependencies). Configuration, read
at cold start (a missing or bad value fails the init, naming the variable):

- ``CHATBOTKIT_API_SECRET`` (required): the API secret.
- ``CHATBOTKIT_BOT_ID``: the bot that HTTP callers get a session with (required for HTTP events).
- ``CHATBOTKIT_SESSION_DURATION``: seconds a session stays open, 1800 to 86400 (default 3600).

Two ways in:

- Behind a Lambda Function URL or API Gateway (HTTP API payload 2.0, REST API payload 1.0), a ``POST``
  whose body is ``{}`` or ``{"message": "optional first user message"}`` gets a proxy response: 200 with
  ``{"conversationId", "token", "expiresAt"}``, 400 ``{"code", "message"}`` for a bad body, 405 for other
  methods, 502 when the API fails or cannot be reached, 504 when it is too slow. The bot and the duration
  come from configuration, never from the request.
- Invoked directly (``aws lambda invoke``, another function), the event
  ``{"botId": "...", "message": "optional", "durationInSeconds": 3600}`` returns the whole session; a bad
  event raises ValueError naming the field.

Every invocation answers before the function's deadline: the whole call to ChatBotKit, retries included,
gets the time the invocation has left less a margin (``total_timeout``).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from typing import Any, Dict, Optional

from chatbotkit_session import APIConnectionError, APITimeoutError, BotSessionClient, ChatBotKitError, ClientOptions

MAX_MESSAGE_CHARS = 4000  # what a browser may send as the first message
DEADLINE_MARGIN_SECONDS = 0.5  # kept back from the deadline to build and send the answer
HEADERS = {"Content-Type": "application/json", "Cache-Control": "no-store"}


def _duration_from_env() -> int:
    text = os.environ.get("CHATBOTKIT_SESSION_DURATION", "3600")
    if not text.isdigit() or not 1800 <= int(text) <= 86400:
        raise ValueError("CHATBOTKIT_SESSION_DURATION must be whole seconds from 1800 to 86400, got %r" % text)
    return int(text)


# Built once per container, at cold start: warm invocations reuse them. A missing secret fails here.
CLIENT = BotSessionClient(ClientOptions.from_env(timeout=10.0, retries=2))
BOT_ID = os.environ.get("CHATBOTKIT_BOT_ID", "").strip()
DURATION = _duration_from_env()


def lambda_handler(event: Any, context: Any) -> Dict[str, Any]:
    """Answer an HTTP event with a proxy response, or a direct invocation with the session."""
    if isinstance(event, dict) and ("httpMethod" in event or "http" in (event.get("requestContext") or {})):
        return _http(event, context)
    return _direct(event, context)


def _budgeted(context: Any) -> Optional[BotSessionClient]:
    """The client with the whole call bounded by the invocation's time left, or None if none is left."""
    if context is None or not hasattr(context, "get_remaining_time_in_millis"):
        return CLIENT
    seconds = context.get_remaining_time_in_millis() / 1000.0 - DEADLINE_MARGIN_SECONDS
    return CLIENT.extend(total_timeout=seconds) if seconds > 0 else None


def _http(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    method = event.get("httpMethod") or event["requestContext"]["http"].get("method", "")
    if method != "POST":
        return _answer(405, {"code": "METHOD_NOT_ALLOWED", "message": "use POST"}, {"Allow": "POST"})
    if not BOT_ID:
        _log("error", "CHATBOTKIT_BOT_ID is not set on the function")
        return _answer(500, {"code": "NOT_CONFIGURED", "message": "the function is not configured"})
    try:
        message = _message_from_body(event)
    except ValueError as error:
        return _answer(400, {"code": "BAD_REQUEST", "message": str(error)})
    request: Dict[str, Any] = {"durationInSeconds": DURATION}
    if message:
        request["messages"] = [{"type": "user", "text": message}]
    client = _budgeted(context)
    try:
        if client is None:
            raise APITimeoutError("no time left before the function's deadline")
        session = client.create(BOT_ID, request)
    except APITimeoutError as error:
        _log("error", str(error))
        return _answer(504, {"code": "TIMEOUT", "message": "the chat service did not answer in time"})
    except (APIConnectionError, ChatBotKitError) as error:
        _log("error", str(error))
        return _answer(502, {"code": error.code, "message": "the chat service could not open a session"})
    return _answer(
        200, {"conversationId": session["conversationId"], "token": session["token"], "expiresAt": session["expiresAt"]}
    )


def _message_from_body(event: Dict[str, Any]) -> str:
    """The optional first message of an HTTP body; ValueError says what is wrong with the body."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded") and body:
        try:
            body = base64.b64decode(body, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ValueError("the body is not valid base64-encoded UTF-8") from None
    if not body.strip():
        return ""
    try:
        payload = json.loads(body)
    except RecursionError:  # a browser can send arrays nested a hundred thousand deep
        raise ValueError("the body nests too deeply") from None
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError('the body must be a JSON object such as {"message": "Hello"}')
    unknown = sorted(set(payload) - {"message"})
    if unknown:
        raise ValueError("only 'message' may be sent; got %s" % ", ".join(repr(key)[:40] for key in unknown[:5]))
    message = payload.get("message")
    if message is None:
        return ""
    if not isinstance(message, str):
        raise ValueError("message must be a string")
    if len(message) > MAX_MESSAGE_CHARS:
        raise ValueError("message must be at most %d characters" % MAX_MESSAGE_CHARS)
    return message


def _answer(status: int, payload: Dict[str, Any], headers: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    return {"statusCode": status, "headers": {**HEADERS, **(headers or {})}, "body": json.dumps(payload)}


def _log(level: str, message: str) -> None:
    """One JSON line for CloudWatch; the library has already masked the secret in its errors."""
    print(json.dumps({"level": level, "message": message}))


def _direct(event: Any, context: Any) -> Dict[str, Any]:
    """Create a session for ``event["botId"]``; raise ValueError naming the field of a bad event."""
    if not isinstance(event, dict):
        raise ValueError("event must be a JSON object with a botId")
    bot_id = event.get("botId")
    if not isinstance(bot_id, str) or not bot_id.strip():
        raise ValueError("event.botId must be a non-empty string")
    request: Dict[str, Any] = {}
    if event.get("message") is not None:
        if not isinstance(event["message"], str):
            raise ValueError("event.message must be a string")
        request["messages"] = [{"type": "user", "text": event["message"]}]
    if event.get("durationInSeconds") is not None:
        duration = event["durationInSeconds"]
        if isinstance(duration, bool) or not isinstance(duration, (int, float)):
            raise ValueError("event.durationInSeconds must be a number")
        request["durationInSeconds"] = duration
    client = _budgeted(context)
    if client is None:
        raise APITimeoutError("no time left before the function's deadline")
    return dict(client.create(bot_id, request))
