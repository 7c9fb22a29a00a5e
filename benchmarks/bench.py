# SPDX-License-Identifier: MIT
"""Benchmarks for chatbotkit_session, run by hand: ratios against baselines measured in the same run.

    python benchmarks/bench.py [--calls 300] [--runs 7] [--cold-runs 21] [--cold-only]
                               [--pythons /path/to/python3.8 /path/to/python3.13 ...]
    python benchmarks/bench.py --async-scale [--concurrency 100 500 1000] [--rounds 10]
    python benchmarks/bench.py --instructions [--calls 200]
    python benchmarks/bench.py --bands [--pythons /path/to/python3.8 /path/to/python3.13 ...]

A loopback server in its own process (asyncio, HTTP/1.1 keep-alive, plain and TLS) answers every
create with a fixed session. Per-call time (median over --runs runs of --calls creates) is printed for:
the default transport; a hand-written urllib.request + json loop (the floor for the default);
KeepAliveTransport; one kept-alive http.client connection (the floor for pooling); and
requests.Session and httpx.Client when importable. Then whole-process cold start (start the interpreter,
import, one create) against the same hand-written urllib script, timing the interpreter binary itself,
and counting its instructions with callgrind under ``python -I -S`` for each interpreter of --pythons
(default: this one).

--async-scale: the server answers each create after 50 ms; at each concurrency, that many tasks create
sessions in turn for --rounds rounds, with AsyncBotSessionClient's default transport, aiohttp (a
ClientSession with an unlimited connector, the same headers and body, the JSON decoded) and a minimal
hand-written asyncio client (one connection per task), each in its own event loop, while a 10 ms
heartbeat task records how late the loop lets it run. Printed: calls/s, client CPU per call, p99
latency and the heartbeat's worst lag.

--instructions: instructions per warm call under callgrind (the difference between two runs of the
same client making N and 2N calls, the server in its own process outside valgrind): KeepAliveTransport
against one kept-alive http.client connection, over plain HTTP and TLS; AsyncBotSessionClient against
aiohttp at 100 concurrent creates.

--bands: the module's five bands and their lines, then, for each interpreter of --pythons, the time to
compile the whole file against the file cut after band 1 (the client alone), the best of 30 compiles each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import chatbotkit_session as cbk  # noqa: E402
from support_chatbotkit_session import TEST_CA_PEM, TEST_SERVER_KEY, TEST_SERVER_PEM  # noqa: E402

SESSION = json.dumps({"id": "ses_1", "conversationId": "conv_1", "token": "tok_1", "expiresAt": 1790000000000}).encode()
REQUEST = {"durationInSeconds": 600, "messages": [{"type": "user", "text": "Hello"}]}
PATH = "/api/v1/bot/bot_123/session/create"
SECRET = "sk-bench"
# The baselines send what the library sends, so that every client puts the same bytes on the wire.
SAME_HEADERS = {
    "User-Agent": cbk._USER_AGENT,
    "Accept": "application/json",
    "Content-Type": "application/json",
    "Authorization": "Bearer " + SECRET,
}


# ---------------------------------------------------------------------------------------------------------
# The server (its own process)
# ---------------------------------------------------------------------------------------------------------


class _SessionProtocol(asyncio.Protocol):
    """Answers each POST with the fixed session (after DELAY seconds); keeps the connection unless asked to close."""

    DELAY = 0.0

    connections = 0  # accepted so far: a request for /stats answers with it

    def connection_made(self, transport: Any) -> None:
        _SessionProtocol.connections += 1
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").lower()
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            close = "connection: close" in head
            body = SESSION if not head.startswith("get /stats") else b'{"connections": %d}' % self.connections
            answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s" % (
                len(body),
                b"Connection: close\r\n" if close else b"",
                body,
            )
            if body is not SESSION:
                self.transport.write(answer)
                continue
            if self.DELAY:
                asyncio.get_running_loop().call_later(self.DELAY, self._answer, answer)
                return
            self.transport.write(answer)
            if close:
                self.transport.close()
                return

    def _answer(self, answer: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(answer)


def serve(tls: bool, delay: float = 0.0) -> None:
    more_files()
    _SessionProtocol.DELAY = delay
    context = None
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(_pem_file("server.pem", TEST_SERVER_PEM), _pem_file("server.key", TEST_SERVER_KEY))

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(
            _SessionProtocol, "127.0.0.1", 0, ssl=context, backlog=4096
        )
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    asyncio.run(main())


_PEM_DIR = tempfile.mkdtemp(prefix="cbk-bench-")


def _pem_file(name: str, text: str) -> str:
    path = os.path.join(_PEM_DIR, name)
    with open(path, "w") as handle:
        handle.write(text)
    return path


def proxy_to(port: int) -> None:
    """The test suite's loopback CONNECT proxy, in its own process (its threads' CPU is not the client's)."""
    from support_chatbotkit_session import LoopbackProxy

    more_files()
    with LoopbackProxy(("127.0.0.1", port)) as proxy:
        print(proxy.url, flush=True)
        while True:
            time.sleep(3600)


