# SPDX-License-Identifier: MIT
"""Tests that need a peer from outside the standard library; each skips, saying why, without it.

- h11 (PyPI) with hypothesis: the HTTP/1.1 exchange read differentially against h11 on generated answers.
- Flask, Django and FastAPI (PyPI): the examples under their real frameworks.
- Chromium (Debian) driven by playwright-core (npm): the whole browser flow, across origins.

CI runs this file in a venv that has every peer, and fails if a test was skipped there.
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from typing import Any, Dict, List, Tuple

import chatbotkit_session as cbk
from test_chatbotkit_session import (
    HERE,
    MODULE_FILE,
    SECRET,
    SESSION,
    LoopbackServer,
    clean_env,
    module_available,
    secret_forms,
    start_dev_server,
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


def run_example(example: str, code: str, api_url: str) -> Any:
    """Run *code* beside a copy of examples/<example>.py and the module, as a project has them; return the
    JSON it prints."""
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(str(MODULE_FILE), folder)
        shutil.copy(str(HERE / "examples" / (example + ".py")), folder)
        env = clean_env(CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=api_url, CHATBOTKIT_BOT_ID="bot_web")
        out = subprocess.run(
            [sys.executable, "-c", "import sys; sys.path.insert(0, '.')\n" + code],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    if out.returncode != 0:
        raise AssertionError(out.stderr[-3000:])
    for form in secret_forms():
        assert form not in out.stdout + out.stderr, "the secret leaked"
    return json.loads(out.stdout.splitlines()[-1])


PREFLIGHT = {"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"}
SESSION_FIELDS = {key: SESSION[key] for key in ("conversationId", "token", "expiresAt")}


class TestExamples(unittest.TestCase):
    def check_cross_origin_answers(self, seen: Dict[str, Any], api: LoopbackServer) -> None:
        (status, headers, body) = seen["post"]
        self.assertEqual((status, json.loads(body)), (200, SESSION_FIELDS))
        lowered = {name.lower(): value for name, value in headers.items()}
        self.assertEqual(lowered["access-control-allow-origin"], "https://shop.example")
        self.assertEqual(lowered["cache-control"], "no-store")
        self.assertEqual(seen["preflight"][0], 204)
        self.assertEqual(
            {k.lower(): v for k, v in seen["preflight"][1].items()}["access-control-allow-methods"], "POST"
        )
        self.assertEqual(seen["evil preflight"][0], 403)
        self.assertEqual((seen["bad"][0], json.loads(seen["bad"][2])["code"]), (400, "BAD_REQUEST"))
        self.assertEqual([record.json() for record in api.requests], [{"messages": [{"type": "user", "text": "Hi"}]}])

    # The same requests to the Flask and FastAPI examples, through each framework's own test client.
    REQUESTS = (
        "def seen(r): return [r.status_code, dict(r.headers), text(r)]\n"
        "evil = dict(%r, Origin='https://evil.example')\n"
        "out = {'post': seen(client.post('/chat-session', json={'message': 'Hi'}, headers={'Origin': 'https://shop.example'})),\n"
        "       'preflight': seen(client.options('/chat-session', headers=%r)),\n"
        "       'evil preflight': seen(client.options('/chat-session', headers=evil)),\n"
        "       'bad': seen(post_raw('[1]'))}\n"
        "print(json.dumps(out))\n" % (PREFLIGHT, PREFLIGHT)
    )

    @unittest.skipUnless(module_available("flask"), "Flask is not installed (CI runs this in a venv that has it)")
    def test_flask(self) -> None:
        code = (
            "import json, flask_app\n"
            "client = flask_app.app.test_client()\n"
            "def text(r): return r.get_data(as_text=True)\n"
            "def post_raw(body): return client.post('/chat-session', data=body, content_type='application/json')\n"
        )
        with LoopbackServer() as api:
            self.check_cross_origin_answers(run_example("flask_app", code + self.REQUESTS, api.url), api)

    @unittest.skipUnless(
        module_available("fastapi") and module_available("httpx"),
        "FastAPI and httpx are not installed (CI runs this in a venv that has them)",
    )
    def test_fastapi(self) -> None:
        code = (
            "import json, fastapi_app\n"
            "from fastapi.testclient import TestClient\n"
            "client = TestClient(fastapi_app.app)\n"
            "def text(r): return r.text\n"
            "JSON = {'Content-Type': 'application/json'}\n"
            "def post_raw(body): return client.post('/chat-session', content=body, headers=JSON)\n"
        )
        with LoopbackServer() as api:
            self.check_cross_origin_answers(run_example("fastapi_app", code + self.REQUESTS, api.url), api)

    @unittest.skipUnless(module_available("django"), "Django is not installed (CI runs this in a venv that has it)")
    def test_django_with_its_csrf_protection_on(self) -> None:
        code = (
            "import json, re, django_app\n"
            "from django.test import Client\n"
            "client = Client(enforce_csrf_checks=True)\n"
            "page = client.get('/')\n"
            'token = re.search(r\'name="csrf-token" content="([^"]+)"\', page.content.decode()).group(1)\n'
            "def seen(r): return [r.status_code, dict(r.headers), r.content.decode()]\n"
            "out = {'page': page.status_code,\n"
            "       'no token': seen(client.post('/chat-session', '{}', content_type='application/json'))}\n"
            "def post(body):\n"
            "    return client.post('/chat-session', body, 'application/json', headers={'X-CSRFToken': token})\n"
            "out['post'] = seen(post('{\"message\": \"Hi\"}'))\n"
            "out['bad'] = seen(post('[1]'))\n"
            "print(json.dumps(out))\n"
        )
        with LoopbackServer() as api:
            seen = run_example("django_app", code, api.url)
        self.assertEqual(seen["page"], 200)
        self.assertEqual(seen["no token"][0], 403)  # Django's CSRF check refuses a POST without the token
        self.assertIn("<", seen["no token"][2])  # ... as an HTML page: why the snippet checks answer.ok
        self.assertEqual((seen["post"][0], json.loads(seen["post"][2])), (200, SESSION_FIELDS))
        self.assertEqual(seen["post"][1]["Cache-Control"], "no-store")
        self.assertEqual(seen["bad"][0], 400)
        self.assertEqual([record.json() for record in api.requests], [{"messages": [{"type": "user", "text": "Hi"}]}])


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
</script>
"""

