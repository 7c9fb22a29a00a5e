# SPDX-License-Identifier: MIT
"""AWS Lambda: the session endpoint for callers with your app's bearer token, beside ``chatbotkit_session.py``.

Deploy this file and the module; the handler is ``lambda_function.lambda_handler``. Set
CHATBOTKIT_API_SECRET, CHATBOTKIT_BOT_ID, CHATBOTKIT_ALLOWED_ORIGINS and APP_TOKEN_KEY on the function.
A page posts to the Function URL with ``Authorization: Bearer <token>``, the token your app gave the user
at sign-in (their id, signed with an HMAC under APP_TOKEN_KEY); each conversation carries the user id as
its ``meta``. (Without such a check, the module's own ``chatbotkit_session.lambda_handler`` is the whole
function.)
"""

import hashlib
import hmac
import os
from typing import Any, Dict, Union

from chatbotkit_session import EndpointRequest, SessionEndpoint

APP_TOKEN_KEY = os.environ["APP_TOKEN_KEY"].encode()


def bearer_user(chat: EndpointRequest) -> Union[bool, Dict[str, str]]:
    """Mint only for a request that carries a token this app signed, and name its user in the meta."""
    scheme, _, token = chat.headers.get("authorization", "").partition(" ")
    user_id, _, signature = token.rpartition(".")
    expected = hmac.new(APP_TOKEN_KEY, user_id.encode(), hashlib.sha256).hexdigest()
    if scheme.lower() != "bearer" or not user_id or not hmac.compare_digest(signature, expected):
        return False
    return {"userId": user_id}


endpoint = SessionEndpoint.from_env(authorize=bearer_user)  # built once per container, at init


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    return endpoint.lambda_handler(event, context)
