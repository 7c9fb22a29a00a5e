# SPDX-License-Identifier: MIT
"""AWS Lambda handler that opens a ChatBotKit bot session for a browser widget.

Deploy this file with ``chatbotkit_session.py`` beside it (no layer, no dependencies) and set the
``CHATBOTKIT_API_SECRET`` environment variable on the function. The event is::

    {"botId": "...", "message": "optional first user message", "durationInSeconds": 3600}

and the result is the session: ``{"id", "conversationId", "token", "expiresAt", ...}``.
"""

from __future__ import annotations

from typing import Any, Dict

from chatbotkit_session import BotSessionClient, ClientOptions

# Built once per container, at cold start: warm invocations reuse it. A missing secret fails here,
# loudly, instead of on the first request.
CLIENT = BotSessionClient(ClientOptions.from_env(timeout=10.0, retries=2))


def lambda_handler(event: Any, context: Any) -> Dict[str, Any]:
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
    return dict(CLIENT.create(bot_id, request))