def start_proxy(port: int) -> Tuple[subprocess.Popen, str]:  # type: ignore[type-arg]
    process = subprocess.Popen([sys.executable, __file__, "--proxy-to", str(port)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def start_server(tls: bool, delay: float = 0.0) -> Tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", "tls" if tls else "plain", "--delay", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, int(process.stdout.readline())


# ---------------------------------------------------------------------------------------------------------
# The clients, each as "make a function that does one create"
# ---------------------------------------------------------------------------------------------------------

Maker = Callable[[str, Optional[ssl.SSLContext]], Tuple[Callable[[], Any], Callable[[], None]]]


def default_transport(base: str, context: Optional[ssl.SSLContext]) -> Any:
    client = cbk.BotSessionClient(secret=SECRET, base_url=base, ssl_context=context)
    return lambda: client.create("bot_123", REQUEST), lambda: None


def keep_alive_transport(base: str, context: Optional[ssl.SSLContext]) -> Any:
    transport = cbk.KeepAliveTransport(ssl_context=context)
    client = cbk.BotSessionClient(secret=SECRET, base_url=base, transport=transport)
    return lambda: client.create("bot_123", REQUEST), transport.close


def hand_written_urllib(base: str, context: Optional[ssl.SSLContext]) -> Any:
    # What a careful person writes without a library: one opener, one Request per call, json both ways.
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=context))
    headers = dict(SAME_HEADERS)

    def call() -> Any:
        request = urllib.request.Request(base + PATH, data=json.dumps(REQUEST).encode(), headers=headers, method="POST")
        with opener.open(request, timeout=30) as response:
            return json.loads(response.read())

    return call, lambda: None


def raw_http_client(base: str, context: Optional[ssl.SSLContext]) -> Any:
    host, port = base.split("//")[1].split(":")
    if base.startswith("https"):
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, int(port), timeout=30, context=context
        )
    else:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = dict(SAME_HEADERS)

    def call() -> Any:
        connection.request("POST", PATH, body=json.dumps(REQUEST).encode(), headers=headers)
        return json.loads(connection.getresponse().read())

    return call, connection.close


def requests_session(base: str, context: Optional[ssl.SSLContext]) -> Any:
    import requests  # type: ignore[import-untyped]

    session = requests.Session()
    session.headers.update(SAME_HEADERS)
    verify = _pem_file("ca.pem", TEST_CA_PEM)  # per call: a Session's own verify loses to REQUESTS_CA_BUNDLE
    return lambda: session.post(base + PATH, json=REQUEST, timeout=30, verify=verify).json(), session.close


def httpx_client(base: str, context: Optional[ssl.SSLContext]) -> Any:
    import httpx  # type: ignore[import-not-found]

    client = httpx.Client(verify=context if context is not None else True, headers=SAME_HEADERS)
    return lambda: client.post(base + PATH, json=REQUEST, timeout=30).json(), client.close


