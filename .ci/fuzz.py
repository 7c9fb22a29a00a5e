# SPDX-License-Identifier: MIT
"""CI's property-based fuzz job (hypothesis, about a minute): python .ci/fuzz.py OPENAPI_FILE

1. Requests generated from the createBotSession request schema in the published OpenAPI document go out
   unchanged (the JSON the transport receives decodes to the request).
2. Arbitrary values as the request, inside it, as the bot id and as options either go out or raise
   ValueError/TypeError naming the field, before any I/O.
3. Arbitrary response bytes from a raw loopback server end in a session or a ChatBotKitError, and no
   text reachable from that error holds the secret in any form.
Prints one line per property and exits 1 if any fails.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from typing import Any, Callable, Dict, List

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import chatbotkit_session as cbk
from support_chatbotkit_session import SECRET, SESSION, RawServer, reachable_texts, secret_forms

FAST = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None)


def from_schema(schema: Dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for the JSON-schema subset the createBotSession request uses."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        return st.text(max_size=40)
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**12), 10**12)
    if kind == "integer":
        return st.integers(-(10**12), 10**12)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=5)
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fixed = st.fixed_dictionaries(
            {name: from_schema(sub) for name, sub in properties.items() if name in required},
            optional={name: from_schema(sub) for name, sub in properties.items() if name not in required},
        )
        if schema.get("additionalProperties"):
            extra = st.dictionaries(st.text(max_size=10), json_values, max_size=4)
            return st.tuples(fixed, extra).map(lambda pair: {**pair[1], **pair[0]})
        return fixed
    return json_values


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)

anything = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.builds(lambda digits: 10**digits, st.integers(4300, 4400))  # past int-to-text conversion's limit
    | st.floats()
    | st.text()
    | st.binary(max_size=8)
    | st.sampled_from([object(), {1, 2}, math.inf, -math.nan, b"x", ...]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(
            inner.filter(lambda key: isinstance(key, (str, int, float, bool, type(None)))), inner, max_size=4
        )
    ),
    max_leaves=15,
)


class Recorder:
    def __init__(self) -> None:
        self.bodies: List[bytes] = []

    def __call__(self, request: cbk.HTTPRequest) -> cbk.HTTPResponse:
        self.bodies.append(request.body)
        return cbk.HTTPResponse(200, {}, json.dumps(SESSION).encode())


def names_a_field(error: Exception, fields: List[str]) -> bool:
    return any(name in str(error) for name in fields)


def check_requests_from_schema(schema: Dict[str, Any]) -> None:
    recorder = Recorder()
    client = cbk.BotSessionClient(secret=SECRET, transport=recorder)

    @settings(FAST, max_examples=1500)
    @given(from_schema(schema))
    def sent_unchanged(request: Dict[str, Any]) -> None:
        client.create("bot", request)
        assert json.loads(recorder.bodies[-1]) == request, (request, recorder.bodies[-1])

    sent_unchanged()


def check_arbitrary_values() -> None:
    recorder = Recorder()
    client = cbk.BotSessionClient(secret=SECRET, transport=recorder)

    @settings(FAST, max_examples=3000)
    @given(anything, st.sampled_from(["request", "meta", "messages", "durationInSeconds", "bot_id"]))
    def goes_out_or_names_the_field(value: Any, where: str) -> None:
        bot_id, request = "bot", None
        if where == "request":
            request = value
        elif where == "bot_id":
            bot_id = value
        else:
            request = {where: value}
        before = len(recorder.bodies)
        try:
            client.create(bot_id, request)
        except (ValueError, TypeError) as error:
            assert len(recorder.bodies) == before, "the transport was called before the error"
            assert names_a_field(error, ["request", "bot_id"]), error
        else:
            assert len(recorder.bodies) == before + 1

    goes_out_or_names_the_field()

    option_names = [name for name in cbk.ClientOptions.__dataclass_fields__ if name not in ("transport", "ssl_context")]

    @settings(FAST, max_examples=3000)
    @given(st.sampled_from(option_names), anything)
    def option_accepted_or_named(name: str, value: Any) -> None:
        try:
            options = cbk.ClientOptions(**{name: value})
        except (ValueError, TypeError) as error:
            assert name.split("_")[0] in str(error) or "CHATBOTKIT" in str(error), (name, error)
            return
        # accepted options must be sendable: building and sending the request must not fail on them
        try:
            cbk.BotSessionClient(options.extend(transport=recorder, allow_insecure_http=True)).create("bot")
        except cbk.APITimeoutError as error:  # a total_timeout shorter than the clock's step has passed at once
            assert name == "total_timeout" and "total_timeout" in str(error), (name, error)

    option_accepted_or_named()


def answers() -> st.SearchStrategy[bytes]:
    secret = st.sampled_from([*secret_forms(), "Bearer " + SECRET])
    status_line = st.one_of(
        st.builds(lambda code, reason: "HTTP/1.1 %s %s" % (code, reason), st.integers(0, 999), st.text(max_size=20)),
        st.builds(lambda s: "HTTP/1.1 %s" % s, secret),
        st.text(max_size=30),
    )
    header = st.tuples(st.one_of(st.text(min_size=1, max_size=12), secret), st.one_of(st.text(max_size=30), secret))
    body = st.one_of(
        st.binary(max_size=200),
        st.builds(lambda s: json.dumps({"message": s, "code": s}).encode(), secret),
        st.builds(lambda s: json.dumps(dict(SESSION, token=s)).encode(), secret),
        st.just(json.dumps(SESSION).encode()),
    )

    def assemble(line: str, headers: List[Any], payload: bytes, length: bool) -> bytes:
        lines = [line] + ["%s: %s" % pair for pair in headers]
        if length:
            lines.append("Content-Length: %d" % len(payload))
        return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "replace") + payload

    return st.one_of(
        st.binary(max_size=300),
        st.builds(assemble, status_line, st.lists(header, max_size=4), body, st.booleans()),
    )


def check_arbitrary_answers() -> None:
    current: List[bytes] = [b""]
    with RawServer(lambda index, request: current[0]) as server:
        transports: List[Callable[[cbk.HTTPRequest], cbk.HTTPResponse]] = [
            cbk.UrllibTransport(),
            cbk.KeepAliveTransport(),
        ]
        clients = [
            cbk.BotSessionClient(secret=SECRET, base_url=server.url, retries=0, timeout=2, transport=transport)
            for transport in transports
        ]

        @settings(FAST, max_examples=3000)
        @given(answers(), st.integers(0, 1))
        def session_or_clean_error(data: bytes, which: int) -> None:
            current[0] = data
            try:
                session = clients[which].create("bot")
            except cbk.ChatBotKitError as error:
                for text in reachable_texts(error):
                    for form in secret_forms():
                        assert form not in text, (form, text[:200])
            else:
                assert {"id", "conversationId", "token", "expiresAt"} <= set(session)

        session_or_clean_error()


def main() -> int:
    schema_file = sys.argv[1]
    with open(schema_file, encoding="utf-8") as handle:
        document = json.load(handle)
    operation = document["paths"]["/bot/{botId}/session/create"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    failed = 0
    for name, check in (
        ("requests from the published schema go out unchanged", lambda: check_requests_from_schema(schema)),
        ("arbitrary values go out or raise ValueError/TypeError naming the field", check_arbitrary_values),
        ("arbitrary answers end in a session or an error without the secret", check_arbitrary_answers),
    ):
        started = time.monotonic()
        try:
            check()
        except Exception as error:  # a falsifying example: report it and go on with the next property
            failed += 1
            print("fuzz: FAILED: %s: %s: %s" % (name, type(error).__name__, str(error)[:2000]))
        else:
            print("fuzz: ok: %s (%.1f s)" % (name, time.monotonic() - started))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
