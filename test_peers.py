# SPDX-License-Identifier: MIT
"""Tests that need a peer from outside the standard library; each skips, saying why, without it.

- h11 (PyPI) with hypothesis: the HTTP/1.1 exchange read differentially against h11 on generated answers.
- Flask, Django and FastAPI (PyPI): the examples under their real frameworks.
- Chromium (Debian) driven by playwright-core (npm): the whole browser flow, across origins.
- Prism (npm) serving ChatBotKit's published OpenAPI document: the contract.
- The README's samples, as written (FastAPI, httpx and pydantic for some).
- awslambdaric (PyPI): the module's lambda_handler under the real Lambda runtime client.
- @chatbotkit/sdk (npm) on Node.js: parity with the Node SDK, side by side.

CI runs this file in a venv that has every peer, and fails if a test was skipped there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import hmac
import http.server
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request
from typing import Any, Callable, ClassVar, Dict, Iterator, List, Optional, Tuple

import chatbotkit_session as cbk
from support_chatbotkit_session import (
    HERE,
    LAMBDA_HANDLER,
    MODULE_FILE,
    SECRET,
    SESSION,
    SHOP,
    TEMPLATE_KEY,
    TEST_CA_PEM,
    LoopbackServer,
    Recorded,
    _HTTPServer,
    cert_file,
    clean_env,
    function_url_event,
    module_available,
    raw_exchange,
    reply,
    rest_api_event,
    run_concurrently,
    run_python,
    secret_forms,
    session_app,
    start_dev_server,
    unused_port,
)

HAVE_H11 = importlib.util.find_spec("h11") is not None and importlib.util.find_spec("hypothesis") is not None
EXAMPLES = int(os.environ.get("CBK_DIFFERENTIAL_EXAMPLES", "3000"))

# Where this module is stricter than h11 on purpose (RFC 9112 lets a recipient refuse each of these):
STRICTER = (
    "obs-fold",  # h11 unfolds an obs-fold line; we refuse it (RFC 9112 section 5.2)
    "both Transfer-Encoding and Content-Length",  # h11 lets Transfer-Encoding win (section 6.3 allows refusing)
    "chunk data longer than its size",  # h11 drops the two bytes after chunk data unchecked; we want CRLF
    "malformed status line",  # h11 takes any HTTP/d.d; we speak HTTP/1.x only
    "101 Switching Protocols",  # we never ask to switch
)
Outcome = Tuple[str, Any, Any, Any]  # ("ok", status, body, reusable) or ("error", reason, None, None)


def ours(pieces: List[bytes]) -> Outcome:
    exchange = cbk._HTTP11Exchange("http://api.test/x", "api.test:80", 1 << 30)
    try:
        for index, piece in enumerate([*pieces, b""]):  # the end of the stream last
            response = exchange.receive(piece)
            if response is not None:
                later = any(pieces[index + 1 :])  # bytes after the answer are found by the check before reuse
                return ("ok", response.status, response.body, exchange.reusable and not later)
    except cbk.APIConnectionError as error:
        return ("error", error.message, None, None)
    raise AssertionError("the end of the stream left the exchange waiting")


def theirs(pieces: List[bytes]) -> Outcome:
    import h11

    connection = h11.Connection(h11.CLIENT)
    connection.send(h11.Request(method="POST", target="/x", headers=[("Host", "api.test"), ("Content-Length", "2")]))
    connection.send(h11.Data(data=b"{}"))
    connection.send(h11.EndOfMessage())
    status, body = None, b""
    try:
        for index, piece in enumerate([*pieces, b""]):  # the end of the stream last
            connection.receive_data(piece)
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    break
                if isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    for later in pieces[index + 1 :]:  # what arrives after the answer, as ours is judged
                        connection.receive_data(later)
                    return ("ok", status, body, _h11_reusable(connection))
                elif isinstance(event, h11.ConnectionClosed):
                    return ("error", "closed", None, None)
    except h11.RemoteProtocolError as error:
        return ("error", str(error), None, None)
    return ("error", "incomplete", None, None)


def _h11_reusable(connection: Any) -> bool:
    import h11

    if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
        return False  # keep-alive is off
    data, closed = connection.trailing_data  # bytes after the answer, or the end of the stream: no next cycle
    return not data and not closed


def answers() -> Any:
    """A hypothesis strategy for raw answer streams, valid and broken, and how they are cut into pieces."""
    from hypothesis import strategies as st

    token = st.text(
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~", min_size=1, max_size=12
    )
    value = st.binary(max_size=20).map(lambda raw: bytes(b for b in raw if b > 0x20 and b != 0x7F))
    header = st.tuples(token, value).map(lambda pair: pair[0].encode() + b": " + pair[1])
    extra = st.lists(header, max_size=4)

    @st.composite
    def stream(draw: Any) -> Tuple[bytes, List[int]]:
        newline = draw(st.sampled_from([b"\r\n", b"\n"]))
        data = b""
        for _ in range(draw(st.integers(0, 3))):
            code = draw(st.sampled_from([b"100", b"102", b"103"]))
            data += b"HTTP/1.1 " + code + b" Interim" + newline + b"".join(h + newline for h in draw(extra)) + newline
        version = draw(st.sampled_from([b"1.1", b"1.1", b"1.0"]))
        status = draw(st.sampled_from([b"200", b"201", b"204", b"304", b"400", b"404", b"429", b"500", b"503"]))
        body = draw(st.binary(max_size=300))
        headers = draw(extra)
        connection = draw(st.sampled_from([None, b"close", b"keep-alive", b"Keep-Alive, close"]))
        if connection is not None:
            headers.append(b"Connection: " + connection)
        framing = draw(st.sampled_from(["length", "length", "chunked", "chunked", "close", "both"]))
        encoded = body
        if framing == "length":
            headers.append(b"Content-Length: %d" % len(body))
        elif framing != "close":
            headers.append(b"Transfer-Encoding: chunked")
            if framing == "both":  # h11 lets Transfer-Encoding win; we refuse the pair
                headers.append(b"Content-Length: %d" % len(body))
            cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=4)))
            parts = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)]) if body[a:b]]
            encoded = b"".join(
                b"%x%s\r\n%s\r\n" % (len(p), draw(st.sampled_from([b"", b";x=y", b" "])), p) for p in parts
            )
            encoded += b"0\r\n" + b"".join(h + b"\r\n" for h in draw(st.lists(header, max_size=2))) + b"\r\n"
        if headers and draw(st.integers(0, 9)) == 0:  # obs-fold: h11 unfolds it; we refuse it
            headers.insert(1, b" folded")
        reason = draw(st.sampled_from([b" OK", b" ", b"", b" Not \tFine"]))
        data += b"HTTP/" + version + b" " + status + reason + newline
        data += b"".join(h + newline for h in headers) + newline + encoded
        data += draw(st.sampled_from([b"", b"", b"HTTP/1.1 200 OK\r\n\r\n", b"x"]))
        for _ in range(draw(st.integers(0, 2))):  # damage: a byte changed, removed or added
            if data:
                at = draw(st.integers(0, len(data) - 1))
                byte = draw(st.binary(min_size=1, max_size=1))
                data = draw(
                    st.sampled_from(
                        [data[:at] + byte + data[at + 1 :], data[:at] + data[at + 1 :], data[:at] + byte + data[at:]]
                    )
                )
        cuts = sorted(set(draw(st.lists(st.integers(1, max(len(data) - 1, 1)), max_size=5))))
        return data, cuts

    return stream()


@unittest.skipUnless(HAVE_H11, "h11 and hypothesis are not installed (CI runs this in a venv that has them)")
class TestExchangeAgainstH11(unittest.TestCase):
    def test_the_same_framing_bodies_and_reuse_as_h11(self) -> None:
        from hypothesis import HealthCheck, given, settings

        tally = {"same": 0, "stricter": 0}

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
            derandomize=os.environ.get("CBK_DIFFERENTIAL_RANDOM") is None,  # CI: the same answers every run
        )
        @given(answers())
        def agree(case: Tuple[bytes, List[int]]) -> None:
            data, cuts = case
            pieces = [piece for piece in (data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)])) if piece]
            mine, h11s = ours(pieces), theirs(pieces)
            if mine[0] == "error" and h11s[0] == "ok" and any(reason in mine[1] for reason in STRICTER):
                tally["stricter"] += 1
                return
            self.assertEqual(mine[0], h11s[0], (data, mine, h11s))
            if mine[0] == "ok":
                self.assertEqual(mine[1:], h11s[1:], data)
            tally["same"] += 1

        agree()
        report = os.environ.get("CBK_DIFFERENTIAL_REPORT")
        if report:
            with open(report, "w") as handle:
                handle.write(
                    "%d generated answers: %d read as h11 reads them, %d refused where h11 is lenient\n"
                    % (sum(tally.values()), tally["same"], tally["stricter"])
                )
        self.assertGreater(tally["same"], EXAMPLES // 2)


# ---------------------------------------------------------------------------------------------------------
# The examples under their real frameworks (Flask, Django, FastAPI), against a loopback fake of the API
# ---------------------------------------------------------------------------------------------------------


APP_TOKEN_KEY = "app-token-key-for-tests"
EXAMPLE_ENV = {
    "CHATBOTKIT_API_SECRET": SECRET,
    "CHATBOTKIT_BOT_ID": "bot_web",
    "CHATBOTKIT_ALLOWED_ORIGINS": "https://shop.example",
    "FLASK_SECRET_KEY": "flask-secret-for-tests",
    "DJANGO_SECRET_KEY": "django-secret-for-tests",
    "APP_TOKEN_KEY": APP_TOKEN_KEY,
}


def app_token(user_id: str) -> str:
    """The bearer token the FastAPI and Lambda examples accept for *user_id* (what a sign-in would hand out)."""
    return user_id + "." + hmac.new(APP_TOKEN_KEY.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def run_example(example: str, code: str, api_url: str) -> Any:
    """Run *code* beside a copy of examples/<example>.py and the module, as a project has them; return the
    JSON it prints."""
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(str(MODULE_FILE), folder)
        shutil.copy(str(HERE / "examples" / (example + ".py")), folder)
        env = clean_env(CHATBOTKIT_API_BASE_URL=api_url, **EXAMPLE_ENV)
        out = run_python("-c", "import sys; sys.path.insert(0, '.')\n" + code, cwd=folder, env=env, timeout=120)
    if out.returncode != 0:
        raise AssertionError(out.stderr[-3000:])
    for form in secret_forms():
        assert form not in out.stdout + out.stderr, "the secret leaked"
    return json.loads(out.stdout.splitlines()[-1])


PREFLIGHT = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
SESSION_FIELDS = {key: SESSION[key] for key in ("conversationId", "token", "expiresAt")}
MINTED_FOR_U1 = {"durationInSeconds": 3600, "messages": [{"type": "user", "text": "Hi"}], "meta": {"userId": "u_1"}}


class TestExamples(unittest.TestCase):
    def check_cross_origin_answers(self, seen: Dict[str, Any], api: LoopbackServer) -> None:
        (status, headers, body) = seen["post"]
        self.assertEqual((status, json.loads(body)), (200, SESSION_FIELDS))
        lowered = {name.lower(): value for name, value in headers.items()}
        self.assertEqual(lowered["access-control-allow-origin"], "https://shop.example")
        self.assertEqual(lowered["cache-control"], "no-store")
        self.assertEqual(seen["preflight"][0], 204)
        preflight = {k.lower(): v for k, v in seen["preflight"][1].items()}
        self.assertEqual(preflight["access-control-allow-methods"], "POST")
        self.assertIn("authorization", preflight["access-control-allow-headers"])  # the bearer token may be sent
        self.assertEqual(seen["evil preflight"][0], 403)
        self.assertEqual((seen["bad"][0], json.loads(seen["bad"][2])["code"]), (400, "BAD_REQUEST"))
        self.assertEqual((seen["anonymous"][0], json.loads(seen["anonymous"][2])["code"]), (403, "NOT_AUTHORIZED"))
        self.assertEqual((seen["simple"][0], json.loads(seen["simple"][2])["code"]), (403, "ORIGIN_NOT_ALLOWED"))
        self.assertEqual([record.json() for record in api.requests], [MINTED_FOR_U1])

    # The same requests to the Flask and FastAPI examples, through each framework's own test client;
    # AUTH holds what makes a request a signed-in user's, ANONYMOUS what a visitor sends.
    REQUESTS = (
        "def seen(r): return [r.status_code, dict(r.headers), text(r)]\n"
        "evil = dict(%r, Origin='https://evil.example')\n"
        "shop = {'Origin': 'https://shop.example'}\n"
        "out = {'anonymous': seen(anonymous.post('/chat-session', json={}, headers=shop)),\n"
        "       'post': seen(client.post('/chat-session', json={'message': 'Hi'}, headers=dict(shop, **AUTH))),\n"
        "       'preflight': seen(client.options('/chat-session', headers=%r)),\n"
        "       'evil preflight': seen(client.options('/chat-session', headers=evil)),\n"
        "       'bad': seen(post_raw('[1]')),\n"
        "       'simple': seen(post_simple())}\n"
        "print(json.dumps(out))\n" % (PREFLIGHT, PREFLIGHT)
    )

    @unittest.skipUnless(module_available("flask"), "Flask is not installed (CI runs this in a venv that has it)")
    def test_flask_for_a_signed_in_user(self) -> None:
        code = (
            "import json, flask_app\n"
            "client, anonymous = flask_app.app.test_client(), flask_app.app.test_client()\n"
            "with client.session_transaction() as session:\n"
            "    session['user_id'] = 'u_1'  # what the app's login view does\n"
            "AUTH = {}\n"
            "def text(r): return r.get_data(as_text=True)\n"
            "def post_raw(body): return client.post('/chat-session', data=body, content_type='application/json')\n"
            "def post_simple():  # what a page of any origin sends without a preflight, with the user's cookie\n"
            "    return client.post('/chat-session', data='{}', headers={'Origin': 'https://evil.example'})\n"
        )
        with LoopbackServer() as api:
            self.check_cross_origin_answers(run_example("flask_app", code + self.REQUESTS, api.url), api)

    @unittest.skipUnless(
        module_available("fastapi") and module_available("httpx"),
        "FastAPI and httpx are not installed (CI runs this in a venv that has them)",
    )
    def test_fastapi_with_a_bearer_token_and_its_client_closed_in_the_lifespan(self) -> None:
        code = (
            "import json, fastapi_app\n"
            "from fastapi.testclient import TestClient\n"
            "AUTH = {'Authorization': 'Bearer %s'}\n"
            "def text(r): return r.text\n"
            "JSON = {'Content-Type': 'application/json'}\n"
            "with TestClient(fastapi_app.app) as client:\n"
            "    anonymous = client\n"
            "    def post_raw(body): return client.post('/chat-session', content=body, headers=JSON)\n"
            "    def post_simple():  # what a page of any origin sends without a preflight\n"
            "        simple = {'Origin': 'https://evil.example', 'Content-Type': 'text/plain', **AUTH}\n"
            "        return client.post('/chat-session', content=b'{}', headers=simple)\n"
            "    forged = client.post('/chat-session', json={}, headers={'Authorization': 'Bearer u_2.' + '0' * 64})\n"
            "    assert forged.status_code == 403, forged.text\n"
        ) % app_token("u_1")
        requests = "".join("    " + line + "\n" for line in self.REQUESTS.splitlines())
        closed = "print(json.dumps(dict(json.loads(out_line), closed=fastapi_app.client._transport._epoch > 0)))\n"
        code += requests.replace("print(json.dumps(out))", "out_line = json.dumps(out)")
        with LoopbackServer() as api:
            seen = run_example("fastapi_app", code + closed, api.url)
            self.check_cross_origin_answers(seen, api)
        self.assertTrue(seen["closed"])  # the lifespan closed the client's pool at shutdown

    @unittest.skipUnless(module_available("django"), "Django is not installed (CI runs this in a venv that has it)")
    def test_django_with_its_csrf_protection_on_for_a_signed_in_user(self) -> None:
        code = (
            "import json, re, django_app\n"
            "from django.conf import settings\n"
            "from django.contrib.sessions.backends.signed_cookies import SessionStore\n"
            "from django.test import Client\n"
            "client = Client(enforce_csrf_checks=True)\n"
            "page = client.get('/')\n"
            'token = re.search(r\'name="csrf-token" content="([^"]+)"\', page.content.decode()).group(1)\n'
            "def seen(r): return [r.status_code, dict(r.headers), r.content.decode()]\n"
            "out = {'page': page.status_code,\n"
            "       'no token': seen(client.post('/chat-session', '{}', content_type='application/json'))}\n"
            "def post(body):\n"
            "    return client.post('/chat-session', body, 'application/json', headers={'X-CSRFToken': token})\n"
            "out['anonymous'] = seen(post('{}'))\n"
            "session = SessionStore()\n"
            "session['user_id'] = 'u_1'  # what the app's login view does\n"
            "session.save()\n"
            "client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key\n"
            "out['post'] = seen(post('{\"message\": \"Hi\"}'))\n"
            "out['bad'] = seen(post('[1]'))\n"
            "print(json.dumps(out))\n"
        )
        with LoopbackServer() as api:
            seen = run_example("django_app", code, api.url)
        self.assertEqual(seen["page"], 200)
        self.assertEqual(seen["no token"][0], 403)  # Django's CSRF check refuses a POST without the token
        self.assertIn("<", seen["no token"][2])  # ... as an HTML page: why the snippet checks answer.ok
        self.assertEqual((seen["anonymous"][0], json.loads(seen["anonymous"][2])["code"]), (403, "NOT_AUTHORIZED"))
        self.assertEqual((seen["post"][0], json.loads(seen["post"][2])), (200, SESSION_FIELDS))
        self.assertEqual(seen["post"][1]["Cache-Control"], "no-store")
        self.assertEqual(seen["bad"][0], 400)
        self.assertEqual([record.json() for record in api.requests], [MINTED_FOR_U1])

    def test_lambda_function_with_a_bearer_token(self) -> None:
        code = (
            "import json, lambda_function\n"
            "def event(headers):\n"
            "    headers = dict(headers, **{'content-type': 'application/json', 'origin': 'https://shop.example'})\n"
            "    context = {'http': {'method': 'POST', 'sourceIp': '203.0.113.7'}}\n"
            "    body = json.dumps({'message': 'Hi'})\n"
            "    return {'version': '2.0', 'headers': headers, 'requestContext': context, 'body': body}\n"
            "answers = [lambda_function.lambda_handler(event(headers), None) for headers in (\n"
            "    {}, {'authorization': 'Bearer u_2.' + '0' * 64}, {'authorization': 'Bearer %s'})]\n"
            "print(json.dumps([[a['statusCode'], json.loads(a['body'])] for a in answers]))\n"
        ) % app_token("u_1")
        with LoopbackServer() as api:
            seen = run_example("lambda_function", code, api.url)
        self.assertEqual([status for status, _ in seen], [403, 403, 200])
        self.assertEqual(seen[2][1], SESSION_FIELDS)
        self.assertEqual([record.json() for record in api.requests], [MINTED_FOR_U1])


# ---------------------------------------------------------------------------------------------------------
# The endpoint under the servers users deploy it with: uvicorn, hypercorn, gunicorn, Django's and Flask's own
# ---------------------------------------------------------------------------------------------------------

ASGI_APP = "import chatbotkit_session as c\napp = c.SessionEndpoint.from_env(c.AsyncBotSessionClient()).asgi\n"
WSGI_APP = "import chatbotkit_session as c\napp = c.SessionEndpoint.from_env().wsgi\n"


def http_exchange(
    port: int, requests: List[Tuple[str, Dict[str, str], bytes]]
) -> List[Tuple[int, Dict[str, str], bytes]]:
    """Send *requests* in turn on one kept-alive connection where the server keeps it (http.client opens
    another when it does not): a body the server wrongly sent after a HEAD answer would be read as the
    next answer's start, and fail it."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    answers = []
    try:
        for method, headers, body in requests:
            try:
                connection.request(method, "/chat-session", body=body or None, headers=headers)
            except (BrokenPipeError, ConnectionResetError):  # the server closed the kept-alive connection
                connection.close()  # (hypercorn after a 4xx): send it again on a new one, as clients do
                connection.request(method, "/chat-session", body=body or None, headers=headers)
            response = connection.getresponse()
            answers.append((response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()))
    finally:
        connection.close()
    return answers