BROWSER_DRIVER = r"""
import { createRequire } from 'node:module'
const require = createRequire(process.env.PLAYWRIGHT_DIR + '/package.json')
const { chromium } = require('playwright-core')
const [userDataDir, endpoint, api, ...pages] = process.argv.slice(2)
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
})
try {
  for (const url of pages) {
    const page = await context.newPage()
    const console_ = []
    page.on('console', (message) => console_.push(message.text()))
    await page.goto(url)
    const seen = await page.evaluate(([e, a]) => openChat(e, a), [endpoint, api])
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
    def test_a_page_of_an_allowed_origin_chats_and_another_origin_is_refused(self) -> None:
        api = FakeChatBotKit()
        self.addCleanup(api.close)
        allowed, refused = page_server(), page_server()
        for server in (allowed, refused):
            self.addCleanup(server.server_close)
            self.addCleanup(server.shutdown)
        allowed_origin = "http://127.0.0.1:%d" % allowed.server_address[1]
        env = clean_env(CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=api.url)
        endpoint, endpoint_url, _ = start_dev_server(["--serve", "127.0.0.1:0", "--allow-origin", allowed_origin], env)
        try:
            with tempfile.TemporaryDirectory() as folder:
                driver = os.path.join(folder, "driver.mjs")
                with open(driver, "w", encoding="utf-8") as handle:
                    handle.write(BROWSER_DRIVER)
                pages = ["http://127.0.0.1:%d/" % server.server_address[1] for server in (allowed, refused)]
                out = subprocess.run(
                    ["node", driver, os.path.join(folder, "profile"), endpoint_url, api.url, *pages],
                    env=dict(
                        os.environ,
                        PLAYWRIGHT_DIR=os.path.join(PLAYWRIGHT_DIR, "node_modules", "playwright-core"),
                        CHROMIUM=CHROMIUM,
                    ),
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
        finally:
            endpoint.terminate()
            _, endpoint_log = endpoint.communicate(timeout=10)
        self.assertEqual(out.returncode, 0, out.stderr[-3000:])
        good, bad = (json.loads(line) for line in out.stdout.splitlines())
        report = os.environ.get("CBK_BROWSER_REPORT")
        if report:
            with open(report, "w", encoding="utf-8") as handle:
                for seen in (good, bad):
                    handle.write("page %s saw: %s\n" % (seen["page"], json.dumps(seen)))
                handle.write("the endpoint's log:\n" + endpoint_log)
                handle.write("the fake API saw: %s\n" % json.dumps(api.seen))
        self.assertEqual((good["session"], good["complete"]), (200, 200), good)
        self.assertEqual(good["reply"], "Hello from %s" % good["conversationId"])  # the token of that conversation
        self.assertNotIn("error", good)
        self.assertNotIn("session", bad)  # the browser refused the answer: fetch failed before any status
        self.assertIn("Failed to fetch", bad["error"])
        self.assertTrue(any("CORS" in text for text in bad["console"]), bad["console"])
        created = [entry for entry in api.seen if entry[1].endswith("/session/create")]
        self.assertEqual(len(created), 1)  # the refused page's preflight got 403, so it never posted
        self.assertIn('"OPTIONS / HTTP/1.1" 403', endpoint_log)
        for form in secret_forms():
            self.assertNotIn(form, out.stdout + out.stderr + endpoint_log)


if __name__ == "__main__":
    unittest.main()