def importable(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def per_call(
    makers: List[Tuple[str, Maker]], base: str, context: Optional[ssl.SSLContext], calls: int, runs: int
) -> Dict[str, float]:
    """Median seconds per call of each client over *runs* rounds of *calls* calls.

    The clients take turns within each round, so that a slow moment of a busy machine falls on all of
    them alike instead of on whichever happened to run then.
    """
    clients = {name: maker(base, context) for name, maker in makers}
    try:
        times: Dict[str, List[float]] = {name: [] for name in clients}
        for call, _ in clients.values():
            assert call()["token"] == "tok_1"  # warm up: connect, fill caches
        for _ in range(runs):
            for name, (call, _) in clients.items():
                started = time.perf_counter()
                for _ in range(calls):
                    call()
                times[name].append((time.perf_counter() - started) / calls)
        return {name: statistics.median(samples) for name, samples in times.items()}
    finally:
        for _, close in clients.values():
            close()


# ---------------------------------------------------------------------------------------------------------
# Cold start: a whole process
# ---------------------------------------------------------------------------------------------------------

COLD_LIBRARY = """
import chatbotkit_session
client = chatbotkit_session.BotSessionClient(secret="sk-bench", base_url=BASE)
assert client.create("bot_123", {"messages": [{"type": "user", "text": "Hello"}]})["token"] == "tok_1"
"""
COLD_URLLIB = """
import json, urllib.request
request = urllib.request.Request(BASE + "/api/v1/bot/bot_123/session/create", method="POST",
    data=json.dumps({"messages": [{"type": "user", "text": "Hello"}]}).encode(),
    headers={"Content-Type": "application/json", "Authorization": "Bearer sk-bench"})
with urllib.request.urlopen(request, timeout=30) as response:
    assert json.loads(response.read())["token"] == "tok_1"
"""


COLD_DATACLASSES = (
    "import dataclasses  # what the library's frozen dataclasses cost before any code of ours\n" + COLD_URLLIB
)


def cold_instructions(
    scripts: Dict[str, str], base: str, flags: List[str], python: str, root: Path = ROOT
) -> Dict[str, int]:
    """Instructions each script's whole process executes, counted by valgrind's callgrind (repeatable).

    Each script runs once first (with *flags*), so that the module's bytecode is cached as the standard
    library's is (pip compiles it when it installs the wheel); with -B and a *root* holding only the source,
    it is compiled from source every time, as in a Lambda zip without __pycache__.
    """
    counts = {}
    for name, script in scripts.items():
        code = "import sys; sys.path.insert(0, %r)\nBASE = %r\n%s" % (str(root), base, script)
        subprocess.run([python, *flags, "-c", code], check=True)
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", python, *flags, "-c", code]
        report = subprocess.run(command, capture_output=True, text=True, check=True).stderr
        counts[name] = int(report.split("Collected :")[1].split()[0])
    return counts


def cold_start(scripts: Dict[str, str], base: str, runs: int, flags: List[str]) -> Dict[str, Tuple[float, float]]:
    """Median (wall, CPU) seconds of a whole process running each script, the scripts taking turns.

    CPU time (user + system, from the kernel's accounting of the child) is the steadier figure on a busy
    machine; wall time includes waiting for the server and for the scheduler.
    """
    interpreter = sys.executable  # the interpreter itself (a venv keeps its own), never a pyenv shim
    times: Dict[str, List[Tuple[float, float]]] = {name: [] for name in scripts}
    for _ in range(runs):
        for name, script in scripts.items():
            code = "import sys; sys.path.insert(0, %r)\nBASE = %r\n%s" % (str(ROOT), base, script)
            started = time.perf_counter()
            process = subprocess.Popen([interpreter, *flags, "-c", code])
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            process.returncode = os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status
            assert process.returncode == 0, name
            times[name].append((wall, usage.ru_utime + usage.ru_stime))
    return {
        name: (statistics.median(wall for wall, _ in samples), statistics.median(cpu for _, cpu in samples))
        for name, samples in times.items()
    }


# ---------------------------------------------------------------------------------------------------------
# asyncio at scale
# ---------------------------------------------------------------------------------------------------------


def more_files() -> None:
    """A thousand connections in each process need more descriptors than the usual soft limit of 1024."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 16384 if hard == resource.RLIM_INFINITY else min(hard, 16384)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


AsyncMaker = Callable[[str, Optional[ssl.SSLContext], Optional[str]], Any]  # base, TLS, proxy -> "await one create"


@contextlib.asynccontextmanager
async def our_async_client(base: str, context: Optional[ssl.SSLContext], proxy: Optional[str]) -> Any:
    with _proxy_environment(proxy):  # the transport reads HTTPS_PROXY when it is built
        client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=base, retries=0, timeout=60, ssl_context=context)
    async with client:
        yield lambda: client.create("bot_123", REQUEST)


@contextlib.asynccontextmanager
async def aiohttp_client(base: str, context: Optional[ssl.SSLContext], proxy: Optional[str]) -> Any:
    import aiohttp  # type: ignore[import-not-found]

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), headers=SAME_HEADERS) as session:
        body = json.dumps(REQUEST).encode()
        extra: Dict[str, Any] = {"proxy": proxy} if proxy else {}
        if context is not None:
            extra["ssl"] = context

        async def create() -> Any:
            timeout = aiohttp.ClientTimeout(total=60)
            async with session.post(base + PATH, data=body, timeout=timeout, **extra) as response:
                return await response.json()

        yield create


@contextlib.asynccontextmanager
async def hand_written_asyncio(base: str, context: Optional[ssl.SSLContext], proxy: Optional[str]) -> Any:
    """The floor: one connection per task, the request bytes made once, just enough parsing."""
    host, port = base.split("//")[1].split(":")
    body = json.dumps(REQUEST).encode()
    head = "".join("%s: %s\r\n" % pair for pair in SAME_HEADERS.items())
    request = "POST %s HTTP/1.1\r\nHost: %s:%s\r\n%sContent-Length: %d\r\n\r\n" % (PATH, host, port, head, len(body))
    data = request.encode() + body
    connections: Dict[Any, Any] = {}

    async def create() -> Any:
        task = asyncio.current_task()
        if task not in connections:
            connections[task] = await asyncio.open_connection(host, int(port), ssl=context)
        reader, writer = connections[task]
        writer.write(data)
        answer = await reader.readuntil(b"\r\n\r\n")
        length = int(answer.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        return json.loads(await reader.readexactly(length))

    try:
        yield create
    finally:
        for _, writer in connections.values():
            writer.close()


@contextlib.contextmanager
def _proxy_environment(proxy: Optional[str]) -> Any:
    saved = dict(os.environ)
    for key in [key for key in os.environ if key.lower().endswith("_proxy")]:
        del os.environ[key]
    if proxy:
        os.environ["HTTPS_PROXY"] = proxy
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


async def _heartbeat(stop: asyncio.Event, lags: List[float]) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(0.01)
        lags.append(loop.time() - before - 0.01)


def _accepted(port: int) -> int:
    """How many connections the benchmark's server has accepted so far."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request("GET", "/stats")
    count = int(json.loads(connection.getresponse().read())["connections"])
    connection.close()
    return count


async def _scale_run(
    maker: AsyncMaker, base: str, concurrency: int, rounds: int, setting: Tuple[Optional[ssl.SSLContext], Optional[str]]
) -> Dict[str, float]:
    async with maker(base, *setting) as create:
        latencies: List[float] = []
        loop = asyncio.get_running_loop()

        async def worker(calls: int, record: bool) -> None:
            for _ in range(calls):
                started = loop.time()
                session = await create()
                if record:
                    latencies.append(loop.time() - started)
                assert session["token"] == "tok_1"

        await asyncio.gather(*(worker(1, False) for _ in range(concurrency)))  # connect, warm up
        stop, lags = asyncio.Event(), []  # type: ignore[var-annotated]
        beat = asyncio.ensure_future(_heartbeat(stop, lags))
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker(rounds, True) for _ in range(concurrency)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        stop.set()
        await beat
    latencies.sort()
    calls = len(latencies)
    return {
        "calls/s": calls / wall,
        "cpu_us": cpu / calls * 1e6,
        "p99_ms": latencies[int(calls * 0.99) - 1] * 1e3,
        "lag_ms": max(lags) * 1e3,
    }


def _proactor_interface_loop() -> Any:
    """The test suite's loop with the proactor's interface (no add_reader for the library)."""
    from support_chatbotkit_session import proactor_interface_loop

    return proactor_interface_loop()


def async_scale(concurrencies: List[int], rounds: int, schemes: List[str]) -> None:
    """asyncio at scale, over each scheme: "plain", "tls", or "proxied" (TLS in a tunnel through the test
    suite's loopback CONNECT proxy, HTTPS_PROXY for ours and proxy= for aiohttp)."""
    makers: List[Tuple[str, AsyncMaker, Callable[[], Any]]] = [
        ("AsyncBotSessionClient", our_async_client, asyncio.new_event_loop),
        ("  on the proactor's interface", our_async_client, _proactor_interface_loop),
    ]
    if importable("aiohttp"):
        makers.append(("aiohttp (limit=0)", aiohttp_client, asyncio.new_event_loop))
    else:
        print("aiohttp: not importable, skipped")
    makers.append(("hand-written asyncio (floor)", hand_written_asyncio, asyncio.new_event_loop))
    print("asyncio at scale: %s, the server answers after 50 ms; %d rounds per task" % (sys.version.split()[0], rounds))
    for scheme in schemes:
        server, port = start_server(scheme != "plain", delay=0.05)
        context = ssl.create_default_context(cafile=_pem_file("ca.pem", TEST_CA_PEM)) if scheme != "plain" else None
        proxy = start_proxy(port) if scheme == "proxied" else None
        base = {
            "plain": "http://127.0.0.1:%d" % port,
            "tls": "https://localhost:%d" % port,
            "proxied": "https://api.chatbotkit.com",
        }[scheme]
        try:
            for concurrency in concurrencies:
                print("\n%s, %d concurrent creates" % (scheme, concurrency))
                print(
                    "  %-30s %9s %13s %9s %15s %12s"
                    % ("client", "calls/s", "CPU/call", "p99", "heartbeat lag", "connections")
                )
                results = {}
                for name, maker, new_loop in makers:
                    if scheme == "proxied" and maker is hand_written_asyncio:
                        continue
                    before = _accepted(port) if scheme == "plain" else 0
                    loop = new_loop()
                    try:
                        setting = (context, proxy[1] if proxy else None)
                        result = loop.run_until_complete(_scale_run(maker, base, concurrency, rounds, setting))
                    finally:
                        loop.close()
                    opened = _accepted(port) - before - 1 if scheme == "plain" else 0
                    results[name] = result
                    print(
                        "  %-30s %9.0f %10.0f us %6.0f ms %12.1f ms %12s"
                        % (
                            name,
                            result["calls/s"],
                            result["cpu_us"],
                            result["p99_ms"],
                            result["lag_ms"],
                            opened if scheme == "plain" else "-",
                        )
                    )
                ours, theirs = results["AsyncBotSessionClient"], results.get("aiohttp (limit=0)")
                proactor = results["  on the proactor's interface"]
                print(
                    "  proactor's interface / selector: throughput %.2fx, CPU per call %.2fx"
                    % (proactor["calls/s"] / ours["calls/s"], proactor["cpu_us"] / ours["cpu_us"])
                )
                if theirs:
                    target = "[>= 2.00x]" if concurrency >= 2000 else "[>= 1.00x]"
                    print(
                        "  ours / aiohttp: throughput %.2fx %s, CPU per call %.2fx [<= 0.60x], worst lag %.2fx"
                        % (
                            ours["calls/s"] / theirs["calls/s"],
                            target,
                            ours["cpu_us"] / theirs["cpu_us"],
                            ours["lag_ms"] / theirs["lag_ms"],
                        )
                    )
        finally:
            for process in (server, proxy[0] if proxy else None):
                if process is not None:
                    process.terminate()
                    process.wait()


# ---------------------------------------------------------------------------------------------------------
# Instructions per warm call (callgrind)
# ---------------------------------------------------------------------------------------------------------

INSTRUCTION_CLIENTS = {
    "KeepAliveTransport": keep_alive_transport,
    "http.client kept alive": raw_http_client,
}


def fake_transport_calls(kind: str) -> Callable[[], Any]:
    """A bare create() or SessionEndpoint.handle() of the same request, over a transport that answers at
    once: what the endpoint adds to the client, with no I/O in either."""
    answer = cbk.HTTPResponse(200, {"Content-Type": "application/json"}, SESSION)
    client = cbk.BotSessionClient(secret=SECRET, transport=lambda request: answer)
    if kind == "create()":
        return lambda: client.create("bot_123", REQUEST)
    endpoint = cbk.SessionEndpoint(client, "bot_123", allowed_origins=["https://shop.example"], duration=600)
    headers = {"Origin": "https://shop.example", "Content-Type": "application/json", "Content-Length": "20"}
    return lambda: endpoint.handle("POST", headers, b'{"message": "Hello"}')


def instructions_child(kind: str, base: str, calls: str, concurrency: str) -> None:
    """Under callgrind: warm up, then make *calls* creates (sync), or *calls* rounds of *concurrency* (async)."""
    if kind in ("create()", "handle()"):
        call = fake_transport_calls(kind)
        for _ in range(1 + int(calls)):
            call()
        return
    context = ssl.create_default_context(cafile=_pem_file("ca.pem", TEST_CA_PEM)) if base.startswith("https") else None
    if kind in INSTRUCTION_CLIENTS:
        call, close = INSTRUCTION_CLIENTS[kind](base, context)
        call()
        for _ in range(int(calls)):
            call()
        close()
        return
    maker = {"AsyncBotSessionClient": our_async_client, "aiohttp": aiohttp_client}[kind]

    async def run() -> None:
        async with maker(base, context, None) as create:
            for _ in range(1 + int(calls)):
                await asyncio.gather(*(create() for _ in range(int(concurrency))))

    asyncio.run(run())


def _count(kind: str, base: str, calls: int, concurrency: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--instructions-child",
        kind,
        base,
        str(calls),
        str(concurrency),
    ]
    report = subprocess.run(command, capture_output=True, text=True, check=True).stderr
    return int(report.split("Collected :")[1].split()[0])


def per_call_instructions(kind: str, base: str, calls: int, concurrency: int = 1) -> float:
    """Instructions of one warm create: the difference between 2N and N calls, over N."""
    return (_count(kind, base, 2 * calls, concurrency) - _count(kind, base, calls, concurrency)) / (calls * concurrency)


def instructions(calls: int) -> None:
    print("instructions per warm call (callgrind), %s, %d calls" % (sys.version.split()[0], calls))
    ours, bare = per_call_instructions("handle()", "", calls), per_call_instructions("create()", "", calls)
    print("  endpoint, fake transport: handle() %.0f / create() %.0f = %.2fx  [<= 1.50x]" % (ours, bare, ours / bare))
    for tls in (False, True):
        server, port = start_server(tls)
        try:
            base = "%s://%s:%d" % ("https" if tls else "http", "localhost" if tls else "127.0.0.1", port)
            ours = per_call_instructions("KeepAliveTransport", base, calls)
            theirs = per_call_instructions("http.client kept alive", base, calls)
            print(
                "  %-5s KeepAliveTransport %.0f / kept-alive http.client %.0f = %.2fx  [<= 1.00x]"
                % ("TLS" if tls else "plain", ours, theirs, ours / theirs)
            )
        finally:
            server.terminate()
            server.wait()
    if importable("aiohttp"):
        server, port = start_server(False, delay=0.05)
        try:
            base = "http://127.0.0.1:%d" % port
            rounds = max(calls // 100, 2)
            ours = per_call_instructions("AsyncBotSessionClient", base, rounds, 100)
            theirs = per_call_instructions("aiohttp", base, rounds, 100)
            print(
                "  async, 100 concurrent: AsyncBotSessionClient %.0f / aiohttp %.0f = %.2fx  [<= 0.60x]"
                % (ours, theirs, ours / theirs)
            )
        finally:
            server.terminate()
            server.wait()


# ---------------------------------------------------------------------------------------------------------

COMPILE_TIMES = """
import sys, time
text = open(sys.argv[1], encoding="utf-8").read()
client = text[: text.index("\\n# " + "=" * 105 + "\\n# 2. ")] + "\\n"
def best(source):
    times = []
    for _ in range(30):
        started = time.perf_counter()
        compile(source, "chatbotkit_session.py", "exec")
        times.append(time.perf_counter() - started)
    return min(times) * 1000
whole, alone = best(text), best(client)
print("%s: whole file %.1f ms, client band alone (%d lines) %.1f ms, %.0f%%"
      % (sys.version.split()[0], whole, client.count("\\n"), alone, 100 * alone / whole))
"""


def bands(pythons: List[str]) -> None:
    """The bands' sizes, and what compiling the client band alone costs against the whole file."""
    from support_chatbotkit_session import module_bands

    for band in module_bands():
        largest = max(band.sizes, key=band.sizes.__getitem__)
        print("%-80s %5d lines, largest unit %s (%d)" % (band.title[:80], band.lines, largest, band.sizes[largest]))
    for python in pythons:
        subprocess.run([python, "-c", COMPILE_TIMES, str(ROOT / "chatbotkit_session.py")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--cold-runs", type=int, default=21)
    parser.add_argument("--no-valgrind", action="store_true", help="skip the instruction counts of cold start")
    parser.add_argument("--cold-only", action="store_true", help="measure cold start only")
    parser.add_argument("--pythons", nargs="*", default=[sys.executable], help="interpreters to count cold start on")
    parser.add_argument("--async-scale", action="store_true", help="asyncio clients at scale (see above)")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[100, 500, 1000])
    parser.add_argument("--schemes", nargs="*", default=["plain", "tls"], choices=["plain", "tls", "proxied"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--instructions", action="store_true", help="instructions per warm call (callgrind)")
    parser.add_argument("--bands", action="store_true", help="band sizes, and compile time of the client band")
    parser.add_argument("--serve", choices=["plain", "tls"], help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--proxy-to", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--instructions-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve == "tls", args.delay)
    if args.proxy_to:
        return proxy_to(args.proxy_to)
    if args.instructions_child:
        return instructions_child(*args.instructions_child)
    more_files()
    if args.bands:
        return bands(args.pythons)
    if args.async_scale:
        return async_scale(args.concurrency, args.rounds, args.schemes)
    if args.instructions:
        return instructions(args.calls)

    print(
        "CPython %s, %s; %d calls x %d runs (median), cold start %d runs"
        % (sys.version.split()[0], ssl.OPENSSL_VERSION, args.calls, args.runs, args.cold_runs)
    )
    if args.cold_only:
        return cold_report(args)
    clients: List[Tuple[str, Maker]] = [
        ("hand-written urllib (floor for default)", hand_written_urllib),
        ("default UrllibTransport", default_transport),
        ("http.client kept alive (floor for pool)", raw_http_client),
        ("KeepAliveTransport", keep_alive_transport),
    ]
    if importable("requests"):
        clients.append(("requests.Session", requests_session))
    else:
        print("requests: not importable, skipped")
    if importable("httpx"):
        clients.append(("httpx.Client", httpx_client))
    else:
        print("httpx: not importable, skipped")

    results: Dict[Tuple[str, str], float] = {}
    for tls in (False, True):
        scheme = "https" if tls else "http"
        server, port = start_server(tls)
        try:
            base = "%s://%s:%d" % (scheme, "localhost" if tls else "127.0.0.1", port)
            context = ssl.create_default_context(cafile=_pem_file("ca.pem", TEST_CA_PEM)) if tls else None
            print("\n%s (%s)" % (scheme.upper() if tls else "plain HTTP", base))
            for name, seconds in per_call(clients, base, context, args.calls, args.runs).items():
                results[scheme, name] = seconds
                print("  %-42s %8.1f us/call" % (name, seconds * 1e6))
        finally:
            server.terminate()
            server.wait()

    print("\nratios (lower is better; target in brackets)")
    for scheme in ("http", "https"):
        default = (
            results[scheme, "default UrllibTransport"] / results[scheme, "hand-written urllib (floor for default)"]
        )
        pooled = results[scheme, "KeepAliveTransport"] / results[scheme, "http.client kept alive (floor for pool)"]
        print("  %-5s default / hand-written urllib      %.2fx  [<= 1.15x]" % (scheme, default))
        print("  %-5s KeepAliveTransport / http.client   %.2fx  [<= 1.30x over https]" % (scheme, pooled))
        if (scheme, "httpx.Client") in results:
            print(
                "  %-5s KeepAliveTransport / httpx.Client  %.2fx  [< 1.00x]"
                % (scheme, results[scheme, "KeepAliveTransport"] / results[scheme, "httpx.Client"])
            )
        if (scheme, "requests.Session") in results:
            print(
                "  %-5s KeepAliveTransport / requests      %.2fx"
                % (scheme, results[scheme, "KeepAliveTransport"] / results[scheme, "requests.Session"])
            )

    cold_report(args)


def cold_report(args: Any) -> None:
    server, port = start_server(False)
    try:
        base = "http://127.0.0.1:%d" % port
        print("\ncold start: start the interpreter, import, one create (median of %d)" % args.cold_runs)
        scripts = {"urllib": COLD_URLLIB, "library": COLD_LIBRARY, "dataclasses": COLD_DATACLASSES}
        for flags in ([], ["-I", "-S"]):
            cold = cold_start(scripts, base, args.cold_runs, flags)
            for name in ("library", "dataclasses"):
                (wall, cpu), (urllib_wall, urllib_cpu) = cold[name], cold["urllib"]
                print(
                    "  python %-6s %-11s CPU %6.1f ms = %.2fx   wall %6.1f ms = %.2fx   of hand-written urllib"
                    % (" ".join(flags), name, cpu * 1e3, cpu / urllib_cpu, wall * 1e3, wall / urllib_wall)
                )
        if shutil.which("valgrind") and not args.no_valgrind:
            print("cold start in instructions (callgrind, repeatable), python -I -S, bytecode cached  [<= 1.40x]")
            source_only = Path(tempfile.mkdtemp(prefix="cbk-bench-source-"))
            shutil.copy(str(ROOT / "chatbotkit_session.py"), str(source_only))
            for python in args.pythons:
                version = subprocess.run(
                    [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True
                ).stdout.strip()
                counts = cold_instructions(scripts, base, ["-I", "-S"], python)
                from_source = cold_instructions(
                    {"library": COLD_LIBRARY}, base, ["-I", "-S", "-B"], python, source_only
                )["library"]
                print(
                    "  CPython %-5s library %.1fM = %.3fx, dataclasses import alone %.1fM = %.3fx of urllib %.1fM;"
                    " module compiled from source (no bytecode cache) %.1fM = %.3fx"
                    % (
                        version,
                        counts["library"] / 1e6,
                        counts["library"] / counts["urllib"],
                        counts["dataclasses"] / 1e6,
                        counts["dataclasses"] / counts["urllib"],
                        counts["urllib"] / 1e6,
                        from_source / 1e6,
                        from_source / counts["urllib"],
                    )
                )
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
