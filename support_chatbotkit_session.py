# SPDX-License-Identifier: MIT
"""Fixtures for the tests of chatbotkit_session, and for the peer tests, the benchmarks and the fuzz job.

Not a test module (``python -m unittest`` finds none here): loopback servers (http.server, and raw sockets
where it is too polite), a CONNECT proxy, fake transports, the test certificates (written once, to one
temporary directory removed at exit), hostile answers, the client and endpoint factories, the event loops
the asyncio tests run on, the web endpoint's and Lambda's events, the helpers that run Python and the
command line in a child process, the module's bands as its banners show them, and the runner of the waiting
tests side by side (``tests_at_once``). Standard library only.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import dataclasses
import http
import http.server
import io
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import unittest.mock
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple

import chatbotkit_session as cbk

HERE = Path(__file__).resolve().parent


MODULE_FILE = HERE / "chatbotkit_session.py"


SHARED = HERE.parent / "shared"


OPENAPI_FILE = SHARED / "chatbotkit-openapi" / "bot-session-v1.json"


SECRET = "sk-test-4f1c9a7e2b"


SESSION = {"id": "ses_1", "conversationId": "conv_1", "token": "tok_1", "expiresAt": 1790000000000}


TEMPLATE_KEY = "/api/v1/bot/{botId}/session/create"


# A test-only certificate authority and a server certificate it signed (localhost, api.chatbotkit.com,
# 127.0.0.1, ::1), valid until 2126. Made for these tests with openssl; they protect nothing.
TEST_CA_PEM = """-----BEGIN CERTIFICATE-----
MIIByzCCAXGgAwIBAgIUd4nbnJ3eRbAXdUsSVWp1jZ7xNIUwCgYIKoZIzj0EAwIw
MjEwMC4GA1UEAwwnY2hhdGJvdGtpdF9zZXNzaW9uIHRlc3QgQ0EgKHRlc3RzIG9u
bHkpMCAXDTI2MTEyMjAyMzUzNVoYDzIxMjYxMDI5MDIzNTM1WjAyMTAwLgYDVQQD
DCdjaGF0Ym90a2l0X3Nlc3Npb24gdGVzdCBDQSAodGVzdHMgb25seSkwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAATxcyK/Ai9hxc1et8L/3eHH4u1zH/djTzdvgD4s
5fAxDhUvc8JymL5MGiKOnPRW6MJHOMzGnenN+hAIlyK60tVxo2MwYTAdBgNVHQ4E
FgQUZyreG1aWFo41xodViBEORGUSzw4wHwYDVR0jBBgwFoAUZyreG1aWFo41xodV
iBEORGUSzw4wDwYDVR0TAQH/BAUwAwEB/zAOBgNVHQ8BAf8EBAMCAQYwCgYIKoZI
zj0EAwIDSAAwRQIgK3/KSNtWehTtBQG8NYQRN3G7mx9w2yIw/H3sjKRbDKoCIQCS
AeHoLoJjU4vot3DbChqkOF1md9jofBAnPshXW8mU9Q==
-----END CERTIFICATE-----
"""


TEST_SERVER_PEM = """-----BEGIN CERTIFICATE-----
MIIB7zCCAZagAwIBAgIUBVTBhTrJmOlB0TX42U7YyGX83TEwCgYIKoZIzj0EAwIw
MjEwMC4GA1UEAwwnY2hhdGJvdGtpdF9zZXNzaW9uIHRlc3QgQ0EgKHRlc3RzIG9u
bHkpMCAXDTI2MTEyMjAyMzUzNVoYDzIxMjYxMDI5MDIzNTM1WjAUMRIwEAYDVQQD
DAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAATLn/d2RAtq3JGr
lbo0FiILui5oxDkK/Pq2EKTpKL2N8OAOsdM6yA3cjyxF7u/OPZ2SFOiUe69GmWaO
E+unLtjDo4GlMIGiMEAGA1UdEQQ5MDeCCWxvY2FsaG9zdIISYXBpLmNoYXRib3Rr
aXQuY29thwR/AAABhxAAAAAAAAAAAAAAAAAAAAABMAkGA1UdEwQCMAAwEwYDVR0l
BAwwCgYIKwYBBQUHAwEwHQYDVR0OBBYEFLBGelLDkOj7kt2ABBmblUhaaAT3MB8G
A1UdIwQYMBaAFGcq3htWlhaONcaHVYgRDkRlEs8OMAoGCCqGSM49BAMCA0cAMEQC
IFMCNSem8ftJoE7J0rTB2juzrtinR4crbey71kPOBTZIAiBICkpAMxDFJD412giQ
TU1qvxdMjo2icQcCg87+6fQ3dQ==
-----END CERTIFICATE-----
"""


TEST_SERVER_KEY = """-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIPZnVOhOq5jQ2b8PFzTTrOV3oKVqpjZqVtvDB37srDe0oAoGCCqGSM49
AwEHoUQDQgAEy5/3dkQLatyRq5W6NBYiC7ouaMQ5Cvz6thCk6Si9jfDgDrHTOsgN
3I8sRe7vzj2dkhTolHuvRplmjhPrpy7Yww==
-----END EC PRIVATE KEY-----
"""


@dataclasses.dataclass
class Recorded:
    """One request as a loopback server received it."""

    method: str
    path: str
    headers: Dict[str, str]
    body: bytes
    client_port: int

    def json(self) -> Any:
        return json.loads(self.body)


def reply(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes = b"",
    headers: Any = (),
    content_type: Optional[str] = "application/json",
) -> None:
    handler.send_response(status)
    for name, value in headers:
        handler.send_header(name, value)
    if content_type:
        handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def json_reply(handler: http.server.BaseHTTPRequestHandler, status: int, payload: Any, headers: Any = ()) -> None:
    reply(handler, status, json.dumps(payload).encode("utf-8"), headers)


def session_app(handler: http.server.BaseHTTPRequestHandler, record: Recorded) -> None:
    """A small stand-in for the API: sessions for any bot, 401 without a bearer, 404 for 'missing-bot'."""
    match = re.fullmatch(r"(/api)?/v1/bot/([^/]+)/session/create", record.path)
    if record.method != "POST" or not match:
        json_reply(handler, 404, {"code": "NOT_FOUND", "message": "no such route"})
    elif not record.headers.get("authorization", "").startswith("Bearer "):
        json_reply(handler, 401, {"code": "NOT_AUTHENTICATED", "message": "a bearer token is required"})
    elif match.group(2) == "missing-bot":
        json_reply(handler, 404, {"code": "NOT_FOUND", "message": "bot not found"})
    else:
        request = record.json()
        json_reply(handler, 200, dict(SESSION, messages=request.get("messages", [])))


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # http.server writes the header section and the body in two sends: with Nagle's algorithm on, the
    # body waits for the ACK a kept-alive client delays by 40 ms (a close pushes it at once).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        if self.server.idle_timeout is not None:
            self.connection.settimeout(self.server.idle_timeout)
        with self.server.lock:
            self.server.connection_count += 1
            self.connection_index = self.server.connection_count  # 1 for the first connection
        self.requests_on_connection = 0

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        record = Recorded(
            self.command,
            self.path,
            {name.lower(): value for name, value in self.headers.items()},
            self.rfile.read(length),
            self.client_address[1],
        )
        with self.server.lock:
            self.server.requests.append(record)
        self.requests_on_connection += 1
        self.server.app(self, record)

    do_GET = do_POST

    def do_CONNECT(self) -> None:
        """Act as an HTTPS proxy that is also the API: answer CONNECT, then speak TLS as the target host."""
        with self.server.lock:
            self.server.tunnels.append(self.path)
        self.send_response(200, "Connection established")
        self.end_headers()
        tls = self.server.tls_context().wrap_socket(self.connection, server_side=True)
        self.connection = tls
        self.rfile = tls.makefile("rb")
        self.wfile = tls.makefile("wb")
        self.close_connection = False

    def finish(self) -> None:
        with contextlib.suppress(OSError):
            super().finish()
        if isinstance(self.connection, ssl.SSLSocket):
            self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # socketserver's 5 would drop concurrent connects (and clients resend after 1 s)
    app: Callable[[http.server.BaseHTTPRequestHandler, Recorded], None]
    idle_timeout: Optional[float]
    tls_context: Callable[[], ssl.SSLContext]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early is part of several tests


class LoopbackServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 with a free port, recording every request it receives."""

    def __init__(
        self, app: Callable[..., None] = session_app, *, tls: bool = False, idle_timeout: Optional[float] = None
    ) -> None:
        self.httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.app = app
        self.httpd.idle_timeout = idle_timeout
        self.httpd.requests = []  # type: ignore[attr-defined]
        self.httpd.tunnels = []  # type: ignore[attr-defined]
        self.httpd.lock = threading.Lock()  # type: ignore[attr-defined]
        self.httpd.connection_count = 0  # type: ignore[attr-defined]
        self.httpd.tls_context = server_tls_context
        if tls:
            self.httpd.socket = server_tls_context().wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        self.port = self.httpd.server_address[1]
        self.url = "%s://127.0.0.1:%d" % (self.scheme, self.port)
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    @property
    def requests(self) -> List[Recorded]:
        return list(self.httpd.requests)  # type: ignore[attr-defined]

    @property
    def tunnels(self) -> List[str]:
        return list(self.httpd.tunnels)  # type: ignore[attr-defined]

    def connections(self) -> int:
        """How many connections carried at least one request."""
        return len({record.client_port for record in self.requests})

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)