@contextlib.contextmanager
def served(command: List[str], files: Dict[str, str], env: Dict[str, str]) -> Iterator[Tuple[int, List[str]]]:
    """Run a real server (*command*, PORT replaced by a free port) in a folder holding the module and
    *files* (text, or "examples/NAME" to copy); yield its port, once it listens, and a list that holds
    its output once it has stopped."""
    logs: List[str] = []
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(str(MODULE_FILE), folder)
        for file_name, text in files.items():
            if text.startswith("examples/"):
                shutil.copy(str(HERE / text), os.path.join(folder, file_name))
            else:
                with open(os.path.join(folder, file_name), "w", encoding="utf-8") as handle:
                    handle.write(text)
        port = unused_port()
        environment = clean_env(PYTHONPATH=folder, **dict(EXAMPLE_ENV, **env))
        argv = [arg.replace("PORT", str(port)) for arg in command]
        process = subprocess.Popen(
            argv, cwd=folder, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            wait_for_port(port, process)
            yield port, logs
        finally:
            process.terminate()
            try:
                log, _ = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                log, _ = process.communicate()
            logs.append(log)


def wait_for_port(port: int, process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    import socket

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("the server exited: %s" % (process.stdout.read() if process.stdout else ""))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("the server did not listen on %d in 30 s" % port)


class TestServers(unittest.TestCase):
    """The same short script against each real server, as users run it: an allowed preflight and POST, a
    refused origin, a simple POST from another origin, HEAD (then a POST on the same connection), a bad
    length. Nothing may be minted but the allowed POST's session."""

    report: ClassVar[List[str]] = []

    @classmethod
    def tearDownClass(cls) -> None:
        path = os.environ.get("CBK_SERVERS_REPORT")
        if path and cls.report:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("\n".join(cls.report) + "\n")

    def serve(self, name: str, command: List[str], files: Dict[str, str]) -> None:
        with LoopbackServer() as api:
            with served(command, files, {"CHATBOTKIT_API_BASE_URL": api.url}) as (port, logs):
                seen = self.script(name, port)
            minted = [record.json() for record in api.requests]
        self.check(name, seen, minted, "".join(logs))

    def script(self, name: str, port: int) -> Dict[str, Any]:
        shop = {"Origin": "https://shop.example"}
        auth = self.credentials(name, port)
        # Django's page is its own (same origin: its CSRF check refuses other origins' POSTs).
        own = {"Origin": "http://127.0.0.1:%d" % port} if name == "django runserver" else shop
        json_post = dict(own, **{"Content-Type": "application/json"}, **auth)
        preflight = dict(
            shop, **{"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
        )
        evil = {"Origin": "https://evil.example"}
        names = ["preflight", "POST", "refused origin", "simple POST", "HEAD", "POST after HEAD"]
        answers = http_exchange(
            port,
            [
                ("OPTIONS", preflight, b""),
                ("POST", json_post, b'{"message": "Hi"}'),
                ("OPTIONS", dict(preflight, **evil), b""),
                ("POST", dict(evil, **{"Content-Type": "text/plain;charset=UTF-8"}, **auth), b"{}"),
                ("HEAD", shop, b""),
                ("POST", dict(json_post, **{"Content-Type": "text/plain"}), b"{}"),
            ],
        )
        seen: Dict[str, Any] = dict(zip(names, answers))
        bad_length = {"Host": "127.0.0.1:%d" % port, **own, **auth, "Content-Type": "application/json"}
        seen["bad length"] = raw_exchange(
            port, "POST", dict(bad_length, **{"Content-Length": "\u00b2"}), b"{}", "/chat-session"
        )
        return seen

    def credentials(self, name: str, port: int) -> Dict[str, str]:
        """What makes a request a signed-in user's for the examples that ask (Flask's and Django's cookies)."""
        if name == "flask run":
            code = (
                "import flask_app; app = flask_app.app\n"
                "print(app.session_interface.get_signing_serializer(app).dumps({'user_id': 'u_1'}))\n"
            )
            return {"Cookie": "session=" + self.in_folder(code)}
        if name == "django runserver":
            code = (
                "import django_app\n"
                "from django.contrib.sessions.backends.signed_cookies import SessionStore\n"
                "session = SessionStore(); session['user_id'] = 'u_1'; session.save(); print(session.session_key)\n"
            )
            with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as page:  # the CSRF token
                cookie = page.headers["Set-Cookie"].partition(";")[0]
                token = re.search(r'name="csrf-token" content="([^"]+)"', page.read().decode()).group(1)  # type: ignore[union-attr]
            session = "sessionid=" + self.in_folder(code)
            return {"Cookie": cookie + "; " + session, "X-CSRFToken": token}
        return {}

    @staticmethod
    def in_folder(code: str) -> str:
        """What *code* prints, run beside the examples and the module (the server's folder holds copies)."""
        env = clean_env(PYTHONPATH=os.pathsep.join([str(HERE), str(HERE / "examples")]), **EXAMPLE_ENV)
        out = run_python("-c", code, env=env)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    def check(self, name: str, seen: Dict[str, Any], minted: List[Any], log: str) -> None:
        said: Dict[str, Any] = {key: value[0] for key, value in seen.items()}
        said["bad length"] = "%d (%s)" % (
            seen["bad length"][0],
            "the endpoint's" if b'"BAD_REQUEST"' in seen["bad length"][1] else "the server's own",
        )
        self.report.append("| %s | %s |" % (name, " | ".join("%s %s" % (key, status) for key, status in said.items())))
        (status, headers, body) = seen["POST"]
        self.assertEqual((status, sorted(json.loads(body))), (200, ["conversationId", "expiresAt", "token"]), body)
        self.assertEqual(headers["cache-control"], "no-store")
        if name != "django runserver":  # Django's page is its own origin: no CORS header needed
            self.assertEqual(headers["access-control-allow-origin"], SHOP)
        self.assertEqual(seen["preflight"][0], 204)
        self.assertEqual(seen["preflight"][1]["access-control-allow-origin"], SHOP)
        self.assertEqual(seen["refused origin"][0], 403)
        self.assertNotIn("access-control-allow-origin", seen["refused origin"][1])
        self.assertEqual(seen["simple POST"][0], 403)
        self.assertEqual((seen["HEAD"][0], seen["HEAD"][2]), (405, b""))
        self.assertEqual(seen["POST after HEAD"][0], 415)
        self.assertEqual(seen["bad length"][0], 400, seen["bad length"][1][:300])
        self.assertNotIn("Traceback", log)
        for form in secret_forms():
            self.assertNotIn(form, log)
        wanted: Dict[str, Any] = {"durationInSeconds": 3600, "messages": [{"type": "user", "text": "Hi"}]}
        if name in ("flask run", "django runserver"):  # the examples mint for a signed-in user, named in meta
            wanted["meta"] = {"userId": "u_1"}
        self.assertEqual(minted, [wanted])

    @unittest.skipUnless(module_available("uvicorn"), "uvicorn is not installed (CI runs this in a venv that has it)")
    def test_uvicorn_with_its_default_settings(self) -> None:
        self.serve(
            "uvicorn", [sys.executable, "-m", "uvicorn", "asgi_app:app", "--port", "PORT"], {"asgi_app.py": ASGI_APP}
        )

    @unittest.skipUnless(
        module_available("hypercorn"), "hypercorn is not installed (CI runs this in a venv that has it)"
    )
    def test_hypercorn(self) -> None:
        self.serve(
            "hypercorn",
            [sys.executable, "-m", "hypercorn", "--bind", "127.0.0.1:PORT", "asgi_app:app"],
            {"asgi_app.py": ASGI_APP},
        )

    @unittest.skipUnless(module_available("gunicorn"), "gunicorn is not installed (CI runs this in a venv that has it)")
    def test_gunicorn_sync_workers_preloaded(self) -> None:
        command = [
            sys.executable,
            *["-m", "gunicorn", "--preload", "-w", "2", "-k", "sync", "-b", "127.0.0.1:PORT", "wsgi_app:app"],
        ]
        self.serve("gunicorn sync --preload", command, {"wsgi_app.py": WSGI_APP})

    @unittest.skipUnless(module_available("gunicorn"), "gunicorn is not installed (CI runs this in a venv that has it)")
    def test_gunicorn_gthread_workers_preloaded(self) -> None:
        options = "--preload -w 2 -k gthread --threads 4 -b 127.0.0.1:PORT"
        command = [sys.executable, "-m", "gunicorn", *options.split(), "wsgi_app:app"]
        self.serve("gunicorn gthread --preload", command, {"wsgi_app.py": WSGI_APP})

    @unittest.skipUnless(module_available("flask"), "Flask is not installed (CI runs this in a venv that has it)")
    def test_the_flask_example_under_flask_run(self) -> None:
        command = [sys.executable, "-m", "flask", "--app", "flask_app", "run", "--port", "PORT"]
        self.serve("flask run", command, {"flask_app.py": "examples/flask_app.py"})

    @unittest.skipUnless(module_available("django"), "Django is not installed (CI runs this in a venv that has it)")
    def test_the_django_example_under_runserver(self) -> None:
        command = [sys.executable, "django_app.py", "runserver", "--noreload", "127.0.0.1:PORT"]
        self.serve("django runserver", command, {"django_app.py": "examples/django_app.py"})


# ---------------------------------------------------------------------------------------------------------
# In a real browser: headless Chromium, driven by playwright-core, through the whole flow
# ---------------------------------------------------------------------------------------------------------

CHROMIUM = os.environ.get("CHATBOTKIT_CHROMIUM", "/usr/bin/chromium")
PLAYWRIGHT_DIR = os.environ.get("CHATBOTKIT_PLAYWRIGHT_DIR", "")  # a folder holding node_modules/playwright-core

# The page: a session from the endpoint (another origin), then the token used as @chatbotkit/react's
# conversation manager uses it, as the Bearer credential of POST /v1/conversation/{id}/complete.
PAGE = b"""<!doctype html>
<title>shop</title>
<script>
async function openChat(endpoint, api) {
  const seen = { page: location.origin }
  try {
    const answer = await fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message: "Hello from the page" }),
    })
    seen.session = answer.status
    if (!answer.ok) throw new Error("chat session: HTTP " + answer.status)
    const { conversationId, token, expiresAt } = await answer.json()
    Object.assign(seen, { conversationId, expiresAt, tokenChars: token.length })
    const reply = await fetch(api + "/v1/conversation/" + encodeURIComponent(conversationId) + "/complete", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + token },
      body: JSON.stringify({ text: "Hi, bot" }),
    })
    seen.complete = reply.status
    seen.reply = (await reply.json()).text
  } catch (error) {
    seen.error = String(error)
  }
  return seen
}

// What a page of any origin can send without a preflight (a "simple" request): a POST with a Blob, a
// Uint8Array or text/plain body, and a beacon. Their answers are opaque to it; what counts is whether the
// endpoint minted a session for them.
async function attack(endpoint) {
  const sent = []
  const simple = [
    { method: "POST", mode: "no-cors", body: new Blob(["{}"]) },
    { method: "POST", mode: "no-cors", body: new Uint8Array([123, 125]) },
    { method: "POST", mode: "no-cors", body: "{}", headers: { "Content-Type": "text/plain" } },
  ]
  for (const init of simple) {
    try {
      sent.push((await fetch(endpoint, init)).type)
    } catch (error) {
      sent.push(String(error))
    }
  }
  sent.push("beacon queued: " + navigator.sendBeacon(endpoint, new Blob(["{}"])))
  await new Promise((resolve) => setTimeout(resolve, 1000))  // the beacon goes out after the call returns
  return { page: location.origin, attack: sent }
}
</script>
"""

BROWSER_DRIVER = r"""
import { createRequire } from 'node:module'
const require = createRequire(process.env.PLAYWRIGHT_DIR + '/package.json')
const { chromium } = require('playwright-core')
const [userDataDir, api, ...pages] = process.argv.slice(2)  // each page: "chat|URL|ENDPOINT" or "attack|URL|ENDPOINT"
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
})
try {
  for (const given of pages) {
    const [mode, url, endpoint] = given.split('|')
    const hostile = mode === 'attack'
    const page = await context.newPage()
    const console_ = []
    page.on('console', (message) => console_.push(message.text()))
    await page.goto(url)
    const seen = await page.evaluate(([e, a, h]) => (h ? attack(e) : openChat(e, a)), [endpoint, api, hostile])
    seen.console = console_
    process.stdout.write(JSON.stringify(seen) + '\n')
    await page.close()
  }
} finally {
  await context.close()
}
"""


class FakeChatBotKit:
    """The API as the browser flow needs it: createBotSession mints a token per conversation (for the
    secret only), and /v1/conversation/{id}/complete answers only that conversation's token, with CORS
    open as ChatBotKit's API has it for browsers."""

    def __init__(self) -> None:
        self.tokens: Dict[str, str] = {}
        self.seen: List[Tuple[str, str, int]] = []  # (method, path, status)
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self, status: int, payload: Any) -> None:
                body = b"" if payload is None else json.dumps(payload).encode()
                fake.seen.append((self.command, self.path, status))
                self.send_response(status)
                for name, value in (
                    ("Access-Control-Allow-Origin", "*"),
                    ("Access-Control-Allow-Headers", "authorization, content-type"),
                    ("Access-Control-Allow-Methods", "POST"),
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                ):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_OPTIONS(self) -> None:
                self.answer(204, None)

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
                bearer = self.headers.get("authorization", "")
                created = re.fullmatch(r"(?:/api)?/v1/bot/([^/]+)/session/create", self.path)
                completed = re.fullmatch(r"/v1/conversation/([^/]+)/complete", self.path)
                if created and bearer == "Bearer " + SECRET:
                    conversation = "conv_%d" % (len(fake.tokens) + 1)
                    fake.tokens[conversation] = "tok_" + os.urandom(12).hex()
                    self.answer(
                        200,
                        {
                            "id": "ses_%d" % len(fake.tokens),
                            "conversationId": conversation,
                            "token": fake.tokens[conversation],
                            "expiresAt": 1790000000000,
                            "messages": body.get("messages", []),
                        },
                    )
                elif completed and bearer == "Bearer " + fake.tokens.get(completed.group(1), "-"):
                    self.answer(200, {"id": "msg_1", "text": "Hello from %s" % completed.group(1)})
                else:
                    self.answer(401, {"code": "NOT_AUTHENTICATED", "message": "wrong credential"})

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def page_server() -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


def browser_missing() -> str:
    if not os.path.exists(CHROMIUM):
        return "Chromium is not installed at %s (CI installs Debian's chromium)" % CHROMIUM
    if shutil.which("node") is None:
        return "Node.js is not installed"
    if not PLAYWRIGHT_DIR or not os.path.isdir(os.path.join(PLAYWRIGHT_DIR, "node_modules", "playwright-core")):
        return "CHATBOTKIT_PLAYWRIGHT_DIR does not hold playwright-core (CI installs it from npm)"
    return ""


@unittest.skipIf(browser_missing(), browser_missing())
class TestBrowser(unittest.TestCase):
    def setUp(self) -> None:
        self.api = FakeChatBotKit()
        self.addCleanup(self.api.close)
        self.allowed, self.refused = page_server(), page_server()
        for server in (self.allowed, self.refused):
            self.addCleanup(server.server_close)
            self.addCleanup(server.shutdown)
        self.allowed_page, self.refused_page = (
            "http://127.0.0.1:%d/" % server.server_address[1] for server in (self.allowed, self.refused)
        )

    def browse(self, pages: List[str]) -> List[Any]:
        """Open each page ("chat|URL|ENDPOINT" or "attack|URL|ENDPOINT") in headless Chromium; what each saw."""
        with tempfile.TemporaryDirectory() as folder:
            driver = os.path.join(folder, "driver.mjs")
            with open(driver, "w", encoding="utf-8") as handle:
                handle.write(BROWSER_DRIVER)
            out = subprocess.run(
                ["node", driver, os.path.join(folder, "profile"), self.api.url, *pages],
                env=dict(
                    os.environ,
                    PLAYWRIGHT_DIR=os.path.join(PLAYWRIGHT_DIR, "node_modules", "playwright-core"),
                    CHROMIUM=CHROMIUM,
                ),
                capture_output=True,
                text=True,
                timeout=120,
            )
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        for form in secret_forms():
            self.assertNotIn(form, out.stdout + out.stderr)
        return [json.loads(line) for line in out.stdout.splitlines()]

    @classmethod
    def setUpClass(cls) -> None:
        report = os.environ.get("CBK_BROWSER_REPORT")
        if report:
            open(report, "w", encoding="utf-8").close()

    def write_report(self, seen: List[Any], endpoint_log: str) -> None:
        report = os.environ.get("CBK_BROWSER_REPORT")
        if report:
            with open(report, "a", encoding="utf-8") as handle:
                handle.write("== %s\n" % self._testMethodName)
                for page in seen:
                    handle.write("page %s saw: %s\n" % (page["page"], json.dumps(page)))
                handle.write("the endpoint's log:\n" + endpoint_log)
                handle.write("the fake API saw: %s\n" % json.dumps(self.api.seen))

    def assert_attack_sent_and_nothing_minted(self, hostile: Dict[str, Any]) -> None:
        self.assertEqual(hostile["attack"][:3], ["opaque"] * 3)  # each simple request was sent, unpreflighted
        self.assertEqual(hostile["attack"][3], "beacon queued: true")
        created = [entry for entry in self.api.seen if entry[1].endswith("/session/create")]
        self.assertLessEqual(len(created), 1)  # only the allowed page's session, if it asked for one

    def test_a_page_of_an_allowed_origin_chats_and_another_origin_is_refused(self) -> None:
        env = clean_env(CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=self.api.url)
        allowed_origin = self.allowed_page.rstrip("/")
        endpoint, endpoint_url, _ = start_dev_server(["--serve", "127.0.0.1:0", "--allow-origin", allowed_origin], env)
        try:
            good, bad, hostile = self.browse(
                [
                    "chat|%s|%s" % (self.allowed_page, endpoint_url),
                    "chat|%s|%s" % (self.refused_page, endpoint_url),
                    "attack|%s|%s" % (self.refused_page, endpoint_url),  # what needs no preflight
                ]
            )
        finally:
            endpoint.terminate()
            _, endpoint_log = endpoint.communicate(timeout=10)
        self.write_report([good, bad, hostile], endpoint_log)
        self.assertEqual((good["session"], good["complete"]), (200, 200), good)
        self.assertEqual(good["reply"], "Hello from %s" % good["conversationId"])  # the token of that conversation
        self.assertNotIn("error", good)
        self.assertNotIn("session", bad)  # the browser refused the answer: fetch failed before any status
        self.assertIn("Failed to fetch", bad["error"])
        self.assertTrue(any("CORS" in text for text in bad["console"]), bad["console"])
        self.assertIn('"OPTIONS / HTTP/1.1" 403', endpoint_log)
        self.assert_attack_sent_and_nothing_minted(hostile)
        self.assertEqual(len([entry for entry in self.api.seen if entry[1].endswith("/session/create")]), 1)
        self.assertEqual(endpoint_log.count('"POST / HTTP/1.1" 403'), 4)  # all four reached it: all refused
        for form in secret_forms():
            self.assertNotIn(form, endpoint_log)

    @unittest.skipUnless(module_available("uvicorn"), "uvicorn is not installed (CI runs this in a venv that has it)")
    def test_a_hostile_page_mints_nothing_from_endpoint_asgi_under_uvicorn(self) -> None:
        # uvicorn, unlike wsgiref, fills in no Content-Type: the simple requests arrive as the browser sent them.
        env = {"CHATBOTKIT_API_BASE_URL": self.api.url, "CHATBOTKIT_ALLOWED_ORIGINS": self.allowed_page.rstrip("/")}
        command = [sys.executable, "-m", "uvicorn", "asgi_app:app", "--port", "PORT"]
        with served(command, {"asgi_app.py": ASGI_APP}, env) as (port, logs):
            endpoint_url = "http://127.0.0.1:%d/" % port
            hostile, good = self.browse(
                ["attack|%s|%s" % (self.refused_page, endpoint_url), "chat|%s|%s" % (self.allowed_page, endpoint_url)]
            )
        self.write_report([hostile, good], "".join(logs))
        self.assert_attack_sent_and_nothing_minted(hostile)
        self.assertEqual((good["session"], good["complete"]), (200, 200), good)
        self.assertEqual(len([entry for entry in self.api.seen if entry[1].endswith("/session/create")]), 1)
        self.assertEqual("".join(logs).count('"POST / HTTP/1.1" 403'), 4)


# ---------------------------------------------------------------------------------------------------------
# The published contract served by Prism; the README's samples; the Lambda runtime client;
# the real Node SDK side by side
# ---------------------------------------------------------------------------------------------------------


CONTRACT_URL = os.environ.get("CHATBOTKIT_CONTRACT_BASE_URL", "")


PRISM_ENDPOINTS = {TEMPLATE_KEY: "/bot/{botId}/session/create"}


def request_variants(count: int, seed: int = 20261122) -> List[Any]:
    """A seeded mix of valid and broken createBotSession requests."""
    rng = random.Random(seed)
    types = ["user", "bot", "reasoning", "context", "instruction", "backstory", "activity", "checkpoint"]
    texts = [
        "hello",
        "",
        "héllo wörld",
        "日本語テキスト",
        "emoji \U0001f916",
        "line\nbreak",
        "x" * 300,
        '"quoted" \\ back',
    ]
    bad_values: List[Any] = ["60", True, None, [], {}, [1], {"a": 1}, -5, 1.5]

    def message() -> Dict[str, Any]:
        item: Dict[str, Any] = {"type": rng.choice(types), "text": rng.choice(texts)}
        if rng.random() < 0.2:
            item["extra"] = rng.choice([1, "x", None, {"deep": [1, 2]}])
        return item

    def valid() -> Dict[str, Any]:
        request: Dict[str, Any] = {}
        if rng.random() < 0.6:
            request["durationInSeconds"] = rng.choice([0, 1, 60, 3600, 0.5, -1, 10**9])
        if rng.random() < 0.7:
            request["messages"] = [message() for _ in range(rng.randint(0, 4))]
        if rng.random() < 0.6:
            request["meta"] = rng.choice(
                [{}, {"k": "v"}, {"n": {"deep": {"er": [1, "two", None, True]}}}, {"ü": "ñ", "num": 3.25}]
            )
        if rng.random() < 0.15:
            request[rng.choice(["extra", "future", "unknownField"])] = rng.choice([1, "x", [1], {"a": None}])
        return request

    mutations: List[Callable[[Dict[str, Any]], None]] = [
        lambda r: r.__setitem__("durationInSeconds", rng.choice(bad_values[:6])),
        lambda r: r.__setitem__("messages", rng.choice(["hi", None, 5, {"type": "user", "text": "x"}])),
        lambda r: r.__setitem__("messages", [rng.choice(["hi", None, 5, ["user", "x"]])]),
        lambda r: r.__setitem__("messages", [{"type": rng.choice(types)}]),
        lambda r: r.__setitem__("messages", [{"text": "no type"}]),
        lambda r: r.__setitem__(
            "messages", [{"type": rng.choice(["shout", "USER", "", "system", "assistant"]), "text": "x"}]
        ),
        lambda r: r.__setitem__(
            "messages", [message(), {"type": rng.choice(["tool", "User ", "bot2"]), "text": "x"}, message()]
        ),
        lambda r: r.__setitem__("messages", [{"type": rng.choice([None, 3, True]), "text": "x"}]),
        lambda r: r.__setitem__("messages", [{"type": "user", "text": rng.choice([None, 3, ["x"], {"t": 1}])}]),
        lambda r: r.__setitem__("meta", rng.choice(["x", 1, None, [1, 2], True])),
        lambda r: r.__setitem__("durationInSeconds", float("nan")),
        lambda r: r.__setitem__("meta", {"when": object()}),
    ]
    variants: List[Any] = []
    for _ in range(count):
        request = valid()
        if rng.random() < 0.5:
            rng.choice(mutations)(request)
        variants.append(request)
    return variants


def faithful_json(request: Any) -> Optional[bytes]:
    """The request as JSON bytes if JSON can carry it unchanged, else None."""
    try:
        text = json.dumps(request, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return text.encode() if json.loads(text) == request else None


@unittest.skipUnless(
    CONTRACT_URL,
    "CHATBOTKIT_CONTRACT_BASE_URL is unset: no Prism mock of the published OpenAPI document to test against "
    "(.ci/run starts one)",
)
class TestContract(unittest.TestCase):
    """The client against Prism serving ChatBotKit's published OpenAPI document (validates every request)."""

    def client(self, **options: Any) -> cbk.BotSessionClient:
        settings: Dict[str, Any] = {
            "secret": "contract-test-secret",
            "base_url": CONTRACT_URL,
            "endpoints": PRISM_ENDPOINTS,
            "retries": 0,
            "timeout": 10,
        }
        settings.update(options)
        return cbk.BotSessionClient(**settings)

    def assert_session(self, session: Any) -> None:
        self.assertIsInstance(session, dict)
        for name in ("id", "conversationId", "token"):
            self.assertIsInstance(session[name], str)
        self.assertIsInstance(session["expiresAt"], (int, float))
        for item in session.get("messages", []):
            self.assertIsInstance(item["type"], str)
            self.assertIsInstance(item["text"], str)

    def test_full_valid_request(self) -> None:
        session = self.client().create(
            "bot_1",
            {
                "durationInSeconds": 600,
                "messages": [{"type": "user", "text": "Hi"}],
                "meta": {"page": "/pricing", "n": 1},
            },
        )
        self.assert_session(session)

    def test_all_eight_message_types(self) -> None:
        types = ["user", "bot", "reasoning", "context", "instruction", "backstory", "activity", "checkpoint"]
        self.assert_session(
            self.client().create("bot_1", {"messages": [{"type": kind, "text": kind} for kind in types]})
        )

    def test_empty_request(self) -> None:
        self.assert_session(self.client().create("bot_1"))
        self.assert_session(self.client().create("bot_1", {}))

    def test_missing_secret_is_not_authenticated(self) -> None:
        with self.assertRaises(cbk.APIError) as caught:
            self.client(secret="").create("bot_1")
        self.assertEqual((caught.exception.status, caught.exception.code), (401, "NOT_AUTHENTICATED"))

    def test_schema_violation_the_client_lets_through_is_a_422(self) -> None:
        with self.assertRaises(cbk.APIError) as caught:
            self.client().create("bot_1", {"messages": [{"type": "shout", "text": "x"}]})
        self.assertEqual((caught.exception.status, caught.exception.code), (422, "UNPROCESSABLE_ENTITY"))

    def test_extended_client_still_conforms(self) -> None:
        child = self.client().extend(
            timezone="Europe/London", run_as_user_id="user_1", headers={"X-Trace": "t1"}, timeout=5
        )
        self.assert_session(child.create("bot 1/é", {"messages": [{"type": "bot", "text": "ok"}]}))

    def test_differential_against_the_contract(self) -> None:
        client = self.client()
        accepted = rejected_locally = rejected_by_server = 0
        problems: List[str] = []
        for request in request_variants(320):
            try:
                session = client.create("bot_1", request)
            except (ValueError, TypeError):
                rejected_locally += 1
                raw = faithful_json(request)
                if raw is not None and self.raw_status(raw) != 422:
                    problems.append("rejected locally but the contract accepts: %r" % (request,))
            except cbk.APIError as error:
                rejected_by_server += 1
                if error.status != 422 or type(error) is not cbk.UnprocessableEntityError:
                    problems.append("server said %d (%s) for %r" % (error.status, type(error).__name__, request))
            else:
                accepted += 1
                self.assert_session(session)
        sys.stderr.write(
            "\ncontract: %d accepted, %d rejected locally, %d rejected by the server\n"
            % (accepted, rejected_locally, rejected_by_server)
        )
        self.assertEqual(problems, [])
        self.assertEqual(accepted + rejected_locally + rejected_by_server, 320)
        self.assertGreater(min(accepted, rejected_locally, rejected_by_server), 10)

    def raw_status(self, body: bytes) -> int:
        """What the contract says of a body sent as is, without the client's checks."""
        request = urllib.request.Request(
            CONTRACT_URL + "/bot/bot_1/session/create",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=10) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            with error:  # it holds the answer's socket: from 3.14 on, an unclosed one warns
                return int(error.code)


README_FILE = HERE / "README.md"


class TestReadme(unittest.TestCase):
    """Each sample runs in its own process, as written, all at once: a loopback server of its own is both the
    HTTPS proxy and, inside the tunnel, api.chatbotkit.com with a certificate that SSL_CERT_FILE makes trusted."""

    def setUp(self) -> None:
        self.text = README_FILE.read_text(encoding="utf-8")

    @staticmethod
    def run_sample(argv: List[str]) -> Tuple[Any, List[Recorded]]:
        """``python *argv*`` beside the module, through a server of its own: what it did, what the server got."""
        with LoopbackServer() as server:
            env = clean_env(
                HTTPS_PROXY=server.url, SSL_CERT_FILE=cert_file("ca.pem", TEST_CA_PEM), CHATBOTKIT_API_SECRET=SECRET
            )
            return run_python(*argv, env=env), server.requests

    def test_python_samples_run(self) -> None:
        samples = re.findall(r"^```python\n(.*?)^```", self.text, re.S | re.M)
        self.assertGreaterEqual(len(samples), 8)
        missing, runnable = {}, []
        for index, sample in enumerate(samples):
            needs = sorted(set(re.findall(r"^(?:import|from) (fastapi|httpx)\b", sample, re.M)))
            missing[index] = [name for name in needs if not module_available(name)]
            if "FastAPI()" in sample:  # serve it in-process and ask for a token, as a browser would
                sample += (
                    "\nfrom fastapi.testclient import TestClient\n"
                    "answer = TestClient(app).post('/chat-session', json={})\n"
                    "assert answer.status_code == 200, answer.text\n"
                    "print(answer.json())\n"
                )
            if not missing[index]:
                runnable.append((index, sample))
        ran = dict(
            zip(
                [index for index, _ in runnable],
                run_concurrently(lambda item: self.run_sample(["-c", item[1]]), runnable),
            )
        )
        for index, sample in enumerate(samples):
            with self.subTest(sample=index, first_line=sample.splitlines()[0]):
                if missing[index]:
                    self.skipTest("sample %d needs %s (CI runs it in a venv that has them)" % (index, missing[index]))
                out, requests = ran[index]
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertNotEqual(out.stdout.strip(), "")
                self.assertNotIn(SECRET, out.stdout + out.stderr)
                self.assertGreater(len(requests), 0)
                for record in requests:
                    self.assertEqual(record.headers["authorization"], "Bearer " + SECRET)
                    self.assertTrue(record.path.startswith("/v1/bot/"), record.path)

    def test_commands_run(self) -> None:
        import shlex

        commands = re.findall(r"^\$ (python chatbotkit_session\.py .*)$", self.text, re.M)
        self.assertGreaterEqual(len(commands), 2)
        ran = run_concurrently(lambda command: self.run_sample(shlex.split(command)[1:]), commands)
        for command, (out, _) in zip(commands, ran):
            with self.subTest(command=command):
                self.assertEqual(out.returncode, 0, out.stderr)
                if "--dry-run" in command:
                    self.assertTrue(
                        out.stdout.startswith("POST https://api.chatbotkit.com/v1/bot/BOT_ID/session/create\n"),
                        out.stdout,
                    )
                else:
                    self.assertEqual(json.loads(out.stdout)["token"], "tok_1")
        self.assertIn("python -m unittest", self.text)


class RuntimeAPI:
    """The AWS Lambda Runtime API, emulated on loopback for awslambdaric: ``next`` hands out the queued
    events with a ``Lambda-Runtime-Deadline-Ms`` each, and responses, errors and init errors are recorded
    with the time they arrived."""

    PREFIX = "/2018-06-01/runtime/"

    def __init__(self, events: List[Tuple[Any, int]]) -> None:
        self.events = list(events)  # (event, milliseconds the invocation gets)
        self.served: Dict[str, float] = {}
        self.results: Dict[str, Tuple[str, Any, float]] = {}  # request id -> (kind, payload, seconds taken)
        self.init_errors: List[Any] = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with api.lock:
                    item = api.events.pop(0) if api.events else None
                if item is None:  # nothing left: hold the long poll, as Lambda does between invocations
                    api.done.wait(30)
                    return
                event, milliseconds = item
                request_id = "req-%d" % len(api.served)
                api.served[request_id] = time.monotonic()
                body = json.dumps(event).encode()
                self.send_response(200)
                for name, value in (
                    ("Lambda-Runtime-Aws-Request-Id", request_id),
                    ("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + milliseconds)),
                    ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:chat"),
                    ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(body))),
                ):
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                payload = json.loads(self.rfile.read(length) or b"null")
                parts = self.path[len(RuntimeAPI.PREFIX) :].split("/")
                with api.lock:
                    if parts[0] == "init":
                        api.init_errors.append(payload)
                        api.done.set()
                    else:
                        request_id, kind = parts[1], parts[2]
                        api.results[request_id] = (kind, payload, time.monotonic() - api.served[request_id])
                    if not api.events and len(api.results) == len(api.served):
                        api.done.set()
                with contextlib.suppress(OSError):  # the runtime may hang up without reading the answer
                    self.send_response(202)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _HTTPServer(("127.0.0.1", 0), Handler)
        self.address = "127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def run(self, env: Dict[str, str], python: str) -> Tuple[str, float]:
        """Run awslambdaric on the handler until every event is answered (or init fails); return its log."""
        with tempfile.TemporaryDirectory() as folder:
            shutil.copy(str(MODULE_FILE), folder)
            started = time.monotonic()
            process = subprocess.Popen(
                [python, "-m", "awslambdaric", LAMBDA_HANDLER],
                cwd=folder,
                env=dict(env, AWS_LAMBDA_RUNTIME_API=self.address, LAMBDA_TASK_ROOT=folder, _HANDLER=LAMBDA_HANDLER),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            self.done.wait(30)
            while not self.init_errors and process.poll() is None and time.monotonic() - started < 30:
                if len(self.results) == len(self.served) and not self.events:
                    break
                time.sleep(0.05)
            process.terminate()
            output, _ = process.communicate(timeout=30)
        self.done.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        return output, time.monotonic() - started


class TestLambdaRuntime(unittest.TestCase):
    """The example under the real runtime client (awslambdaric), which CI installs in a throwaway venv."""

    def setUp(self) -> None:
        if not module_available("awslambdaric"):
            self.skipTest("awslambdaric is not installed (CI runs this in a venv that has it)")
        self.report: List[str] = []

    def tearDown(self) -> None:
        path = os.environ.get("CBK_LAMBDA_REPORT")
        if path and self.report:
            with open(path, "a", encoding="utf-8") as handle:
                handle.write("\n".join(self.report) + "\n")

    def assert_no_secret(self, *texts: str) -> None:
        for text in texts:
            for form in secret_forms():
                self.assertNotIn(form, text)

    def note(self, scenario: str, kind: str, payload: Any, seconds: float, deadline_ms: int) -> None:
        shown = json.dumps(payload)[:160]
        if kind == "response" and "statusCode" in payload:  # a proxy response: status, headers that matter, body
            headers = payload["headers"]
            said = [
                "%s: %s" % (name, headers[name]) for name in sorted(headers) if name.startswith(("Access-", "Allow"))
            ]
            shown = "%d; %s; body %s" % (
                payload["statusCode"],
                "; ".join(said) or "no CORS headers",
                payload["body"] or "(none)",
            )
        self.report.append("| %s | %s | %s | %.2f s of %.1f s |" % (scenario, kind, shown, seconds, deadline_ms / 1000))

    def test_events_answered_in_time_under_the_real_runtime(self) -> None:
        def app(handler: Any, record: Recorded) -> None:
            if record.json().get("messages", [{}])[0].get("text") == "hang":
                time.sleep(5)  # the API hangs
            session_app(handler, record)

        import base64

        http_api = dict(
            function_url_event('{"message": "Hello"}'), routeKey="POST /chat-session", rawPath="/chat-session"
        )
        preflight = {
            "origin": SHOP,
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type",
        }
        scenarios = [
            ("direct invocation", {"message": "Hi"}, 3000),
            ("Function URL", function_url_event('{"message": "Hello"}'), 3000),
            ("HTTP API payload 2.0", http_api, 3000),
            (
                "REST API payload 1.0",
                dict(
                    rest_api_event('{"message": "Hello"}'), headers={"Origin": SHOP, "Content-Type": "application/json"}
                ),
                3000,
            ),
            (
                "base64 body (2.0)",
                function_url_event(base64.b64encode(b'{"message": "Hello"}').decode(), base64_encoded=True),
                3000,
            ),
            ("preflight (Function URL)", dict(function_url_event(None, "OPTIONS"), headers=preflight), 3000),
            (
                "preflight (REST API 1.0)",
                dict(
                    rest_api_event(None, "OPTIONS"), headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"}
                ),
                3000,
            ),
            (
                "preflight, origin not allowed",
                dict(function_url_event(None, "OPTIONS"), headers=dict(preflight, origin="https://evil.example")),
                3000,
            ),
            ("bad body", function_url_event('{"botId": "x"}'), 3000),
            ("API hanging, 3 s deadline", function_url_event('{"message": "hang"}'), 3000),
        ]
        with LoopbackServer(app) as server:
            runtime = RuntimeAPI([(event, milliseconds) for _, event, milliseconds in scenarios])
            env = clean_env(
                CHATBOTKIT_API_SECRET=SECRET,
                CHATBOTKIT_API_BASE_URL=server.url,
                CHATBOTKIT_BOT_ID="bot_web",
                CHATBOTKIT_ALLOWED_ORIGINS=SHOP,
            )
            log, _ = runtime.run(env, sys.executable)
        results = [runtime.results["req-%d" % index] for index in range(len(scenarios))]
        for (name, _, milliseconds), (kind, payload, seconds) in zip(scenarios, results):
            self.note(name, kind, payload, seconds, milliseconds)
            self.assertEqual(kind, "response", (name, payload))
            self.assertLess(seconds, milliseconds / 1000.0)
        direct, *http, hung = (payload for _, payload, _ in results)
        self.assertEqual(direct["token"], "tok_1")
        self.assertEqual([answer["statusCode"] for answer in http], [200, 200, 200, 200, 204, 204, 403, 400])
        for answer in http[:4]:
            self.assertEqual(
                json.loads(answer["body"]), {key: SESSION[key] for key in ("conversationId", "token", "expiresAt")}
            )
            self.assertEqual(answer["headers"]["Cache-Control"], "no-store")
            self.assertEqual(answer["headers"]["Access-Control-Allow-Origin"], SHOP)
        self.assertEqual(http[4]["headers"]["Access-Control-Allow-Headers"], "authorization, content-type")
        self.assertNotIn("Access-Control-Allow-Origin", http[6]["headers"])
        self.assertEqual((hung["statusCode"], json.loads(hung["body"])["code"]), (504, "TIMEOUT"))
        self.assertEqual(len(server.requests), 6)  # the preflights and the bad body never reached the API
        self.assert_no_secret(log, json.dumps(results))

    def test_api_down_is_a_502_answer(self) -> None:
        runtime = RuntimeAPI([(function_url_event("{}"), 3000)])
        url = "http://127.0.0.1:%d" % unused_port()
        log, _ = runtime.run(
            clean_env(
                CHATBOTKIT_API_SECRET=SECRET,
                CHATBOTKIT_API_BASE_URL=url,
                CHATBOTKIT_BOT_ID="bot_web",
                CHATBOTKIT_ALLOWED_ORIGINS=SHOP,
            ),
            sys.executable,
        )
        kind, payload, seconds = runtime.results["req-0"]
        self.note("API down", kind, payload, seconds, 3000)
        self.assertEqual((kind, payload["statusCode"]), ("response", 502))
        self.assert_no_secret(log, json.dumps(payload))

    def test_init_without_the_secret_reports_an_init_error_naming_the_variable(self) -> None:
        runtime = RuntimeAPI([(function_url_event("{}"), 3000)])
        log, seconds = runtime.run(clean_env(CHATBOTKIT_BOT_ID="bot_web"), sys.executable)
        self.assertEqual(len(runtime.init_errors), 1, log)
        self.report.append(
            "| init without the secret | init error | %s | %.2f s |"
            % (json.dumps(runtime.init_errors[0])[:160], seconds)
        )
        self.assertIn("CHATBOTKIT_API_SECRET", json.dumps(runtime.init_errors[0]))
        self.assertEqual(runtime.results, {})
        self.assert_no_secret(log)


# The Node side: reads one scenario a line, builds the SDK's BotSessionClient (extending it as told),
# creates a session and prints the outcome as one JSON line.
NODE_DRIVER = r"""
import { BotSessionClient } from '@chatbotkit/sdk/bot/session/index.js'
import readline from 'node:readline'

for await (const line of readline.createInterface({ input: process.stdin })) {
  const scenario = JSON.parse(line)
  let outcome
  try {
    let client = new BotSessionClient(scenario.options)
    for (const change of scenario.extend) client = client.extend(change)
    const value = scenario.request === null
      ? await client.create(scenario.botId)
      : await client.create(scenario.botId, scenario.request)
    outcome = { value }
  } catch (error) {
    outcome = { error: { name: error?.constructor?.name, code: error?.code ?? null, message: String(error?.message) } }
  }
  process.stdout.write(JSON.stringify(outcome) + '\n')
}
"""


SDK_HEADERS = ("authorization", "content-type", "x-runas-user-id", "x-runas-child-user-email", "x-timezone")


@dataclasses.dataclass
class Scenario:
    name: str
    options: Dict[str, Any] = dataclasses.field(default_factory=dict)  # Python names and seconds
    extend: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    bot_id: str = "bot1"
    request: Any = None
    answers: List[Dict[str, Any]] = dataclasses.field(default_factory=lambda: [{"status": 200, "json": SESSION}])
    watch: Tuple[str, ...] = ()  # further request headers to compare (custom ones, Host, Accept)


def parity_scenarios() -> List[Scenario]:
    ok = {"status": 200, "json": SESSION}
    full = {
        "durationInSeconds": 600,
        "messages": [{"type": "user", "text": "Hi \u00e9"}, {"type": "bot", "text": "Hello"}],
        "meta": {"page": "/pricing", "n": 1},
    }
    return [
        # option mapping
        Scenario("defaults"),
        Scenario("base_url with a path", {"base_url": "{url}/some/path"}),
        Scenario("base_url with a trailing slash", {"base_url": "{url}/"}),
        Scenario(
            "host with a port", {"base_url": "http://localhost:{unused}", "host": "127.0.0.1:{port}"}, watch=("host",)
        ),
        Scenario(
            "host without a port keeps the port",
            {"base_url": "http://localhost:{port}", "host": "127.0.0.1"},
            watch=("host",),
        ),
        Scenario("protocol", {"base_url": "https://127.0.0.1:{port}", "protocol": "http"}),
        Scenario("protocol with a colon", {"base_url": "https://127.0.0.1:{port}", "protocol": "http:"}),
        Scenario("endpoints concrete path", {"endpoints": {"/api/v1/bot/bot1/session/create": "/custom/create"}}),
        Scenario("endpoints template key", {"endpoints": {TEMPLATE_KEY: "/t/{botId}/create"}}),
        Scenario("endpoints absolute URL", {"endpoints": {"/api/v1/bot/bot1/session/create": "{url}/abs/create"}}),
        Scenario(
            "endpoints relative to the base path",
            {"base_url": "{url}/base/", "endpoints": {"/api/v1/bot/bot1/session/create": "rel/create"}},
        ),
        Scenario(
            "endpoints raw key, bot id with a space",
            {"endpoints": {"/api/v1/bot/my bot/session/create": "/spaced"}},
            bot_id="my bot",
        ),
        Scenario(
            "endpoints escaped key", {"endpoints": {"/api/v1/bot/my%20bot/session/create": "/spaced"}}, bot_id="my bot"
        ),
        Scenario("run_as_user_id", {"run_as_user_id": "user_1"}),
        Scenario("run_as_child_user_email", {"run_as_child_user_email": "kid@example.com"}),
        Scenario("timezone", {"timezone": "Europe/Berlin"}),
        Scenario("custom header", {"headers": {"X-Source": "web"}}, watch=("x-source",)),
        Scenario("lower-case authorization header", {"headers": {"authorization": "Bearer other"}}),
        Scenario("Authorization header in another case", {"headers": {"Authorization": "Bearer other"}}),
        Scenario("custom Accept", {"headers": {"Accept": "application/vnd.example+json"}}, watch=("accept",)),
        Scenario("Content-Type header in another case", {"headers": {"Content-Type": "text/plain"}}),
        # extend chains
        Scenario("extend merges headers", {"headers": {"X-A": "1"}}, [{"headers": {"X-B": "2"}}], watch=("x-a", "x-b")),
        Scenario(
            "extend header in another case",
            {"headers": {"X-Foo": "a"}},
            [{"headers": {"x-foo": "b"}}],
            watch=("x-foo",),
        ),
        Scenario("extend chain", {"run_as_user_id": "u1"}, [{"timezone": "UTC"}, {"run_as_user_id": "u2"}]),
        Scenario(
            "extend base_url after a host override",
            {"base_url": "http://localhost:{unused}", "host": "127.0.0.1:{unused}"},
            [{"base_url": "{url}"}],
        ),
        Scenario(
            "extend host after base_url", {"base_url": "http://localhost:{unused}"}, [{"host": "127.0.0.1:{port}"}]
        ),
        Scenario(
            "extend merges endpoints",
            {"endpoints": {"/api/v1/bot/other/session/create": "/other"}},
            [{"endpoints": {"/api/v1/bot/bot1/session/create": "/mine"}}],
        ),
        # bot ids
        Scenario("bot id with an underscore", bot_id="bot_123"),
        Scenario("bot id with a space", bot_id="my bot"),
        Scenario("bot id with a slash", bot_id="a/b"),
        Scenario("bot id with non-ASCII", bot_id="b\u00f6t"),
        Scenario("bot id with a question mark", bot_id="x?y"),
        Scenario("bot id with a percent sign", bot_id="%41"),
        # request bodies
        Scenario("no request"),
        Scenario("empty request", request={}),
        Scenario("full request", request=full),
        Scenario("unknown fields pass through", request={"durationInSeconds": 60, "extra": [1, {"a": None}]}),
        # error statuses
        Scenario(
            "401 with a JSON body", answers=[{"status": 401, "json": {"code": "NOT_AUTHENTICATED", "message": "no"}}]
        ),
        Scenario("404 JSON message only", answers=[{"status": 404, "json": {"message": "bot not found"}}]),
        Scenario("400 empty JSON object", answers=[{"status": 400, "json": {}}]),
        Scenario("422 JSON with a code", answers=[{"status": 422, "json": {"code": "INVALID", "message": "bad"}}]),
        Scenario("403 HTML body", answers=[{"status": 403, "body": "<h1>Forbidden</h1>", "type": "text/html"}]),
        Scenario("413 text body", answers=[{"status": 413, "body": "too big", "type": "text/plain"}]),
        Scenario(
            "500 text body, no retries", {"retries": 0}, answers=[{"status": 500, "body": "boom", "type": "text/plain"}]
        ),
        # retries
        Scenario("503 then success", answers=[{"status": 503, "json": {}}, ok]),
        Scenario("429 until retries run out", answers=[{"status": 429, "json": {"message": "slow down"}}]),
        Scenario("502 and 504 then success", answers=[{"status": 502, "json": {}}, {"status": 504, "json": {}}, ok]),
        Scenario("408", answers=[{"status": 408, "json": {}}, ok]),
        Scenario("400 is not retried", answers=[{"status": 400, "json": {"message": "bad"}}, ok]),
        Scenario("backoff doubles", {"retry_delay": 0.05}, answers=[{"status": 500, "json": {}}] * 3 + [ok]),
        Scenario("Retry-After", answers=[{"status": 503, "json": {}, "headers": {"Retry-After": "0.3"}}, ok]),
        # redirects
        Scenario("302 redirect", answers=[{"status": 302, "headers": {"Location": "/elsewhere"}, "json": {}}, ok]),
        Scenario("307 redirect", answers=[{"status": 307, "headers": {"Location": "/elsewhere"}, "json": {}}, ok]),
        # timeouts and refused connections
        Scenario("timeout, no retries", {"timeout": 0.15, "retries": 0}, answers=[{"delay": 0.4, **ok}]),
        Scenario("timeout, then success", {"timeout": 0.15, "retries": 1}, answers=[{"delay": 0.4, **ok}, ok]),
        Scenario("refused connection", {"base_url": "http://127.0.0.1:{unused}", "retries": 0}),
        # 2xx answers
        Scenario("201 session", answers=[{"status": 201, "json": SESSION}]),
        Scenario(
            "200 session labelled text/plain",
            answers=[{"status": 200, "body": json.dumps(SESSION), "type": "text/plain"}],
        ),
        Scenario(
            "200 without a token", answers=[{"status": 200, "json": {"id": "s", "conversationId": "c", "expiresAt": 1}}]
        ),
    ]


class ParityServer(LoopbackServer):
    """A LoopbackServer that answers each attempt from a scenario's script and times every request."""

    def __init__(self, answers: List[Dict[str, Any]]) -> None:
        self.answers = answers
        self.times: List[float] = []

        def app(handler: Any, record: Recorded) -> None:
            self.times.append(time.monotonic())
            answer = self.answers[min(len(self.times) - 1, len(self.answers) - 1)]
            time.sleep(answer.get("delay", 0))
            body = json.dumps(answer["json"]).encode() if "json" in answer else answer.get("body", "").encode()
            with contextlib.suppress(OSError):
                reply(
                    handler,
                    answer.get("status", 200),
                    body,
                    list(answer.get("headers", {}).items()),
                    answer.get("type", "application/json"),
                )

        super().__init__(app)


def node_options(options: Dict[str, Any]) -> Dict[str, Any]:
    """The SDK's form of Python options: camelCase names, milliseconds."""
    converted = {}
    for name, value in options.items():
        if name in ("timeout", "retry_delay") and value is not None:
            value = value * 1000
        head, *rest = name.split("_")
        converted[head + "".join(part.title() for part in rest)] = value
    return converted


class TestNodeParity(unittest.TestCase):
    """Each scenario through the real @chatbotkit/sdk and through this module; differences must be listed."""

    # Deliberate differences: scenario -> {aspect: the reason the README gives}. Aspects: wire (method,
    # URL, the headers the SDK sets, body), attempts, delays, outcome (the value, or the error's code and
    # message). A difference not listed here fails the test, and so does a listed one that no longer differs.
    ESCAPING = "bot_id is escaped as one path segment, so no bot id can change the URL's path or query"
    TEMPLATE = "endpoints also accepts the /api/v1/bot/{botId}/session/create template key and fills in {botId}"
    ESCAPED_KEY = "endpoints keys match with the bot id raw (as Node) or escaped (as sent)"
    HEADER_CASE = (
        "header names are case-insensitive, as HTTP says: a later one replaces an earlier one in any case, "
        "and the computed headers win, instead of both values being sent joined"
    )
    CODES = (
        "without a code (or message) in the body, the code comes from @chatbotkit/fetch's status table "
        "and the message is the reason phrase"
    )
    RETRY_408 = (
        "408 is retried: the server says it did not receive the whole request, "
        "so a retry cannot create a second session"
    )
    RETRY_AFTER = "Retry-After and retry-after-ms are honoured (up to 60 s)"
    REDIRECTS = (
        "redirects are never followed, so the secret stays with its origin; a 3xx is an APIError naming the Location"
    )
    ERRORS = "every failure is an APIError, APIConnectionError or APITimeoutError with a code and a message"
    SESSIONS = (
        "a 2xx is parsed as JSON whatever its Content-Type and must be a session, or it is APIError INVALID_RESPONSE"
    )
    DIFFERENCES: ClassVar[Dict[str, Dict[str, str]]] = {
        "endpoints template key": {"wire": TEMPLATE},
        "endpoints escaped key": {"wire": ESCAPED_KEY},
        "Authorization header in another case": {"wire": HEADER_CASE},
        "Content-Type header in another case": {"wire": HEADER_CASE},
        "extend header in another case": {"wire": HEADER_CASE},
        "bot id with a slash": {"wire": ESCAPING},
        "bot id with a question mark": {"wire": ESCAPING},
        "bot id with a percent sign": {"wire": ESCAPING},
        "404 JSON message only": {"outcome": CODES},
        "400 empty JSON object": {"outcome": CODES},
        "403 HTML body": {"outcome": CODES},
        "413 text body": {"outcome": CODES},
        "500 text body, no retries": {"outcome": CODES},
        "429 until retries run out": {"outcome": CODES},
        "400 is not retried": {"outcome": CODES},
        "408": {"wire": RETRY_408, "attempts": RETRY_408, "outcome": RETRY_408},
        "Retry-After": {"delays": RETRY_AFTER},
        "302 redirect": {"wire": REDIRECTS, "attempts": REDIRECTS, "outcome": REDIRECTS},
        "307 redirect": {"wire": REDIRECTS, "attempts": REDIRECTS, "outcome": REDIRECTS},
        "timeout, no retries": {"outcome": ERRORS},
        "refused connection": {"outcome": ERRORS},
        "200 session labelled text/plain": {"outcome": SESSIONS},
        "200 without a token": {"outcome": SESSIONS},
    }

    @classmethod
    def setUpClass(cls) -> None:
        folder = os.environ.get("CHATBOTKIT_NODE_SDK_DIR", "")
        if not folder:
            raise unittest.SkipTest("CHATBOTKIT_NODE_SDK_DIR is unset (CI installs @chatbotkit/sdk there and sets it)")
        if not shutil.which("node"):
            raise unittest.SkipTest("Node.js is not installed")
        if not os.path.isdir(os.path.join(folder, "node_modules", "@chatbotkit", "sdk")):
            raise unittest.SkipTest("@chatbotkit/sdk is not installed under %s" % folder)
        cls.folder = tempfile.mkdtemp(prefix="cbk-parity-")
        os.symlink(os.path.join(folder, "node_modules"), os.path.join(cls.folder, "node_modules"))
        with open(os.path.join(cls.folder, "driver.mjs"), "w") as handle:
            handle.write(NODE_DRIVER)
        cls.node = subprocess.Popen(
            ["node", "driver.mjs"], cwd=cls.folder, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.node.stdin.close()  # type: ignore[union-attr]
        cls.node.wait(10)
        shutil.rmtree(cls.folder, ignore_errors=True)

    def run_both(self, scenario: Scenario) -> Dict[str, Dict[str, Any]]:
        unused = unused_port()
        seen = {}
        for side in ("node", "python"):
            with ParityServer(scenario.answers) as server:
                fill = lambda value: (  # noqa: E731
                    json.loads(
                        json.dumps(value)
                        .replace("{url}", server.url)
                        .replace("{port}", str(server.port))
                        .replace("{unused}", str(unused))
                    )
                )
                options = dict(
                    {"secret": SECRET, "base_url": server.url, "retry_delay": 0.02, "timeout": 5},
                    **fill(scenario.options),
                )
                changes = fill(scenario.extend)
                outcome = (
                    self.run_node(options, changes, scenario)
                    if side == "node"
                    else self.run_python(options, changes, scenario)
                )
                records = server.requests
                times = list(server.times)
            watched = SDK_HEADERS + scenario.watch
            wire = [
                (
                    r.method,
                    r.path,
                    {k: v for k, v in r.headers.items() if k in watched},
                    json.loads(r.body) if r.body else None,
                )
                for r in records
            ]
            seen[side] = {
                "wire": json.loads(
                    json.dumps(wire).replace(":%d" % server.port, ":{port}")
                ),  # each side has its server
                "attempts": len(records),
                "delays": [later - earlier for earlier, later in zip(times, times[1:])],
                "outcome": outcome,
            }
        return seen

    def run_node(self, options: Dict[str, Any], changes: List[Dict[str, Any]], scenario: Scenario) -> Any:
        line = {
            "options": node_options(options),
            "extend": [node_options(change) for change in changes],
            "botId": scenario.bot_id,
            "request": scenario.request,
        }
        self.node.stdin.write(json.dumps(line) + "\n")  # type: ignore[union-attr]
        self.node.stdin.flush()  # type: ignore[union-attr]
        answer = json.loads(self.node.stdout.readline())  # type: ignore[union-attr]
        if "error" in answer:
            return {"error": {"code": answer["error"]["code"], "message": answer["error"]["message"]}}
        return {"value": answer["value"]}

    @staticmethod
    def run_python(options: Dict[str, Any], changes: List[Dict[str, Any]], scenario: Scenario) -> Any:
        try:
            client = cbk.BotSessionClient(**options)
            for change in changes:
                client = client.extend(**change)
            return {"value": client.create(scenario.bot_id, scenario.request)}
        except cbk.ChatBotKitError as error:
            return {"error": {"code": error.code, "message": error.message}}

    @staticmethod
    def differing(node: Dict[str, Any], python: Dict[str, Any]) -> Dict[str, str]:
        found = {}
        for aspect in ("wire", "attempts", "outcome"):
            if node[aspect] != python[aspect]:
                found[aspect] = "node %s / python %s" % (
                    json.dumps(node[aspect])[:300],
                    json.dumps(python[aspect])[:300],
                )
        if len(node["delays"]) == len(python["delays"]):
            for ours, theirs in zip(python["delays"], node["delays"]):
                if not (0.7 * theirs - 0.04 <= ours <= theirs + 0.04):  # our jitter shortens by up to a quarter
                    found["delays"] = "node %s / python %s" % (node["delays"], python["delays"])
        return found

    def test_scenarios_behave_alike_or_differ_as_documented(self) -> None:
        scenarios = parity_scenarios()
        report = []
        same = 0
        for scenario in scenarios:
            with self.subTest(scenario=scenario.name):
                seen = self.run_both(scenario)
                found = self.differing(seen["node"], seen["python"])
                expected = self.DIFFERENCES.get(scenario.name, {})
                report.append("%s: %s" % (scenario.name, "same" if not found else ", ".join(sorted(found))))
                same += not found
                self.assertEqual(sorted(found), sorted(expected), "\n".join("%s: %s" % item for item in found.items()))
        path = os.environ.get("CBK_PARITY_REPORT")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(
                    "parity: %d scenarios, %d behave the same, %d differ by design\n"
                    % (len(scenarios), same, len(scenarios) - same)
                )
                handle.write("\n".join(report) + "\n")
        self.assertGreaterEqual(len(scenarios), 50)


if __name__ == "__main__":
    unittest.main()