_CERT_LOCK = threading.Lock()
_CERT_DIRS: List[str] = []  # the one temporary directory the certificates are written to, once made


def _remove_cert_dir(path: str, owner: int) -> None:
    if os.getpid() == owner:  # not in a fork's child, which inherits this exit hook
        shutil.rmtree(path, ignore_errors=True)


def cert_file(name: str, text: str) -> str:
    """A file holding *text* (a test certificate or key), in one temporary directory removed at exit."""
    with _CERT_LOCK:
        if not _CERT_DIRS:
            _CERT_DIRS.append(tempfile.mkdtemp(prefix="cbk-test-certs-"))
            atexit.register(_remove_cert_dir, _CERT_DIRS[0], os.getpid())
    path = os.path.join(_CERT_DIRS[0], name)
    if not os.path.exists(path):
        with open(path, "w") as handle:
            handle.write(text)
    return path


def server_tls_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file("server.pem", TEST_SERVER_PEM), cert_file("server.key", TEST_SERVER_KEY))
    return context


def client_tls_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cert_file("ca.pem", TEST_CA_PEM))


class FakeTransport:
    """A transport passed in: hands out the given responses or raises the given exceptions, in order."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes) or [cbk.HTTPResponse(200, {}, json.dumps(SESSION).encode())]
        self.requests: List[cbk.HTTPRequest] = []

    def __call__(self, request: cbk.HTTPRequest) -> cbk.HTTPResponse:
        self.requests.append(request)
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome  # type: ignore[no-any-return]


def never_called(request: cbk.HTTPRequest) -> cbk.HTTPResponse:
    raise AssertionError("the transport must not be called")


def json_response(status: int, payload: Any, headers: Any = None) -> cbk.HTTPResponse:
    return cbk.HTTPResponse(status, headers or {"Content-Type": "application/json"}, json.dumps(payload).encode())


CLIENT_KINDS = ("UrllibTransport", "KeepAliveTransport", "AsyncKeepAliveTransport", "KeepAliveTransport in threads")


def make_client(where: Any = None, kind: str = "UrllibTransport", **options: Any) -> Any:
    """The tests' one client factory: a client of *kind* (one of CLIENT_KINDS) for *where* (a server, a URL,
    or None to leave base_url to *options*), with *options* over the tests' defaults: SECRET, no retry
    delay, 5 s per attempt. The kinds over KeepAliveTransport make one (trusting the test CA) unless
    *options* give a transport."""
    settings: Dict[str, Any] = {"secret": SECRET, "retry_delay": 0, "timeout": 5}
    if where is not None:
        settings["base_url"] = getattr(where, "url", where)
    settings.update(options)
    if kind in ("KeepAliveTransport", "KeepAliveTransport in threads") and settings.get("transport") is None:
        settings["transport"] = cbk.KeepAliveTransport(ssl_context=settings.get("ssl_context") or client_tls_context())
    if kind in ("UrllibTransport", "KeepAliveTransport"):
        return cbk.BotSessionClient(**settings)
    if kind in ("AsyncKeepAliveTransport", "KeepAliveTransport in threads"):
        return cbk.AsyncBotSessionClient(**settings)
    raise ValueError("kind must be one of %s" % (CLIENT_KINDS,))


def sync_create(client: Any) -> Callable[..., Any]:
    """*client*'s create, synchronous in the caller's view (an asyncio client's runs in asyncio.run)."""
    if isinstance(client, cbk.AsyncBotSessionClient):
        return lambda bot="bot", *request: run_async(client.create(bot, *request))
    return lambda bot="bot", *request: client.create(bot, *request)


def every_client(
    where: Any = None, kinds: Sequence[str] = CLIENT_KINDS, **options: Any
) -> List[Tuple[str, Callable[..., Any], Callable[[], None]]]:
    """(kind, create(bot) -> session, close) for a client of each kind (``make_client``, with no retries and
    TLS trusting the test CA unless *options* say otherwise), create synchronous in the caller's view; the
    kinds over KeepAliveTransport share one pool, made with *options*' max_response_bytes."""
    options = {"retries": 0, "ssl_context": client_tls_context(), **options}
    limit = {"max_response_bytes": options["max_response_bytes"]} if "max_response_bytes" in options else {}
    pool = cbk.KeepAliveTransport(ssl_context=options["ssl_context"], **limit)
    made = []
    for kind in kinds:
        shared = kind in ("KeepAliveTransport", "KeepAliveTransport in threads") and "transport" not in options
        client = make_client(where, kind, **dict(options, transport=pool) if shared else options)
        made.append((kind, sync_create(client), pool.close if shared else client.close))
    return made


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def clean_env(**extra: str) -> Dict[str, str]:
    """This process's environment without proxy or ChatBotKit settings, plus *extra*."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.lower().endswith("_proxy") and not key.startswith("CHATBOTKIT_") and not key.startswith("SSL_CERT")
    }
    env.update(extra)
    return env


def run_cli(*argv: str, **environ: str) -> Tuple[int, str, str]:
    """The command line run in this process with *environ* as its environment: (status, stdout, stderr)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = cbk._run_cli(list(argv), environ)
    return status, stdout.getvalue(), stderr.getvalue()


def run_python(
    *argv: str,
    env: Optional[Dict[str, str]] = None,
    cwd: Optional[str] = None,
    input: Optional[str] = None,
    timeout: float = 60,
    check: bool = False,
    redirect: str = "",
) -> subprocess.CompletedProcess[str]:
    """``python *argv*`` with this interpreter in a child process, its output captured as text: beside the
    module unless *cwd* says otherwise, in ``clean_env()`` unless *env* is given. With *redirect* (a shell
    redirection such as ``>/dev/full`` or ``2>&-``) it runs through sh, so that a stream can be full or closed."""
    command = [sys.executable, *argv]
    if redirect:
        command = ["sh", "-c", " ".join(shlex.quote(part) for part in command) + " " + redirect]
    return subprocess.run(
        command,
        cwd=cwd or str(HERE),
        env=clean_env() if env is None else env,
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def timed_call(function: Callable[..., Any], *args: Any) -> Tuple[Any, float]:
    """``function(*args)``'s result, or the ChatBotKitError it raised, and the seconds it took."""
    started = time.monotonic()
    try:
        outcome: Any = function(*args)
    except cbk.ChatBotKitError as error:
        outcome = error
    return outcome, time.monotonic() - started


def run_concurrently(function: Callable[[Any], Any], cases: Sequence[Any]) -> List[Any]:
    """``[function(case) for case in cases]``, each in a thread of its own: independent cases that wait
    (on a child process, on a deadline) wait at the same time. An exception is raised here, as it would be."""
    results: List[Any] = [None] * len(cases)
    failures: List[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = function(cases[index])
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return results


def run_exchange(data: bytes, *, limit: int = 1 << 20, step: int = 0) -> Tuple[cbk.HTTPResponse, bool]:
    """Feed *data* to an exchange (in pieces of *step* bytes, or whole), then the end of the stream if it
    still waits; return the response and the reuse verdict."""
    exchange = cbk._HTTP11Exchange("http://api.test/x", "api.test:80", limit)
    pieces = [data[i : i + step] for i in range(0, len(data), step)] if step else [data]
    for piece in pieces:
        response = exchange.receive(piece)
        if response is not None:
            return response, exchange.reusable
    response = exchange.receive(b"")
    assert response is not None
    return response, exchange.reusable


def run_threads(client: cbk.BotSessionClient, threads: int = 16, calls: int = 5) -> List[Any]:
    """Create sessions from *threads* threads at once, *calls* each; return each call's id or exception."""
    results: List[Any] = []
    lock = threading.Lock()

    def work(index: int) -> None:
        for call in range(calls):
            try:
                outcome: Any = client.create("bot-%d-%d" % (index, call))["id"]
            except Exception as exc:  # recorded, and so asserted on by the caller
                outcome = exc
            with lock:
                results.append(outcome)

    workers = [threading.Thread(target=work, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    return results


def echo_app(handler: http.server.BaseHTTPRequestHandler, record: Recorded) -> None:
    """A session whose fields are made from the request: the bot id in the path and the first message."""
    bot = record.path.split("/")[-3]
    text = record.json()["messages"][0]["text"]
    json_reply(
        handler, 200, dict(SESSION, id="ses-" + bot, conversationId="conv-" + text, token="tok-%s-%s" % (bot, text))
    )


def free_threaded() -> bool:
    """True on a free-threaded build running with the GIL off (PYTHON_GIL=0 or -X gil=0)."""
    return not getattr(sys, "_is_gil_enabled", lambda: True)()


def hang_up(handler: Any, record: Recorded) -> None:
    """Read the request, then close the connection without a byte of answer."""
    handler.close_connection = True


@contextlib.contextmanager
def _stdin(text: str) -> Any:
    saved = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = saved


def read_head(conn: Any) -> Optional[bytes]:
    """What arrives on *conn* up to the end of a header section and as much after as came with it (None if
    the peer closes first)."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        head += chunk
    return head


def accept_each(sock: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    """Accept connections on *sock*, each handled in a daemon thread of its own, until *sock* is closed."""
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


class RawServer:
    """A TCP server on 127.0.0.1 that reads each request and answers with the bytes *answer* gives.

    ``answer(index, request_bytes)`` returns the raw answer for the index-th request (0-based) or None
    to hang up without a byte; http.server is too polite to send malformed answers.
    """

    def __init__(
        self, answer: Callable[[int, bytes], Optional[bytes]], keep_open: bool = False, tls: bool = False
    ) -> None:
        self.answer = answer
        self.keep_open = keep_open
        self.tls = tls
        self.peers: List[int] = []  # the client port of each request
        self.received: List[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)  # concurrent connects beyond the backlog are dropped, and resent after 1 s
        self.port = self.sock.getsockname()[1]
        self.url = "%s://127.0.0.1:%d" % ("https" if tls else "http", self.port)
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=accept_each, args=(self.sock, self._handle), daemon=True)

    def _handle(self, conn: socket.socket) -> None:
        if self.tls:
            try:
                conn.settimeout(5)
                conn = server_tls_context().wrap_socket(conn, server_side=True)
            except OSError:
                conn.close()
                return
        with conn:
            conn.settimeout(5)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                request, buffer = head + b"\r\n\r\n" + buffer[:length], buffer[length:]
                with self._lock:
                    index = len(self.received)
                    self.received.append(request)
                    self.peers.append(conn.getpeername()[1])
                data = self.answer(index, request)
                if data is None:
                    return
                try:
                    conn.sendall(data)
                except OSError:
                    return
                if not self.keep_open:
                    return

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()  # accept_each ends with it


def raw(status_line: str, headers: Any = (), body: bytes = b"", length: Optional[int] = None) -> bytes:
    """An HTTP/1.1 answer as bytes, with a Content-Length unless *length* is -1 (none)."""
    lines = [status_line] + ["%s: %s" % pair for pair in headers]
    if length != -1:
        lines.append("Content-Length: %d" % (len(body) if length is None else length))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def secret_forms(secret: str = SECRET) -> List[str]:
    """The secret as a server may echo it: literal, JSON-escaped and percent-encoded, either case of hex."""
    return [
        secret,
        "".join("\\u%04x" % ord(char) for char in secret),
        "".join("\\u%04X" % ord(char) for char in secret),
        "".join("%%%02x" % ord(char) for char in secret),
        "".join("%%%02X" % ord(char) for char in secret),
    ]


def reachable_texts(error: BaseException) -> List[str]:
    """Every text reachable from a raised error: str, repr, attributes, the whole chain, the traceback."""
    import traceback

    texts = ["".join(traceback.format_exception(type(error), error, error.__traceback__))]
    seen: List[BaseException] = []
    pending: List[Optional[BaseException]] = [error]
    while pending:
        item = pending.pop()
        if item is None or any(item is other for other in seen):
            continue
        seen.append(item)
        texts += [str(item), repr(item)] + [repr(arg) for arg in item.args]
        for value in vars(item).values():
            if isinstance(value, BaseException):
                pending.append(value)
            elif isinstance(value, (cbk._Headers, dict)):
                texts += [str(key) for key in value] + [str(item_) for item_ in value.values()]
            texts.append(repr(value))
            if isinstance(value, bytes):
                texts.append(value.decode("latin-1"))
        pending += [item.__cause__, item.__context__]
    return texts


def _raise_api_error() -> None:
    raise cbk.APIError("slow down", "TOO_MANY_REQUESTS", status=429, retry_after=1.5)


def slow_app(delay: float) -> Callable[..., None]:
    def app(handler: Any, record: Recorded) -> None:
        time.sleep(delay)
        session_app(handler, record)

    return app


async def heartbeat(stop: Any, lags: List[float]) -> None:
    """Tick every 10 ms and record how late each tick came: the event loop's responsiveness."""
    import asyncio

    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.01)
        lags.append(loop.time() - before - 0.01)


def run_async(coroutine: Any) -> Any:
    import asyncio

    return asyncio.run(coroutine)


# The event loop the asyncio tests run on: asyncio's default, or (CBK_TEST_LOOP, as CI runs the suite a
# second and a third time) one with the proactor's interface, or uvloop.
TEST_LOOP = os.environ.get("CBK_TEST_LOOP", "")


def proactor_interface_loop() -> Any:
    """A selector loop with the interface of Windows' ProactorEventLoop, as the library meets it:
    ``add_reader``, ``remove_reader``, ``add_writer`` and ``remove_writer`` raise NotImplementedError when
    the library calls them, while asyncio's own socket methods and create_connection keep working."""
    import asyncio

    def refusing(name: str) -> Any:
        def method(self: Any, *args: Any) -> Any:
            if sys._getframe(1).f_globals.get("__name__") == cbk.__name__:
                self.refused.append(name)
                raise NotImplementedError
            return getattr(asyncio.SelectorEventLoop, name)(self, *args)

        return method

    class ProactorInterfaceLoop(asyncio.SelectorEventLoop):
        refused: List[str]
        add_reader = refusing("add_reader")
        remove_reader = refusing("remove_reader")
        add_writer = refusing("add_writer")
        remove_writer = refusing("remove_writer")

    loop = ProactorInterfaceLoop()
    loop.refused = []
    return loop


def new_test_loop() -> Any:
    import asyncio

    if TEST_LOOP == "proactor-interface":
        return proactor_interface_loop()
    if TEST_LOOP == "uvloop":
        import uvloop  # type: ignore[import-not-found]

        return uvloop.new_event_loop()
    if TEST_LOOP:
        raise RuntimeError("CBK_TEST_LOOP must be proactor-interface or uvloop, not %r" % TEST_LOOP)
    return asyncio.new_event_loop()


if TEST_LOOP:  # every asyncio.run() of the suite, and of the code it runs, on that loop
    import asyncio

    class _TestLoopPolicy(asyncio.DefaultEventLoopPolicy):  # type: ignore[misc,name-defined]
        def new_event_loop(self) -> Any:
            return new_test_loop()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # policies are deprecated from 3.14 on
        asyncio.set_event_loop_policy(_TestLoopPolicy())


def run_on(loop: Any, coroutine: Any) -> Any:
    """Run *coroutine* to its end on *loop*, then close the loop (asyncio.run with a loop of one's own)."""
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


class LoopbackProxy:
    """A CONNECT proxy on 127.0.0.1 (standard library sockets and threads): every tunnel leads to
    *upstream* (host, port), whatever it asks for. With *credentials* ("user:password") it answers 407
    without the matching Basic Proxy-Authorization; it waits *hold* seconds before answering each
    CONNECT; with *refuse* it answers every CONNECT with that status. ``tunnels`` records each CONNECT's
    target and Proxy-Authorization, ``closed`` each connection the client closed."""

    def __init__(
        self,
        upstream: Tuple[str, int],
        credentials: Optional[str] = None,
        hold: float = 0.0,
        refuse: Optional[int] = None,
    ) -> None:
        import base64

        self.upstream = upstream
        self.expected = None if credentials is None else "Basic " + base64.b64encode(credentials.encode()).decode()
        self.hold, self.refuse = hold, refuse
        self.tunnels: List[Tuple[str, Optional[str]]] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self._thread = threading.Thread(target=accept_each, args=(self.sock, self._handle), daemon=True)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            head = read_head(conn)
            if head is None:
                return
            lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
            fields = dict(line.split(": ", 1) for line in lines[1:])
            authorization = {key.lower(): value for key, value in fields.items()}.get("proxy-authorization")
            self.tunnels.append((lines[0].split(" ")[1], authorization))
            time.sleep(self.hold)
            if self.refuse is not None:
                conn.sendall(b"HTTP/1.1 %d Refused\r\nContent-Length: 7\r\n\r\nrefused" % self.refuse)
                return
            if self.expected is not None and authorization != self.expected:
                conn.sendall(
                    b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=t\r\n"
                    b"Content-Length: 0\r\n\r\n"
                )
                return
            with socket.create_connection(self.upstream) as upstream:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                conn.settimeout(None)
                back = threading.Thread(target=self._copy, args=(upstream, conn), daemon=True)
                back.start()
                self._copy(conn, upstream)
                back.join(10)

    @staticmethod
    def _copy(source: socket.socket, target: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def __enter__(self) -> LoopbackProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.sock.close()


@contextlib.contextmanager
def proxy_environment(proxy_url: str, no_proxy: str = "") -> Any:
    """os.environ with only these proxy settings, while transports are built (they read it then)."""
    env = {key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")}
    env.update(HTTPS_PROXY=proxy_url, https_proxy=proxy_url, HTTP_PROXY=proxy_url, http_proxy=proxy_url)
    env.update(NO_PROXY=no_proxy, no_proxy=no_proxy)
    with unittest.mock.patch.dict(os.environ, env, clear=True):
        yield


def pooled_transports(**options: Any) -> List[Tuple[str, Callable[[cbk.HTTPRequest], Any], Callable[[], None]]]:
    """(name, send(request) -> response, close) for each pooled transport: KeepAliveTransport, and
    AsyncKeepAliveTransport on a loop of the test's kind (a new one per call)."""
    blocking = cbk.KeepAliveTransport(ssl_context=client_tls_context(), **options)
    native = cbk.AsyncKeepAliveTransport(ssl_context=client_tls_context(), **options)
    return [
        ("KeepAliveTransport", blocking, blocking.close),
        ("AsyncKeepAliveTransport", lambda request: run_async(native(request)), native.close),
    ]


def held_answer(
    first: bytes, hold: float, tls: bool = False, then: Optional[Callable[[Any, bytes], None]] = None
) -> Any:
    """A one-connection server: it reads the request's header section only, sends *first*, runs *then*
    (given the connection and what it read) or holds the connection *hold* seconds without reading, and
    closes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        with contextlib.ExitStack() as stack:
            stack.enter_context(conn)
            conn.settimeout(10)
            try:
                if tls:
                    conn = stack.enter_context(server_tls_context().wrap_socket(conn, server_side=True))
                head = read_head(conn)
                if head is None:
                    return
                conn.sendall(first)
                if then is not None:
                    then(conn, head)
                else:
                    time.sleep(hold)
            except OSError:
                pass

    threading.Thread(target=serve, daemon=True).start()
    return server


def token_answer(index: int, request: bytes, interim: bytes = b"") -> bytes:
    """A session whose token names the request: its bot id and the order it arrived in."""
    bot = re.search(rb"/bot/([^/]+)/session", request).group(1).decode()  # type: ignore[union-attr]
    body = json.dumps(dict(SESSION, token="tok-%s-%d" % (bot, index))).encode()
    return interim + raw("HTTP/1.1 200 OK", [("Content-Type", "application/json")], body)


def early_hints(index: int, request: bytes) -> bytes:
    hints = b"HTTP/1.1 103 Early Hints\r\nLink: </app.css>; rel=preload\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
    return token_answer(index, request, hints)


def asyncio_wait(coroutine: Any, seconds: float) -> Any:
    import asyncio

    return asyncio.wait_for(coroutine, seconds)


def fork_child(create: Callable[[str], Any], bot: str) -> int:
    """In a fork's child: one create, its token written to the parent as the exit status's story."""
    try:
        token = create(bot)["token"]
        return 0 if token.startswith("tok-%s-" % bot) else 3
    except BaseException:  # a child never returns into the parent's test runner
        return 4


def load_openapi() -> Dict[str, Any]:
    with open(str(OPENAPI_FILE), encoding="utf-8") as handle:
        return json.load(handle)  # type: ignore[no-any-return]


JSON_POST = {"Content-Type": "application/json"}


SHOP = "https://shop.example"


def endpoint_for(transport: Any = None, **options: Any) -> Tuple[cbk.SessionEndpoint, List[str], FakeTransport]:
    """An endpoint for bot_web over a FakeTransport, with its log lines collected."""
    fake = transport if transport is not None else FakeTransport()
    lines: List[str] = []
    client = make_client(transport=fake)
    settings: Dict[str, Any] = {"allowed_origins": [SHOP], "duration": 3600, "log": lines.append}
    settings.update(options)
    return cbk.SessionEndpoint(client, "bot_web", **settings), lines, fake


def answer_json(answer: cbk.EndpointResponse) -> Any:
    return json.loads(answer.body)


class NoRead:
    """A request body that must not be read."""

    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read")


def start_dev_server(arguments: List[str], env: Dict[str, str]) -> Tuple[subprocess.Popen[str], str, str]:
    """Start ``chatbotkit_session.py bot_web <arguments>`` (a --serve command); return it, the URL it printed
    and the whole line."""
    process = subprocess.Popen(
        [sys.executable, str(MODULE_FILE), "bot_web", *arguments],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    found = re.search(r"http://127\.0\.0\.1:\d+/", line)
    if found is None:
        process.kill()
        process.communicate()
        raise AssertionError("the server printed no URL: %r" % line)
    return process, found.group(0), line


LAMBDA_HANDLER = "chatbotkit_session.lambda_handler"  # what a function whose package is the one file names


FAKE_CONTEXT = (
    "import time\n"
    "class Context:\n"
    "    def __init__(self, milliseconds):\n"
    "        self.deadline = time.monotonic() + milliseconds / 1000.0\n"
    "    def get_remaining_time_in_millis(self):\n"
    "        return int((self.deadline - time.monotonic()) * 1000)\n"
)


def raw_exchange(
    port: int, method: str, headers: Dict[str, str], body: bytes = b"", path: str = "/"
) -> Tuple[int, bytes]:
    """Send one request with exactly *headers* (a Content-Length added only when none is given) and read
    the answer to the end: its status (0 for no HTTP answer) and body."""
    fields = dict(headers)
    if not any(name.lower() == "content-length" for name in fields):
        fields["Content-Length"] = str(len(body))
    head = "%s %s HTTP/1.1\r\n%sConnection: close\r\n\r\n" % (
        method,
        path,
        "".join("%s: %s\r\n" % pair for pair in fields.items()),
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("utf-8") + body)
        answer = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    status = int(status_line.split()[1]) if status_line.startswith(b"HTTP/") else 0
    return status, rest.partition(b"\r\n\r\n")[2]


def function_url_event(body: Optional[str], method: str = "POST", base64_encoded: bool = False) -> Dict[str, Any]:
    """A Lambda Function URL (API Gateway HTTP API, payload 2.0) event, as AWS documents its shape."""
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": "/",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "origin": "https://shop.example"},
        "requestContext": {"http": {"method": method, "path": "/", "sourceIp": "203.0.113.7"}, "requestId": "r1"},
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def rest_api_event(body: Optional[str], method: str = "POST") -> Dict[str, Any]:
    """An API Gateway REST API (payload 1.0) proxy event."""
    return {
        "resource": "/session",
        "path": "/session",
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "requestContext": {"resourcePath": "/session", "httpMethod": method, "stage": "prod"},
        "body": body,
        "isBase64Encoded": False,
    }


def run_lambda(code: str, env: Dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run *code* with the module copied alone into a folder, as a deployment of the one file has it."""
    with tempfile.TemporaryDirectory() as folder:
        shutil.copy(str(MODULE_FILE), folder)
        return run_python(
            "-I", "-S", "-c", "import sys; sys.path.insert(0, '.')\n" + code, cwd=folder, env=env, input=stdin
        )


class FakeClock:
    """A clock for the core: time moves only when the test moves it; the jitter is what the test says."""

    def __init__(self, jitter: float = 0.0) -> None:
        self.now = 1000.0
        self.wall = 1790000000.0
        self.jitter = jitter

    def clock(self) -> Any:
        return cbk._Clock(lambda: self.now, lambda: self.wall, lambda: self.jitter)


LOOP_KINDS = ("KeepAliveTransport", "AsyncKeepAliveTransport", "AsyncKeepAliveTransport, proactor interface")


def clients_on_every_loop(base_url: str, **options: Any) -> List[Tuple[str, Callable[[Callable[[Any], Any]], Any]]]:
    """(name, run(use)) for a client over each pooled transport: ``use(create)`` is called with the
    client's create (awaited for the asyncio ones, on asyncio's loop and on one with the proactor's
    interface), and the client is closed afterwards, inside its loop."""
    import asyncio

    settings = dict(retries=0, ssl_context=client_tls_context(), **options)

    def blocking(use: Callable[[Any], Any]) -> Any:
        with cbk.KeepAliveTransport(ssl_context=client_tls_context()) as pool:
            return use(make_client(base_url, "KeepAliveTransport", **dict(settings, transport=pool)).create)

    def native(loop_factory: Callable[[], Any]) -> Callable[[Callable[[Any], Any]], Any]:
        def run(use: Callable[[Any], Any]) -> Any:
            async def main() -> Any:
                async with make_client(base_url, "AsyncKeepAliveTransport", **settings) as client:
                    loop = asyncio.get_running_loop()
                    return await loop.run_in_executor(
                        None, use, lambda *args: asyncio.run_coroutine_threadsafe(client.create(*args), loop).result()
                    )

            return run_on(loop_factory(), main())

        return run

    return list(zip(LOOP_KINDS, (blocking, native(new_test_loop), native(proactor_interface_loop))))


class IdleClosingServer(RawServer):
    """A RawServer that closes a connection idle *idle* seconds (FIN), then records whether the client
    closed its end within *grace* seconds: ``closed_by_client`` and ``left_open`` count them."""

    def __init__(self, idle: float, grace: float, delay: float = 0.0) -> None:
        super().__init__(self._answer, keep_open=True)
        self.idle, self.grace, self.delay = idle, grace, delay
        self.closed_by_client = 0
        self.left_open = 0

    def _answer(self, index: int, request: bytes) -> bytes:
        time.sleep(self.delay)
        return token_answer(index, request)

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            buffer = b""
            while True:
                conn.settimeout(self.idle if not buffer else 5)
                try:
                    chunk = conn.recv(65536)
                except socket.timeout:
                    break  # idle: close our side, then see whether the client closes its own
                if not chunk:
                    return
                buffer += chunk
                if b"\r\n\r\n" in buffer:
                    head, _, rest = buffer.partition(b"\r\n\r\n")
                    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
                    if len(rest) >= length:
                        request, buffer = head + b"\r\n\r\n" + rest[:length], rest[length:]
                        with self._lock:
                            index = len(self.received)
                            self.received.append(request)
                        conn.sendall(self.answer(index, request))
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(self.grace)
            try:
                closed = conn.recv(1) == b""
            except OSError:
                closed = False
            with self._lock:
                if closed:
                    self.closed_by_client += 1
                else:
                    self.left_open += 1


def session_of(size: int) -> bytes:
    return json.dumps(dict(SESSION, padding="x" * size)).encode()


def call_wsgi(endpoint: cbk.SessionEndpoint, method: str, headers: Dict[str, str], body: bytes = b"") -> Any:
    """Call endpoint.wsgi as a WSGI server that fills in nothing (gunicorn's way): (status, headers, body)."""
    environ: Dict[str, Any] = {"REQUEST_METHOD": method, "wsgi.input": io.BytesIO(body), "REMOTE_ADDR": "198.51.100.4"}
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = value
    started: List[Any] = []
    chunks = endpoint.wsgi(environ, lambda status, pairs: started.extend([status, pairs]))
    return int(started[0].split()[0]), cbk._Headers(started[1]), b"".join(chunks)


def call_asgi(endpoint: cbk.SessionEndpoint, method: str, headers: Dict[str, str], body: bytes = b"") -> Any:
    """Call endpoint.asgi with one http.request message: (status, headers, body)."""
    import asyncio

    sent: List[Dict[str, Any]] = []
    messages = [{"type": "http.request", "body": body}]

    async def receive() -> Dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "method": method,
        "path": "/",
        "client": ["198.51.100.5", 4000],
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
    }
    asyncio.run(endpoint.asgi(scope, receive, send))
    pairs = {name.decode(): value.decode() for name, value in sent[0]["headers"]}
    return sent[0]["status"], cbk._Headers(pairs), sent[1]["body"]


def call_lambda(endpoint: cbk.SessionEndpoint, method: str, headers: Dict[str, str], body: bytes = b"") -> Any:
    """Call endpoint.lambda_handler with a Function URL event: (status, headers, body)."""
    event = function_url_event(body.decode(), method)
    event["headers"] = {name.lower(): value for name, value in headers.items()}
    answer = endpoint.lambda_handler(event, None)
    return answer["statusCode"], cbk._Headers(answer["headers"]), answer["body"].encode()


def call_handle(endpoint: cbk.SessionEndpoint, method: str, headers: Dict[str, str], body: bytes = b"") -> Any:
    answer = endpoint.handle(method, headers, body)
    return answer.status, cbk._Headers(answer.headers), answer.body


EVERY_DOOR = {"handle": call_handle, "wsgi": call_wsgi, "asgi": call_asgi, "lambda": call_lambda}


def async_endpoint_for(**options: Any) -> Tuple[cbk.SessionEndpoint, List[str], List[cbk.HTTPRequest]]:
    """An endpoint over an AsyncBotSessionClient whose transport answers SESSION, for the ASGI door."""
    sent: List[cbk.HTTPRequest] = []

    async def transport(request: cbk.HTTPRequest) -> cbk.HTTPResponse:
        sent.append(request)
        return json_response(200, SESSION)

    lines: List[str] = []
    client = make_client(None, "AsyncKeepAliveTransport", transport=transport)
    settings: Dict[str, Any] = {"allowed_origins": [SHOP], "duration": 3600, "log": lines.append}
    settings.update(options)
    return cbk.SessionEndpoint(client, "bot_web", **settings), lines, sent


def endpoint_for_door(door: str, **options: Any) -> Tuple[cbk.SessionEndpoint, List[str], List[Any]]:
    """An endpoint the door can drive (ASGI awaits an asyncio client), and the requests sent to the API."""
    if door == "asgi":
        return async_endpoint_for(**options)
    endpoint, lines, fake = endpoint_for(**options)
    return endpoint, lines, fake.requests


class Band(NamedTuple):
    """One band of the module, as its banners and its code show it."""

    number: int
    title: str
    sections: List[str]  # each section's title, up to its first colon
    names: List[str]  # the top-level names it defines
    uses: Dict[str, Set[str]]  # each top-level unit's names of the module it refers to
    sizes: Dict[str, int]  # each top-level unit's length in lines
    lines: int


def module_bands(source: Optional[str] = None) -> List[Band]:
    """The bands of chatbotkit_session.py: ``# ====`` banners open a band, ``# ----`` banners a section."""
    text = MODULE_FILE.read_text(encoding="utf-8") if source is None else source
    lines = text.splitlines()
    starts = [i for i in range(1, len(lines)) if lines[i - 1].startswith("# ====") and re.match(r"# \d\. ", lines[i])]
    tree = ast.parse(text)
    bands = []
    for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(lines) + 1]), 1):
        sections = [
            lines[i + 1][2:].split(":")[0]
            for i in range(start, min(end, len(lines) - 1))
            if lines[i].startswith("# ----") and not lines[i - 1].startswith("#")
        ]
        units = [node for node in tree.body if start < node.lineno <= end]
        names, uses, sizes = [], {}, {}
        for node in units:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            own = [getattr(node, "name", None)] + [t.id for t in targets if isinstance(t, ast.Name)]
            names += [name for name in own if name]
            label = next((name for name in own if name), ast.dump(node)[:40])
            uses[label] = {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}
            first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
            sizes[label] = (node.end_lineno or node.lineno) - first + 1
        bands.append(Band(number, lines[start][2:], sections, names, uses, sizes, end - start))
    return bands


# ---------------------------------------------------------------------------------------------------------
# Waiting tests, run at the same time
# ---------------------------------------------------------------------------------------------------------


def keeps_time(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test that waits, burns little CPU and touches nothing process-wide, but whose timing
    assertions have little room: ``tests_at_once`` runs it only beside other such tests."""
    test.__dict__["keeps_time"] = True
    return test


def waits(test: Callable[..., None]) -> Callable[..., None]:
    """Mark a test that spends its time waiting, on servers, sockets, deadlines or child processes of its
    own, touches nothing process-wide (the environment, stdio, warnings, logging, signals, forks, the event
    loop policy) and has room in its timing assertions: ``tests_at_once`` runs such tests six at a time."""
    test.__dict__["waits_on_its_own"] = True
    return test


class _Recording(unittest.TestResult):
    """What one test reported (startTest, addSuccess, addSubTest...), kept to be told to the real result."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: List[Tuple[str, Tuple[Any, ...]]] = []

    def _record(name: str) -> Any:  # type: ignore[misc]
        def record(self: _Recording, *args: Any) -> None:
            self.calls.append((name, args))

        return record

    startTest = _record("startTest")
    stopTest = _record("stopTest")
    addSuccess = _record("addSuccess")
    addError = _record("addError")
    addFailure = _record("addFailure")
    addSkip = _record("addSkip")
    addExpectedFailure = _record("addExpectedFailure")
    addUnexpectedSuccess = _record("addUnexpectedSuccess")
    addSubTest = _record("addSubTest")
    addDuration = _record("addDuration")
    del _record

    def retell(self, result: unittest.TestResult) -> None:
        for name, args in self.calls:
            getattr(result, name)(*args)


class _AtOnce(unittest.TestSuite):
    """Tests run by a few threads at a time; what each reported is then told to the runner's result in the
    suite's order, as if they had run one after another."""

    def __init__(self, tests: Sequence[unittest.TestCase], threads: int) -> None:
        super().__init__(tests)
        self.threads = threads

    def run(self, result: unittest.TestResult, debug: bool = False) -> unittest.TestResult:  # type: ignore[override]
        tests = list(self)
        recordings = [_Recording() for _ in tests]
        queue = list(zip(tests, recordings))[::-1]
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not queue:
                        return
                    test, recording = queue.pop()
                test(recording)

        threads = [threading.Thread(target=work) for _ in range(self.threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for recording in recordings:
            if result.shouldStop:
                break
            recording.retell(result)
        return result


def _each_test(suite: unittest.TestSuite) -> Iterator[unittest.TestCase]:
    for test in suite:
        if isinstance(test, unittest.TestSuite):
            yield from _each_test(test)
        else:
            yield test  # type: ignore[misc]


def tests_at_once(suite: unittest.TestSuite) -> unittest.TestSuite:
    """*suite* with its ``@waits`` tests run first, six at a time (enough to overlap their waits, few enough
    that no deadline waits for a CPU), then its ``@keeps_time`` tests, all at once, then the others in turn
    (``load_tests`` of a test module)."""
    groups: Dict[str, List[unittest.TestCase]] = {"waits_on_its_own": [], "keeps_time": [], "": []}
    for test in _each_test(suite):
        method = getattr(test, getattr(test, "_testMethodName", ""), None)
        mark = next((name for name in groups if name and getattr(method, name, False)), "")
        groups[mark].append(test)
    return unittest.TestSuite([_AtOnce(groups["waits_on_its_own"], 6), _AtOnce(groups["keeps_time"], 4), *groups[""]])
