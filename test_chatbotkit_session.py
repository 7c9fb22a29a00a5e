# SPDX-License-Identifier: MIT
"""Tests for chatbotkit_session: plain unittest, real loopback servers, no third-party packages.

Run with ``python -m unittest``. Grouped as the module is, in its five bands (the client, kept-alive
connections, asyncio, the web endpoint, the command line), and by behaviour within each; the core is driven by
a fake clock (TestCore). Fixtures live in support_chatbotkit_session.py. Tests that only wait (on servers,
deadlines or child processes of their own) are marked @waits or @keeps_time and run side by side (load_tests).
Tests that need a peer from outside the standard library (Prism, Node, the Lambda runtime client, the
frameworks, the servers, Chromium, h11) are in test_peers.py, which skips them without it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import email.utils
import gc
import http
import http.server
import io
import json
import os
import pickle
import re
import shutil
import socket
import ssl
import sys
import tempfile
import threading
import time
import unittest
import unittest.mock
import urllib.error
import urllib.request
import warnings
from types import MappingProxyType
from typing import Any, Callable, Dict, List, Optional, Tuple

import chatbotkit_session as cbk
from support_chatbotkit_session import (
    EVERY_DOOR,
    FAKE_CONTEXT,
    JSON_POST,
    LAMBDA_HANDLER,
    LOOP_KINDS,
    MODULE_FILE,
    OPENAPI_FILE,
    SECRET,
    SESSION,
    SHOP,
    TEMPLATE_KEY,
    TEST_CA_PEM,
    TEST_LOOP,
    FakeClock,
    FakeTransport,
    IdleClosingServer,
    LoopbackProxy,
    LoopbackServer,
    NoRead,
    RawServer,
    Recorded,
    _raise_api_error,
    _stdin,
    answer_json,
    async_endpoint_for,
    asyncio_wait,
    call_asgi,
    call_lambda,
    call_wsgi,
    cert_file,
    clean_env,
    client_tls_context,
    clients_on_every_loop,
    early_hints,
    echo_app,
    endpoint_for,
    endpoint_for_door,
    every_client,
    fork_child,
    free_threaded,
    function_url_event,
    hang_up,
    heartbeat,
    held_answer,
    json_reply,
    json_response,
    keeps_time,
    load_openapi,
    make_client,
    module_available,
    module_bands,
    never_called,
    pooled_transports,
    proactor_interface_loop,
    proxy_environment,
    raw,
    raw_exchange,
    reachable_texts,
    reply,
    rest_api_event,
    run_async,
    run_cli,
    run_concurrently,
    run_exchange,
    run_lambda,
    run_on,
    run_python,
    run_threads,
    secret_forms,
    server_tls_context,
    session_app,
    session_of,
    slow_app,
    start_dev_server,
    tests_at_once,
    timed_call,
    token_answer,
    unused_port,
    waits,
)


def load_tests(loader: unittest.TestLoader, tests: unittest.TestSuite, pattern: Optional[str]) -> unittest.TestSuite:
    """The suite with its waiting tests run side by side (``@waits`` six at a time, then ``@keeps_time``), the
    others in turn: the same tests and assertions in under a third of the wall time."""
    return tests_at_once(tests)


# =========================================================================================================
# 1. The client
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# The module's shape: exports, types, imports, the map, the one file
# ---------------------------------------------------------------------------------------------------------


class TestModuleShape(unittest.TestCase):
    def test_version_and_licence_are_in_the_file_header(self) -> None:
        self.assertRegex(cbk.__version__, r"^\d+\.\d+\.\d+$")
        head = MODULE_FILE.read_text(encoding="utf-8")[:1200]
        self.assertIn("SPDX-License-Identifier: MIT", head)
        self.assertIn("Home:", head)

    def test_five_bands_each_using_only_those_above_and_the_docstring_maps_them(self) -> None:
        bands = module_bands()
        self.assertEqual(
            [band.title.split(":")[0] for band in bands],
            ["1. The client", "2. Kept-alive connections", "3. asyncio", "4. The web endpoint", "5. The command line"],
        )
        defined = {name: band.number for band in bands for name in band.names}
        for band in bands:
            for unit, used in band.uses.items():
                below = sorted(name for name in used if defined.get(name, 0) > band.number)
                self.assertEqual(below, [], "%s (band %d) uses names of a band below it" % (unit, band.number))
            for unit, lines in band.sizes.items():
                self.assertLessEqual(lines, 200, unit)
        doc, position = " ".join((cbk.__doc__ or "").split()), 0
        for section in [section for band in bands for section in band.sections]:
            position = doc.find(section, position)  # the map lists every section, in the file's order
            self.assertGreaterEqual(position, 0, section)
        exported = [name for name in cbk.__all__]
        self.assertEqual(exported, sorted(exported, key=lambda name: defined[name]))  # __all__ grouped by band
        for runs in ("_log_from_environment(", "os.register_at_fork(", "_HANDLER"):
            self.assertIn(runs, doc)  # what runs at import

    def test_public_names_are_exported_and_typed_dicts_exist(self) -> None:
        for name in cbk.__all__:
            self.assertTrue(hasattr(cbk, name), name)
        self.assertEqual(set(cbk.BotSessionMessage.__annotations__), {"type", "text"})
        self.assertFalse(cbk.BotSessionCreateRequest.__total__)
        self.assertEqual(set(cbk.BotSessionCreateRequest.__annotations__), {"durationInSeconds", "messages", "meta"})
        if sys.version_info >= (3, 9):  # __required_keys__ arrived in 3.9
            self.assertEqual(
                cbk.BotSessionCreateResponse.__required_keys__,
                frozenset({"id", "conversationId", "token", "expiresAt"}),
            )
            self.assertEqual(cbk.BotSessionCreateResponse.__optional_keys__, frozenset({"messages"}))

    def test_start_up_imports_nothing_the_hot_path_does_not_need(self) -> None:
        code = (
            "import sys; sys.path.insert(0, '.')\n"
            "import dataclasses, json, typing, urllib.request  # what a hand-written client, a dataclass and\n"
            "before = set(sys.modules)                         # run-time type hints cost anyway\n"
            "import chatbotkit_session\n"
            "print(sorted(set(sys.modules) - before - {'chatbotkit_session', '__future__'}))"
        )
        out = run_python("-I", "-S", "-c", code, env=clean_env(), check=True)
        self.assertEqual(out.stdout.strip(), "[]")

    def test_typed_dicts_are_declared_once(self) -> None:
        import ast

        tree = ast.parse(MODULE_FILE.read_text(encoding="utf-8"))
        names = [node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]
        for name in ("BotSessionMessage", "BotSessionCreateRequest", "BotSessionCreateResponse"):
            self.assertEqual(names.count(name), 1, name)

    def test_run_time_type_hints_resolve(self) -> None:
        import inspect
        import typing

        for name in ("BotSessionMessage", "BotSessionCreateRequest", "BotSessionCreateResponse"):
            hints = typing.get_type_hints(getattr(cbk, name))
            self.assertTrue(hints, name)
        self.assertEqual(
            typing.get_type_hints(cbk.BotSessionCreateResponse)["messages"], typing.List[cbk.BotSessionMessage]
        )
        if sys.version_info < (3, 9):
            self.skipTest("the README promises run-time hints of functions and methods from Python 3.9")
        checked = 0
        for name in cbk.__all__:
            target = getattr(cbk, name)
            members = [target]
            if inspect.isclass(target):
                members += [
                    member
                    for key, member in vars(target).items()
                    if callable(member) and (not key.startswith("_") or key == "__init__")
                ]
                members += [
                    getattr(target, key) for key in ("__init__", "extend", "create", "from_env") if hasattr(target, key)
                ]
            for member in members:
                with self.subTest(name=name, member=getattr(member, "__qualname__", member)):
                    typing.get_type_hints(member)
                    checked += 1
        self.assertGreater(checked, 40)
        self.assertIs(typing.get_type_hints(cbk.BotSessionClient.create)["return"], cbk.BotSessionCreateResponse)

    def test_pydantic_validates_a_session(self) -> None:
        if sys.version_info < (3, 12):
            self.skipTest("pydantic accepts typing.TypedDict only from Python 3.12")
        if not module_available("pydantic"):
            self.skipTest("pydantic is not installed (CI runs this in a venv that has it)")
        import pydantic

        adapter = pydantic.TypeAdapter(cbk.BotSessionCreateResponse)
        self.assertEqual(adapter.validate_python(dict(SESSION)), SESSION)
        with_messages = dict(SESSION, messages=[{"type": "bot", "text": "Hi"}])
        self.assertEqual(adapter.validate_json(json.dumps(with_messages)), with_messages)
        with self.assertRaises(pydantic.ValidationError):
            adapter.validate_python({"id": "s", "conversationId": "c", "expiresAt": 1})  # no token

    def test_error_hierarchy(self) -> None:
        self.assertTrue(issubclass(cbk.APIError, cbk.ChatBotKitError))
        self.assertTrue(issubclass(cbk.APITimeoutError, cbk.APIConnectionError))
        self.assertTrue(issubclass(cbk.APIConnectionError, cbk.ChatBotKitError))


class TestVendoring(unittest.TestCase):
    @waits
    def test_the_file_copied_alone_imports_and_works_isolated(self) -> None:
        with tempfile.TemporaryDirectory() as folder, LoopbackServer() as server:
            shutil.copy(str(MODULE_FILE), folder)
            code = (
                "import sys; sys.path.insert(0, '.'); import chatbotkit_session as c\n"
                "print(c.__version__, c.BotSessionClient(secret='s', base_url=%r).create('b')['id'])" % server.url
            )
            out = run_python("-I", "-S", "-c", code, cwd=folder)
        self.assertEqual(out.stdout.split(), [cbk.__version__, "ses_1"], out.stderr)

    @waits
    def test_the_client_band_cut_from_the_file_is_a_whole_client(self) -> None:
        # A reader who needs only BotSessionClient may stop at the end of band 1: it runs on its own.
        text = MODULE_FILE.read_text(encoding="utf-8")
        client_band = text[: text.index("\n# " + "=" * 105 + "\n# 2. ")] + "\n"
        with tempfile.TemporaryDirectory() as folder, LoopbackServer() as server:
            with open(os.path.join(folder, "chatbotkit_session.py"), "w", encoding="utf-8") as handle:
                handle.write(client_band)
            code = (
                "import sys; sys.path.insert(0, '.'); import chatbotkit_session as c\n"
                "print(hasattr(c, 'KeepAliveTransport'), c.create_bot_session(c.BotSessionClient(secret='s',"
                " base_url=%r), 'b')['id'])" % server.url
            )
            out = run_python("-I", "-S", "-W", "error", "-c", code, cwd=folder)
        self.assertEqual(out.stdout.split(), ["False", "ses_1"], out.stderr)


# ---------------------------------------------------------------------------------------------------------
# Options, and bad input before any I/O
# ---------------------------------------------------------------------------------------------------------


class TestOptions(unittest.TestCase):
    @waits
    def test_clients_without_a_secret_read_the_environment_and_fail_without_one(self) -> None:
        code = (
            "import sys; sys.path.insert(0, '.'); import chatbotkit_session as c\n"
            "for make in (c.BotSessionClient, c.AsyncBotSessionClient):\n"
            "    try:\n"
            "        client = make(timeout=5)\n"
            "    except ValueError as error:\n"
            "        print('ValueError', error)\n"
            "    else:\n"
            "        o = client.options\n"
            "        print(o.secret == %r, o.base_url, o.run_as_user_id, o.timeout)\n"
            "print(c.BotSessionClient(secret='').options.secret == '')\n" % SECRET
        )
        env = dict(
            CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL="https://eu.example", CHATBOTKIT_API_RUNAS_USERID="u1"
        )
        outputs = []
        for environ in (env, {}):
            out = run_python("-c", code, env=clean_env(**environ))
            self.assertEqual(out.returncode, 0, out.stderr)
            outputs.append(out.stdout.splitlines())
        self.assertEqual(outputs[0], ["True https://eu.example u1 5"] * 2 + ["True"])
        missing = "ValueError CHATBOTKIT_API_SECRET is not set: export it, or pass secret="
        self.assertEqual(outputs[1], [missing] * 2 + ["True"])

    def test_every_url_option_error_names_its_option_and_variable(self) -> None:
        cases = [
            ({"base_url": "https://[::1"}, "base_url"),
            ({"host": "[::1"}, "host"),
            ({"endpoints": {TEMPLATE_KEY: "https://[::1/x"}}, "endpoints[%r]" % TEMPLATE_KEY),
        ]
        for options, name in cases:
            with self.subTest(name=name), self.assertRaises(ValueError) as caught:
                cbk.ClientOptions(secret=SECRET, **options)
            self.assertTrue(str(caught.exception).startswith(name + " "), caught.exception)
            self.assertIn("Invalid IPv6 URL", str(caught.exception))
        variables = [
            ({"CHATBOTKIT_API_BASE_URL": "https://[::1"}, "CHATBOTKIT_API_BASE_URL: base_url "),
            ({"CHATBOTKIT_API_BASE_URL": "http://example.com"}, "CHATBOTKIT_API_BASE_URL: base_url: refusing"),
            ({"CHATBOTKIT_API_RUNAS_USERID": "a\nb"}, "CHATBOTKIT_API_RUNAS_USERID: run_as_user_id "),
            ({"CHATBOTKIT_API_SECRET": SECRET + " x"}, "CHATBOTKIT_API_SECRET: secret "),
        ]
        for environ, start in variables:
            with self.subTest(environ=environ), self.assertRaises(ValueError) as caught:
                cbk.ClientOptions.from_env({"CHATBOTKIT_API_SECRET": SECRET, **environ})
            self.assertTrue(str(caught.exception).startswith(start), caught.exception)
            self.assertNotIn(SECRET, str(caught.exception))
        with self.assertRaises(ValueError) as caught:  # given as a keyword, it is not the variable's fault
            cbk.ClientOptions.from_env({"CHATBOTKIT_API_SECRET": SECRET}, base_url="https://[::1")
        self.assertTrue(str(caught.exception).startswith("base_url "), caught.exception)

    def test_defaults(self) -> None:
        options = cbk.ClientOptions()
        self.assertEqual(
            (options.secret, options.base_url, options.timeout, options.retries),
            ("", "https://api.chatbotkit.com", 30.0, 3),
        )
        self.assertEqual(
            (options.retry_delay, options.retry_timeout, options.max_response_bytes), (0.25, True, 1024 * 1024)
        )
        self.assertFalse(options.allow_insecure_http)

    def test_bad_options_raise_naming_the_field(self) -> None:
        cases: List[Tuple[Dict[str, Any], type, str]] = [
            ({"timeout": 0}, ValueError, "timeout"),
            ({"timeout": -1}, ValueError, "timeout"),
            ({"timeout": float("nan")}, ValueError, "timeout"),
            ({"timeout": "5"}, TypeError, "timeout"),
            ({"retries": -1}, ValueError, "retries"),
            ({"retries": 1.5}, TypeError, "retries"),
            ({"retries": True}, TypeError, "retries"),
            ({"retry_delay": -0.1}, ValueError, "retry_delay"),
            ({"base_url": "ftp://example.com"}, ValueError, "base_url"),
            ({"base_url": "https://"}, ValueError, "base_url"),
            ({"base_url": "example.com"}, ValueError, "base_url"),
            ({"base_url": "https://example.com:99999"}, ValueError, "base_url"),
            ({"base_url": "https://user:pw@example.com"}, ValueError, "base_url"),
            ({"base_url": 5}, TypeError, "base_url"),
            ({"host": "exa mple.com/x"}, ValueError, "host"),
            ({"host": "example.com:http"}, ValueError, "host"),
            ({"protocol": "ftp"}, ValueError, "protocol"),
            ({"endpoints": {TEMPLATE_KEY: "localhost:80/path"}}, ValueError, "endpoints"),
            ({"endpoints": {TEMPLATE_KEY: "https://b\u00fccher.example/x"}}, ValueError, "endpoints"),
            ({"endpoints": {TEMPLATE_KEY: "//host/path"}}, ValueError, "endpoints"),
            ({"endpoints": {TEMPLATE_KEY: 5}}, TypeError, "endpoints"),
            ({"endpoints": ["x"]}, TypeError, "endpoints"),
            ({"headers": {"Bad Name": "x"}}, ValueError, "headers"),
            ({"headers": {"X-Ok": "a\r\nInjected: 1"}}, ValueError, "headers"),
            ({"headers": {"Content-Length": "1"}}, ValueError, "headers"),
            ({"run_as_user_id": "a\nb"}, ValueError, "run_as_user_id"),
            ({"timezone": 3}, TypeError, "timezone"),
            ({"retry_timeout": "yes"}, TypeError, "retry_timeout"),
            ({"transport": "not callable"}, TypeError, "transport"),
            ({"ssl_context": object()}, TypeError, "ssl_context"),
            ({"max_response_bytes": 0}, ValueError, "max_response_bytes"),
            ({"secret": 123}, TypeError, "secret"),
            ({"secret": "has space"}, ValueError, "secret"),
            ({"secret": "sk-pasted\u200b"}, ValueError, "secret"),
            ({"timeout": 1e10}, ValueError, "timeout"),
            ({"total_timeout": 0}, ValueError, "total_timeout"),
            ({"total_timeout": float("inf")}, ValueError, "total_timeout"),
            ({"total_timeout": "5"}, TypeError, "total_timeout"),
            ({"retry_delay": 1e300}, ValueError, "retry_delay"),
            ({"retries": 10**6}, ValueError, "retries"),
            ({"timezone": "Asia/\u6771\u4eac"}, ValueError, "timezone"),
            ({"run_as_child_user_email": "\u0431\u043e\u0431@example.com"}, ValueError, "run_as_child_user_email"),
            ({"run_as_user_id": "tab\there"}, ValueError, "run_as_user_id"),
            ({"headers": {"X-Name": "\u2603"}}, ValueError, "headers"),
            ({"headers": {"X-Line": "a\u2028b"}}, ValueError, "headers"),
        ]
        for kwargs, error, field in cases:
            with self.subTest(kwargs=kwargs):
                with self.assertRaises(error) as caught:
                    cbk.ClientOptions(**kwargs)
                self.assertIn(field, str(caught.exception))

    def test_valid_edge_options_are_accepted(self) -> None:
        edge = cbk.ClientOptions(timeout=None, retries=0, retry_delay=0, host="[::1]:8080", protocol="https:")
        self.assertEqual(
            (edge.base_url, edge.timeout, edge.retries, edge.retry_delay), ("https://[::1]:8080", None, 0, 0)
        )
        loopback = cbk.ClientOptions(endpoints={TEMPLATE_KEY: "http://127.0.0.1:1/x"}, secret="s")
        self.assertEqual(dict(loopback.endpoints), {TEMPLATE_KEY: "http://127.0.0.1:1/x"})  # plain http, loopback

    def test_every_typed_keyword_list_is_the_option_fields(self) -> None:
        import inspect

        wanted = [option.name for option in dataclasses.fields(cbk.ClientOptions)]
        for function in (
            cbk.ClientOptions.extend,
            cbk.ClientOptions.from_env,
            cbk._BaseClient.__init__,
            cbk._BaseClient.extend,
        ):
            with self.subTest(function=function.__qualname__):
                keywords = [
                    name
                    for name, parameter in inspect.signature(function).parameters.items()
                    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
                ]
                self.assertEqual(keywords, wanted)  # same names, same order: none dropped, none invented

    def test_options_are_deeply_read_only(self) -> None:
        headers = {"X-A": "1"}
        options = cbk.ClientOptions(headers=headers, endpoints={"/a": "/b"})
        headers["X-A"] = "changed"
        self.assertEqual(options.headers["x-a"], "1")
        with self.assertRaises(dataclasses.FrozenInstanceError):
            options.secret = "x"  # type: ignore[misc]
        with self.assertRaises(TypeError):
            options.headers["X-B"] = "2"  # type: ignore[index]
        with self.assertRaises(TypeError):
            options.endpoints["/c"] = "/d"  # type: ignore[index]

    def test_extend_merges_headers_and_endpoints_and_replaces_the_rest(self) -> None:
        base = cbk.ClientOptions(secret="a", headers={"X-One": "1", "X-Two": "2"}, endpoints={"/a": "/b"}, timeout=10)
        extended = base.extend(
            headers={"x-two": "22", "X-Three": "3"}, endpoints={"/c": "/d"}, timeout=None, secret="b"
        )
        self.assertEqual(dict(extended.headers), {"X-One": "1", "x-two": "22", "X-Three": "3"})
        self.assertEqual(dict(extended.endpoints), {"/a": "/b", "/c": "/d"})
        self.assertEqual((extended.timeout, extended.secret), (None, "b"))
        self.assertEqual((dict(base.headers), base.timeout, base.secret), ({"X-One": "1", "X-Two": "2"}, 10, "a"))

    def test_extend_rejects_unknown_names_and_validates(self) -> None:
        with self.assertRaisesRegex(TypeError, "bogus"):
            cbk.ClientOptions().extend(bogus=1)
        with self.assertRaisesRegex(ValueError, "retries"):
            cbk.ClientOptions().extend(retries=-2)

    def test_client_extend_returns_a_new_instance_of_the_same_class(self) -> None:
        class MyClient(cbk.BotSessionClient):
            __slots__ = ()

        transport = FakeTransport()
        client = MyClient(secret="a", transport=transport, headers={"X-A": "1"})
        child = client.extend(headers={"X-B": "2"}, run_as_user_id="u")
        self.assertIsInstance(child, MyClient)
        self.assertIsNot(child, client)
        self.assertEqual(dict(child.options.headers), {"X-A": "1", "X-B": "2"})
        self.assertIsNone(client.options.run_as_user_id)
        child.create("b")
        self.assertEqual(transport.requests[0].headers["x-runas-user-id"], "u")
        self.assertEqual(transport.requests[0].headers["x-a"], "1")

    def test_client_accepts_options_plus_keywords(self) -> None:
        options = cbk.ClientOptions(secret="a", timeout=3)
        client = cbk.BotSessionClient(options, timeout=4)
        self.assertEqual((client.options.secret, client.options.timeout), ("a", 4))
        with self.assertRaises(TypeError):
            cbk.BotSessionClient("not options")  # type: ignore[arg-type]

    def test_client_is_immutable(self) -> None:
        client = cbk.BotSessionClient(secret="a")
        with self.assertRaises(AttributeError):
            client.options = cbk.ClientOptions()  # type: ignore[misc]
        with self.assertRaises(AttributeError):
            client.anything = 1  # type: ignore[attr-defined]

    def test_from_env_reads_the_variables(self) -> None:
        env = {
            "CHATBOTKIT_API_SECRET": "s1",
            "CHATBOTKIT_API_RUNAS_USERID": "u1",
            "CHATBOTKIT_API_BASE_URL": "https://eu.example.com",
        }
        options = cbk.ClientOptions.from_env(env, timeout=5)
        self.assertEqual(
            (options.secret, options.run_as_user_id, options.base_url, options.timeout),
            ("s1", "u1", "https://eu.example.com", 5),
        )
        self.assertEqual(cbk.ClientOptions.from_env(env, secret="s2").secret, "s2")

    def test_from_env_requires_the_secret_unless_passed(self) -> None:
        with self.assertRaisesRegex(ValueError, "CHATBOTKIT_API_SECRET"):
            cbk.ClientOptions.from_env({})
        with self.assertRaisesRegex(ValueError, "CHATBOTKIT_API_SECRET"):
            cbk.ClientOptions.from_env({"CHATBOTKIT_API_SECRET": ""})
        self.assertEqual(cbk.ClientOptions.from_env({}, secret="").secret, "")


class TestInputValidation(unittest.TestCase):
    """Bad input fails before any I/O with a ValueError or TypeError naming the field."""

    client = cbk.BotSessionClient(secret=SECRET, transport=never_called)

    def test_bad_bot_ids(self) -> None:
        for bot_id, error in [
            (None, TypeError),
            (42, TypeError),
            ("", ValueError),
            ("   ", ValueError),
            (".", ValueError),
            ("..", ValueError),
            ("a\nb", ValueError),
            ("a\x00", ValueError),
            ("a\x7f", ValueError),
        ]:
            with self.subTest(bot_id=bot_id), self.assertRaisesRegex(error, "bot_id"):
                self.client.create(bot_id)  # type: ignore[arg-type]

    def test_bad_requests_name_the_field(self) -> None:
        cases: List[Tuple[Any, type, str]] = [
            ([("messages", [])], TypeError, "request must be a mapping"),
            ("text", TypeError, "request must be a mapping"),
            ({"durationInSeconds": "60"}, TypeError, "durationInSeconds"),
            ({"durationInSeconds": True}, TypeError, "durationInSeconds"),
            ({"durationInSeconds": None}, TypeError, "durationInSeconds"),
            ({"durationInSeconds": float("nan")}, ValueError, "durationInSeconds"),
            ({"durationInSeconds": float("inf")}, ValueError, "durationInSeconds"),
            ({"messages": {"type": "user"}}, TypeError, "messages"),
            ({"messages": "hello"}, TypeError, "messages"),
            ({"messages": ["hello"]}, TypeError, r"messages\[0\]"),
            ({"messages": [{"type": "user"}]}, TypeError, r"messages\[0\]\.text"),
            ({"messages": [{"text": "x"}]}, TypeError, r"messages\[0\]\.type"),
            ({"messages": [{"type": "user", "text": 5}]}, TypeError, r"messages\[0\]\.text"),
            ({"messages": [{"type": None, "text": "x"}]}, TypeError, r"messages\[0\]\.type"),
            ({"meta": []}, TypeError, "meta"),
            ({"meta": "x"}, TypeError, "meta"),
            ({"meta": {"when": object()}}, TypeError, r"request\.meta\.when"),
            ({"meta": {"x": {(1, 2): "a"}}}, TypeError, r"request\.meta\.x has a key of type tuple"),
            ({"meta": {"x": [1, {2}]}}, TypeError, r"request\.meta\.x\[1\]"),
            ({"meta": {"x": float("nan")}}, ValueError, r"request\.meta\.x"),
            ({"other": b"bytes"}, TypeError, r"request\.other"),
        ]
        for request, error, pattern in cases:
            with self.subTest(request=request), self.assertRaisesRegex(error, pattern):
                self.client.create("bot", request)

    def test_self_containing_requests_are_refused(self) -> None:
        meta: Dict[str, Any] = {"a": 1}
        meta["self"] = meta
        with self.assertRaisesRegex(ValueError, r"request\.meta\.self contains itself"):
            self.client.create("bot", {"meta": meta})

    def test_keys_follow_the_json_module(self) -> None:
        transport = FakeTransport()
        cbk.BotSessionClient(secret=SECRET, transport=transport).create(
            "bot", {"meta": {1: "one", None: "none", "s": "s"}}
        )
        self.assertEqual(json.loads(transport.requests[0].body), {"meta": {"1": "one", "null": "none", "s": "s"}})

    def test_secret_over_plain_http_is_refused_except_on_loopback(self) -> None:
        with self.assertRaisesRegex(ValueError, "plain http"):
            cbk.BotSessionClient(secret="s", base_url="http://example.com")
        with self.assertRaisesRegex(ValueError, "plain http"):
            cbk.BotSessionClient(secret="s", protocol="http")
        with self.assertRaisesRegex(ValueError, "endpoints"):
            cbk.BotSessionClient(secret="s", endpoints={TEMPLATE_KEY: "http://example.com/x"})
        with self.assertRaisesRegex(ValueError, "plain http"):
            cbk.BotSessionClient(secret="s").extend(base_url="http://10.1.2.3")
        for url in ("http://localhost:1", "http://api.localhost", "http://127.0.0.2:8", "http://[::1]:80"):
            with self.subTest(url=url):
                cbk.BotSessionClient(secret="s", base_url=url)
        cbk.BotSessionClient(secret="s", base_url="http://example.com", allow_insecure_http=True)
        cbk.BotSessionClient(secret="", base_url="http://example.com")  # no secret, nothing to leak

    @waits
    def test_unsendable_options_fail_when_built_so_a_dry_run_catches_them(self) -> None:
        pasted = clean_env(CHATBOTKIT_API_SECRET="sk-pasted\u200b")
        runs = [([], pasted), (["--timeout", "1e10"], None), (["--total-timeout", "nan"], None)]
        runs.append((["--base-url", "https://b\u00fccher.de"], None))
        outs = run_concurrently(lambda run: run_python(str(MODULE_FILE), "bot", "--dry-run", *run[0], env=run[1]), runs)
        out = outs[0]
        self.assertEqual(out.returncode, 2)
        self.assertIn("secret", out.stderr)
        self.assertNotIn("Traceback", out.stderr)
        for (argv, _), out in zip(runs[1:], outs[1:]):
            with self.subTest(argv=argv):
                self.assertEqual(out.returncode, 2, out.stderr)
                errors = [line for line in out.stderr.splitlines() if "error:" in line]
                self.assertEqual(len(errors), 1, out.stderr)  # the usage, then one error line
                self.assertTrue(out.stderr.endswith(errors[0] + "\n"), out.stderr)
                self.assertNotIn("Traceback", out.stderr)

    def test_endpoint_paths_with_spaces_or_non_ascii_are_sent_percent_encoded(self) -> None:
        transport = FakeTransport()
        cbk.BotSessionClient(
            secret="",
            transport=transport,
            endpoints={TEMPLATE_KEY: "/my api/\u00e9t\u00e9/{botId}"},
            base_url="http://h",
        ).create("b 1")
        self.assertEqual(transport.requests[0].url, "http://h/my%20api/%C3%A9t%C3%A9/b%201")

    def test_requests_that_json_cannot_carry_name_the_field(self) -> None:
        deep: Dict[str, Any] = {}
        inner = deep
        for _ in range(5000):
            inner["a"] = {}
            inner = inner["a"]
        cases = [
            ({"meta": deep}, "request.meta"),
            ({"meta": {float("inf"): 1}}, "request.meta key is inf"),
            ({"meta": {"n": 10**5000}}, "request.meta.n"),
            ({"meta": {10**5000: 1}}, "request.meta key"),
        ]
        for request, field in cases:
            with self.subTest(field=field):
                with self.assertRaises(ValueError) as caught:
                    cbk.BotSessionClient(secret=SECRET, transport=never_called).create("bot", request)
                self.assertIn(field, str(caught.exception))


# ---------------------------------------------------------------------------------------------------------
# What is sent: URL, path, body, headers; the published contract (../shared), read without a peer
# ---------------------------------------------------------------------------------------------------------


class TestWireFormat(unittest.TestCase):
    def sent(self, bot_id: str = "bot1", request: Any = None, **options: Any) -> cbk.HTTPRequest:
        transport = FakeTransport()
        cbk.BotSessionClient(secret=SECRET, transport=transport, **options).create(bot_id, request)
        self.assertEqual(len(transport.requests), 1)
        return transport.requests[0]

    def test_official_host_drops_the_api_prefix(self) -> None:
        self.assertEqual(self.sent().url, "https://api.chatbotkit.com/v1/bot/bot1/session/create")

    def test_other_hosts_keep_the_api_prefix_and_base_path_is_replaced(self) -> None:
        sent = self.sent(base_url="https://proxy.example.com/some/path")
        self.assertEqual(sent.url, "https://proxy.example.com/api/v1/bot/bot1/session/create")

    def test_bot_id_is_escaped_as_one_path_segment(self) -> None:
        sent = self.sent("a/b c?d#e%é")
        self.assertEqual(sent.url, "https://api.chatbotkit.com/v1/bot/a%2Fb%20c%3Fd%23e%25%C3%A9/session/create")

    def test_host_and_protocol_override_the_base_url(self) -> None:
        sent = self.sent(base_url="https://example.com", host="localhost:8443", protocol="http")
        self.assertEqual(sent.url, "http://localhost:8443/api/v1/bot/bot1/session/create")
        self.assertEqual(
            self.sent(host="api.chatbotkit.com").url, "https://api.chatbotkit.com/v1/bot/bot1/session/create"
        )

    def test_endpoints_accept_the_template_key_and_fill_in_the_bot_id(self) -> None:
        sent = self.sent("a/b", endpoints={TEMPLATE_KEY: "/bot/{botId}/session/create"})
        self.assertEqual(sent.url, "https://api.chatbotkit.com/bot/a%2Fb/session/create")

    def test_endpoints_accept_the_concrete_path_and_absolute_urls(self) -> None:
        sent = self.sent("x", endpoints={"/api/v1/bot/x/session/create": "/custom"})
        self.assertEqual(sent.url, "https://api.chatbotkit.com/custom")
        sent = self.sent("x", endpoints={TEMPLATE_KEY: "https://other.example.com/v2/{botId}"})
        self.assertEqual(sent.url, "https://other.example.com/v2/x")

    def test_node_alignments_host_protocol_fold_into_the_base_url(self) -> None:
        options = cbk.ClientOptions(base_url="https://api.chatbotkit.com:8443", host="api.chatbotkit.com")
        self.assertEqual((options.base_url, options.host), ("https://api.chatbotkit.com:8443", None))
        moved = cbk.ClientOptions(base_url="http://localhost:1", host="127.0.0.1:2").extend(
            base_url="https://b.example"
        )
        self.assertEqual(moved.base_url, "https://b.example")  # a later base URL replaces an earlier host override
        self.assertEqual(
            self.sent(host="h.example", protocol="https:").url, "https://h.example/api/v1/bot/bot1/session/create"
        )

    def test_node_alignments_for_endpoints(self) -> None:
        absolute = {"/api/v1/bot/bot1/session/create": "https://api.chatbotkit.com/api/v1/custom"}
        self.assertEqual(self.sent(endpoints=absolute).url, "https://api.chatbotkit.com/v1/custom")
        relative = {TEMPLATE_KEY: "v2/{botId}"}
        self.assertEqual(
            self.sent(base_url="https://h.example/base/", endpoints=relative).url, "https://h.example/base/v2/bot1"
        )
        raw = {"/api/v1/bot/my bot/session/create": "/raw"}
        self.assertEqual(self.sent("my bot", endpoints=raw, base_url="https://h.example").url, "https://h.example/raw")
        accept = self.sent(headers={"Accept": "application/vnd.example+json"}).headers["accept"]
        self.assertEqual(accept, "application/vnd.example+json")

    def test_method_body_and_headers(self) -> None:
        request = {"durationInSeconds": 60, "messages": [{"type": "user", "text": "Hé"}], "meta": {"k": [1, None]}}
        sent = self.sent(
            request=request, run_as_user_id="u1", run_as_child_user_email="c@example.com", timezone="Europe/Paris"
        )
        self.assertEqual(sent.method, "POST")
        self.assertEqual(json.loads(sent.body), request)
        self.assertEqual(sent.headers["Content-Type"], "application/json")
        self.assertEqual(sent.headers["authorization"], "Bearer " + SECRET)
        self.assertEqual(sent.headers["X-RunAs-User-Id"], "u1")
        self.assertEqual(sent.headers["x-runas-child-user-email"], "c@example.com")
        self.assertEqual(sent.headers["x-timezone"], "Europe/Paris")
        self.assertEqual(
            sent.headers["user-agent"],
            "chatbotkit-session-python/%s (Python %d.%d)" % ((cbk.__version__, *sys.version_info[:2])),
        )
        self.assertEqual(sent.timeout, 30.0)

    def test_no_request_sends_an_empty_object_and_no_secret_sends_no_authorization(self) -> None:
        transport = FakeTransport()
        cbk.BotSessionClient(secret="", transport=transport).create("b")
        self.assertEqual(transport.requests[0].body, b"{}")
        self.assertNotIn("authorization", transport.requests[0].headers)

    def test_client_headers_are_sent_and_computed_headers_win(self) -> None:
        sent = self.sent(
            headers={
                "X-Extra": "1",
                "Authorization": "Bearer other",
                "content-type": "text/plain",
                "User-Agent": "mine/1",
            }
        )
        self.assertEqual(sent.headers["x-extra"], "1")
        self.assertEqual(sent.headers["authorization"], "Bearer " + SECRET)
        self.assertEqual(sent.headers["content-type"], "application/json")
        self.assertEqual(sent.headers["user-agent"], "mine/1")  # a caller may name their own agent

    def test_request_mappings_and_tuples_are_sent_as_json(self) -> None:
        request = MappingProxyType({"messages": ({"type": "bot", "text": "x"},), "meta": MappingProxyType({"a": 1.5})})
        self.assertEqual(
            json.loads(self.sent(request=request).body),
            {"messages": [{"type": "bot", "text": "x"}], "meta": {"a": 1.5}},
        )

    def test_unknown_fields_and_message_types_pass_through(self) -> None:
        request = {"messages": [{"type": "shout", "text": "x", "extra": True}], "future": {"nested": [1]}}
        self.assertEqual(json.loads(self.sent(request=request).body), request)

    def test_real_server_receives_the_exact_request(self) -> None:
        with LoopbackServer() as server:
            session = make_client(server).create("bot 1", {"messages": [{"type": "user", "text": "hi"}]})
        self.assertEqual(session["token"], "tok_1")
        self.assertEqual(session["messages"], [{"type": "user", "text": "hi"}])
        (record,) = server.requests
        self.assertEqual((record.method, record.path), ("POST", "/api/v1/bot/bot%201/session/create"))
        self.assertEqual(record.headers["authorization"], "Bearer " + SECRET)
        self.assertEqual(record.headers["content-type"], "application/json")
        self.assertTrue(record.headers["user-agent"].startswith("chatbotkit-session-python/"))
        self.assertEqual(record.json(), {"messages": [{"type": "user", "text": "hi"}]})

    def test_functional_form_matches_the_method(self) -> None:
        transport = FakeTransport()
        client = cbk.BotSessionClient(secret=SECRET, transport=transport)
        self.assertEqual(cbk.create_bot_session(client, "b", {"meta": {}}), client.create("b", {"meta": {}}))
        self.assertEqual(transport.requests[0].url, transport.requests[1].url)
        self.assertEqual(transport.requests[0].body, transport.requests[1].body)


@unittest.skipUnless(
    OPENAPI_FILE.exists(), "the contract %s is absent (it lives in ../shared beside the checkout)" % OPENAPI_FILE
)
class TestOpenAPIDocument(unittest.TestCase):
    """What the client assumes about the operation, checked against the document itself."""

    def setUp(self) -> None:
        document = load_openapi()
        self.operation = document["paths"]["/bot/{botId}/session/create"]["post"]
        self.server = document["servers"][0]["url"]

    def test_official_url_is_the_documented_server_plus_path(self) -> None:
        transport = FakeTransport()
        cbk.BotSessionClient(secret="s", transport=transport).create("b1")
        self.assertEqual(transport.requests[0].url, self.server + "/bot/b1/session/create")
        self.assertEqual(self.operation["operationId"], "createBotSession")

    def test_session_check_matches_the_required_response_fields(self) -> None:
        schema = self.operation["responses"]["200"]["content"]["application/json"]["schema"]
        self.assertEqual(set(schema["required"]), {"id", "conversationId", "token", "expiresAt"})
        for name in schema["required"]:
            broken = dict(SESSION)
            del broken[name]
            self.assertIsNotNone(cbk._session_problem(broken), name)
        self.assertIsNone(cbk._session_problem(SESSION))

    def test_request_field_types_match_the_local_checks(self) -> None:
        properties = self.operation["requestBody"]["content"]["application/json"]["schema"]["properties"]
        self.assertEqual(properties["durationInSeconds"]["type"], "number")
        self.assertEqual(properties["meta"]["type"], "object")
        self.assertEqual(set(properties["messages"]["items"]["required"]), {"type", "text"})
        for message_type in properties["messages"]["items"]["properties"]["type"]["enum"]:
            cbk._session_request_body({"messages": [{"type": message_type, "text": "x"}]})


# ---------------------------------------------------------------------------------------------------------
# The core driven by a fake clock, then retries and timeouts through the drivers
# ---------------------------------------------------------------------------------------------------------


class TestCore(unittest.TestCase):
    """The core alone, as h11 is tested: a plan driven step by step with a fake clock and fake outcomes,
    asserting the exact requests it asks for and the exact waits."""

    URL = "https://api.chatbotkit.com/v1/bot/bot_1/session/create"

    def plan(self, fake: FakeClock, **options: Any) -> Any:
        settings: Dict[str, Any] = {"secret": SECRET, "retry_delay": 0.5, "timeout": 3.0}
        settings.update(options)
        core = cbk._Core(cbk.ClientOptions(**settings))
        return core.plan(self.URL, b'{"durationInSeconds":60}', cbk._session_problem, fake.clock())

    def test_requests_and_waits_of_a_call_that_succeeds_on_the_third_attempt(self) -> None:
        fake = FakeClock(jitter=0.0)
        plan = self.plan(fake, retries=3, total_timeout=20.0)
        first = next(plan)
        self.assertIsInstance(first, cbk.HTTPRequest)
        self.assertEqual(
            (first.method, first.url, first.body, first.timeout), ("POST", self.URL, b'{"durationInSeconds":60}', 3.0)
        )
        self.assertEqual(first.headers["authorization"], "Bearer " + SECRET)
        self.assertEqual(first.headers["content-type"], "application/json")
        fake.now += 1.0
        self.assertEqual(plan.send(json_response(503, {"code": "UNAVAILABLE"})), 0.5)  # backoff: 0.5 s
        fake.now += 0.5
        second = plan.send(None)
        self.assertEqual(second.timeout, 3.0)
        fake.now += 0.2
        self.assertEqual(plan.send(json_response(429, {}, {"Retry-After": "2"})), 2.0)  # the server's word
        fake.now += 2.0
        third = plan.send(None)
        self.assertEqual(third.timeout, 3.0)
        with self.assertRaises(StopIteration) as done:
            plan.send(json_response(200, SESSION))
        self.assertEqual(done.exception.value, SESSION)

    def test_the_backoff_doubles_and_is_shortened_by_the_jitter(self) -> None:
        fake = FakeClock(jitter=0.5)
        plan = self.plan(fake, retries=3)
        next(plan)
        waits = []
        for _ in range(3):
            waits.append(plan.send(json_response(502, {})))
            plan.send(None)
        self.assertEqual(waits, [0.5 * 0.875, 1.0 * 0.875, 2.0 * 0.875])
        with self.assertRaises(cbk.APIError) as caught:
            plan.send(json_response(502, {}))
        self.assertEqual((caught.exception.status, caught.exception.attempts), (502, 4))

    def test_a_retry_after_date_is_read_against_the_wall_clock(self) -> None:
        fake = FakeClock()
        plan = self.plan(fake, retries=1)
        next(plan)
        date = email.utils.formatdate(fake.wall + 7, usegmt=True)
        self.assertEqual(plan.send(json_response(503, {}, {"Retry-After": date})), 7.0)

    def test_total_timeout_caps_each_attempt_and_refuses_a_wait_past_it(self) -> None:
        fake = FakeClock()
        plan = self.plan(fake, retries=5, total_timeout=4.0)
        self.assertEqual(next(plan).timeout, 3.0)
        fake.now += 3.0
        self.assertEqual(plan.send(socket.timeout("timed out")), 0.5)
        fake.now += 0.5
        last = plan.send(None)
        self.assertEqual(last.timeout, 0.5)  # the time left, not the attempt's 3 s
        fake.now += 0.5
        with self.assertRaises(cbk.APITimeoutError) as caught:
            plan.send(socket.timeout("timed out"))
        self.assertIn("total_timeout", str(caught.exception))
        self.assertEqual(caught.exception.attempts, 2)
        waiting = self.plan(FakeClock(), retries=5, total_timeout=10.0)
        next(waiting)
        with self.assertRaises(cbk.APIError) as refused:  # a 30 s wait would end past the 10 s: raised now
            waiting.send(json_response(503, {}, {"Retry-After": "30"}))
        self.assertEqual(refused.exception.attempts, 1)

    def test_what_is_not_retried_ends_the_plan_at_once(self) -> None:
        cases = [
            (json_response(400, {"code": "BAD"}), cbk.APIError),
            (json_response(503, {}, {"Retry-After": "61"}), cbk.APIError),  # longer than the client waits
            (json_response(200, {"token": "t"}), cbk.APIError),  # not a session
        ]
        for outcome, error in cases:
            with self.subTest(outcome=outcome):
                plan = self.plan(FakeClock(), retries=3)
                next(plan)
                with self.assertRaises(error) as caught:
                    plan.send(outcome)
                self.assertEqual(caught.exception.attempts, 1)
        plan = self.plan(FakeClock(), retries=3, retry_timeout=False)
        next(plan)
        with self.assertRaises(cbk.APITimeoutError):  # it may have arrived: never resent
            plan.send(socket.timeout("timed out"))

    def test_errors_leave_the_core_masked(self) -> None:
        plan = self.plan(FakeClock(), retries=0)
        next(plan)
        with self.assertRaises(cbk.APIError) as caught:
            plan.send(json_response(401, {"code": "NOT_AUTHENTICATED", "message": "bad key " + SECRET}))
        self.assertEqual(caught.exception.message, "bad key ***")
        self.assertNotIn(SECRET, caught.exception.body)


class TestRetries(unittest.TestCase):
    def test_retryable_statuses_are_retried_then_succeed(self) -> None:
        for status in (408, 429, 500, 502, 503, 504):
            with self.subTest(status=status):
                transport = FakeTransport(
                    json_response(status, {"code": "X", "message": "busy"}), json_response(200, SESSION)
                )
                session = cbk.BotSessionClient(secret=SECRET, transport=transport, retry_delay=0).create("bot")
                self.assertEqual(session["id"], "ses_1")
                self.assertEqual(len(transport.requests), 2)

    @keeps_time
    def test_retry_timeout_false_never_resends_a_request_that_may_have_arrived(self) -> None:
        def slow_then_hang_up(index: int, request: bytes) -> Optional[bytes]:
            time.sleep(0.4)
            return None

        for answer, timeout in ((lambda index, request: None, 5.0), (slow_then_hang_up, 0.2)):
            for make in (cbk.UrllibTransport, cbk.KeepAliveTransport):
                with RawServer(answer) as server, self.subTest(transport=make.__name__, timeout=timeout):
                    transport = make()
                    client = make_client(server, transport=transport, retries=3, retry_timeout=False, timeout=timeout)
                    with self.assertRaises(cbk.APIConnectionError) as caught:
                        client.create("bot")
                    if isinstance(transport, cbk.KeepAliveTransport):
                        transport.close()
                    self.assertEqual(len(server.received), 1)  # the POST arrived whole once: never again
                    self.assertTrue(caught.exception.request_sent)

    def test_retry_timeout_false_still_retries_what_cannot_have_been_sent(self) -> None:
        url = "http://127.0.0.1:%d" % unused_port()
        with cbk.KeepAliveTransport() as pool:
            for transport in (cbk.UrllibTransport(), pool):
                client = cbk.BotSessionClient(
                    secret=SECRET, base_url=url, transport=transport, retries=2, retry_delay=0, retry_timeout=False
                )
                with self.subTest(transport=transport), self.assertLogs("chatbotkit_session", "INFO") as logs:
                    with self.assertRaises(cbk.APIConnectionError) as caught:
                        client.create("bot")
                    self.assertFalse(caught.exception.request_sent)
                self.assertEqual(len([line for line in logs.output if "retrying" in line]), 2)

    def test_a_transport_marks_what_was_not_sent(self) -> None:
        outcomes = [
            (cbk.APIConnectionError("no route", request_sent=False), 2),
            (ConnectionRefusedError(111, "refused"), 2),
            (socket.gaierror(-2, "no such name"), 2),
            (cbk.APIConnectionError("reset after sending"), 1),  # unmarked: it may have arrived
            (ConnectionResetError(104, "reset"), 1),
            (cbk.APITimeoutError("slow"), 1),
        ]
        for failure, requests in outcomes:
            with self.subTest(failure=repr(failure)):
                transport = FakeTransport(failure, json_response(200, SESSION))
                client = cbk.BotSessionClient(secret=SECRET, transport=transport, retry_delay=0, retry_timeout=False)
                if requests == 2:
                    self.assertEqual(client.create("bot")["id"], "ses_1")
                else:
                    with self.assertRaises(cbk.APIConnectionError) as caught:
                        client.create("bot")
                    self.assertTrue(caught.exception.request_sent)
                self.assertEqual(len(transport.requests), requests)
                transport = FakeTransport(failure, json_response(200, SESSION))  # the default retries all of them
                self.assertEqual(
                    cbk.BotSessionClient(secret=SECRET, transport=transport, retry_delay=0).create("bot")["id"], "ses_1"
                )

    def test_other_statuses_are_not_retried(self) -> None:
        for status in (400, 401, 403, 404, 409, 413, 422, 501):
            with self.subTest(status=status):
                transport = FakeTransport(json_response(status, {}), json_response(200, SESSION))
                with self.assertRaises(cbk.APIError):
                    cbk.BotSessionClient(secret=SECRET, transport=transport, retry_delay=0).create("bot")
                self.assertEqual(len(transport.requests), 1)

    def test_retries_exhausted_raise_the_last_error(self) -> None:
        with LoopbackServer(
            lambda handler, record: json_reply(handler, 503, {"code": "BUSY", "message": "later"})
        ) as server, self.assertRaises(cbk.APIError) as caught:
            make_client(server, retries=2).create("bot")
        self.assertEqual((caught.exception.status, caught.exception.code), (503, "BUSY"))
        self.assertEqual(len(server.requests), 3)

    def test_connection_errors_are_retried(self) -> None:
        transport = FakeTransport(
            cbk.APIConnectionError("reset"), cbk.APIConnectionError("reset"), json_response(200, SESSION)
        )
        self.assertEqual(
            cbk.BotSessionClient(secret=SECRET, transport=transport, retry_delay=0).create("b")["id"], "ses_1"
        )
        self.assertEqual(len(transport.requests), 3)

    def test_timeouts_are_retried_only_with_retry_timeout(self) -> None:
        transport = FakeTransport(cbk.APITimeoutError("slow"), json_response(200, SESSION))
        cbk.BotSessionClient(secret=SECRET, transport=transport, retry_delay=0).create("b")
        self.assertEqual(len(transport.requests), 2)
        transport = FakeTransport(cbk.APITimeoutError("slow"), json_response(200, SESSION))
        with self.assertRaises(cbk.APITimeoutError):
            cbk.BotSessionClient(secret=SECRET, transport=transport, retry_delay=0, retry_timeout=False).create("b")
        self.assertEqual(len(transport.requests), 1)

    def test_backoff_doubles_caps_and_jitters(self) -> None:
        self.assertEqual([cbk._backoff_delay(0.25, attempt, 0.0) for attempt in range(4)], [0.25, 0.5, 1.0, 2.0])
        self.assertEqual(cbk._backoff_delay(0.25, 10, 0.0), 8.0)
        self.assertEqual(cbk._backoff_delay(1.0, 0, 0.999999), 1.0 * (1 - 0.25 * 0.999999))
        self.assertEqual(cbk._backoff_delay(0.0, 5, 0.5), 0.0)

    @waits
    def test_backoff_is_slept(self) -> None:
        transport = FakeTransport(json_response(503, {}), json_response(503, {}), json_response(200, SESSION))
        started = time.monotonic()
        cbk.BotSessionClient(secret=SECRET, transport=transport, retry_delay=0.08).create("b")
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, (0.08 + 0.16) * 0.75)
        self.assertLess(elapsed, 2)

    def test_retry_after_parsing(self) -> None:
        now = 1790000000.0  # the wall clock the core is given

        def parse(headers: Dict[str, str]) -> Optional[float]:
            return cbk._retry_after(cbk._Headers(headers), now)

        self.assertEqual(parse({"Retry-After": "3"}), 3.0)
        self.assertEqual(parse({"Retry-After": "1.5"}), 1.5)
        self.assertEqual(parse({"retry-after-ms": "250", "Retry-After": "9"}), 0.25)
        self.assertEqual(parse({"Retry-After": email.utils.formatdate(now - 60, usegmt=True)}), 0.0)
        self.assertEqual(parse({"Retry-After": email.utils.formatdate(now + 30, usegmt=True)}), 30.0)
        for bad in ("soon", "-1", "nan", ""):
            self.assertIsNone(parse({"Retry-After": bad}), bad)
        self.assertIsNone(parse({}))

    @waits
    def test_server_directed_delay_is_honoured_as_given(self) -> None:
        calls: List[float] = []

        def app(handler: Any, record: Recorded) -> None:
            calls.append(time.monotonic())
            if len(calls) == 1:
                json_reply(
                    handler, 429, {"code": "TOO_MANY_REQUESTS", "message": "slow down"}, [("retry-after-ms", "300")]
                )
            else:
                json_reply(handler, 200, SESSION)

        with LoopbackServer(app) as server:
            make_client(server, retry_delay=0).create("bot")
        self.assertEqual(len(calls), 2)
        self.assertGreaterEqual(calls[1] - calls[0], 0.29)

    def test_too_long_retry_after_raises_at_once_with_the_delay(self) -> None:
        transport = FakeTransport(
            json_response(503, {"message": "maintenance"}, {"Retry-After": "3600"}), json_response(200, SESSION)
        )
        started = time.monotonic()
        with self.assertRaises(cbk.APIError) as caught:
            cbk.BotSessionClient(secret=SECRET, transport=transport).create("b")
        self.assertLess(time.monotonic() - started, 1)
        self.assertEqual(len(transport.requests), 1)
        self.assertEqual(caught.exception.retry_after, 3600.0)

    def test_retry_after_is_reported_on_final_errors(self) -> None:
        transport = FakeTransport(json_response(429, {}, {"Retry-After": "0"}))
        with self.assertRaises(cbk.APIError) as caught:
            cbk.BotSessionClient(secret=SECRET, transport=transport, retries=1).create("b")
        self.assertEqual(caught.exception.retry_after, 0.0)
        self.assertEqual(len(transport.requests), 2)
        error = self.assertRaises(cbk.APIError)
        with error:
            cbk.BotSessionClient(secret=SECRET, transport=FakeTransport(json_response(400, {})), retries=0).create("b")
        self.assertIsNone(error.exception.retry_after)

    def test_retries_are_logged_at_info_and_attempts_at_debug(self) -> None:
        transport = FakeTransport(json_response(503, {}), json_response(200, SESSION))
        with self.assertLogs("chatbotkit_session", level="DEBUG") as logs:
            cbk.BotSessionClient(secret=SECRET, transport=transport, retry_delay=0).create("b")
        levels = [record.levelname for record in logs.records]
        self.assertEqual(levels, ["DEBUG", "INFO", "DEBUG"])
        self.assertIn("503", logs.output[0])
        self.assertIn("attempt 2 of 4", logs.output[1])
        self.assertIn("https://api.chatbotkit.com/v1/bot/b/session/create", logs.output[2])
        self.assertNotIn(SECRET, "\n".join(logs.output))


class TestTimeouts(unittest.TestCase):
    """timeout bounds each whole exchange; total_timeout the whole call, retries and waits included."""

    transports = (cbk.UrllibTransport, cbk.KeepAliveTransport)

    def assert_times_out(self, app: Callable[..., None], timeout: float = 0.3) -> None:
        def call(transport_class: Any) -> Tuple[int, Any, float]:
            with LoopbackServer(app) as server:
                transport = transport_class()
                self.addCleanup(getattr(transport, "close", lambda: None))
                client = make_client(server, timeout=timeout, retries=0, transport=transport)
                return (server.port, *timed_call(client.create, "bot"))

        results = run_concurrently(call, self.transports)  # each against a server of its own
        for transport_class, (port, outcome, elapsed) in zip(self.transports, results):
            with self.subTest(transport=transport_class.__name__):
                self.assertIsInstance(outcome, cbk.APITimeoutError)
                self.assertLess(elapsed, timeout + 0.6)
                self.assertGreaterEqual(elapsed, timeout * 0.9)
                self.assertIn("127.0.0.1:%d" % port, str(outcome))
                self.assertEqual(outcome.code, "TIMEOUT")

    @waits
    def test_slow_server(self) -> None:
        def slow(handler: Any, record: Recorded) -> None:
            time.sleep(1.2)
            with contextlib.suppress(OSError):
                json_reply(handler, 200, SESSION)

        self.assert_times_out(slow)

    @waits
    def test_trickled_body(self) -> None:
        def trickle(handler: Any, record: Recorded) -> None:
            body = json.dumps(SESSION).encode()
            handler.send_response(200)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            with contextlib.suppress(OSError):
                for index in range(len(body)):
                    handler.wfile.write(body[index : index + 1])
                    handler.wfile.flush()
                    time.sleep(0.05)

        self.assert_times_out(trickle)

    @waits
    def test_trickled_headers(self) -> None:
        def trickle(handler: Any, record: Recorded) -> None:
            with contextlib.suppress(OSError):
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 60:
                    handler.wfile.write(bytes([byte]))
                    handler.wfile.flush()
                    time.sleep(0.03)

        self.assert_times_out(trickle)

    @waits
    def test_timed_out_attempts_are_retried(self) -> None:
        calls: List[int] = []

        def first_slow(handler: Any, record: Recorded) -> None:
            calls.append(1)
            if len(calls) == 1:
                time.sleep(0.6)
            with contextlib.suppress(OSError):
                json_reply(handler, 200, SESSION)

        with LoopbackServer(first_slow) as server:
            self.assertEqual(make_client(server, timeout=0.25, retries=1).create("bot")["id"], "ses_1")
        self.assertEqual(len(calls), 2)

    def clients(self, **options: Any) -> List[Callable[..., Any]]:
        """A create() for a client of each kind over its default transport, synchronous in the caller's view."""
        made = every_client(None, ("UrllibTransport", "AsyncKeepAliveTransport"), **options)
        for _, _, close in made:
            self.addCleanup(close)
        return [create for _, create, _ in made]

    @waits
    def test_a_hanging_api_is_cut_off_at_the_deadline(self) -> None:
        with LoopbackServer(slow_app(3)) as server:
            clients = self.clients(base_url=server.url, timeout=10, retries=2, total_timeout=0.5)
            results = run_concurrently(timed_call, clients)
        for outcome, took in results:
            self.assertIsInstance(outcome, cbk.APITimeoutError)
            self.assertLess(took, 1.0)
            self.assertIn("total_timeout", outcome.message)

    def test_the_last_answer_is_digested_within_the_budget(self) -> None:
        # Valid sessions padded with small arrays, one just under the default max_response_bytes and one
        # four times that: 0.2.0 took 2.5-3 s past a 1 s budget for the larger (the README promises 0.5 s).
        head = b'{"id": "ses_1", "conversationId": "c", "token": "t", "expiresAt": 1, "x": ['
        bodies = [head + b",".join([b"[1]"] * ((size - len(head)) // 4 - 1)) + b"]}" for size in (2**20, 2**22)]
        self.assertLessEqual(len(bodies[0]), cbk.ClientOptions().max_response_bytes)

        def late(handler: Any, record: Recorded) -> None:
            time.sleep(0.7)
            reply(handler, 200, bodies[int(record.path.split("/")[-3])])

        with LoopbackServer(late) as server:
            clients = self.clients(base_url=server.url, retries=0, total_timeout=1.0)
            cases = [(index, create) for index in range(len(bodies)) for create in clients]
            # independent calls, each with its own deadline, made at once
            results = run_concurrently(lambda case: timed_call(case[1], str(case[0])), cases)
        for (index, _), (outcome, took) in zip(cases, results):
            if index == 0:
                self.assertEqual(outcome["id"], "ses_1")
            else:
                self.assertEqual(outcome.code, "RESPONSE_TOO_LARGE")
            self.assertLess(took, 1.0 + 0.5)

    def test_a_wait_past_the_deadline_is_not_slept(self) -> None:
        answer = json_response(503, {"message": "busy"}, {"Retry-After": "2"})
        for create in self.clients(transport=FakeTransport(answer), total_timeout=1, retries=3):
            started = time.monotonic()
            with self.assertRaises(cbk.APIError) as caught:
                create()
            self.assertLess(time.monotonic() - started, 0.3)
            self.assertEqual((caught.exception.status, caught.exception.retry_after), (503, 2.0))

    @waits
    def test_each_attempt_gets_the_smaller_of_timeout_and_the_time_left(self) -> None:
        transport = FakeTransport(json_response(500, {}), json_response(200, SESSION))
        cbk.BotSessionClient(secret=SECRET, transport=transport, timeout=10, total_timeout=2, retry_delay=0.2).create(
            "bot"
        )
        first, second = (request.timeout for request in transport.requests)
        self.assertTrue(1.9 < first <= 2.0, first)
        self.assertTrue(1.5 < second < first - 0.1, (first, second))
        transport = FakeTransport()
        cbk.BotSessionClient(secret=SECRET, transport=transport, timeout=0.5, total_timeout=2).create("bot")
        self.assertEqual(transport.requests[0].timeout, 0.5)

    @waits
    def test_timeouts_inside_the_deadline_are_retried_as_usual(self) -> None:
        with LoopbackServer(slow_app(0.3)) as server:
            client = make_client(server, timeout=0.1, retries=2, total_timeout=5)
            with self.assertRaises(cbk.APITimeoutError) as caught:
                client.create("bot")
        self.assertNotIn("total_timeout", caught.exception.message)
        self.assertEqual(len(server.requests), 3)

    def test_extend_with_a_budget_is_cheap(self) -> None:
        for client in (cbk.BotSessionClient(secret=SECRET), cbk.AsyncBotSessionClient(secret=SECRET)):
            with self.subTest(client=type(client).__name__):
                budget = client.extend(total_timeout=2.5)
                self.assertIs(type(budget), type(client))
                self.assertIs(budget._transport, client._transport)  # no new transport, no new opener
                self.assertIs(getattr(budget, "_workers", None), getattr(client, "_workers", None))
                self.assertEqual((budget.options.total_timeout, client.options.total_timeout), (2.5, None))
                self.assertIsNot(client.extend(max_response_bytes=10)._transport, client._transport)


# ---------------------------------------------------------------------------------------------------------
# Exception types, the errors people read, and secrecy
# ---------------------------------------------------------------------------------------------------------


class TestExceptionTypes(unittest.TestCase):
    """What the server or the network does ends in a documented error: APIError, APIConnectionError or
    APITimeoutError (codes, messages, invalid answers, copies and pickles); a bug in a transport passed
    in propagates unchanged."""

    def raised(self, *outcomes: Any, **options: Any) -> Any:
        client = cbk.BotSessionClient(secret=SECRET, transport=FakeTransport(*outcomes), retries=0, **options)
        with self.assertRaises(cbk.ChatBotKitError) as caught:
            client.create("bot")
        return caught.exception

    def test_json_error_body_gives_code_and_message(self) -> None:
        error = self.raised(json_response(404, {"code": "NOT_FOUND", "message": "Bot not found"}))
        self.assertIsInstance(error, cbk.APIError)
        self.assertEqual((error.status, error.code, error.message), (404, "NOT_FOUND", "Bot not found"))
        self.assertEqual(error.url, "https://api.chatbotkit.com/v1/bot/bot/session/create")
        self.assertEqual(json.loads(error.body), {"code": "NOT_FOUND", "message": "Bot not found"})
        self.assertEqual(error.headers["content-type"], "application/json")
        self.assertEqual(
            str(error),
            "NOT_FOUND (HTTP 404): Bot not found; the URL called was https://api.chatbotkit.com/v1/bot/bot/session/create",
        )

    def test_non_json_bodies_use_the_status_table(self) -> None:
        for status, code in [
            (413, "CONTENT_TOO_LARGE"),
            (401, "NOT_AUTHENTICATED"),
            (418, "ERROR_418"),
            (599, "ERROR_599"),
        ]:
            with self.subTest(status=status):
                error = self.raised(cbk.HTTPResponse(status, {}, b"<html>nope</html>"))
                self.assertEqual((error.status, error.code), (status, code))
                known = {status.value: status.phrase for status in http.HTTPStatus}  # phrases vary by Python version
                self.assertEqual(error.message, known.get(status, "HTTP %d" % status))
                self.assertEqual(error.body, "<html>nope</html>")

    def test_json_body_without_code_uses_the_table(self) -> None:
        error = self.raised(json_response(403, {"message": "nope"}))
        self.assertEqual((error.code, error.message), ("NOT_AUTHORIZED", "nope"))

    def test_error_body_is_cut_to_64_kib(self) -> None:
        error = self.raised(cbk.HTTPResponse(400, {}, b"x" * 100000))
        self.assertEqual(len(error.body), 64 * 1024)

    def test_invalid_2xx_answers(self) -> None:
        for body in [
            b"not json",
            b"",
            b"[1]",
            b'"str"',
            json.dumps({"id": "a", "conversationId": "c", "token": "t"}).encode(),
            json.dumps(dict(SESSION, expiresAt="soon")).encode(),
            json.dumps(dict(SESSION, expiresAt=True)).encode(),
            json.dumps(dict(SESSION, token=None)).encode(),
            b"\xff\xfe\x00",
        ]:
            with self.subTest(body=body):
                error = self.raised(cbk.HTTPResponse(200, {}, body))
                self.assertIsInstance(error, cbk.APIError)
                self.assertEqual((error.status, error.code), (200, "INVALID_RESPONSE"))

    def test_connection_refused_names_host_and_port(self) -> None:
        port = unused_port()
        client = cbk.BotSessionClient(secret=SECRET, base_url="http://127.0.0.1:%d" % port, retries=0)
        with self.assertRaises(cbk.APIConnectionError) as caught:
            client.create("bot")
        self.assertNotIsInstance(caught.exception, cbk.APITimeoutError)
        self.assertIn("127.0.0.1:%d" % port, str(caught.exception))
        self.assertIn("ConnectionRefusedError", str(caught.exception))
        # the low-level exception is not chained: it may carry the server's raw bytes
        self.assertIsNone(caught.exception.__cause__)
        self.assertIsNone(caught.exception.__context__)

    def test_unresolvable_host_is_a_connection_error(self) -> None:
        client = cbk.BotSessionClient(secret="", base_url="http://no-such-host.invalid", retries=0, timeout=5)
        with self.assertRaisesRegex(cbk.APIConnectionError, "no-such-host.invalid:80"):
            client.create("bot")

    @waits
    def test_oversized_bodies_stop_at_the_limit(self) -> None:
        big = json.dumps(dict(SESSION, padding="x" * 5000)).encode()

        def with_length(handler: Any, record: Recorded) -> None:
            reply(handler, 200, big)

        def chunked(handler: Any, record: Recorded) -> None:
            handler.send_response(200)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for start in range(0, len(big), 1000):
                part = big[start : start + 1000]
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            handler.wfile.write(b"0\r\n\r\n")

        for app in (with_length, chunked):
            for transport in (
                cbk.UrllibTransport(max_response_bytes=4096),
                cbk.KeepAliveTransport(max_response_bytes=4096),
            ):
                self.addCleanup(getattr(transport, "close", lambda: None))
                with self.subTest(app=app.__name__, transport=type(transport).__name__), LoopbackServer(app) as server:
                    with self.assertRaises(cbk.APIError) as caught:
                        make_client(server, transport=transport).create("bot")
                    self.assertEqual((caught.exception.code, caught.exception.status), ("RESPONSE_TOO_LARGE", 200))
                    self.assertEqual(len(server.requests), 1)  # not retried
                    with LoopbackServer(app) as roomy:
                        self.assertEqual(make_client(roomy, max_response_bytes=len(big)).create("bot")["id"], "ses_1")

    def test_redirects_are_not_followed_and_credentials_stay_home(self) -> None:
        with LoopbackServer() as elsewhere:

            def redirect(handler: Any, record: Recorded) -> None:
                reply(handler, 307, b"", [("Location", elsewhere.url + record.path)])

            with LoopbackServer(redirect) as server, cbk.KeepAliveTransport() as pooled:
                for transport in (cbk.UrllibTransport(), pooled):
                    with self.subTest(transport=type(transport).__name__):
                        with self.assertRaises(cbk.APIError) as caught:
                            make_client(server, transport=transport).create("bot")
                        self.assertEqual(caught.exception.status, 307)
                        self.assertIn(elsewhere.url, caught.exception.message)
            self.assertEqual(elsewhere.requests, [])  # nothing, and so no Authorization, reached it
        for status in (301, 302, 303, 308):
            with self.subTest(status=status):
                error = self.raised(cbk.HTTPResponse(status, {"Location": "https://evil.example/steal"}, b""))
                self.assertIn("https://evil.example/steal", error.message)
                self.assertEqual(error.code, "ERROR_%d" % status)

    def test_unexpected_transport_exceptions_propagate_unchanged(self) -> None:
        boom = RuntimeError("bug in a custom transport")
        client = cbk.BotSessionClient(secret=SECRET, transport=FakeTransport(boom), retries=3)
        with self.assertRaises(RuntimeError) as caught:
            client.create("bot")
        self.assertIs(caught.exception, boom)

    def test_deeply_nested_answers_are_invalid_responses(self) -> None:
        deep = b"[" * 1000 + b"]" * 1000
        for status in (200, 500):
            with self.subTest(status=status):
                client = cbk.BotSessionClient(
                    secret=SECRET, transport=FakeTransport(cbk.HTTPResponse(status, {}, deep)), retries=0
                )
                with self.assertRaises(cbk.APIError) as caught:
                    client.create("bot")
                self.assertEqual(caught.exception.status, status)
                if status == 200:
                    self.assertEqual(caught.exception.code, "INVALID_RESPONSE")
                    self.assertIn("nest", caught.exception.message)
        nested_session = dict(SESSION, meta=json.loads("[" * 80 + "]" * 80))
        with self.assertRaisesRegex(cbk.APIError, "INVALID_RESPONSE"):
            cbk.BotSessionClient(secret=SECRET, transport=FakeTransport(json_response(200, nested_session))).create(
                "bot"
            )

    @waits
    def test_broken_framing_is_a_connection_error_with_either_transport(self) -> None:
        answers = {
            "negative chunk size": raw("HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")], b"-5\r\nabc", -1),
            "chunk size not hex": raw("HTTP/1.1 200 OK", [("Transfer-Encoding", "chunked")], b"zz\r\nabc", -1),
            "negative length": b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\nabc",
            "no status": b"\r\n\r\n",
            "silence then close": None,
        }
        for name, data in answers.items():
            for transport in (cbk.UrllibTransport, cbk.KeepAliveTransport):
                with self.subTest(answer=name, transport=transport.__name__), RawServer(
                    lambda i, r, data=data: data
                ) as server:
                    client = cbk.BotSessionClient(
                        secret=SECRET, base_url=server.url, retries=0, timeout=5, transport=transport()
                    )
                    with self.assertRaises(cbk.APIConnectionError) as caught:
                        client.create("bot")
                    if isinstance(client.options.transport, cbk.KeepAliveTransport):
                        client.options.transport.close()
                    self.assertIs(type(caught.exception), cbk.APIConnectionError)
                    self.assertEqual(caught.exception.code, "CONNECTION_ERROR")

    def test_non_finite_or_empty_fields_are_not_sessions(self) -> None:
        bodies = [
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": NaN}',
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": Infinity}',
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": -Infinity}',
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": 1e400}',
            b'{"id": "", "conversationId": "c", "token": "t", "expiresAt": 1}',
            b'{"id": "s", "conversationId": "", "token": "t", "expiresAt": 1}',
            b'{"id": "s", "conversationId": "c", "token": "", "expiresAt": 1}',
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": 1, "x": NaN}',
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": 1' + b"0" * 400 + b"}",
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": -1' + b"0" * 309 + b"}",
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": 1, "messages": "hi"}',
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": 1, "messages": [1]}',
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": 1, "messages": [{"type": "bot"}]}',
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": 1, "messages": [{"type": 1, "text": ""}]}',
            b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": 1, "messages": null}',
        ]
        for body in bodies:
            with self.subTest(body=body):
                client = cbk.BotSessionClient(secret=SECRET, transport=FakeTransport(cbk.HTTPResponse(200, {}, body)))
                with self.assertRaises(cbk.APIError) as caught:
                    client.create("bot")
                self.assertEqual(caught.exception.code, "INVALID_RESPONSE")

    def test_an_integer_too_large_for_a_float_is_not_a_session_anywhere(self) -> None:
        body = b'{"id": "s", "conversationId": "c", "token": "t", "expiresAt": 1' + b"0" * 400 + b"}"
        with LoopbackServer(lambda handler, record: reply(handler, 200, body)) as server:
            out = run_python(
                str(MODULE_FILE),
                "bot",
                "--base-url",
                server.url,
                "--retries",
                "0",
                env=clean_env(CHATBOTKIT_API_SECRET=SECRET),
            )
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertEqual(out.stderr.count("\n"), 1, out.stderr)
        self.assertIn("INVALID_RESPONSE", out.stderr)
        status, _, err = run_cli("bot", "--duration", "1" + "0" * 400, "--dry-run")
        self.assertEqual(status, 2)
        self.assertIn("--duration must be a finite number", err)

    def test_sessions_with_well_formed_messages_are_returned_whole(self) -> None:
        session = dict(SESSION, messages=[{"type": "bot", "text": "Hi", "extra": 1}], more={"a": [1]})
        transport = FakeTransport(json_response(200, session))
        self.assertEqual(cbk.BotSessionClient(secret=SECRET, transport=transport).create("bot"), session)

    def test_control_characters_from_the_server_are_escaped_in_messages(self) -> None:
        body = json.dumps({"code": "BAD\nCODE", "message": "line one\nFORGED: two\x1b[2J\u2028"}).encode()
        with self.assertRaises(cbk.APIError) as caught:
            cbk.BotSessionClient(
                secret=SECRET, transport=FakeTransport(cbk.HTTPResponse(400, {"X-A": "b\x85c"}, body))
            ).create("b")
        error = caught.exception
        self.assertEqual(error.message, "line one\\x0aFORGED: two\\x1b[2J\\u2028")
        self.assertEqual(error.code, "BAD\\x0aCODE")
        self.assertEqual(error.headers["x-a"], "b\\x85c")
        self.assertEqual(len(str(error).splitlines()), 1)
        self.assertEqual(json.loads(error.body)["message"], "line one\nFORGED: two\x1b[2J\u2028")  # data stays data

    def errors(self) -> List[cbk.ChatBotKitError]:
        return [
            cbk.ChatBotKitError("m", "C"),
            cbk.APIError("m", "C", status=503, url="u", headers={"Retry-After": "2"}, body="b", retry_after=2.0),
            cbk.APIConnectionError("m"),
            cbk.APITimeoutError("m"),
        ]

    def test_copy_deepcopy_and_pickle_keep_every_attribute(self) -> None:
        import copy
        import pickle

        for error in self.errors():
            for clone in (copy.copy(error), copy.deepcopy(error), pickle.loads(pickle.dumps(error))):
                with self.subTest(error=type(error).__name__):
                    self.assertIs(type(clone), type(error))
                    self.assertEqual(str(clone), str(error))
                    self.assertEqual(clone.args, error.args)
                    for name, value in vars(error).items():
                        if isinstance(value, cbk._Headers):
                            self.assertEqual(dict(getattr(clone, name)), dict(value))
                        else:
                            self.assertEqual(getattr(clone, name), value)

    @waits
    def test_an_error_raised_in_a_process_pool_reaches_the_caller(self) -> None:
        import concurrent.futures
        import multiprocessing

        with concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            future = pool.submit(_raise_api_error)
            with self.assertRaises(cbk.APIError) as caught:
                future.result(timeout=60)
        self.assertEqual((caught.exception.status, caught.exception.retry_after), (429, 1.5))


class TestErrorsPeopleRead(unittest.TestCase):
    """What a person reads when a call fails: a class per status family, the request id, the URL of a 404
    (and why it has /api), on the error, the command line's line, the debug log and the endpoint's log."""

    FAMILIES = (
        (400, "BadRequestError"),
        (401, "AuthenticationError"),
        (403, "PermissionDeniedError"),
        (404, "NotFoundError"),
        (409, "ConflictError"),
        (422, "UnprocessableEntityError"),
        (429, "RateLimitError"),
        (500, "InternalServerError"),
        (503, "InternalServerError"),
        (599, "InternalServerError"),
        (402, "APIError"),
        (418, "APIError"),
        (302, "APIError"),
    )

    def test_each_status_family_raises_its_class_from_every_client_and_keeps_it_when_copied(self) -> None:
        def answer(handler: Any, record: Recorded) -> None:
            status = int(record.path.split("/")[4])  # /api/v1/bot/<status>/session/create
            json_reply(handler, status, {"message": "said %d" % status}, [("X-Request-Id", "req_%d" % status)])

        def raised(create: Callable[[str], Any]) -> List[Any]:
            errors = []
            for status, _ in self.FAMILIES:
                try:
                    create(str(status))
                except cbk.APIError as error:
                    errors.append(error)
            return errors

        async def araised(client: cbk.AsyncBotSessionClient) -> List[Any]:
            async with client:  # one loop for every call: a client carried across loops warns on the proactor
                errors = []
                for status, _ in self.FAMILIES:
                    try:
                        await client.create(str(status))
                    except cbk.APIError as error:
                        errors.append(error)
                return errors

        with LoopbackServer(answer) as server, cbk.KeepAliveTransport() as pool:
            options: Dict[str, Any] = dict(secret=SECRET, base_url=server.url, retries=0, timeout=5)
            seen = {
                "UrllibTransport": raised(cbk.BotSessionClient(**options).create),
                "KeepAliveTransport": raised(cbk.BotSessionClient(transport=pool, **options).create),
                "AsyncKeepAliveTransport": run_async(araised(cbk.AsyncBotSessionClient(**options))),
                "KeepAliveTransport in threads": run_async(
                    araised(cbk.AsyncBotSessionClient(transport=pool, **options))
                ),
            }
        for kind, errors in seen.items():
            self.assertEqual(len(errors), len(self.FAMILIES), kind)
            for (status, name), error in zip(self.FAMILIES, errors):
                with self.subTest(status=status, client=kind):
                    self.assertIs(type(error), getattr(cbk, name))
                    self.assertEqual(error.status, status)
                    self.assertIn("said %d" % status, error.message)
                    self.assertEqual(error.request_id, "req_%d" % status)
                    for copied in (pickle.loads(pickle.dumps(error)), copy.deepcopy(error), copy.copy(error)):
                        self.assertIs(type(copied), type(error))
                        self.assertEqual(vars(copied), vars(error))
        for _, name in self.FAMILIES:
            self.assertIn(name, cbk.__all__)
        self.assertTrue(issubclass(cbk.RateLimitError, cbk.APIError) and issubclass(cbk.APIError, cbk.ChatBotKitError))

    def test_a_body_over_the_limit_keeps_its_status_class(self) -> None:
        big = b'{"message": "' + b"x" * 4096 + b'"}'
        with LoopbackServer(lambda handler, record: reply(handler, 503, big)) as server:
            for kind, create, close in every_client(server, max_response_bytes=1024):
                with self.subTest(client=kind):
                    try:
                        with self.assertRaises(cbk.InternalServerError) as caught:
                            create("b")
                    finally:
                        close()
                    self.assertEqual((caught.exception.status, caught.exception.code), (503, "RESPONSE_TOO_LARGE"))

    def test_the_request_id_is_on_the_error_its_text_and_its_repr_masked_and_on_one_line(self) -> None:
        cases = [
            ({"X-Request-Id": "req_7Hq2"}, "req_7Hq2"),
            ({"x-request-id": "req_" + SECRET}, "req_***"),
            ({"X-Request-Id": "req\x1b[31mred"}, "req\\x1b[31mred"),
            ({"X-Request-Id": ""}, None),
            ({}, None),
        ]
        for headers, shown in cases:
            with self.subTest(headers=headers):
                transport = FakeTransport(cbk.HTTPResponse(401, headers, b'{"message": "bad key"}'))
                client = cbk.BotSessionClient(secret=SECRET, transport=transport, retries=0)
                with self.assertRaises(cbk.AuthenticationError) as caught:
                    client.create("b")
                error = caught.exception
                self.assertEqual(error.request_id, shown)
                expected = "NOT_AUTHENTICATED (HTTP 401%s): bad key" % (", request id " + shown if shown else "")
                self.assertEqual(str(error), expected)
                self.assertIn("request_id=%r" % shown, repr(error))

    def test_the_debug_log_line_of_the_attempt_names_the_request_id(self) -> None:
        answers = [
            json_response(429, {"message": "slow down"}, {"X-Request-Id": "req_a" + SECRET}),
            cbk.HTTPResponse(200, {"X-Request-Id": "req_b"}, json.dumps(SESSION).encode()),
        ]
        with self.assertLogs("chatbotkit_session", level="DEBUG") as logs:
            cbk.BotSessionClient(secret=SECRET, transport=FakeTransport(*answers), retry_delay=0).create("b")
        attempts = [line for line in logs.output if line.startswith("DEBUG")]
        self.assertIn("-> 429 (request id req_a***) in ", attempts[0])
        self.assertIn("-> 200 (request id req_b) in ", attempts[1])

    def test_the_command_line_error_line_has_the_request_id_and_a_404_its_url_and_the_hint(self) -> None:
        def answer(handler: Any, record: Recorded) -> None:
            if record.path.startswith("/api/"):
                json_reply(handler, 404, {"message": "Not Found"}, [("X-Request-Id", "req_404")])
            else:
                session_app(handler, record)

        with LoopbackServer(answer) as server:
            status, _, err = run_cli(
                "bot1", CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=server.url + "/" + SECRET
            )
            url = server.url + "/api/v1/bot/bot1/session/create"
            self.assertEqual(status, 1)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertTrue(
                err.startswith(
                    "chatbotkit-session: error: NOT_FOUND (HTTP 404, request id req_404): Not Found; "
                    "the URL called was %s (on any host but api.chatbotkit.com the path keeps its /api prefix" % url
                ),
                err,
            )
            self.assertTrue(err.endswith("(1 attempt)\n"), err)
            # The hint's advice works: the same server, the operation mapped to /v1/...
            hinted = make_client(
                server, endpoints={"/api/v1/bot/{botId}/session/create": "/v1/bot/{botId}/session/create"}
            )
            self.assertEqual(hinted.create("bot1")["id"], "ses_1")
            self.assertEqual(server.requests[-1].path, "/v1/bot/bot1/session/create")

    def test_a_404_names_its_url_masked_and_hints_only_where_the_prefix_is_the_likely_cause(self) -> None:
        cases = [
            ("http://127.0.0.1:9/", {}, "http://127.0.0.1:9/api/v1/bot/b/session/create", True),
            ("https://api.chatbotkit.com", {}, "https://api.chatbotkit.com/v1/bot/b/session/create", False),
            (
                "http://127.0.0.1:9/",
                {"/api/v1/bot/{botId}/session/create": "/gw/" + SECRET},
                "http://127.0.0.1:9/gw/***",
                False,
            ),
        ]
        for base_url, endpoints, url, hinted in cases:
            with self.subTest(base_url=base_url, endpoints=endpoints):
                transport = FakeTransport(json_response(404, {"message": "Not Found"}))
                client = cbk.BotSessionClient(
                    secret=SECRET, base_url=base_url, endpoints=endpoints, transport=transport, retries=0
                )
                with self.assertRaises(cbk.NotFoundError) as caught:
                    client.create("b")
                text = str(caught.exception)
                self.assertIn("; the URL called was %s" % url, text)
                self.assertEqual("keeps its /api prefix" in text, hinted)
                self.assertNotIn(SECRET, text)
                self.assertEqual(caught.exception.message, "Not Found")  # the server's words, unchanged
        self.assertEqual(str(cbk.NotFoundError("gone", "NOT_FOUND", status=404)), "NOT_FOUND (HTTP 404): gone")

    def test_the_endpoints_log_line_carries_the_request_id_and_the_class(self) -> None:
        limited = json_response(429, {"message": "slow down"}, {"X-Request-Id": "req_9" + SECRET})
        endpoint, lines, _ = endpoint_for(FakeTransport(limited))
        answer = endpoint.handle("POST", {"Origin": SHOP, **JSON_POST}, b"{}")
        self.assertEqual(answer.status, 502)
        logged = json.loads(lines[-1])
        self.assertEqual((logged["requestId"], logged["errorType"]), ("req_9***", "RateLimitError"))
        self.assertIn("request id req_9***", logged["error"])
        self.assertNotIn("req_9", answer.body.decode())  # the page is told less than the log

    @waits
    def test_chatbotkit_log_prints_each_record_once_however_the_program_configured_logging(self) -> None:
        program = (
            "import logging, sys\n"
            "if sys.argv[1] == 'before': logging.basicConfig()\n"
            "import chatbotkit_session as c\n"
            "if sys.argv[1] == 'after': logging.basicConfig()\n"
            "if sys.argv[1] == 'own': logging.getLogger('chatbotkit_session').addHandler(logging.StreamHandler())\n"
            "answers = [c.HTTPResponse(503, {}, b'{}'), c.HTTPResponse(200, {}, %r)]\n"
            "transport = lambda request: answers.pop(0)\n"
            "c.BotSessionClient(secret='s', transport=transport, retry_delay=0).create('b')\n"
        ) % json.dumps(SESSION).encode()
        names = ["none", "before", "after", "own"]
        outs = run_concurrently(
            lambda name: run_python("-c", program, name, env=clean_env(CHATBOTKIT_LOG="debug")), names
        )
        for name, out in zip(names, outs):
            with self.subTest(configured=name):
                self.assertEqual(out.returncode, 0, out.stderr)
                lines = out.stderr.splitlines()
                self.assertEqual(len([line for line in lines if "-> 503 in" in line]), 1, out.stderr)
                self.assertEqual(len([line for line in lines if "retrying POST" in line]), 1, out.stderr)
                self.assertEqual(len([line for line in lines if "-> 200 in" in line]), 1, out.stderr)

    @waits
    def test_an_unknown_chatbotkit_log_value_is_one_warning_naming_the_accepted_ones(self) -> None:
        for value, warned in [("verbose", True), ("DEBUG", False), ("", False), (" info ", False)]:
            with self.subTest(value=value):
                out = run_python("-c", "import chatbotkit_session", env=clean_env(CHATBOTKIT_LOG=value))
                self.assertEqual(out.returncode, 0, out.stderr)
                if warned:
                    self.assertEqual(
                        out.stderr,
                        "chatbotkit_session: CHATBOTKIT_LOG='verbose' is not one of debug, info; "
                        "the library's records are not shown\n",
                    )
                else:
                    self.assertEqual(out.stderr, "")


class TestSecrecy(unittest.TestCase):
    """The secret never shows: reprs, errors (every attribute and the whole chain), logs, the command line,
    whatever a hostile server sends back, with either transport."""

    def test_reprs_hide_the_secret(self) -> None:
        options = cbk.ClientOptions(secret=SECRET, headers={"Authorization": "Bearer " + SECRET, "X-Api-Key": SECRET})
        client = cbk.BotSessionClient(options, transport=FakeTransport())
        request = cbk.HTTPRequest("POST", "https://x", {"Authorization": "Bearer " + SECRET}, b"{}", 1.0)
        for text in (repr(options), str(options), repr(client), repr(request), repr(client.extend(timeout=2))):
            self.assertNotIn(SECRET, text)
        self.assertIn("secret='***'", repr(options))

    def test_echoed_secret_is_masked_in_errors(self) -> None:
        def echo(handler: Any, record: Recorded) -> None:
            auth = record.headers["authorization"]
            json_reply(
                handler,
                401,
                {"code": "BAD_" + auth, "message": "bad key " + auth},
                [("X-Echo", auth), ("Location", "/" + auth)],
            )

        with LoopbackServer(echo) as server, self.assertRaises(cbk.APIError) as caught:
            make_client(server).create("bot")
        error = caught.exception
        texts = [str(error), repr(error), error.message, error.code, error.body, error.url, repr(error.headers)]
        texts += ["%s: %s" % item for item in error.headers.items()]
        for text in texts:
            self.assertNotIn(SECRET, text)
        self.assertIn("Bearer ***", error.message)

    def test_invalid_answers_echoing_the_secret_are_masked(self) -> None:
        transport = FakeTransport(cbk.HTTPResponse(200, {"X-Echo": SECRET}, ("oops " + SECRET).encode()))
        with self.assertRaises(cbk.APIError) as caught:
            cbk.BotSessionClient(secret=SECRET, transport=transport).create("b")
        self.assertNotIn(SECRET, caught.exception.body + caught.exception.headers["x-echo"] + str(caught.exception))

    def test_transport_errors_echoing_the_secret_are_masked(self) -> None:
        def huge_echo(handler: Any, record: Recorded) -> None:
            reply(handler, 200, b"x" * 5000, [("X-Echo", record.headers["authorization"])])

        with LoopbackServer(huge_echo) as server, self.assertRaises(cbk.APIError) as caught:
            make_client(server, max_response_bytes=100).create("bot")
        self.assertEqual(caught.exception.code, "RESPONSE_TOO_LARGE")
        self.assertEqual(caught.exception.headers["x-echo"], "Bearer ***")
        self.assertIsNone(caught.exception.__cause__)

    def test_logs_never_carry_the_secret(self) -> None:
        with LoopbackServer(
            lambda handler, record: json_reply(handler, 500, {"message": record.headers["authorization"]})
        ) as server, self.assertLogs("chatbotkit_session", level="DEBUG") as logs, self.assertRaises(
            cbk.APIError
        ) as caught:
            make_client(server, retries=2).create("bot")
        self.assertEqual(len(logs.records), 5)
        self.assertNotIn(SECRET, "\n".join(logs.output) + str(caught.exception))

    @waits
    def test_loopback_hosts_bypass_proxies(self) -> None:
        with LoopbackServer() as server:
            proxy_port = unused_port()  # a proxy that is not there: using it would fail
            code = (
                "import chatbotkit_session as c\n"
                "print(c.BotSessionClient(secret='s', base_url=%r, retries=0).create('b')['id'])\n"
                "pooled = c.KeepAliveTransport()\n"
                "print(c.BotSessionClient(secret='s', base_url=%r, retries=0, transport=pooled).create('b')['id'])\n"
                "import asyncio\n"
                "print(asyncio.run(c.AsyncBotSessionClient(secret='s', base_url=%r, retries=0).create('b'))['id'])\n"
            ) % (server.url, server.url.replace("127.0.0.1", "localhost"), server.url)
            env = clean_env(
                HTTP_PROXY="http://127.0.0.1:%d" % proxy_port, HTTPS_PROXY="http://127.0.0.1:%d" % proxy_port
            )
            out = run_python("-c", code, env=env)
        self.assertEqual(out.stdout.split(), ["ses_1", "ses_1", "ses_1"], out.stderr)

    @waits
    def test_https_goes_through_the_environment_proxy_with_verified_tls(self) -> None:
        # The loopback server is both the proxy (CONNECT) and, inside the tunnel, api.chatbotkit.com
        # with a certificate from the test CA, which SSL_CERT_FILE makes the default trust store.
        with LoopbackServer() as server:
            code = (
                "import chatbotkit_session as c\n"
                "for t in (None, c.KeepAliveTransport()):\n"
                "    print(c.BotSessionClient(secret='s', transport=t).create('bot1')['token'])\n"
                "import asyncio\n"
                "print(asyncio.run(c.AsyncBotSessionClient(secret='s').create('bot1'))['token'])\n"
            )
            env = clean_env(HTTPS_PROXY=server.url, SSL_CERT_FILE=cert_file("ca.pem", TEST_CA_PEM))
            out = run_python("-c", code, env=env)
        self.assertEqual(out.stdout.split(), ["tok_1", "tok_1", "tok_1"], out.stderr)
        self.assertEqual(server.tunnels, ["api.chatbotkit.com:443"] * 3)
        self.assertEqual([record.path for record in server.requests], ["/v1/bot/bot1/session/create"] * 3)
        self.assertEqual(server.requests[0].headers["authorization"], "Bearer s")

    def assert_no_secret(self, texts: List[str]) -> None:
        for text in texts:
            for form in secret_forms():
                self.assertNotIn(form, text)

    def raised_by(self, answer: Callable[[int, bytes], Optional[bytes]], **options: Any) -> cbk.ChatBotKitError:
        with RawServer(answer) as server:
            client = cbk.BotSessionClient(secret=SECRET, base_url=server.url, retries=0, timeout=5, **options)
            with self.assertRaises(cbk.ChatBotKitError) as caught:
                client.create("bot")
        if isinstance(options.get("transport"), cbk.KeepAliveTransport):
            options["transport"].close()
        return caught.exception

    def hostile_answers(self) -> Dict[str, bytes]:
        escaped = "".join("\\u%04x" % ord(char) for char in SECRET)
        big = b"a" * (64 * 1024 - 5) + SECRET.encode()
        return {
            "status line": ("HTTP/1.1 XYZ Bearer %s\r\n\r\n" % SECRET).encode(),
            "HTTP/0.9-style": ("Bearer %s\r\n" % SECRET).encode(),
            "version": ("HTTP/2%s 200\r\n\r\n" % SECRET).encode(),
            "reason phrase": raw("HTTP/1.1 500 %s" % SECRET),
            "header name": raw("HTTP/1.1 500 Oops", [(SECRET, "x")]),
            "header value": raw("HTTP/1.1 500 Oops", [("X-Echo", "Bearer " + SECRET)]),
            "broken body": raw("HTTP/1.1 200 OK", body=('{"token": "%s"' % SECRET).encode(), length=1000),
            "straddling the cut": raw("HTTP/1.1 500 Oops", body=big),
            "JSON-escaped": raw(
                "HTTP/1.1 400 Bad", body=('{"code": "%s", "message": "%s"}' % (escaped, escaped)).encode()
            ),
            "JSON-escaped upper": raw("HTTP/1.1 500 Bad", body=('{"message": "%s"}' % escaped.upper()).encode()),
            "percent-encoded Location": raw(
                "HTTP/1.1 302 Found", [("Location", "https://evil.example/?k=" + secret_forms()[3])]
            ),
            "percent-encoded upper": raw("HTTP/1.1 302 Found", [("Location", "/?k=" + secret_forms()[4])]),
            "invalid 2xx": raw("HTTP/1.1 200 OK", body=('{"token": "%s", "expiresAt": NaN}' % SECRET).encode()),
        }

    def test_hostile_answers_never_show_the_secret_with_either_transport(self) -> None:
        for name, data in self.hostile_answers().items():
            for transport in (cbk.UrllibTransport, cbk.KeepAliveTransport):
                with self.subTest(answer=name, transport=transport.__name__):
                    error = self.raised_by(lambda index, request, data=data: data, transport=transport())
                    self.assert_no_secret(reachable_texts(error))
                    if isinstance(error, cbk.APIError):
                        self.assertLessEqual(len(error.body), 64 * 1024)

    def test_too_large_answer_keeps_no_raw_headers_in_its_chain(self) -> None:
        data = raw("HTTP/1.1 200 OK", [("X-Echo", SECRET), (SECRET, "name")], body=b"x" * 2000)
        for transport in (cbk.UrllibTransport, cbk.KeepAliveTransport):
            with self.subTest(transport=transport.__name__):
                error = self.raised_by(lambda i, r: data, transport=transport(max_response_bytes=1000))
                self.assertEqual(error.code, "RESPONSE_TOO_LARGE")
                self.assertIsNone(error.__context__)
                self.assertEqual(error.headers["X-Echo"], "***")  # type: ignore[attr-defined]
                self.assertIn("***", list(error.headers))  # type: ignore[attr-defined]
                self.assert_no_secret(reachable_texts(error))

    def test_masking_survives_the_64_kib_cut(self) -> None:
        data = self.hostile_answers()["straddling the cut"]
        error = self.raised_by(lambda i, r: data)
        self.assertEqual(error.body, "a" * (64 * 1024 - 5) + "***")  # type: ignore[attr-defined]

    def test_json_escaped_echo_is_masked_in_message_and_body(self) -> None:
        error = self.raised_by(lambda i, r: self.hostile_answers()["JSON-escaped"])
        self.assertEqual((error.code, error.message), ("***", "***"))
        self.assertEqual(json.loads(error.body), {"code": "***", "message": "***"})  # type: ignore[attr-defined]

    def test_logs_of_a_hostile_answer_never_show_the_secret(self) -> None:
        import logging

        stream = io.StringIO()
        handler = logging.StreamHandler(stream)
        logger = logging.getLogger("edges")
        logger.addHandler(handler)
        cbk_logger = logging.getLogger("chatbotkit_session")
        cbk_logger.addHandler(handler)
        cbk_logger.setLevel(logging.DEBUG)
        self.addCleanup(cbk_logger.removeHandler, handler)
        self.addCleanup(logger.removeHandler, handler)
        self.addCleanup(cbk_logger.setLevel, logging.NOTSET)
        with RawServer(lambda i, r: self.hostile_answers()["status line"]) as server:
            client = cbk.BotSessionClient(secret=SECRET, base_url=server.url, retries=1, retry_delay=0, timeout=5)
            try:
                client.create("bot")
            except cbk.ChatBotKitError:
                logger.exception("could not create a session")
        text = stream.getvalue()
        self.assertIn("retrying POST", text)
        self.assertIn("could not create a session", text)
        self.assert_no_secret([text])

    @waits
    def test_cli_stderr_of_a_hostile_answer_is_one_line_without_the_secret(self) -> None:
        answers = {
            "status line": self.hostile_answers()["status line"],
            "newline in message": raw("HTTP/1.1 400 Bad", body=b'{"message": "ok\\nFORGED: yes\\r\\u2028x"}'),
            "obs-fold Location": b"HTTP/1.1 302 Found\r\nLocation: /next\r\n FORGED: line\r\nContent-Length: 0\r\n\r\n",
        }

        def run(data: bytes) -> Any:
            with RawServer(lambda i, r: data) as server:
                env = clean_env(CHATBOTKIT_API_SECRET=SECRET)
                return run_python(str(MODULE_FILE), "bot", "--base-url", server.url, "--retries", "0", env=env)

        outs = run_concurrently(run, list(answers.values()))
        for name, out in zip(answers, outs):
            with self.subTest(answer=name):
                self.assertEqual(out.returncode, 1, out.stderr)
                self.assertEqual(len(out.stderr.splitlines()), 1, out.stderr)
                self.assertNotIn("Traceback", out.stderr)
                self.assert_no_secret([out.stdout, out.stderr])


# ---------------------------------------------------------------------------------------------------------
# One client shared
# ---------------------------------------------------------------------------------------------------------


class TestSharing(unittest.TestCase):
    def test_sixteen_threads_share_one_client(self) -> None:
        with LoopbackServer() as server:
            results = run_threads(make_client(server))
        self.assertEqual(results, ["ses_1"] * 80)
        self.assertEqual(
            sorted(record.path for record in server.requests),
            sorted("/api/v1/bot/bot-%d-%d/session/create" % (i, c) for i in range(16) for c in range(5)),
        )


# =========================================================================================================
# 2. Kept-alive connections
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# The HTTP/1.1 exchange and KeepAliveTransport
# ---------------------------------------------------------------------------------------------------------


class TestHTTPExchange(unittest.TestCase):
    """The HTTP/1.1 exchange: without sockets (bytes in, responses out), then on the wire through the pools."""

    OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    def outcomes(self, data: bytes, **options: Any) -> List[Tuple[int, bytes, bool]]:
        """The same stream fed whole, one byte at a time and in threes: each must give the same."""
        results = []
        for step in (0, 1, 3):
            response, reusable = run_exchange(data, step=step, **options)
            results.append((response.status, response.body, reusable))
        self.assertEqual(results.count(results[0]), 3, results)
        return results

    def refused(self, data: bytes, reason: str, **options: Any) -> None:
        for step in (0, 1):
            with self.subTest(step=step), self.assertRaises(cbk.APIConnectionError) as caught:
                run_exchange(data, step=step, **options)
            self.assertIn(reason, caught.exception.message)
            self.assertIn("api.test:80", caught.exception.message)
            self.assertTrue(caught.exception.request_sent)

    def test_the_request_is_one_write_with_host_and_content_length(self) -> None:
        request = cbk.HTTPRequest("POST", "http://api.test/x", {"Authorization": "Bearer s", "X-A": "b"}, b"{}", 5)
        self.assertEqual(
            cbk._request_bytes(request, "api.test:8080", "/v1/x?y=1"),
            b"POST /v1/x?y=1 HTTP/1.1\r\nHost: api.test:8080\r\nAuthorization: Bearer s\r\nX-A: b\r\n"
            b"Content-Length: 2\r\n\r\n{}",
        )

    def test_a_length_framed_answer_leaves_the_connection_reusable(self) -> None:
        self.assertEqual(self.outcomes(self.OK)[0], (200, b"{}", True))
        response, _ = run_exchange(self.OK)
        self.assertEqual(response.headers["content-type"], "application/json")

    def test_any_number_of_interim_answers_is_skipped(self) -> None:
        interim = (
            b"HTTP/1.1 100 Continue\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 102 Processing\r\n\r\n"
            b"HTTP/1.1 103 Early Hints\r\nLink: </b.js>\r\n\r\n"
        )
        self.assertEqual(self.outcomes(interim + self.OK)[0], (200, b"{}", True))
        response, _ = run_exchange(interim + self.OK)
        self.assertNotIn("link", response.headers)
        self.refused(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "101 Switching Protocols")

    def test_chunked_bodies_with_extensions_and_trailers(self) -> None:
        data = (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'3;ext=1\r\n{"a\r\n1 \r\n"\r\nB\r\n: 12345678}\r\n0\r\nX-Trailer: t\r\n\r\n'
        )
        self.assertEqual(self.outcomes(data)[0], (200, b'{"a": 12345678}', True))
        self.assertEqual(self.outcomes(data.replace(b"chunked", b"CHUNKED"))[0][1], b'{"a": 12345678}')

    def test_close_delimited_bodies_end_with_the_connection(self) -> None:
        for version in (b"1.1", b"1.0"):
            data = b"HTTP/" + version + b" 200 OK\r\n\r\n" + b"x" * 100
            self.assertEqual(self.outcomes(data)[0], (200, b"x" * 100, False))

    def test_reuse_follows_the_keep_alive_rules(self) -> None:
        cases = [
            (self.OK, True),
            (self.OK.replace(b"OK\r\n", b"OK\r\nConnection: keep-alive, Close\r\n"), False),
            (self.OK.replace(b"1.1", b"1.0"), False),  # HTTP/1.0 closes, even asked to keep alive (as h11)
            (self.OK.replace(b"1.1", b"1.0").replace(b"OK\r\n", b"OK\r\nConnection: keep-alive\r\n"), False),
            (b"HTTP/1.1 204 No Content\r\n\r\n", True),
            (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", True),  # no body, whatever it says
        ]
        for data, reusable in cases:
            with self.subTest(data=data):
                self.assertEqual(self.outcomes(data)[0][2], reusable)
        # Bytes left over are never another caller's answer. (Bytes that arrive after the answer are found
        # by the check before reuse: see the transports' tests.)
        self.assertFalse(run_exchange(self.OK + b"HTTP/1.1 200 OK\r\n")[1])

    def test_bare_line_feeds_are_accepted_in_the_header_section(self) -> None:
        self.assertEqual(self.outcomes(self.OK.replace(b"\r\n", b"\n"))[0], (200, b"{}", True))

    def test_what_rfc_9112_forbids_is_a_connection_error_saying_what(self) -> None:
        head = b"HTTP/1.1 200 OK\r\n"
        cases = [
            (b"HTTP/1.1 20 OK\r\n\r\n", "malformed status line"),
            (b"HTTP/2 200 OK\r\n\r\n", "malformed status line"),
            (b"ICY 200 OK\r\n\r\n", "malformed status line"),
            (b"\r\n\r\n", "malformed status line"),
            (head + b"Bad Name: x\r\n\r\n", "malformed header line"),
            (head + b"Name : x\r\n\r\n", "malformed header line"),
            (head + b"X-A: a\x00b\r\n\r\n", "malformed header line"),
            (head + b"X-A: a\r\n b\r\nContent-Length: 0\r\n\r\n", "obs-fold"),
            (head + b"Content-Length: -1\r\n\r\n", "invalid Content-Length"),
            (head + b"Content-Length: 1e3\r\n\r\n", "invalid Content-Length"),
            (head + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", "conflicting Content-Length"),
            (head + b"Content-Length: 2, 3\r\n\r\n{}", "conflicting Content-Length"),
            (head + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n0\r\n\r\n", "both Transfer-Encoding"),
            (head + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", "Transfer-Encoding other than"),
            (head + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", "malformed chunk size"),
            (head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed chunk size"),
            (head + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", "chunk data longer"),
            (head + b"Transfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", "malformed trailer"),
            (b"", "no answer"),
            (head + b"Content-Length: 5\r\n\r\nab", "in the middle of the body"),
            (head + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab", "in the middle of the body"),
            (b"HTTP/1.1 200 OK\r\nX-A:", "in the middle of the header section"),
            (head + b"X-A: " + b"a" * 70000 + b"\r\n\r\n", "header section longer than"),
        ]
        for data, reason in cases:
            with self.subTest(data=data[:80]):
                self.refused(data, reason)

    def test_the_size_cap_is_enforced_before_reading_past_it(self) -> None:
        head = b"HTTP/1.1 200 OK\r\n"
        for data in (
            head + b"Content-Length: 11\r\n\r\n",  # refused at the header section
            head + b"Transfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\n",  # at the second chunk's size
            head + b"\r\n" + b"x" * 11,  # close-delimited: at the eleventh byte
        ):
            with self.subTest(data=data), self.assertRaises(cbk.APIError) as caught:
                run_exchange(data, limit=10)
            self.assertEqual((caught.exception.code, caught.exception.status), ("RESPONSE_TOO_LARGE", 200))
        self.assertEqual(run_exchange(head + b"Content-Length: 10\r\n\r\n" + b"x" * 10, limit=10)[0].body, b"x" * 10)

    @waits
    def test_interim_answers_are_skipped_and_never_reach_the_next_tenant(self) -> None:
        for tls in (False, True):
            with RawServer(early_hints, keep_open=True, tls=tls) as server:
                for name, create, close in every_client(server):
                    with self.subTest(transport=name, tls=tls):
                        first, second = create("alice"), create("bob")
                        close()
                        self.assertTrue(first["token"].startswith("tok-alice-"), first)
                        self.assertTrue(second["token"].startswith("tok-bob-"), second)

    @waits
    def test_a_pooled_connection_holding_unasked_bytes_is_not_reused(self) -> None:
        def forged(index: int, request: bytes) -> bytes:
            # The answer (large, so that TLS splits it over records), then, in the same write, another one
            # nobody asked for: read as the next call's answer, it would hand one tenant another's token.
            answer = json.loads(token_answer(index, request).split(b"\r\n\r\n", 1)[1])
            body = json.dumps(dict(answer, padding="x" * (20000 + index))).encode()
            return raw("HTTP/1.1 200 OK", [], body) + token_answer(index + 100, b"/bot/intruder/session")

        for tls in (False, True):
            with RawServer(forged, keep_open=True, tls=tls) as server:
                for name, create, close in every_client(server)[1:]:
                    with self.subTest(transport=name, tls=tls):
                        create("alice")
                        second = create("bob")
                        close()
                        self.assertTrue(second["token"].startswith("tok-bob-"), second)

    @waits
    def test_a_slow_connect_and_a_stalled_tls_handshake_share_one_deadline(self) -> None:
        # A full accept queue drops the client's SYN, which it sends again after a second; the server then
        # accepts but never speaks TLS. With one deadline the call ends at timeout; 0.2.0 took 2.4-2.5 s.
        def call(transport: Optional[cbk.KeepAliveTransport]) -> Tuple[Any, float, int]:
            listener = socket.socket()
            listener.bind(("127.0.0.1", 0))
            listener.listen(0)  # one connection may wait in the queue
            port = listener.getsockname()[1]
            filler = socket.create_connection(("127.0.0.1", port), timeout=1)  # and this one does
            accepted: List[socket.socket] = []

            def drain() -> None:
                time.sleep(0.5)
                listener.settimeout(2)
                with contextlib.suppress(OSError):
                    accepted.extend(listener.accept()[0] for _ in range(2))  # the filler, then the client

            drainer = threading.Thread(target=drain)
            drainer.start()
            try:
                client = cbk.BotSessionClient(
                    secret=SECRET,
                    base_url="https://127.0.0.1:%d" % port,
                    timeout=1.5,
                    total_timeout=1.5,
                    retries=0,
                    transport=transport,
                    ssl_context=client_tls_context(),
                )
                return (*timed_call(client.create, "bot"), len(accepted))
            finally:
                drainer.join()
                for sock in [filler, listener, *accepted]:
                    sock.close()

        transports = [("UrllibTransport", None), ("KeepAliveTransport", cbk.KeepAliveTransport())]
        results = run_concurrently(call, [transport for _, transport in transports])  # each on its own port
        for (name, _), (outcome, took, accepted) in zip(transports, results):
            with self.subTest(transport=name):
                self.assertIsInstance(outcome, cbk.APITimeoutError)
                self.assertLess(took, 1.5 + 0.5)  # (0.2.0 took 2.4-2.5 s)
                self.assertEqual(accepted, 2)  # the client did connect, late, then waited for TLS

    @waits
    def test_close_during_a_call_closes_that_connection_when_it_ends(self) -> None:
        with LoopbackServer(slow_app(0.3)) as server, cbk.KeepAliveTransport() as pool:
            client = make_client(server, transport=pool)
            worker = threading.Thread(target=client.create, args=("bot",))
            worker.start()
            time.sleep(0.1)
            pool.close()
            worker.join(5)
            self.assertIn("idle_connections=0", repr(pool))
            client.create("bot")
            self.assertEqual(server.connections(), 2)  # the first was closed, not reused

    def test_client_lifecycle(self) -> None:
        import asyncio

        with LoopbackServer() as server:
            own = cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url)
            child = own.extend(run_as_user_id="alice")

            async def use() -> None:
                async with own:
                    await own.create("bot")
                    await child.create("bot")
                    self.assertIn("idle_connections=1", repr(own._transport))
                self.assertIn("idle_connections=0", repr(own._transport))  # closed for the whole family
                await child.create("bot")  # a closed client still works: it connects again
                await child.aclose()

            asyncio.run(use())
            with cbk.KeepAliveTransport() as pool:
                with make_client(server, transport=pool) as mine:
                    mine.create("bot")
                self.assertIn("idle_connections=1", repr(pool))  # a transport passed in is its owner's to close
            with make_client(server) as plain:
                self.assertEqual(plain.create("bot")["id"], "ses_1")
        self.assertEqual(server.connections(), 4)


class TestKeepAliveTransport(unittest.TestCase):
    """Pooled connections: reuse, TLS, staleness, delivering each POST once, loopback without DNS."""

    def pooled(
        self, server: LoopbackServer, transport: Optional[cbk.KeepAliveTransport] = None, **options: Any
    ) -> cbk.BotSessionClient:
        transport = transport or cbk.KeepAliveTransport()
        self.addCleanup(transport.close)
        return make_client(server, "KeepAliveTransport", transport=transport, **options)  # type: ignore[no-any-return]

    def test_calls_reuse_one_connection(self) -> None:
        with LoopbackServer() as server:
            client = self.pooled(server)
            for index in range(10):
                self.assertEqual(client.create("bot%d" % index)["id"], "ses_1")
        self.assertEqual(len(server.requests), 10)
        self.assertEqual(server.connections(), 1)

    def test_tls_calls_reuse_one_verified_connection(self) -> None:
        with LoopbackServer(tls=True) as server:
            client = self.pooled(server, cbk.KeepAliveTransport(ssl_context=client_tls_context()))
            for _ in range(5):
                client.create("bot")
            also = make_client(server, ssl_context=client_tls_context())  # the default transport with the same context
            self.assertEqual(also.create("bot")["id"], "ses_1")
        self.assertEqual(server.connections(), 2)

    def test_tls_verification_failure_names_the_reason(self) -> None:
        with LoopbackServer(tls=True) as server:
            for transport in (cbk.UrllibTransport(), cbk.KeepAliveTransport()):
                with self.subTest(transport=type(transport).__name__):
                    with self.assertRaises(cbk.APIConnectionError) as caught:
                        make_client(server, transport=transport, retries=0).create("bot")
                    self.assertEqual(caught.exception.code, "TLS_ERROR")
                    self.assertIn("CERTIFICATE_VERIFY_FAILED", str(caught.exception))
                    self.assertIn("127.0.0.1:%d" % server.port, str(caught.exception))
            self.assertEqual(server.requests, [])

    @keeps_time
    def test_server_closing_idle_connections_sees_each_post_once(self) -> None:
        with LoopbackServer(idle_timeout=0.1) as server:
            client = self.pooled(server, retries=0)
            for index in range(4):
                self.assertEqual(client.create("bot%d" % index)["id"], "ses_1")
                time.sleep(0.2)  # the server hangs up on the idle connection (after 0.1 s) meanwhile
        self.assertEqual(
            [record.path for record in server.requests], ["/api/v1/bot/bot%d/session/create" % i for i in range(4)]
        )
        self.assertEqual(server.connections(), 4)

    @waits
    def test_expired_idle_connections_are_not_reused(self) -> None:
        with LoopbackServer() as server:
            client = self.pooled(server, cbk.KeepAliveTransport(idle_timeout=0.05))
            client.create("a")
            time.sleep(0.1)
            client.create("b")
        self.assertEqual(server.connections(), 2)

    def test_request_read_whole_then_dropped_is_never_resent_by_the_pool(self) -> None:
        def lose_second_request(handler: Any, record: Recorded) -> None:
            if handler.connection_index == 1 and handler.requests_on_connection == 2:
                hang_up(handler, record)
            else:
                session_app(handler, record)

        with LoopbackServer(lose_second_request) as server:
            client = self.pooled(server, retries=0)
            client.create("first")
            with self.assertRaises(cbk.APIConnectionError) as caught:
                client.create("second")  # the server read it whole: it may have created the session
            self.assertIn("127.0.0.1:%d" % server.port, str(caught.exception))
        paths = [record.path.split("/")[4] for record in server.requests]
        self.assertEqual(paths, ["first", "second"])  # one delivery, no resend within the attempt

    def test_each_client_retry_delivers_once(self) -> None:
        def answer_only_first(handler: Any, record: Recorded) -> None:
            if handler.connection_index == 1 and handler.requests_on_connection == 1:
                session_app(handler, record)
            else:
                hang_up(handler, record)

        with LoopbackServer(answer_only_first) as server:
            client = self.pooled(server, retries=3)
            client.create("first")
            with self.assertRaises(cbk.APIConnectionError):
                client.create("second")
        self.assertEqual(len(server.requests), 1 + 4)  # "second": one delivery per attempt, 4 attempts

    def test_failed_send_on_a_reused_connection_is_resent_on_a_fresh_one(self) -> None:
        with LoopbackServer() as server:
            transport = cbk.KeepAliveTransport()
            client = self.pooled(server, transport, retries=0)
            client.create("first")
            ((connection, _),) = next(iter(transport._idle.values()))
            connection.sock.shutdown(socket.SHUT_WR)  # writing on it now fails: nothing can reach the server
            self.assertEqual(client.create("second")["id"], "ses_1")
        self.assertEqual([record.path.split("/")[4] for record in server.requests], ["first", "second"])
        self.assertEqual(server.connections(), 2)

    def test_fresh_connection_failure_is_not_resent(self) -> None:
        with LoopbackServer(hang_up) as server, self.assertRaises(cbk.APIConnectionError):
            self.pooled(server, retries=0).create("bot")
        self.assertEqual(len(server.requests), 1)

    def test_connection_dropped_mid_response_is_an_error_and_not_resent(self) -> None:
        def partial(handler: Any, record: Recorded) -> None:
            if handler.requests_on_connection == 1 and handler.connection_index == 1:
                return session_app(handler, record)
            handler.send_response(200)
            handler.send_header("Content-Length", "100")
            handler.end_headers()
            handler.wfile.write(b'{"id": "ses')
            handler.close_connection = True

        with LoopbackServer(partial) as server:
            client = self.pooled(server, retries=0)
            client.create("first")
            with self.assertRaises(cbk.APIConnectionError):
                client.create("second")
        self.assertEqual(len(server.requests), 2)

    def test_sixteen_threads_share_one_pooled_client(self) -> None:
        transport = cbk.KeepAliveTransport()
        with LoopbackServer() as server:
            results = run_threads(self.pooled(server, transport))
        self.assertEqual(results, ["ses_1"] * 80)
        self.assertEqual(len(server.requests), 80)
        self.assertLessEqual(server.connections(), 16 + 10)
        self.assertLessEqual(sum(len(idle) for idle in transport._idle.values()), 10)

    def test_close_leaves_no_socket_open(self) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            with LoopbackServer() as server:
                with cbk.KeepAliveTransport() as transport:
                    client = make_client(server, transport=transport)
                    for _ in range(3):
                        client.create("bot")
                    self.assertIn("idle_connections=1", repr(transport))
                self.assertIn("idle_connections=0", repr(transport))
                self.assertEqual(client.create("again")["id"], "ses_1")  # still usable after close()
                transport.close()
                del client, transport
                gc.collect()
        self.assertEqual(
            [str(warning.message) for warning in caught if issubclass(warning.category, ResourceWarning)], []
        )

    def test_no_resource_warning_under_w_error(self) -> None:
        code = (
            "import gc, chatbotkit_session as c\n"
            "with c.KeepAliveTransport() as transport:\n"
            "    client = c.BotSessionClient(secret='s', base_url=%r, transport=transport)\n"
            "    print(sum(client.create('b')['id'] == 'ses_1' for _ in range(3)))\n"
            "del client, transport\n"
            "gc.collect()\n"
        )
        with LoopbackServer() as server:
            out = run_python("-W", "error", "-c", code % server.url, env=clean_env())
        self.assertEqual((out.returncode, out.stdout.strip(), out.stderr), (0, "3", ""))

    def test_each_attempt_delivers_the_post_once_with_either_transport(self) -> None:
        for transport in (cbk.UrllibTransport, cbk.KeepAliveTransport):
            for retries in (0, 3):
                with self.subTest(transport=transport.__name__, retries=retries), RawServer(
                    lambda i, r: None
                ) as server:
                    used = transport()
                    self.addCleanup(getattr(used, "close", lambda: None))
                    client = cbk.BotSessionClient(
                        secret=SECRET, base_url=server.url, retries=retries, retry_delay=0, timeout=5, transport=used
                    )
                    with self.assertRaises(cbk.APIConnectionError):
                        client.create("bot")
                    self.assertEqual(len(server.received), retries + 1)

    def test_localhost_names_reach_loopback_without_dns(self) -> None:
        # "no-such-name.localhost" has no entry in /etc/hosts or DNS: only our own routing reaches the server.
        for transport in (cbk.UrllibTransport, cbk.KeepAliveTransport):
            with self.subTest(transport=transport.__name__), LoopbackServer() as server:
                url = "http://no-such-name.localhost:%d" % server.port
                used = transport()
                self.addCleanup(getattr(used, "close", lambda: None))
                client = cbk.BotSessionClient(secret=SECRET, base_url=url, transport=used, retries=0)
                self.assertEqual(client.create("bot")["id"], "ses_1")
                self.assertEqual(server.requests[0].headers["host"], "no-such-name.localhost:%d" % server.port)


# =========================================================================================================
# 3. asyncio
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# The asyncio client and AsyncKeepAliveTransport
# ---------------------------------------------------------------------------------------------------------


class TestAsyncClient(unittest.TestCase):
    def test_create_functional_form_and_extend(self) -> None:
        async def main(url: str) -> Tuple[Any, Any, Any]:
            client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=url, retry_delay=0)
            other = client.extend(run_as_user_id="alice")
            async with client:
                first = await client.create("bot", {"messages": [{"type": "user", "text": "Hi"}]})
                second = await cbk.acreate_bot_session(other, "bot")
            return first, second, other

        with LoopbackServer() as server:
            first, second, other = run_async(main(server.url))
        self.assertEqual(first, dict(SESSION, messages=[{"type": "user", "text": "Hi"}]))
        self.assertEqual(second["token"], "tok_1")
        self.assertIs(type(other), cbk.AsyncBotSessionClient)
        self.assertEqual([record.headers.get("x-runas-user-id") for record in server.requests], [None, "alice"])
        self.assertEqual(server.requests[0].headers["authorization"], "Bearer " + SECRET)
        with self.assertRaises(TypeError):
            run_async(cbk.acreate_bot_session(cbk.BotSessionClient(secret=SECRET), "bot"))  # type: ignore[arg-type]

    def test_fifty_concurrent_creates_never_block_the_loop(self) -> None:
        import asyncio

        async def main(url: str) -> Tuple[float, List[float], int]:
            client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=url)
            stop, lags = asyncio.Event(), []  # type: ignore[var-annotated]
            beat = asyncio.ensure_future(heartbeat(stop, lags))
            await asyncio.sleep(0.05)
            started = time.monotonic()
            sessions = await asyncio.gather(*(client.create("bot%d" % index) for index in range(50)))
            elapsed = time.monotonic() - started
            await client.aclose()
            stop.set()
            await beat
            return elapsed, lags, len(sessions)

        with LoopbackServer(slow_app(0.3)) as server:
            elapsed, lags, count = run_async(main(server.url))
        self.assertEqual(count, 50)
        self.assertEqual(len(server.requests), 50)
        self.assertLess(elapsed, 1.3)
        if os.environ.get("CBK_REPORT_LAG"):
            print("lag %.1f ms elapsed %.3f s" % (max(lags) * 1000, elapsed), file=sys.stderr)
        self.assertLess(max(lags), 0.1)

    def test_async_transport_is_awaited_in_the_loop_thread(self) -> None:
        threads: List[int] = []

        async def transport(request: cbk.HTTPRequest) -> cbk.HTTPResponse:
            threads.append(threading.get_ident())
            return json_response(200, SESSION)

        async def main() -> Any:
            threads.append(threading.get_ident())
            return await cbk.AsyncBotSessionClient(secret=SECRET, transport=transport).create("bot")

        self.assertEqual(run_async(main())["id"], "ses_1")
        self.assertEqual(len(set(threads)), 1)
        with self.assertRaisesRegex(TypeError, "AsyncBotSessionClient"):
            cbk.BotSessionClient(secret=SECRET, transport=transport)

    def test_retries_wait_with_asyncio_sleep_and_keep_the_loop_free(self) -> None:
        import asyncio

        class Flaky:
            calls = 0

            async def __call__(self, request: cbk.HTTPRequest) -> cbk.HTTPResponse:
                self.calls += 1
                return json_response(503, {}) if self.calls < 3 else json_response(200, SESSION)

        async def main(transport: Flaky) -> Tuple[Any, List[float], float]:
            stop, lags = asyncio.Event(), []  # type: ignore[var-annotated]
            beat = asyncio.ensure_future(heartbeat(stop, lags))
            started = time.monotonic()
            session = await cbk.AsyncBotSessionClient(secret=SECRET, transport=transport, retry_delay=0.1).create("bot")
            elapsed = time.monotonic() - started
            stop.set()
            await beat
            return session, lags, elapsed

        flaky = Flaky()
        session, lags, elapsed = run_async(main(flaky))
        self.assertEqual((session["id"], flaky.calls), ("ses_1", 3))
        self.assertGreater(elapsed, 0.1 * 0.75 + 0.2 * 0.75)  # the two backoff waits, jittered
        self.assertGreater(len(lags), 10)
        self.assertLess(max(lags), 0.05)

    def test_cancellation_returns_at_once_and_the_thread_ends_quietly(self) -> None:
        import asyncio

        problems: List[Any] = []

        async def main(url: str) -> float:
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(lambda loop, context: problems.append(context))
            client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=url, timeout=2, retries=0)
            started = time.monotonic()
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(client.create("bot"), 0.1)
            returned = time.monotonic() - started - 0.1
            await asyncio.sleep(0.45)  # the server answers meanwhile, to a closed connection
            await client.aclose()
            return returned

        with LoopbackServer(slow_app(0.3)) as server, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            returned = run_async(main(server.url))
            gc.collect()
        self.assertLess(returned, 0.05)
        self.assertEqual(len(server.requests), 1)
        self.assertEqual(problems, [])
        self.assertEqual([str(w.message) for w in caught], [])

    @waits
    def test_async_transport_is_bounded_by_the_attempt_timeout(self) -> None:
        import asyncio

        async def hangs(request: cbk.HTTPRequest) -> cbk.HTTPResponse:
            await asyncio.sleep(30)
            raise AssertionError("not reached")

        started = time.monotonic()
        with self.assertRaises(cbk.APITimeoutError):
            run_async(
                cbk.AsyncBotSessionClient(secret=SECRET, transport=hangs, timeout=0.1, retries=1, retry_delay=0).create(
                    "bot"
                )
            )
        self.assertLess(time.monotonic() - started, 1.0)

    def test_same_errors_and_secrecy_as_the_sync_client(self) -> None:
        data = ("HTTP/1.1 XYZ Bearer %s\r\n\r\n" % SECRET).encode()
        for transport in (cbk.UrllibTransport, cbk.KeepAliveTransport):
            with self.subTest(transport=transport.__name__), RawServer(lambda i, r: data) as server:
                used = transport()
                self.addCleanup(getattr(used, "close", lambda: None))
                client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url, retries=0, transport=used)
                with self.assertRaises(cbk.APIConnectionError) as caught:
                    run_async(client.create("bot"))
                for text in reachable_texts(caught.exception):
                    self.assertNotIn(SECRET, text)
        with self.assertRaisesRegex(TypeError, "request.meta"):
            run_async(cbk.AsyncBotSessionClient(secret=SECRET, transport=never_called).create("bot", {"meta": [1]}))


class TestAsyncTransport(unittest.TestCase):
    @waits
    def test_many_concurrent_creates_run_on_the_loop_without_threads(self) -> None:
        import asyncio

        async def main(url: str) -> Tuple[List[Any], Any]:
            async with cbk.AsyncBotSessionClient(secret=SECRET, base_url=url, timeout=10) as client:
                sessions = await asyncio.gather(*(client.create("bot%d" % index) for index in range(200)))
                return sessions, client._workers  # no thread pool at all with the native transport

        with LoopbackServer(slow_app(0.05)) as server:
            sessions, threads = run_async(main(server.url))
        self.assertEqual([session["id"] for session in sessions], ["ses_1"] * 200)
        self.assertIsNone(threads)
        self.assertEqual(len(server.requests), 200)

    @unittest.skipIf(
        TEST_LOOP == "proactor-interface",
        "on the proactor, a client carried from one asyncio.run() to the next leaves its idle transports to "
        "asyncio, which warns as it collects them: the README says to close the client before its loop ends",
    )
    def test_one_client_serves_event_loops_in_turn(self) -> None:
        async def twice(client: cbk.AsyncBotSessionClient) -> List[str]:
            return [(await client.create("bot"))["token"] for _ in range(2)]

        with LoopbackServer() as server, warnings.catch_warnings():
            warnings.simplefilter("error")
            client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url)
            tokens = [token for _ in range(3) for token in run_async(twice(client))]
            idle = repr(client._transport)
            client.close()
            gc.collect()  # an unclosed socket would warn here, as an error
        self.assertEqual(tokens, ["tok_1"] * 6)
        self.assertEqual(server.connections(), 3)  # a connection per loop, reused within it
        self.assertIn("idle_connections=1", idle)  # those of the closed loops were closed

    @waits
    def test_cancelling_closes_the_exchange_in_flight_and_sends_nothing_unsent(self) -> None:
        import asyncio

        async def main(url: str) -> Any:
            client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=url, retries=0)
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(client.create("slow"), 0.1)
            idle = repr(client._transport)
            task = asyncio.ensure_future(client.create("never"))
            task.cancel()  # before it ran: nothing is sent
            with self.assertRaises(asyncio.CancelledError):
                await task
            session = await client.create("bot")
            await client.aclose()
            return idle, session

        with LoopbackServer(slow_app(0.2)) as server:
            idle, session = run_async(main(server.url))
            time.sleep(0.3)  # past the answer to "slow": a request sent late would have arrived
        self.assertIn("idle_connections=0", idle)
        self.assertEqual(session["id"], "ses_1")
        self.assertEqual([record.path.split("/")[-3] for record in server.requests], ["slow", "bot"])
        self.assertEqual(server.connections(), 2)

    @keeps_time
    def test_a_synchronous_transport_in_threads_keeps_every_promise(self) -> None:
        import asyncio

        release = threading.Event()
        calls: List[str] = []

        def blocking(request: cbk.HTTPRequest) -> cbk.HTTPResponse:
            calls.append(request.url.split("/")[-3])
            release.wait(5)
            return json_response(200, SESSION)

        async def main() -> Tuple[float, int]:
            client = cbk.AsyncBotSessionClient(secret=SECRET, transport=blocking, retries=0, timeout=5)
            busy = [asyncio.ensure_future(client.create("busy")) for _ in range(cbk._ASYNC_WORKERS)]
            await asyncio.sleep(0.15)  # every worker thread is now blocked
            started = time.monotonic()
            with self.assertRaises(cbk.APITimeoutError):  # the wait for a thread counts in total_timeout
                await client.extend(total_timeout=0.5).create("budget")
            waited = time.monotonic() - started
            with self.assertRaises(asyncio.TimeoutError):  # cancelled while it waits: never sent
                await asyncio.wait_for(client.create("cancelled"), 0.1)
            release.set()
            await asyncio.gather(*busy)
            await asyncio.sleep(0.1)  # a job queued behind the busy ones would have started by now
            return waited, len(calls)

        waited, count = run_async(main())
        self.assertLess(waited, 0.5 + 0.2)
        self.assertEqual(count, cbk._ASYNC_WORKERS)
        self.assertNotIn("cancelled", calls)
        self.assertNotIn("budget", calls)

    def test_whatever_a_threaded_transport_raises_reaches_the_caller(self) -> None:
        class Stop(BaseException):
            pass

        def stops(request: cbk.HTTPRequest) -> cbk.HTTPResponse:
            raise Stop("from the transport")

        client = cbk.AsyncBotSessionClient(secret=SECRET, transport=stops, retries=0, timeout=5)
        with self.assertRaises(Stop):
            run_async(asyncio_wait(client.create("bot"), 5))

    def test_a_thread_that_cannot_start_fails_the_call_at_once_and_sends_nothing(self) -> None:
        calls: List[cbk.HTTPRequest] = []

        class NoThreads:
            allocate_lock = staticmethod(threading.Lock)

            @staticmethod
            def start_new_thread(*args: Any) -> int:
                raise RuntimeError("can't start new thread")

        with unittest.mock.patch.object(cbk, "_thread", NoThreads):
            client = cbk.AsyncBotSessionClient(secret=SECRET, transport=calls.append, retries=2, retry_delay=0)
            with self.assertRaises(cbk.APIConnectionError) as caught:
                run_async(asyncio_wait(client.create("bot"), 5))
        self.assertEqual((caught.exception.code, caught.exception.attempts, calls), ("NO_THREAD", 3, []))

    def test_a_callable_returning_an_awaitable_is_awaited(self) -> None:
        async def answer(request: cbk.HTTPRequest) -> cbk.HTTPResponse:
            return json_response(200, SESSION)

        client = cbk.AsyncBotSessionClient(secret=SECRET, transport=lambda request: answer(request))
        self.assertEqual(run_async(client.create("bot"))["id"], "ses_1")


# ---------------------------------------------------------------------------------------------------------
# Both pooled transports against hostile servers, proxies, threads and forks
# ---------------------------------------------------------------------------------------------------------


class TestPooledTransportsAtTheEdges(unittest.TestCase):
    """What a hostile server, a proxy and a process model do to the pooled transports, on every loop."""

    @waits
    def test_an_early_answer_is_read_while_the_request_is_still_being_written(self) -> None:
        big = {"messages": [{"type": "user", "text": "x" * (8 << 20)}]}  # more than the socket buffers hold
        answer = raw("HTTP/1.1 413 Content Too Large", [("Connection", "close")], b'{"message": "too large"}')
        for name in LOOP_KINDS:
            with self.subTest(transport=name):
                server = held_answer(answer, hold=4.0)
                run = dict(clients_on_every_loop("http://127.0.0.1:%d" % server.getsockname()[1], timeout=3))[name]
                started = time.monotonic()
                with self.assertRaises(cbk.APIError) as caught:
                    run(lambda create: create("bot", big))
                took = time.monotonic() - started
                server.close()
                self.assertEqual((caught.exception.status, caught.exception.message), (413, "too large"))
                self.assertLess(took, 1.5)

    @waits
    def test_a_100_continue_before_the_body_is_read_is_skipped_and_the_answer_read(self) -> None:
        def then(conn: socket.socket, head: bytes) -> None:
            length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
            got = len(head) - head.index(b"\r\n\r\n") - 4
            while got < length:  # the whole body: a close with bytes unread would reset the answer
                got += len(conn.recv(1 << 20))
            conn.sendall(token_answer(0, b"/bot/big/session"))

        request = {"messages": [{"type": "user", "text": "x" * (8 << 20)}]}  # more than the socket buffers hold
        for kind in ("KeepAliveTransport", "AsyncKeepAliveTransport"):
            with self.subTest(transport=kind):
                server = held_answer(b"HTTP/1.1 100 Continue\r\n\r\n", 0, then=then)
                session = self.create_expecting(kind, "http://127.0.0.1:%d" % server.getsockname()[1], request)
                server.close()
                self.assertEqual(session["token"], "tok-big-0")

    @staticmethod
    def create_expecting(kind: str, url: str, request: Any) -> Any:
        """create() through a transport wrapping *kind* that adds ``Expect: 100-continue``."""
        import asyncio

        def expecting(request: cbk.HTTPRequest) -> cbk.HTTPRequest:
            return dataclasses.replace(request, headers=dict(request.headers, Expect="100-continue"))

        options: Dict[str, Any] = dict(secret=SECRET, base_url=url, retries=0, timeout=5)
        if kind == "KeepAliveTransport":
            with cbk.KeepAliveTransport() as blocking:
                return cbk.BotSessionClient(transport=lambda r: blocking(expecting(r)), **options).create(
                    "big", request
                )

        async def main() -> Any:
            async with cbk.AsyncKeepAliveTransport() as native:

                async def wrapped(r: cbk.HTTPRequest) -> cbk.HTTPResponse:
                    return await native(expecting(r))

                client = cbk.AsyncBotSessionClient(transport=wrapped, **options)
                return await asyncio.wait_for(client.create("big", request), 10)

        return run_async(main())

    @unittest.skipUnless(hasattr(os, "fork"), "needs os.fork")
    def test_a_forked_child_that_closes_the_client_leaves_the_parent_hearing_its_sockets(self) -> None:
        import asyncio

        async def main(url: str) -> Tuple[str, str, float, int]:
            client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=url, retries=0, timeout=3)
            first = (await client.create("parent"))["token"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded process": the server's
                pid = os.fork()
            if pid == 0:  # the child lets go of the parent's pool, as a worker process would at its start
                try:
                    client.close()
                finally:
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            started = asyncio.get_running_loop().time()
            again = (await client.create("again"))["token"]  # on the connection the parent pooled
            took = asyncio.get_running_loop().time() - started
            await client.aclose()
            return first, again, took, status

        with RawServer(token_answer, keep_open=True) as server:
            first, again, took, status = run_async(main(server.url))
            peers = list(server.peers)
        self.assertEqual(status, 0)
        self.assertEqual((first[:11], again[:10]), ("tok-parent-", "tok-again-"))
        self.assertLess(took, 1.0)
        self.assertEqual(peers[0], peers[1])  # the parent's pooled connection, still heard

    def test_proxied_asyncio_calls_keep_their_deadline_and_send_nothing_after_it(self) -> None:
        import asyncio

        async def timed(call: Any) -> Tuple[Any, float]:
            started = time.monotonic()
            try:
                outcome = await call
            except cbk.ChatBotKitError as error:
                outcome = error
            return outcome, time.monotonic() - started

        with LoopbackServer(tls=True) as api, LoopbackProxy(("127.0.0.1", api.port), hold=0.6) as proxy:
            with proxy_environment(proxy.url):
                client = cbk.AsyncBotSessionClient(
                    secret=SECRET, retries=0, total_timeout=0.3, ssl_context=client_tls_context()
                )

            async def main() -> List[Tuple[Any, float]]:
                return await asyncio.gather(*(timed(client.create("bot%d" % index)) for index in range(24)))

            results = run_async(main())
            time.sleep(0.4)  # past the proxy's hold: a tunnel opened late must carry nothing
            self.assertEqual(api.requests, [])
        self.assertEqual({type(outcome) for outcome, _ in results}, {cbk.APITimeoutError})
        self.assertLess(max(took for _, took in results), 0.3 + 0.3)

    def test_a_call_cancelled_while_the_proxy_holds_its_connect_sends_nothing(self) -> None:
        import asyncio

        with LoopbackServer(tls=True) as api, LoopbackProxy(("127.0.0.1", api.port), hold=0.3) as proxy:
            with proxy_environment(proxy.url):
                client = cbk.AsyncBotSessionClient(
                    secret=SECRET, retries=0, timeout=5, ssl_context=client_tls_context()
                )

            async def main() -> bool:
                task = asyncio.ensure_future(client.create("bot"))
                await asyncio.sleep(0.1)
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    return True
                return False

            cancelled = run_async(main())
            time.sleep(0.3)  # past the proxy's hold (0.2 s after the cancellation)
            self.assertTrue(cancelled)
            self.assertEqual(len(proxy.tunnels), 1)
            self.assertEqual(api.requests, [])

    def test_a_long_malformed_line_is_masked_before_it_is_cut(self) -> None:
        pad = "x" * 178  # the secret straddles the 200th character of the line
        answers = {
            "status line": ("HTTP/1.1 20 %s%s\r\n\r\n" % (pad, SECRET)).encode(),
            "header line": raw("HTTP/1.1 200 OK", [("X-Note", "a")]).replace(
                b"X-Note: a", ("X%s %s" % (pad, SECRET)).encode()
            ),
            "trailer line": (
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nBad trailer%s %s\r\n\r\n" % (pad, SECRET)
            ).encode(),
        }
        for kind, answer in answers.items():
            with RawServer(lambda index, request, answer=answer: answer, keep_open=True) as server:
                for name, run in clients_on_every_loop(server.url):
                    with self.subTest(line=kind, transport=name):
                        with self.assertRaises(cbk.APIConnectionError) as caught:
                            run(lambda create: create("bot"))
                        texts = "\n".join(reachable_texts(caught.exception))
                        self.assertIn("***", texts)
                        for start in range(len(SECRET) - 5):
                            self.assertNotIn(SECRET[start : start + 6], texts)

    def test_a_method_or_header_that_is_not_one_line_is_refused_before_any_byte(self) -> None:
        import asyncio

        request = cbk.HTTPRequest("POST", "", {"Content-Type": "application/json"}, b"{}", 5)
        bad = [
            ("header value", {"headers": {"X-Trace": "1\r\nX-RunAs-User-Id: admin"}}, "X-Trace"),
            ("header name", {"headers": {"X-RunAs-User-Id: admin\r\nX-Trace": "1"}}, "header name"),
            ("method", {"method": "POST /x HTTP/1.1\r\nX-RunAs-User-Id: admin\r\n\r\nPOST"}, "method"),
        ]
        with RawServer(token_answer) as server:
            url = server.url + "/v1/bot/b/session/create"
            for name, send, close in [*pooled_transports(), ("UrllibTransport", cbk.UrllibTransport(), lambda: None)]:
                for what, change, named in bad:
                    with self.subTest(transport=name, bad=what):
                        with self.assertRaises(ValueError) as caught:
                            send(dataclasses.replace(request, url=url, **change))
                        self.assertIn(named, str(caught.exception))
                        self.assertNotIn("admin", str(caught.exception).replace("X-RunAs-User-Id: admin", ""))
                close()

            async def wrapping(request: cbk.HTTPRequest) -> cbk.HTTPResponse:
                headers = dict(request.headers, **{"X-Trace": "1\r\nX-RunAs-User-Id: admin"})
                return await cbk.AsyncKeepAliveTransport()(dataclasses.replace(request, headers=headers))

            client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url, transport=wrapping)
            with self.assertRaises(ValueError):
                run_async(asyncio.wait_for(client.create("bot"), 5))
            self.assertEqual(server.received, [])

    def test_asyncio_closes_each_connection_the_server_closes_while_it_is_idle(self) -> None:
        import asyncio

        with IdleClosingServer(idle=0.1, grace=0.3, delay=0.05) as server:

            async def main() -> Tuple[int, int]:
                async with cbk.AsyncBotSessionClient(
                    secret=SECRET, base_url=server.url, retries=0, timeout=5
                ) as client:
                    await asyncio.gather(*(client.create("bot%d" % index) for index in range(100)))
                    await asyncio.sleep(0.3)  # the server closes each after 0.1 s idle; the loop runs on
                    return server.closed_by_client, server.left_open  # before the client is closed

            self.assertEqual(run_async(main()), (100, 0))

    def test_idle_connections_are_closed_after_the_idle_limit_while_traffic_stays_low(self) -> None:
        # The server hangs up after 0.1 s idle and counts the connections the client closes within 0.4 s;
        # the pool closes a connection idle 0.2 s at the next call, and calls come every 0.11 s.
        with IdleClosingServer(idle=0.1, grace=0.4, delay=0.06) as server:
            pool = cbk.KeepAliveTransport(max_idle_per_origin=10, idle_timeout=0.2)
            client = cbk.BotSessionClient(secret=SECRET, base_url=server.url, retries=0, timeout=5, transport=pool)
            run_threads(client, threads=16, calls=1)
            for _ in range(6):  # one call every 0.11 s: the newest connection stays in use, the others idle
                client.create("bot")
                time.sleep(0.05)
            time.sleep(0.3)
            closed, left = server.closed_by_client, server.left_open
            pool.close()
        self.assertLessEqual(left, 1)  # at most the one still in use when the traffic stopped
        self.assertGreaterEqual(closed, 9)

    @waits
    def test_a_cancellation_as_the_connection_opens_is_not_swallowed(self) -> None:
        import asyncio

        class CancelAsItConnects(asyncio.SelectorEventLoop):  # type: ignore[misc,name-defined]
            victim: Any = None

            async def sock_connect(self, sock: socket.socket, address: Any) -> None:
                await super().sock_connect(sock, address)
                self.victim.cancel()  # the caller is cancelled in the very step the connection opens

        with RawServer(token_answer, keep_open=True) as server:
            loop = CancelAsItConnects()
            client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url, retries=0, timeout=5)

            async def main() -> str:
                task = loop.victim = asyncio.ensure_future(client.create("cancelled"))
                try:
                    await task
                except asyncio.CancelledError:
                    return "cancelled"
                return "returned a session after cancel()"

            outcome = run_on(loop, main())
            time.sleep(0.3)
            self.assertEqual(outcome, "cancelled")
            self.assertEqual(server.received, [])

    @waits
    def test_a_large_answer_is_digested_within_the_deadline_while_the_executor_is_busy(self) -> None:
        import asyncio
        import concurrent.futures

        body = session_of(100_000)
        answer = raw("HTTP/1.1 200 OK", [("Content-Type", "application/json")], body)
        with RawServer(lambda index, request: answer) as server:

            async def main() -> Tuple[Any, float]:
                loop = asyncio.get_running_loop()
                loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=1))
                busy = loop.run_in_executor(None, time.sleep, 0.7)  # longer than the call's deadline
                client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url, retries=0, total_timeout=0.5)
                started = loop.time()
                session = await client.create("bot")
                took = loop.time() - started
                await busy
                return session, took

            session, took = run_async(main())
        self.assertEqual(session["id"], "ses_1")
        self.assertLess(took, 0.4)

    @keeps_time
    def test_urllib_gives_the_send_only_the_time_left_after_a_slow_tls_handshake(self) -> None:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4)

        def serve() -> None:
            conn, _ = server.accept()
            with conn:
                time.sleep(0.5)  # the handshake waits, then nothing is read
                with contextlib.suppress(OSError):
                    tls = server_tls_context().wrap_socket(conn, server_side=True)
                    time.sleep(3)
                    tls.close()

        threading.Thread(target=serve, daemon=True).start()
        client = cbk.BotSessionClient(
            secret=SECRET,
            base_url="https://localhost:%d" % server.getsockname()[1],
            retries=0,
            timeout=0.8,
            ssl_context=client_tls_context(),
        )
        started = time.monotonic()
        with self.assertRaises(cbk.APITimeoutError):
            client.create("bot", {"messages": [{"type": "user", "text": "x" * (8 << 20)}]})
        took = time.monotonic() - started
        server.close()
        self.assertLess(took, 0.8 + 0.25)  # not 0.5 + 0.8: the send is given what the handshake left

    @waits
    def test_a_close_delimited_answer_ended_by_close_notify_is_read_at_once(self) -> None:
        answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" + json.dumps(SESSION).encode()

        def close_notify(conn: Any, head: bytes) -> None:
            # The answer's last bytes and close_notify in one segment (TCP_CORK where there is one),
            # and the TCP connection left open: only close_notify ends the body.
            conn.setsockopt(socket.IPPROTO_TCP, getattr(socket, "TCP_CORK", socket.TCP_NODELAY), 1)
            conn.sendall(answer)
            conn.setblocking(False)
            with contextlib.suppress(ssl.SSLWantReadError, OSError):
                conn.unwrap()
            conn.setblocking(True)
            if hasattr(socket, "TCP_CORK"):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
            time.sleep(3)

        for name in LOOP_KINDS:
            with self.subTest(transport=name):
                server = held_answer(b"", 0, tls=True, then=close_notify)
                run = dict(clients_on_every_loop("https://localhost:%d" % server.getsockname()[1], timeout=2.5))[name]
                started = time.monotonic()
                session = run(lambda create: create("bot"))
                took = time.monotonic() - started
                server.close()
                self.assertEqual(session["id"], "ses_1")
                self.assertLess(took, 1.0)

    def test_a_host_name_the_codec_refuses_is_a_clear_error_not_a_unicode_error(self) -> None:
        for host in ("a..b.example", "x" * 64 + ".example"):
            with self.subTest(host=host):
                with self.assertRaises(ValueError) as caught:
                    cbk.BotSessionClient(secret=SECRET, base_url="https://%s" % host)
                self.assertIn("base_url", str(caught.exception))
                request = cbk.HTTPRequest("POST", "https://%s/v1" % host, {}, b"{}", 2)
                for name, send, close in pooled_transports():
                    with self.subTest(transport=name):
                        with self.assertRaises(cbk.APIConnectionError) as raised:
                            send(request)
                        self.assertFalse(raised.exception.request_sent)
                        close()

    def test_a_call_the_proxy_refuses_is_a_proxy_error_and_closes_its_socket_at_once(self) -> None:
        with LoopbackProxy(("127.0.0.1", 9), refuse=403) as proxy:
            for name, run in clients_on_every_loop("https://api.chatbotkit.com"):
                with self.subTest(transport=name):
                    gc.collect()
                    with proxy_environment(proxy.url), warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        gc.disable()
                        try:
                            with self.assertRaises(cbk.APIConnectionError) as raised:
                                run(lambda create: create("bot"))
                            gc.collect()
                        finally:
                            gc.enable()
                    self.assertEqual(raised.exception.code, "PROXY_ERROR")
                    self.assertIn("403", str(raised.exception))
                    self.assertFalse(raised.exception.request_sent)
                    self.assertEqual([w for w in caught if issubclass(w.category, ResourceWarning)], [])


class TestProxies(unittest.TestCase):
    """Both pooled transports open their own CONNECT tunnel: every promise of a direct call, through a proxy."""

    def test_through_a_proxy_with_credentials_pooled_per_proxy_and_origin(self) -> None:
        with LoopbackServer(tls=True) as api, LoopbackProxy(
            ("127.0.0.1", api.port), credentials="user:p@ss w"
        ) as proxy:
            proxy_url = "http://user:p%40ss%20w@127.0.0.1:" + str(proxy.port)
            for name, run in clients_on_every_loop("https://api.chatbotkit.com"):
                with self.subTest(transport=name):
                    before = len(proxy.tunnels)
                    with proxy_environment(proxy_url):
                        tokens = run(lambda create: [create("bot1")["token"], create("bot2")["token"]])
                    self.assertEqual(tokens, ["tok_1", "tok_1"])
                    self.assertEqual(len(proxy.tunnels) - before, 1)  # one tunnel, reused
                    self.assertEqual(proxy.tunnels[-1], ("api.chatbotkit.com:443", "Basic dXNlcjpwQHNzIHc="))
            self.assertEqual(api.requests[-1].path, "/v1/bot/bot2/session/create")
            self.assertEqual(api.requests[-1].headers["authorization"], "Bearer " + SECRET)
            self.assertNotIn("proxy-authorization", api.requests[-1].headers)

    def test_a_proxy_that_refuses_the_credentials_is_a_proxy_error_that_shows_none(self) -> None:
        with LoopbackProxy(("127.0.0.1", 9), credentials="user:right") as proxy:
            proxy_url = "http://user:wrong-password-1@127.0.0.1:%d" % proxy.port
            for name, run in clients_on_every_loop("https://api.chatbotkit.com"):
                with self.subTest(transport=name):
                    with proxy_environment(proxy_url), self.assertRaises(cbk.APIConnectionError) as raised:
                        run(lambda create: create("bot"))
                    self.assertEqual(raised.exception.code, "PROXY_ERROR")
                    self.assertIn("407", str(raised.exception))
                    texts = "\n".join(reachable_texts(raised.exception))
                    self.assertNotIn("wrong-password-1", texts)
                    self.assertNotIn("dXNlcjp3cm9uZy1wYXNzd29yZC0x", texts)  # its Basic form

    def test_no_proxy_is_honoured_and_without_credentials_none_are_sent(self) -> None:
        # 0.0.0.0 reaches this machine's servers on Linux, yet is not a loopback host: only NO_PROXY keeps it
        # from the proxy (and no name is resolved, so no DNS can make the test slow).
        with LoopbackServer(tls=True) as api, LoopbackServer() as plain, LoopbackProxy(
            ("127.0.0.1", api.port)
        ) as proxy:
            for name, run in clients_on_every_loop("https://api.chatbotkit.com", timeout=3):
                with self.subTest(transport=name):
                    with proxy_environment(proxy.url, no_proxy="0.0.0.0"):
                        self.assertEqual(run(lambda create: create("bot"))["token"], "tok_1")
                    self.assertEqual(proxy.tunnels[-1], ("api.chatbotkit.com:443", None))
                    before = len(plain.requests), len(proxy.tunnels)
                    direct_url = "http://0.0.0.0:%d" % plain.port
                    direct = dict(clients_on_every_loop(direct_url, timeout=3, allow_insecure_http=True))[name]
                    with proxy_environment(proxy.url, no_proxy="0.0.0.0"):
                        self.assertEqual(direct(lambda create: create("bot"))["token"], "tok_1")
                    self.assertEqual((len(plain.requests), len(proxy.tunnels)), (before[0] + 1, before[1]))

    def test_the_default_transport_runs_on_a_loop_without_add_reader(self) -> None:
        import asyncio

        async def main(url: str, tls_url: str) -> List[str]:
            async with cbk.AsyncBotSessionClient(secret=SECRET, base_url=url, retries=0, timeout=5) as client:
                tokens = [(await client.create("bot"))["token"] for _ in range(3)]
                tls = client.extend(base_url=tls_url, ssl_context=client_tls_context())
                tokens += [(await tls.create("bot"))["token"] for _ in range(2)]
                await tls.aclose()
                return tokens

        loop = proactor_interface_loop()
        with LoopbackServer() as plain, LoopbackServer(tls=True) as secure:
            tokens = run_on(loop, main(plain.url, secure.url.replace("127.0.0.1", "localhost")))
            self.assertEqual((plain.connections(), secure.connections()), (1, 1))  # pooled on that loop too
        self.assertEqual(tokens, ["tok_1"] * 5)
        self.assertIn("add_reader", loop.refused)  # it was asked, as the proactor is, and said no
        del asyncio


class TestThreadStress(unittest.TestCase):
    """Threads sharing one client of each kind and one pooled transport; every answer matched to its request.

    Small by default; CI runs it large on free-threaded CPython with the GIL off (CBK_STRESS_CALLS, and
    CBK_EXPECT_FREE_THREADED=1 to assert that the GIL really is off).
    """

    THREADS = int(os.environ.get("CBK_STRESS_THREADS", "8"))
    CALLS = int(os.environ.get("CBK_STRESS_CALLS", "10"))

    def test_threads_share_every_kind_of_client_and_each_answer_matches_its_request(self) -> None:
        if os.environ.get("CBK_EXPECT_FREE_THREADED"):
            self.assertTrue(free_threaded(), "the GIL is on; run with PYTHON_GIL=0 on a free-threaded build")
        expected: List[Tuple[str, str]] = []
        got: List[Tuple[str, str]] = []
        lock = threading.Lock()
        with LoopbackServer(echo_app) as server, cbk.KeepAliveTransport() as pool, warnings.catch_warnings():
            warnings.simplefilter("error")
            plain = make_client(server)
            pooled = make_client(server, transport=pool)
            async_client = cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url, retry_delay=0, timeout=5)

            def request(kind: str, index: int, call: int) -> Tuple[str, Dict[str, Any], str]:
                bot, text = "%s%d" % (kind, index), "m%d" % call
                with lock:
                    expected.append((bot, text))
                return bot, {"messages": [{"type": "user", "text": text}]}, "tok-%s-%s" % (bot, text)

            def record(session: Any, bot: str, body: Dict[str, Any], token: str) -> None:
                text = body["messages"][0]["text"]
                matches = session["token"] == token and session["conversationId"] == "conv-" + text
                with lock:
                    got.append((bot, text) if matches and session["id"] == "ses-" + bot else ("wrong", repr(session)))

            def failed(exc: BaseException) -> None:
                with lock:
                    got.append(("error", repr(exc)))

            def sync_work(kind: str, client: cbk.BotSessionClient, index: int) -> None:
                try:
                    for call in range(self.CALLS):
                        bot, body, token = request(kind, index, call)
                        record(client.create(bot, body), bot, body, token)
                except BaseException as exc:  # recorded, so the assertion below shows it
                    failed(exc)

            async def async_calls(index: int) -> None:
                for call in range(self.CALLS):
                    bot, body, token = request("async", index, call)
                    record(await async_client.create(bot, body), bot, body, token)

            def async_work(index: int) -> None:
                import asyncio

                try:
                    asyncio.run(async_calls(index))
                except BaseException as exc:  # recorded, so the assertion below shows it
                    failed(exc)

            threads = [
                threading.Thread(target=sync_work, args=("plain", plain, index)) for index in range(self.THREADS)
            ]
            threads += [threading.Thread(target=sync_work, args=("pooled", pooled, i)) for i in range(self.THREADS)]
            threads += [threading.Thread(target=async_work, args=(index,)) for index in range(self.THREADS)]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(300)
            elapsed = time.monotonic() - started
            async_client.close()
        self.assertEqual(sorted(got), sorted(expected))
        self.assertEqual(len(got), 3 * self.THREADS * self.CALLS)
        self.assertEqual(len(server.requests), len(got))
        if os.environ.get("CBK_STRESS_REPORT"):
            with open(os.environ["CBK_STRESS_REPORT"], "w") as report:
                report.write(
                    "%d threads x 3 clients x %d calls: %d answers, all matched, in %.1f s (GIL %s)\n"
                    % (self.THREADS, self.CALLS, len(got), elapsed, "off" if free_threaded() else "on")
                )


@unittest.skipUnless(hasattr(os, "fork"), "no fork on this system")
class TestFork(unittest.TestCase):
    """Pools and threads belong to the process that made them: after a fork the child starts afresh."""

    def forked(self, create: Callable[[str], Any], bot: str) -> int:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded process": our threads are idle
            pid = os.fork()
        if pid == 0:
            os._exit(fork_child(create, bot))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8
            time.sleep(0.02)
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        return -1  # it hung

    def test_a_bare_fork_never_shares_a_socket_or_a_thread(self) -> None:
        with RawServer(token_answer, keep_open=True) as server:
            for name, create, close in every_client(server):
                with self.subTest(transport=name):
                    self.assertTrue(create("parent")["token"].startswith("tok-parent-"))
                    before = len(server.peers)
                    self.assertEqual(self.forked(create, "child"), 0)
                    self.assertTrue(create("again")["token"].startswith("tok-again-"))
                    close()
                    parent_ports = {server.peers[before - 1], server.peers[-1]}
                    child_port = server.peers[before]
                    if name != "UrllibTransport":
                        self.assertNotIn(child_port, parent_ports)  # the child made its own connection
                    if name.startswith("KeepAliveTransport"):
                        self.assertEqual(len(parent_ports), 1)  # and the parent kept its own

    def test_multiprocessing_fork_context(self) -> None:
        import multiprocessing

        with RawServer(token_answer, keep_open=True) as server:
            for name, create, close in every_client(server):
                with self.subTest(transport=name):
                    create("parent")
                    context = multiprocessing.get_context("fork")
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", DeprecationWarning)
                        process = context.Process(target=lambda create=create: os._exit(fork_child(create, "child")))
                        process.start()
                    process.join(20)
                    if process.exitcode is None:
                        process.kill()
                    self.assertEqual(process.exitcode, 0)
                    self.assertTrue(create("again")["token"].startswith("tok-again-"))
                    close()


# =========================================================================================================
# 4. The web endpoint
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# Its decisions, configuration and front doors; the Lambda handler
# ---------------------------------------------------------------------------------------------------------


class TestEndpointPlan(unittest.TestCase):
    """The endpoint's decisions, stepped by hand with a fake clock: no client, no I/O."""

    def test_the_plan_reads_asks_and_mints_in_order_with_the_time_left(self) -> None:
        clock = FakeClock()
        endpoint, _, _ = endpoint_for(authorize=lambda request: True, time_budget=5.0)
        headers = {"origin": SHOP, "content-type": "application/json", "content-length": "17"}
        plan = endpoint._rules.plan("POST", headers, "192.0.2.1", None, 3.0, clock.clock())
        self.assertEqual(next(plan), cbk._ReadBody(17))  # no more than Content-Length
        asked = plan.send(b'{"message": "Hi"}')
        self.assertIsInstance(asked, cbk.EndpointRequest)
        clock.now += 1.0  # authorize= took a second: it counts against the deadline
        mint = plan.send({"userId": "u_1"})
        self.assertIsInstance(mint, cbk._Mint)
        self.assertAlmostEqual(mint.seconds, 3.0 - 0.5 - 1.0)  # remaining, less the margin, less the second
        self.assertEqual(
            json.loads(mint.body),
            {"durationInSeconds": 3600, "messages": [{"type": "user", "text": "Hi"}], "meta": {"userId": "u_1"}},
        )
        with self.assertRaises(StopIteration) as done:
            plan.send(SESSION)
        self.assertEqual(done.exception.value.status, 200)
        self.assertEqual(
            json.loads(done.exception.value.body), {k: SESSION[k] for k in ("conversationId", "token", "expiresAt")}
        )

    def test_no_time_left_after_authorize_mints_nothing(self) -> None:
        clock = FakeClock()
        endpoint, lines, _ = endpoint_for(authorize=lambda request: True)
        plan = endpoint._rules.plan("POST", {"content-type": "application/json"}, None, None, 1.0, clock.clock())
        next(plan)
        plan.send(b"{}")
        clock.now += 0.6  # past remaining less the margin
        with self.assertRaises(StopIteration) as done:
            plan.send(True)  # the next step would have been _Mint: it never comes
        self.assertEqual((done.exception.value.status, json.loads(lines[0])["code"]), (504, "TIMEOUT"))


class TestEndpointConfiguration(unittest.TestCase):
    """SessionEndpoint.from_env, and authorize= in every front door."""

    def test_from_env_reads_the_lambda_variables_and_names_a_bad_one(self) -> None:
        fake = FakeTransport()
        client = cbk.BotSessionClient(secret=SECRET, transport=fake)
        env = {
            "CHATBOTKIT_BOT_ID": "bot_env",
            "CHATBOTKIT_ALLOWED_ORIGINS": "https://shop.example, http://localhost:5173",
            "CHATBOTKIT_SESSION_DURATION": "7200",
        }
        endpoint = cbk.SessionEndpoint.from_env(client, environ=env)
        self.assertEqual((endpoint.bot_id, endpoint.allowed_origins), ("bot_env", (SHOP, "http://localhost:5173")))
        self.assertEqual(endpoint.handle("POST", JSON_POST, b"{}").status, 200)
        self.assertEqual(json.loads(fake.requests[0].body), {"durationInSeconds": 7200})
        self.assertIn("/bot/bot_env/", fake.requests[0].url)
        for change, variable in (
            ({"CHATBOTKIT_BOT_ID": ""}, "CHATBOTKIT_BOT_ID"),
            ({"CHATBOTKIT_BOT_ID": ".."}, "CHATBOTKIT_BOT_ID"),
            ({"CHATBOTKIT_SESSION_DURATION": "60"}, "CHATBOTKIT_SESSION_DURATION"),
            ({"CHATBOTKIT_ALLOWED_ORIGINS": "shop.example"}, "CHATBOTKIT_ALLOWED_ORIGINS"),
        ):
            with self.subTest(variable=variable), self.assertRaisesRegex(ValueError, variable):
                cbk.SessionEndpoint.from_env(client, environ=dict(env, **change))
        with self.assertRaisesRegex(ValueError, "CHATBOTKIT_API_SECRET"):
            cbk.SessionEndpoint.from_env(environ=env)  # no client given: one from the environment, which has no secret
        own = cbk.SessionEndpoint.from_env(environ=dict(env, CHATBOTKIT_API_SECRET=SECRET))
        self.assertIsInstance(own.client, cbk.BotSessionClient)
        self.assertEqual(own.client.options.retries if own.client else None, 2)

    def test_authorize_refuses_goes_on_or_names_the_user_in_meta(self) -> None:
        seen: List[cbk.EndpointRequest] = []

        def authorize(request: cbk.EndpointRequest) -> Any:
            seen.append(request)
            user = request.headers.get("X-User")
            return {"userId": user} if user else user == ""

        endpoint, _, fake = endpoint_for(authorize=authorize)
        refused = endpoint.handle("POST", {"Origin": SHOP, **JSON_POST}, b"{}", remote_addr="203.0.113.9")
        self.assertEqual((refused.status, answer_json(refused)["code"]), (403, "NOT_AUTHORIZED"))
        self.assertIn(("Access-Control-Allow-Origin", SHOP), refused.headers)  # the page can read why
        self.assertEqual(fake.requests, [])
        plain = endpoint.handle("POST", {"x-user": "", **JSON_POST}, b"{}")
        self.assertEqual(plain.status, 200)
        named = endpoint.handle(
            "POST", {"X-USER": "u_42", **JSON_POST}, b'{"message": "Hi"}', event="the view's request"
        )
        self.assertEqual(named.status, 200)
        sent = [json.loads(request.body) for request in fake.requests]
        self.assertNotIn("meta", sent[0])
        self.assertEqual(sent[1]["meta"], {"userId": "u_42"})
        self.assertEqual(sent[1]["messages"], [{"type": "user", "text": "Hi"}])
        self.assertEqual((seen[0].method, seen[0].remote_addr, seen[0].event), ("POST", "203.0.113.9", None))
        self.assertEqual((seen[2].headers["x-user"], seen[2].event), ("u_42", "the view's request"))
        self.assertEqual(len(seen), 3)
        endpoint.handle("OPTIONS", {"Origin": SHOP, "Access-Control-Request-Method": "POST"}, b"")
        endpoint.handle("POST", {"Origin": SHOP, **JSON_POST}, b"[1]")
        self.assertEqual(len(seen), 3)  # only for a POST that passed every check

    def test_a_failing_or_misbehaving_authorize_is_a_logged_500_and_sends_nothing(self) -> None:
        async def coroutine_function(request: cbk.EndpointRequest) -> bool:
            return True

        def fails(request: cbk.EndpointRequest) -> bool:
            raise RuntimeError("the user store is down, key " + SECRET)

        for authorize, code, logged in (
            (fails, "INTERNAL_ERROR", "AUTHORIZE_FAILED"),
            (lambda request: None, "INTERNAL_ERROR", "AUTHORIZE_FAILED"),
            (lambda request: {"userId": 42}, "INTERNAL_ERROR", "AUTHORIZE_FAILED"),
            (coroutine_function, "NOT_CONFIGURED", "NOT_CONFIGURED"),
        ):
            with self.subTest(code=code, logged=logged):
                endpoint, lines, fake = endpoint_for(authorize=authorize)
                answer = endpoint.handle("POST", JSON_POST, b"{}")
                self.assertEqual((answer.status, answer_json(answer)["code"]), (500, code))
                self.assertEqual(fake.requests, [])
                self.assertEqual(json.loads(lines[-1])["code"], logged)
                for form in secret_forms():
                    self.assertNotIn(form, lines[-1] + answer.body.decode())
        with self.assertRaisesRegex(TypeError, "authorize"):
            endpoint_for(authorize="yes")

    def test_authorize_in_the_asyncio_doors_may_be_a_coroutine_function(self) -> None:
        seen: List[cbk.EndpointRequest] = []

        async def authorize(request: cbk.EndpointRequest) -> Any:
            seen.append(request)
            return {"userId": "u_7"} if request.headers.get("authorization") == "Bearer good" else False

        endpoint, _, sent = async_endpoint_for(authorize=authorize)
        good = {"Origin": SHOP, "Authorization": "Bearer good", **JSON_POST}
        self.assertEqual(call_asgi(endpoint, "POST", good, b"{}")[0], 200)
        self.assertEqual(call_asgi(endpoint, "POST", dict(good, Authorization="Bearer bad"), b"{}")[0], 403)
        self.assertEqual(run_async(endpoint.ahandle("POST", good, b"{}", remote_addr="192.0.2.1")).status, 200)
        self.assertEqual([json.loads(request.body)["meta"] for request in sent], [{"userId": "u_7"}] * 2)
        self.assertEqual([request.remote_addr for request in seen], ["198.51.100.5", "198.51.100.5", "192.0.2.1"])

    def test_authorize_sees_the_address_each_door_gives(self) -> None:
        seen: List[cbk.EndpointRequest] = []
        endpoint, _, _ = endpoint_for(authorize=lambda request: seen.append(request) is None)
        call_wsgi(endpoint, "POST", {"Origin": SHOP, **JSON_POST}, b"{}")
        call_lambda(endpoint, "POST", {"Origin": SHOP, **JSON_POST}, b"{}")
        rest = dict(rest_api_event("{}"), requestContext={"identity": {"sourceIp": "192.0.2.44"}})
        endpoint.lambda_handler(rest, None)
        self.assertEqual([request.remote_addr for request in seen], ["198.51.100.4", "203.0.113.7", "192.0.2.44"])
        self.assertEqual(seen[1].event["requestContext"]["requestId"], "r1")  # the Lambda event itself
        self.assertIsNone(seen[0].event)


class TestSessionEndpoint(unittest.TestCase):
    def test_a_post_gets_three_fields_no_store_and_the_configured_bot_and_duration(self) -> None:
        endpoint, lines, fake = endpoint_for()
        for body in (b'{"message": "Hi"}', b"{}", b"", "  ", None, io.BytesIO(b'{"message": null}')):
            with self.subTest(body=body):
                answer = endpoint.handle("POST", JSON_POST, body)
                self.assertEqual(answer.status, 200, answer)
                self.assertEqual(answer_json(answer), {k: SESSION[k] for k in ("conversationId", "token", "expiresAt")})
                self.assertIn(("Cache-Control", "no-store"), answer.headers)
                self.assertIn(("Content-Type", "application/json"), answer.headers)
        self.assertEqual(
            {request.url for request in fake.requests}, {"https://api.chatbotkit.com/v1/bot/bot_web/session/create"}
        )

        sent = [json.loads(request.body) for request in fake.requests]
        self.assertEqual(sent[0], {"durationInSeconds": 3600, "messages": [{"type": "user", "text": "Hi"}]})
        self.assertEqual(sent[1:], [{"durationInSeconds": 3600}] * 5)
        self.assertEqual(lines, [])

    def test_bad_bodies_get_400_naming_the_problem_before_any_request(self) -> None:
        endpoint, _, _ = endpoint_for(never_called, max_message_chars=10, max_body_bytes=1000)
        cases = [
            (b"not json", "not JSON"),
            (b"[1]", "JSON object"),
            (b'{"botId": "other"}', "only 'message'"),
            (b'{"message": 5}', "must be a string"),
            (b'{"message": "' + b"x" * 11 + b'"}', "at most 10 characters"),
            (b'{"message": "\\ud800"}', "lone surrogate"),
            (b'{"message": NaN}', "not JSON"),
            (b"\xff\xfe", "not UTF-8"),
            (b'{"message": "' + b"y" * 1200 + b'"}', "at most 1000 bytes"),
            (io.BytesIO(b" " * 5000), "at most 1000 bytes"),
        ]
        for body, said in cases:
            with self.subTest(said=said):
                answer = endpoint.handle("POST", JSON_POST, body)
                self.assertEqual((answer.status, answer_json(answer)["code"]), (400, "BAD_REQUEST"))
                self.assertIn(said, answer_json(answer)["message"])
        deep, _, _ = endpoint_for(never_called)
        nested = deep.handle("POST", JSON_POST, b"[" * 30000 + b"]" * 30000)
        self.assertEqual((nested.status, answer_json(nested)["message"]), (400, "the body nests too deeply"))
        big = endpoint.handle("POST", {"Content-Length": "1001", **JSON_POST}, NoRead())
        self.assertEqual(big.status, 400)  # refused on its Content-Length, unread
        form = endpoint.handle("POST", {"Content-Type": "text/plain"}, b"{}")
        self.assertEqual((form.status, answer_json(form)["code"]), (415, "UNSUPPORTED_MEDIA_TYPE"))

    def test_a_file_body_is_read_no_further_than_the_cap(self) -> None:
        endpoint, _, _ = endpoint_for(never_called, max_body_bytes=100)
        stream = io.BytesIO(b"z" * 10000)
        self.assertEqual(endpoint.handle("POST", JSON_POST, stream).status, 400)
        self.assertEqual(stream.tell(), 101)

    def test_other_methods_get_405_with_allow(self) -> None:
        endpoint, _, _ = endpoint_for(never_called)
        for method in ("GET", "PUT", "DELETE", "HEAD", "PATCH", "TRACE"):
            answer = endpoint.handle(method, {}, b"")
            self.assertEqual(answer.status, 405)
            self.assertIn(("Allow", "OPTIONS, POST"), answer.headers)
        plain = endpoint.handle("OPTIONS", {}, b"")  # not a preflight: what the resource allows
        self.assertEqual((plain.status, plain.body), (204, b""))
        self.assertIn(("Allow", "OPTIONS, POST"), plain.headers)

    def test_cors_allows_only_the_configured_origins(self) -> None:
        endpoint, _, _ = endpoint_for()
        allowed = endpoint.handle("POST", {"Origin": SHOP, **JSON_POST}, b"{}")
        self.assertEqual(allowed.status, 200)
        self.assertIn(("Access-Control-Allow-Origin", SHOP), allowed.headers)
        self.assertIn(("Vary", "Origin"), allowed.headers)
        other = endpoint.handle("POST", {"Origin": "https://evil.example", **JSON_POST}, b"{}")
        self.assertFalse([name for name, _ in other.headers if name.startswith("Access-Control-")])
        preflight = {
            "Origin": SHOP,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        }
        ok = endpoint.handle("OPTIONS", preflight, b"")
        self.assertEqual((ok.status, ok.body), (204, b""))
        headers = dict(ok.headers)
        self.assertEqual(headers["Access-Control-Allow-Origin"], SHOP)
        self.assertEqual(headers["Access-Control-Allow-Methods"], "POST")
        self.assertEqual(headers["Access-Control-Allow-Headers"], "authorization, content-type")
        self.assertEqual(headers["Access-Control-Max-Age"], "600")
        refused = endpoint.handle("OPTIONS", dict(preflight, Origin="https://evil.example"), b"")
        self.assertEqual((refused.status, answer_json(refused)["code"]), (403, "ORIGIN_NOT_ALLOWED"))
        self.assertFalse([name for name, _ in refused.headers if name.startswith("Access-Control-")])
        anyone, _, _ = endpoint_for(allowed_origins=["*"])
        self.assertIn(
            ("Access-Control-Allow-Origin", "*"), anyone.handle("POST", {"Origin": "https://a.example"}, b"").headers
        )
        self.assertEqual(anyone.handle("OPTIONS", dict(preflight, Origin="https://b.example"), b"").status, 204)
        nobody, _, _ = endpoint_for(allowed_origins=())
        self.assertEqual(nobody.handle("OPTIONS", preflight, b"").status, 403)
        refused_post = nobody.handle("POST", {"Origin": SHOP, **JSON_POST}, b"{}")
        self.assertEqual((refused_post.status, answer_json(refused_post)["code"]), (403, "ORIGIN_NOT_ALLOWED"))
        self.assertEqual(dict(refused_post.headers)["Vary"], "Origin")  # the answer depends on Origin

    def test_bad_configuration_fails_at_construction_naming_the_keyword(self) -> None:
        client = cbk.BotSessionClient(secret=SECRET, transport=never_called)
        for options, name in (
            ({"allowed_origins": "https://shop.example"}, "allowed_origins"),
            ({"allowed_origins": ["https://shop.example/path"]}, "allowed_origins"),
            ({"allowed_origins": ["*", SHOP]}, "allowed_origins"),
            ({"allowed_origins": [5]}, "allowed_origins"),
            ({"duration": "long"}, "durationInSeconds"),
            ({"max_message_chars": 0}, "max_message_chars"),
            ({"max_body_bytes": True}, "max_body_bytes"),
            ({"time_budget": 0}, "time_budget"),
            ({"time_budget": float("nan")}, "time_budget"),
            ({"deadline_margin": -1}, "deadline_margin"),
            ({"log": "stderr"}, "log"),
        ):
            with self.subTest(name=name, options=options):
                with self.assertRaises((TypeError, ValueError)) as caught:
                    cbk.SessionEndpoint(client, "bot_web", **options)
                self.assertIn(name, str(caught.exception))
        with self.assertRaisesRegex(TypeError, "client"):
            cbk.SessionEndpoint("client", "bot_web")  # type: ignore[arg-type]
        with self.assertRaisesRegex(ValueError, "bot_id"):
            cbk.SessionEndpoint(client, "..")
        self.assertEqual(
            cbk.SessionEndpoint(client, "b", allowed_origins=["HTTPS://Shop.Example/"]).allowed_origins, (SHOP,)
        )

    def test_failures_are_502_504_or_500_with_one_masked_json_log_line(self) -> None:
        echo = json_response(401, {"code": "NOT_AUTHENTICATED", "message": "bad key " + SECRET})
        odd = json_response(500, {"code": "weird code " + SECRET, "message": SECRET})
        cases = [
            (echo, 502, "NOT_AUTHENTICATED"),
            (odd, 502, "UPSTREAM_ERROR"),
            (ConnectionRefusedError(111, "refused"), 502, "CONNECTION_ERROR"),
            (socket.timeout("timed out"), 504, "TIMEOUT"),
            (json_response(200, {"token": "only"}), 502, "INVALID_RESPONSE"),
        ]
        for outcome, status, code in cases:
            with self.subTest(code=code):
                endpoint, lines, _ = endpoint_for(
                    FakeTransport(outcome),
                )
                answer = endpoint.handle("POST", {"Origin": SHOP, **JSON_POST}, b"{}")
                self.assertEqual((answer.status, answer_json(answer)["code"]), (status, code))
                self.assertIn(("Access-Control-Allow-Origin", SHOP), answer.headers)  # the page can read why
                self.assertEqual(len(lines), 1, lines)
                logged = json.loads(lines[0])
                self.assertEqual((logged["level"], logged["status"]), ("error", status))
                for form in secret_forms():
                    self.assertNotIn(form, lines[0] + answer.body.decode())
        unconfigured = cbk.SessionEndpoint(None, "bot_web", log=lines.append)
        self.assertEqual(answer_json(unconfigured.handle("POST", JSON_POST, b"{}"))["code"], "NOT_CONFIGURED")
        self.assertEqual(unconfigured.handle("POST", JSON_POST, b"{}").status, 500)
        without_bot, lines, _ = endpoint_for(never_called)
        without_bot = cbk.SessionEndpoint(without_bot.client, "", log=lines.append)
        self.assertEqual(without_bot.handle("POST", JSON_POST, b"{}").status, 500)
        self.assertIn("bot_id", json.loads(lines[-1])["error"])

    def test_a_failing_log_changes_no_answer(self) -> None:
        def log(line: str) -> None:
            raise OSError("disk full")

        endpoint, _, _ = endpoint_for(FakeTransport(ConnectionRefusedError(111, "refused")), log=log)
        self.assertEqual(endpoint.handle("POST", JSON_POST, b"{}").status, 502)

    @waits
    def test_the_deadline_bounds_the_whole_call(self) -> None:
        def slow(handler: Any, record: Recorded) -> None:
            time.sleep(2)
            session_app(handler, record)

        with LoopbackServer(slow) as server:
            client = make_client(server, retries=3)
            lines: List[str] = []
            endpoint = cbk.SessionEndpoint(client, "bot_web", time_budget=0.4, log=lines.append)
            platform = cbk.SessionEndpoint(client, "bot_web", deadline_margin=0.5, log=lines.append)
            calls = [lambda: endpoint.handle("POST", JSON_POST, b"{}")]  # the budget, then the platform's time
            calls.append(lambda: platform.handle("POST", JSON_POST, b"{}", remaining=0.9))
            for answer, took in run_concurrently(timed_call, calls):
                self.assertEqual(answer.status, 504)
                self.assertLess(took, 1.5)
            before = len(server.requests)
            self.assertEqual(platform.handle("POST", JSON_POST, b"{}", remaining=0.4).status, 504)  # no time: no call
            self.assertEqual(len(server.requests), before)
            self.assertIn("total_timeout", lines[0])

    def test_ahandle_awaits_an_async_client_and_runs_a_sync_one_in_a_thread(self) -> None:
        import asyncio

        async def body() -> Any:
            yield b'{"mess'
            yield b'age": "Hi"}'

        async def run() -> List[cbk.EndpointResponse]:
            with LoopbackServer() as server:
                async with cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url, retry_delay=0) as client:
                    endpoint = cbk.SessionEndpoint(client, "bot_web")
                    answers = [
                        await endpoint.ahandle("POST", JSON_POST, body()),
                        await endpoint.ahandle("POST", JSON_POST, b"{}"),
                    ]
                sync = cbk.SessionEndpoint(make_client(server), "bot_web")
                answers.append(await sync.ahandle("POST", JSON_POST, "{}"))
                self.assertEqual(server.requests[0].json(), {"messages": [{"type": "user", "text": "Hi"}]})
                async_only = cbk.SessionEndpoint(
                    cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url), "bot_web", log=lambda line: None
                )
                answers.append(async_only.handle("POST", JSON_POST, b"{}"))  # the sync driver cannot await it
                return answers

        answers = asyncio.run(run())
        self.assertEqual([answer.status for answer in answers], [200, 200, 200, 500])

    def test_asgi_application(self) -> None:
        import asyncio

        async def call(
            endpoint: cbk.SessionEndpoint, method: str, headers: List[Tuple[bytes, bytes]], chunks: List[Any]
        ) -> List[Dict[str, Any]]:
            queue = list(chunks)
            sent: List[Dict[str, Any]] = []

            async def receive() -> Dict[str, Any]:
                return queue.pop(0) if queue else {"type": "http.disconnect"}

            async def send(message: Dict[str, Any]) -> None:
                sent.append(message)

            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": method,
                "path": "/",
                "headers": headers,
            }
            await endpoint.asgi(scope, receive, send)
            return sent

        async def run() -> Dict[str, Any]:
            with LoopbackServer() as server:
                async with cbk.AsyncBotSessionClient(secret=SECRET, base_url=server.url, retry_delay=0) as client:
                    endpoint = cbk.SessionEndpoint(client, "bot_web", allowed_origins=[SHOP], max_body_bytes=100)
                    origin = [(b"origin", SHOP.encode()), (b"content-type", b"application/json")]
                    results = {
                        "ok": await call(
                            endpoint,
                            "POST",
                            origin,
                            [
                                {"type": "http.request", "body": b'{"message"', "more_body": True},
                                {"type": "http.request", "body": b': "Hi"}'},
                            ],
                        ),
                        "big": await call(
                            endpoint,
                            "POST",
                            origin,
                            [{"type": "http.request", "body": b" " * 60, "more_body": True}] * 1000,
                        ),
                        "gone": await call(
                            endpoint, "POST", origin, [{"type": "http.request", "body": b"{", "more_body": True}]
                        ),
                        "preflight": await call(
                            endpoint,
                            "OPTIONS",
                            [(b"origin", SHOP.encode()), (b"access-control-request-method", b"POST")],
                            [],
                        ),
                        "get": await call(endpoint, "GET", [], []),
                    }
                    lifespan: List[Dict[str, Any]] = []
                    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

                    async def receive() -> Dict[str, Any]:
                        return messages.pop(0)

                    async def send(message: Dict[str, Any]) -> None:
                        lifespan.append(message)

                    await endpoint.asgi({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
                    results["lifespan"] = lifespan
                    results["requests"] = [record.json() for record in server.requests]
                    return results

        results = asyncio.run(run())
        start, body = results["ok"]
        self.assertEqual((start["type"], start["status"]), ("http.response.start", 200))
        self.assertIn((b"access-control-allow-origin", SHOP.encode()), start["headers"])
        self.assertIn((b"cache-control", b"no-store"), start["headers"])
        self.assertEqual(json.loads(body["body"])["token"], "tok_1")
        self.assertEqual(results["big"][0]["status"], 400)
        self.assertEqual(results["gone"], [])  # the client went away: nothing is sent
        self.assertEqual(results["preflight"][0]["status"], 204)
        self.assertEqual(results["get"][0]["status"], 405)
        self.assertEqual(
            [m["type"] for m in results["lifespan"]], ["lifespan.startup.complete", "lifespan.shutdown.complete"]
        )
        self.assertEqual(results["requests"], [{"messages": [{"type": "user", "text": "Hi"}]}])

    def test_wsgi_application_under_wsgiref(self) -> None:
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

        with LoopbackServer() as api:
            endpoint = cbk.SessionEndpoint(make_client(api), "bot_web", allowed_origins=[SHOP], max_body_bytes=1000)
            with make_server("127.0.0.1", 0, endpoint.wsgi, handler_class=Quiet) as server:
                thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
                thread.start()
                try:
                    results = []
                    for method, headers, body in (
                        ("POST", {"Origin": SHOP, **JSON_POST}, b'{"message": "Hi"}'),
                        ("POST", JSON_POST, b"x" * 5000),
                        ("GET", {}, None),
                        ("OPTIONS", {"Origin": SHOP, "Access-Control-Request-Method": "POST"}, None),
                    ):
                        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
                        connection.request(method, "/", body=body, headers=headers)
                        response = connection.getresponse()
                        results.append((response.status, dict(response.getheaders()), response.read()))
                        connection.close()
                finally:
                    server.shutdown()
                    thread.join(5)
        (ok, ok_headers, ok_body), (big, _, _), (get, get_headers, _), (preflight, preflight_headers, _) = results
        self.assertEqual((ok, json.loads(ok_body)["token"]), (200, "tok_1"))
        self.assertEqual((ok_headers["Access-Control-Allow-Origin"], ok_headers["Cache-Control"]), (SHOP, "no-store"))
        self.assertEqual((big, get, get_headers["Allow"], preflight), (400, 405, "OPTIONS, POST", 204))
        self.assertEqual(preflight_headers["Access-Control-Allow-Methods"], "POST")
        self.assertEqual([record.json() for record in api.requests], [{"messages": [{"type": "user", "text": "Hi"}]}])

    def test_lambda_events_of_every_kind(self) -> None:
        import base64

        endpoint, _, fake = endpoint_for()
        preflight = {"origin": SHOP, "access-control-request-method": "POST"}
        events = {
            "Function URL": function_url_event('{"message": "Hi"}'),
            "HTTP API 2.0, base64": function_url_event(
                base64.b64encode(b'{"message": "B64"}').decode(), base64_encoded=True
            ),
            "REST API 1.0": rest_api_event('{"message": "REST"}'),
            "bad base64": function_url_event("!!!", base64_encoded=True),
            "preflight 2.0": dict(function_url_event(None, "OPTIONS"), headers=preflight),
            "preflight 1.0": dict(
                rest_api_event(None, "OPTIONS"), headers={"Origin": SHOP, "Access-Control-Request-Method": "POST"}
            ),
            "disallowed preflight": dict(
                function_url_event(None, "OPTIONS"), headers=dict(preflight, origin="https://evil.example")
            ),
            "GET": rest_api_event(None, "GET"),
        }
        answers = {name: endpoint.lambda_handler(event, None) for name, event in events.items()}
        self.assertEqual(
            {name: answer["statusCode"] for name, answer in answers.items()},
            {
                "Function URL": 200,
                "HTTP API 2.0, base64": 200,
                "REST API 1.0": 200,
                "bad base64": 400,
                "preflight 2.0": 204,
                "preflight 1.0": 204,
                "disallowed preflight": 403,
                "GET": 405,
            },
        )
        self.assertEqual(answers["Function URL"]["headers"]["Access-Control-Allow-Origin"], "https://shop.example")
        self.assertEqual(answers["preflight 1.0"]["headers"]["Access-Control-Allow-Methods"], "POST")
        self.assertEqual(json.loads(answers["REST API 1.0"]["body"])["token"], "tok_1")
        self.assertIs(answers["GET"]["isBase64Encoded"], False)
        texts = [json.loads(request.body)["messages"][0]["text"] for request in fake.requests]
        self.assertEqual(texts, ["Hi", "B64", "REST"])
        direct = endpoint.lambda_handler({"message": "Direct", "botId": "bot_other"}, None)
        self.assertEqual(direct, SESSION)
        self.assertIn("/bot/bot_other/", fake.requests[-1].url)
        for bad, field in (
            ("text", "event"),
            ({"botId": ""}, "event.botId"),
            ({"message": 5}, "event.message"),
            ({"durationInSeconds": "6"}, "event.durationInSeconds"),
            ({"requestContext": 5, "botId": 7}, "event.botId"),
        ):
            with self.subTest(field=field), self.assertRaisesRegex(ValueError, "^" + re.escape(field) + " "):
                endpoint.lambda_handler(bad, None)

    @waits
    def test_the_command_line_serves_it_on_loopback_for_front_end_work(self) -> None:
        import signal

        with LoopbackServer() as api:
            env = clean_env(CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=api.url)
            arguments = ["--serve", "0", "--duration", "1800", "--allow-origin", "http://localhost:5173"]
            process, url, said = start_dev_server(arguments, env)
            try:
                request = urllib.request.Request(
                    url,
                    data=b'{"message": "Hi"}',
                    headers={"Origin": "http://localhost:5173", "Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    self.assertEqual(response.headers["Access-Control-Allow-Origin"], "http://localhost:5173")
                    self.assertEqual(json.loads(response.read())["token"], "tok_1")
            finally:
                process.terminate()  # (SIGINT would do, but a test run in the background has it ignored)
                out, err = process.communicate(timeout=10)
        self.assertEqual(process.returncode, -signal.SIGTERM, err)
        self.assertIn("allowed origins: http://localhost:5173", said)
        self.assertEqual(
            api.requests[0].json(), {"durationInSeconds": 1800, "messages": [{"type": "user", "text": "Hi"}]}
        )
        for form in secret_forms():
            self.assertNotIn(form, out + err)
        for extra in (
            ["--serve", "70000"],
            ["--serve", "0", "--message", "user:Hi"],
            ["--serve", "0", "--allow-origin", "x"],
        ):
            with self.subTest(extra=extra):
                done = run_python(str(MODULE_FILE), "bot_web", *extra, env=env)
                self.assertEqual(done.returncode, 2, done.stderr)
                self.assertIn("error:", done.stderr)


class TestEndpointAtTheEdges(unittest.TestCase):
    """What a hostile page, a misconfiguration or a real server's quirks sent, through every front door."""

    def test_a_simple_request_from_another_origin_mints_nothing_in_any_door(self) -> None:
        # What a page of any origin can send without a preflight: no Content-Type (a Blob, a Uint8Array,
        # sendBeacon), or text/plain; with its own Origin, or "null" from a sandboxed frame.
        simple = [
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Origin": "https://evil.example", "Content-Type": "text/plain;charset=UTF-8"},
            {"Origin": SHOP},  # even an allowed page must send JSON: its POST is then always preflighted
            {"Origin": "https://evil.example", **JSON_POST},  # what no browser sends unpreflighted: refused too
        ]
        for door, call in EVERY_DOOR.items():
            endpoint, _, sent = endpoint_for_door(door)
            for headers in simple:
                with self.subTest(door=door, headers=headers):
                    status, answer_headers, body = call(endpoint, "POST", headers, b"{}")
                    self.assertIn(status, (403, 415), body)
                    self.assertNotIn("token", json.loads(body))
                    if headers["Origin"] != SHOP:
                        self.assertNotIn("Access-Control-Allow-Origin", answer_headers)
            self.assertEqual(sent, [], door)  # not one session minted
            status, _, _ = call(endpoint, "POST", {"Origin": SHOP, **JSON_POST}, b"{}")
            self.assertEqual(status, 200, door)

    def test_the_page_of_the_endpoints_own_origin_needs_no_entry(self) -> None:
        endpoint, _, fake = endpoint_for(allowed_origins=())
        same = endpoint.handle(
            "POST", {"Origin": "http://chat.example:8000", "Host": "chat.example:8000", **JSON_POST}, b"{}"
        )
        self.assertEqual(same.status, 200)
        self.assertNotIn("Access-Control-Allow-Origin", dict(same.headers))
        other = endpoint.handle(
            "POST", {"Origin": "http://evil.example:8000", "Host": "chat.example:8000", **JSON_POST}, b"{}"
        )
        self.assertEqual(other.status, 403)
        self.assertEqual(len(fake.requests), 1)

    def test_allowed_hosts_refuses_a_rebound_name(self) -> None:
        endpoint, _, fake = endpoint_for(allowed_origins=(), allowed_hosts=["localhost"])
        rebound = {"Host": "rebind.attacker.example:8000", "Origin": "http://rebind.attacker.example:8000"}
        answer = endpoint.handle("POST", {**rebound, **JSON_POST}, b"{}")
        self.assertEqual((answer.status, answer_json(answer)["code"]), (403, "HOST_NOT_ALLOWED"))
        for host in ("localhost:8000", "127.0.0.1:8000", "[::1]:8000", "LOCALHOST."):
            with self.subTest(host=host):
                self.assertEqual(endpoint.handle("POST", {"Host": host, **JSON_POST}, b"{}").status, 200)
        self.assertEqual(endpoint.handle("POST", JSON_POST, b"{}").status, 403)  # no Host at all
        self.assertEqual(len(fake.requests), 4)
        with self.assertRaisesRegex(ValueError, "allowed_hosts"):
            cbk.SessionEndpoint(endpoint.client, "bot_web", allowed_hosts=["http://localhost:80"])

    @waits
    def test_the_dev_server_refuses_rebinding_idles_no_one_and_survives_bad_lengths(self) -> None:
        import signal

        with LoopbackServer() as api:
            env = clean_env(CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=api.url)
            process, url, _ = start_dev_server(["--serve", "0"], env)
            port = int(url.rsplit(":", 1)[1].strip("/"))
            idle = socket.create_connection(("127.0.0.1", port))  # a browser's preconnect: sends nothing
            try:
                seen = {}
                for name, host, extra in (
                    (
                        "rebound",
                        "rebind.attacker.example:%d" % port,
                        {"Origin": "http://rebind.attacker.example:%d" % port},
                    ),
                    ("loopback", "127.0.0.1:%d" % port, {}),
                    ("localhost", "localhost:%d" % port, {}),
                    ("superscript length", "127.0.0.1:%d" % port, {"Content-Length": "\u00b2"}),
                    ("huge length", "127.0.0.1:%d" % port, {"Content-Length": "9" * 5000}),
                ):
                    started = time.monotonic()
                    status, body = raw_exchange(port, "POST", {"Host": host, **JSON_POST, **extra}, b"{}")
                    seen[name] = (status, json.loads(body).get("code"), time.monotonic() - started)
            finally:
                idle.close()
                process.send_signal(signal.SIGTERM)
                _, err = process.communicate(timeout=10)
        self.assertEqual(seen["rebound"][:2], (403, "HOST_NOT_ALLOWED"))
        self.assertEqual([seen[name][0] for name in ("loopback", "localhost")], [200, 200])
        self.assertEqual(seen["superscript length"][:2], (400, "BAD_REQUEST"))
        self.assertEqual(seen["huge length"][:2], (400, "BAD_REQUEST"))
        self.assertLess(max(taken for _, _, taken in seen.values()), 3.0)  # the idle connection held up no one
        self.assertNotIn("Traceback", err)
        self.assertEqual(len(api.requests), 2)

    def test_asgi_is_a_coroutine_function_so_servers_take_it_for_asgi3(self) -> None:
        import inspect

        endpoint, _, _ = async_endpoint_for()
        # uvicorn's "auto" interface: a function is ASGI 3 if it is a coroutine function; anything else is
        # ASGI 3 only if its __call__ is one (a bound method's is not).
        self.assertTrue(inspect.isfunction(endpoint.asgi) and inspect.iscoroutinefunction(endpoint.asgi))
        self.assertEqual(call_asgi(endpoint, "POST", {"Origin": SHOP, **JSON_POST}, b"{}")[0], 200)

    def test_ahandle_with_a_sync_client_answers_within_the_deadline_when_threads_are_busy(self) -> None:
        import asyncio

        with LoopbackServer(slow_app(1.5)) as api:
            endpoint = cbk.SessionEndpoint(make_client(api, retries=0), "bot_web", log=lambda line: None)

            async def one() -> Tuple[int, float]:
                started = time.monotonic()
                answer = await endpoint.ahandle("POST", JSON_POST, b"{}", remaining=1.0)
                return answer.status, time.monotonic() - started

            async def run() -> List[Tuple[int, float]]:
                return list(await asyncio.gather(*(one() for _ in range(24))))  # more than the default executor has

            results = asyncio.run(run())
        self.assertEqual({status for status, _ in results}, {504})
        self.assertLess(max(taken for _, taken in results), 0.9)  # within remaining - margin, queue included

    def test_an_alb_with_multi_value_headers_gets_its_answer_in_that_key(self) -> None:
        endpoint, _, fake = endpoint_for()
        event = {
            "requestContext": {"elb": {"targetGroupArn": "arn:aws:elasticloadbalancing:region:1:targetgroup/t/1"}},
            "httpMethod": "POST",
            "path": "/chat-session",
            "multiValueQueryStringParameters": {},
            "multiValueHeaders": {"content-type": ["application/json"], "origin": [SHOP]},
            "body": '{"message": "Hi"}',
            "isBase64Encoded": False,
        }
        answer = endpoint.lambda_handler(event, None)
        self.assertEqual((answer["statusCode"], answer["statusDescription"]), (200, "200 OK"))
        self.assertNotIn("headers", answer)  # the ALB would ignore it
        self.assertEqual(answer["multiValueHeaders"]["Access-Control-Allow-Origin"], [SHOP])
        self.assertEqual(answer["multiValueHeaders"]["Cache-Control"], ["no-store"])
        self.assertEqual(json.loads(fake.requests[0].body)["messages"][0]["text"], "Hi")
        single = endpoint.lambda_handler(
            dict(event, headers={"content-type": "application/json", "origin": SHOP}), None
        )
        self.assertEqual(single["headers"]["Access-Control-Allow-Origin"], SHOP)  # both keys given: headers wins

    def test_a_bad_content_length_is_400_in_every_door(self) -> None:
        for door, call in EVERY_DOOR.items():
            endpoint, _, sent = endpoint_for_door(door)
            for length in ("\u00b2", "9" * 5000, "-1", "1, 2", "0x10", " 1 2"):
                with self.subTest(door=door, length=length[:12]):
                    headers = {"Origin": SHOP, **JSON_POST, "Content-Length": length}
                    status, _, body = call(endpoint, "POST", headers, b"{}")
                    self.assertEqual((status, json.loads(body)["code"]), (400, "BAD_REQUEST"))
            self.assertEqual(sent, [])

    def test_head_is_answered_without_a_body_in_every_door(self) -> None:
        for door, call in EVERY_DOOR.items():
            endpoint, _, _ = endpoint_for_door(door)
            with self.subTest(door=door):
                status, headers, body = call(endpoint, "HEAD", {"Origin": SHOP})
                self.assertEqual((status, body, headers["Allow"]), (405, b"", "OPTIONS, POST"))

    def test_origins_no_browser_sends_are_refused_when_configured(self) -> None:
        client = cbk.BotSessionClient(secret=SECRET, transport=never_called)
        for origin, said in (
            ("https://shop.example:443", "without the default port, as 'https://shop.example'"),
            ("http://shop.example:80", "without the default port"),
            ("https://b\u00fccher.example", "ASCII (xn--...)"),
            ("https://*.shop.example", "wildcard"),
            ("https://shop.example:70000", "port out of range"),
            ("https://shop..example", "not an origin"),
            ("https://-shop.example", "not an origin"),
            ("shop.example", "not an origin"),
        ):
            with self.subTest(origin=origin), self.assertRaises(ValueError) as caught:
                cbk.SessionEndpoint(client, "bot_web", allowed_origins=[origin])
            self.assertIn("allowed_origins", str(caught.exception))
            self.assertIn(said, str(caught.exception))
        kept = cbk.SessionEndpoint(
            client, "b", allowed_origins=["https://shop.example:8443", "http://127.0.0.1:5173", "http://[::1]:3000"]
        )
        self.assertEqual(len(kept.allowed_origins), 3)
        with self.assertRaisesRegex(ValueError, "CHATBOTKIT_ALLOWED_ORIGINS: .* default port"):
            cbk.SessionEndpoint.from_env(
                client, environ={"CHATBOTKIT_BOT_ID": "b", "CHATBOTKIT_ALLOWED_ORIGINS": "https://a.example:443"}
            )

    def test_a_lambda_body_that_is_not_text_is_400(self) -> None:
        endpoint, _, fake = endpoint_for()
        for body in ({"message": "Hi"}, 5, ["x"], True):
            with self.subTest(body=body):
                event = dict(function_url_event(None), body=body)
                answer = endpoint.lambda_handler(event, None)
                self.assertEqual(answer["statusCode"], 400)
                self.assertIn("must be a string", json.loads(answer["body"])["message"])
        self.assertEqual(fake.requests, [])


class TestLambdaHandler(unittest.TestCase):
    """The module's own lambda_handler, configured from the environment, in a folder holding only the module."""

    def http_answers(self, events: List[Any], server_url: str, milliseconds: int = 3000, **env: str) -> List[Any]:
        """What the module's lambda_handler answers to *events*, run as Lambda runs it (its log in self.log)."""
        answers, self.log = self.lambda_answers(events, server_url, milliseconds, **env)
        return answers

    def lambda_answers(
        self, events: List[Any], server_url: str, milliseconds: int = 3000, **env: str
    ) -> Tuple[List[Any], List[str]]:
        code = FAKE_CONTEXT + (
            "import json, chatbotkit_session\n"
            "for event in json.loads(sys.stdin.readline()):\n"
            "    started = time.monotonic()\n"
            "    answer = chatbotkit_session.lambda_handler(event, Context(%d))\n"
            "    print('ANSWER ' + json.dumps([answer, time.monotonic() - started]))\n" % milliseconds
        )
        settings = dict(
            CHATBOTKIT_API_SECRET=SECRET,
            CHATBOTKIT_API_BASE_URL=server_url,
            CHATBOTKIT_BOT_ID="bot_web",
            CHATBOTKIT_ALLOWED_ORIGINS="https://shop.example, http://localhost:5173",
        )
        settings.update(env)
        out = run_lambda(code, clean_env(**settings), json.dumps(events))
        self.assertEqual(out.returncode, 0, out.stderr)
        for form in secret_forms():
            self.assertNotIn(form, out.stdout + out.stderr)
        answers = [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("ANSWER ")]
        return answers, out.stderr.splitlines()

    @waits
    def test_http_events_get_proxy_responses_with_only_what_a_browser_needs(self) -> None:
        import base64

        events = [
            function_url_event('{"message": "Hi"}'),
            function_url_event(base64.b64encode(b'{"message": "B64"}').decode(), base64_encoded=True),
            rest_api_event('{"message": "REST"}'),
            function_url_event(None),
            dict(
                function_url_event(None, "OPTIONS"), headers={"origin": SHOP, "access-control-request-method": "POST"}
            ),
            rest_api_event("{}", "GET"),
            function_url_event('{"botId": "other"}'),
        ]
        with LoopbackServer() as server:
            answers = self.http_answers(events, server.url, CHATBOTKIT_SESSION_DURATION="7200")
        self.assertEqual([answer["statusCode"] for answer, _ in answers], [200] * 4 + [204, 405, 400])
        wanted = {key: SESSION[key] for key in ("conversationId", "token", "expiresAt")}
        for answer, _ in answers[:4]:
            self.assertEqual(json.loads(answer["body"]), wanted)
            self.assertEqual(answer["headers"]["Cache-Control"], "no-store")
        self.assertEqual(answers[0][0]["headers"]["Access-Control-Allow-Origin"], SHOP)  # the Function URL sent it
        self.assertNotIn("Access-Control-Allow-Origin", answers[2][0]["headers"])  # the REST event sent no Origin
        self.assertEqual(answers[4][0]["headers"]["Access-Control-Allow-Methods"], "POST")
        self.assertEqual({record.path for record in server.requests}, {"/api/v1/bot/bot_web/session/create"})
        with_text = [
            {"durationInSeconds": 7200, "messages": [{"type": "user", "text": t}]} for t in ("Hi", "B64", "REST")
        ]
        self.assertEqual([record.json() for record in server.requests], [*with_text, {"durationInSeconds": 7200}])

    @waits
    def test_api_errors_are_502_and_a_hanging_api_504_before_the_deadline(self) -> None:
        def app(handler: Any, record: Recorded) -> None:
            if record.json().get("messages", [{}])[0].get("text") == "hang":
                time.sleep(4)
            json_reply(handler, 401, {"code": "NOT_AUTHENTICATED", "message": "echo " + SECRET})

        events = [function_url_event('{"message": "hang"}'), function_url_event('{"message": "auth"}')]
        down_url = "http://127.0.0.1:%d" % unused_port()
        with LoopbackServer(app) as server:  # the API that hangs or refuses, and one that is down, at once
            runs = [(events, server.url, 1500), ([function_url_event("{}")], down_url, 3000)]
            (answers, self.log), (down, _) = run_concurrently(lambda run: self.lambda_answers(*run), runs)
        (hung, hung_seconds), (refused, _) = answers
        self.assertEqual((hung["statusCode"], json.loads(hung["body"])["code"]), (504, "TIMEOUT"))
        self.assertLess(hung_seconds, 1.5)  # answered before the 1.5 s deadline, not killed at it
        self.assertEqual((refused["statusCode"], json.loads(refused["body"])["code"]), (502, "NOT_AUTHENTICATED"))
        logged = [json.loads(line) for line in self.log]
        self.assertEqual(
            [(line["status"], line["code"]) for line in logged], [(504, "TIMEOUT"), (502, "NOT_AUTHENTICATED")]
        )
        self.assertIn("total_timeout", logged[0]["error"])
        self.assertEqual(down[0][0]["statusCode"], 502)

    @waits
    def test_direct_invocation_keeps_working_as_documented(self) -> None:
        code = (
            "import json\n"
            "import chatbotkit_session as handler\n"
            "event = {'botId': 'bot_1', 'message': 'Hi', 'durationInSeconds': 60}\n"
            "print(json.dumps(handler.lambda_handler(event, None)))\n"
            "print(json.dumps(handler.lambda_handler({}, None)))\n"
            "bad_events = ({'botId': ''}, {'botId': 'b', 'message': 5}, {'botId': 'b', 'durationInSeconds': '6'})\n"
            "for bad in bad_events + ('text',):\n"
            "    try:\n"
            "        handler.lambda_handler(bad, None)\n"
            "    except ValueError as error:\n"
            "        print('ValueError:', error)\n"
        )
        with LoopbackServer() as server:
            env = clean_env(
                CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=server.url, CHATBOTKIT_BOT_ID="bot_web"
            )
            out = run_lambda(code, env)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertEqual(json.loads(lines[0]), dict(SESSION, messages=[{"type": "user", "text": "Hi"}]))
        self.assertEqual(json.loads(lines[1])["id"], "ses_1")
        self.assertEqual(
            [line.split(":")[1].split()[0] for line in lines[2:]],
            ["event.botId", "event.message", "event.durationInSeconds", "event"],
        )
        self.assertEqual(
            [(record.path, record.json()) for record in server.requests],
            [
                (
                    "/api/v1/bot/bot_1/session/create",
                    {"messages": [{"type": "user", "text": "Hi"}], "durationInSeconds": 60},
                ),
                ("/api/v1/bot/bot_web/session/create", {"durationInSeconds": 3600}),
            ],
        )

    @waits
    def test_missing_or_bad_configuration_fails_at_init_naming_the_variable(self) -> None:
        good = dict(CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_BOT_ID="bot_web")
        cases = [
            ({"CHATBOTKIT_API_SECRET": ""}, "CHATBOTKIT_API_SECRET"),
            ({"CHATBOTKIT_BOT_ID": " "}, "CHATBOTKIT_BOT_ID"),
            ({"CHATBOTKIT_SESSION_DURATION": "600"}, "CHATBOTKIT_SESSION_DURATION"),
            ({"CHATBOTKIT_SESSION_DURATION": "\u0661\u0668\u0660\u0660"}, "CHATBOTKIT_SESSION_DURATION"),
            ({"CHATBOTKIT_ALLOWED_ORIGINS": "https://shop.example/page"}, "CHATBOTKIT_ALLOWED_ORIGINS"),
            ({"CHATBOTKIT_ALLOWED_ORIGINS": "*,https://shop.example"}, "CHATBOTKIT_ALLOWED_ORIGINS"),
        ]
        environments = [clean_env(**dict(good, **change), _HANDLER=LAMBDA_HANDLER) for change, _ in cases]
        # Imported as a library (not as Lambda's handler), the module needs none of them: the last run.
        outs = run_concurrently(lambda env: run_lambda("import chatbotkit_session", env), [*environments, clean_env()])
        for (change, variable), out in zip(cases, outs):
            with self.subTest(variable=variable, change=change):
                self.assertNotEqual(out.returncode, 0)
                self.assertIn(variable, out.stderr)
                self.assertNotIn(SECRET, out.stderr)
        self.assertEqual(outs[-1].returncode, 0, outs[-1].stderr)


# =========================================================================================================
# 5. The command line
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# python chatbotkit_session.py, and its development server
# ---------------------------------------------------------------------------------------------------------


class TestCommandLine(unittest.TestCase):
    run_cli = staticmethod(run_cli)

    def test_dry_run_prints_the_request_without_network_or_secret(self) -> None:
        status, out, err = self.run_cli(
            "bot1",
            "--message",
            "user:Hi: there",
            "--message",
            "bot:Hello",
            "--meta",
            "a=1",
            "--meta",
            "b=x=y",
            "--duration",
            "90",
            "--dry-run",
            CHATBOTKIT_API_SECRET=SECRET,
        )
        self.assertEqual(status, 0, err)
        head, body = out.split("\n\n", 1)
        lines = head.splitlines()
        self.assertEqual(lines[0], "POST https://api.chatbotkit.com/v1/bot/bot1/session/create")
        self.assertIn("authorization: Bearer ***", lines)
        self.assertIn("content-type: application/json", lines)
        self.assertEqual(
            json.loads(body),
            {
                "messages": [{"type": "user", "text": "Hi: there"}, {"type": "bot", "text": "Hello"}],
                "meta": {"a": "1", "b": "x=y"},
                "durationInSeconds": 90,
            },
        )
        self.assertNotIn(SECRET, out + err)

    def test_dry_run_works_with_no_secret(self) -> None:
        status, out, err = self.run_cli("bot1", "--dry-run", "--base-url", "https://eu.example.com")
        self.assertEqual(status, 0, err)
        self.assertTrue(out.startswith("POST https://eu.example.com/api/v1/bot/bot1/session/create\n"))
        self.assertNotIn("authorization", out)
        self.assertIn("CHATBOTKIT_API_SECRET", err)

    def test_request_json_file_and_flags_combine(self) -> None:
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "request.json")
            with open(path, "w") as handle:
                json.dump(
                    {
                        "durationInSeconds": 10,
                        "messages": [{"type": "context", "text": "c"}],
                        "meta": {"k": 1, "j": 2},
                        "extra": True,
                    },
                    handle,
                )
            status, out, err = self.run_cli(
                "b", "--request-json", path, "--message", "user:u", "--meta", "k=v", "--duration", "2.5", "--dry-run"
            )
        self.assertEqual(status, 0, err)
        self.assertEqual(
            json.loads(out.split("\n\n", 1)[1]),
            {
                "durationInSeconds": 2.5,
                "messages": [{"type": "context", "text": "c"}, {"type": "user", "text": "u"}],
                "meta": {"k": "v", "j": 2},
                "extra": True,
            },
        )

    @waits
    def test_request_json_from_stdin(self) -> None:
        out = run_python(
            str(MODULE_FILE),
            "b",
            "--request-json",
            "-",
            "--dry-run",
            env=clean_env(),
            input='{"meta": {"from": "stdin"}}',
        )
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout.split("\n\n", 1)[1]), {"meta": {"from": "stdin"}})

    def test_hints_name_what_the_command_line_offers(self) -> None:
        status, _, err = self.run_cli("bot")
        self.assertEqual(status, 2)
        self.assertIn("CHATBOTKIT_API_SECRET is not set: export it (add --dry-run", err)
        self.assertNotIn("secret=", err)
        status, _, err = self.run_cli("bot", "--base-url", "http://api.example", CHATBOTKIT_API_SECRET=SECRET)
        self.assertEqual(status, 2)
        self.assertIn("--allow-insecure-http", err)
        status, out, _ = self.run_cli(
            "bot",
            "--base-url",
            "http://api.example",
            "--allow-insecure-http",
            "--dry-run",
            CHATBOTKIT_API_SECRET=SECRET,
        )
        self.assertEqual((status, out.splitlines()[0]), (0, "POST http://api.example/api/v1/bot/bot/session/create"))

    def test_request_json_from_stdin_names_stdin_in_errors(self) -> None:
        with _stdin("{not json"):
            status, _, err = self.run_cli("bot", "--request-json", "-", "--dry-run")
        self.assertEqual(status, 2)
        self.assertIn("--request-json: stdin is not valid JSON", err)

    def test_usage_errors_exit_2_with_usage_and_one_error_line(self) -> None:
        cases = [
            (("b", "--message", "no-colon", "--dry-run"), "TYPE:TEXT"),
            (("b", "--message", ":text", "--dry-run"), "TYPE:TEXT"),
            (("", "--dry-run"), "bot_id"),
            (("..", "--dry-run"), "bot_id"),
            (("b",), "CHATBOTKIT_API_SECRET"),
            (("b", "--meta", "novalue", "--dry-run"), "KEY=VALUE"),
            (("b", "--duration", "soon", "--dry-run"), "--duration"),
            (("b", "--duration", "nan", "--dry-run"), "--duration"),
            (("b", "--timeout", "0", "--dry-run"), "timeout"),
            (("b", "--retries", "-1", "--dry-run"), "retries"),
            (("b", "--base-url", "ftp://x", "--dry-run"), "base_url"),
            (("b", "--request-json", "/no/such/file.json", "--dry-run"), "--request-json"),
            (("b", "--bogus"), "unrecognized arguments"),
            ((), "BOT_ID"),
        ]
        for argv, expected in cases:
            with self.subTest(argv=argv):
                status, out, err = self.run_cli(*argv)
                self.assertEqual(status, 2)
                self.assertEqual(out, "")
                self.assertTrue(err.startswith("usage: chatbotkit-session"), err)
                errors = [line for line in err.splitlines() if "error:" in line]
                self.assertEqual(len(errors), 1, err)
                self.assertIn(expected, errors[0])
                self.assertNotIn("Traceback", err)

    def test_success_prints_the_session(self) -> None:
        with LoopbackServer() as server:
            status, out, err = self.run_cli(
                "bot1", "--message", "user:Hello", CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=server.url
            )
        self.assertEqual(status, 0, err)
        self.assertEqual(json.loads(out), dict(SESSION, messages=[{"type": "user", "text": "Hello"}]))
        self.assertEqual(server.requests[0].headers["authorization"], "Bearer " + SECRET)

    def test_api_and_network_errors_exit_1_with_one_line(self) -> None:
        def echo(handler: Any, record: Recorded) -> None:
            json_reply(
                handler, 403, {"code": "NOT_AUTHORIZED", "message": "no access for " + record.headers["authorization"]}
            )

        with LoopbackServer(echo) as server:
            status, out, err = self.run_cli(
                "bot1", "--retries", "0", CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=server.url
            )
        self.assertEqual((status, out), (1, ""))
        self.assertEqual(
            err, "chatbotkit-session: error: NOT_AUTHORIZED (HTTP 403): no access for Bearer *** (1 attempt)\n"
        )
        status, out, err = self.run_cli(
            "bot1", "--retries", "0", "--base-url", "http://127.0.0.1:%d" % unused_port(), CHATBOTKIT_API_SECRET=SECRET
        )
        self.assertEqual(status, 1)
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn("CONNECTION_ERROR", err)

    def test_a_refused_long_retry_after_shows_the_wait_and_the_attempts(self) -> None:
        def busy(handler: Any, record: Recorded) -> None:
            json_reply(handler, 429, {"message": "slow down"}, [("Retry-After", "120")])

        with LoopbackServer(busy) as server:
            status, _, err = self.run_cli(
                "bot1", "--retries", "3", CHATBOTKIT_API_SECRET=SECRET, CHATBOTKIT_API_BASE_URL=server.url
            )
        self.assertEqual(status, 1)
        self.assertEqual(
            err,
            "chatbotkit-session: error: TOO_MANY_REQUESTS (HTTP 429): slow down (the server asked to retry after "
            "120 s, longer than the 60 s this client waits; 1 attempt)\n",
        )

    @waits
    def test_verbose_and_chatbotkit_log_show_attempts_and_retries_on_stderr_without_the_secret(self) -> None:
        def run(flags: List[str], env: Dict[str, str]) -> Any:
            def flaky(handler: Any, record: Recorded) -> None:
                if len(server.requests) == 1:
                    json_reply(handler, 503, {"message": "echo " + SECRET})
                else:
                    session_app(handler, record)

            with LoopbackServer(flaky) as server:
                return run_python(
                    str(MODULE_FILE),
                    "bot1",
                    "--base-url",
                    server.url,
                    *flags,
                    env=clean_env(CHATBOTKIT_API_SECRET=SECRET, **env),
                )

        runs = [(["--verbose"], {}), ([], {"CHATBOTKIT_LOG": "debug"}), ([], {"CHATBOTKIT_LOG": "INFO"})]
        outs = run_concurrently(lambda case: run(*case), runs)  # three processes, each with its own server
        for (flags, env), out in zip(runs, outs):
            with self.subTest(flags=flags, env=env):
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(json.loads(out.stdout)["id"], "ses_1")
                retries = [line for line in out.stderr.splitlines() if " INFO retrying POST " in line]
                attempts = [line for line in out.stderr.splitlines() if " DEBUG POST " in line]
                self.assertEqual(len(retries), 1, out.stderr)
                self.assertIn("after 503 (attempt 2 of 4)", retries[0])
                self.assertEqual(len(attempts), 0 if env.get("CHATBOTKIT_LOG") == "INFO" else 2, out.stderr)
                for form in secret_forms():
                    self.assertNotIn(form, out.stderr)
        quiet = run_python(str(MODULE_FILE), "bot1", "--dry-run", env=clean_env(CHATBOTKIT_LOG="verbose"))
        self.assertEqual(quiet.returncode, 0)
        self.assertNotIn("DEBUG", quiet.stderr)
        self.assertEqual(quiet.stderr.count("CHATBOTKIT_LOG='verbose' is not one of debug, info"), 1, quiet.stderr)

    @waits
    def test_entry_points_report_the_version(self) -> None:
        for argv in ([str(MODULE_FILE), "--version"], ["-m", "chatbotkit_session", "--version"]):
            with self.subTest(argv=argv):
                out = run_python(*argv)
                self.assertEqual((out.returncode, out.stdout.strip()), (0, "chatbotkit-session " + cbk.__version__))

    @waits
    def test_exit_statuses_hold_when_stdout_or_stderr_is_full_or_closed(self) -> None:
        dry = [str(MODULE_FILE), "bot", "--dry-run"]
        cases = [
            ("stdout full", dry, ">/dev/full", 1, "cannot write to stdout"),
            ("stdout closed", dry, ">&-", 1, "cannot write to stdout"),
            ("--version, stdout full", [*dry[:1], "--version"], ">/dev/full", 1, "cannot write to stdout"),
            ("usage error, stderr closed", [*dry[:2], "--timeout", "0"], "2>&-", 2, ""),
            ("no such flag, stderr closed", [*dry[:2], "--nope"], "2>&-", 2, ""),
            ("stdout closed, stderr closed", dry, ">&- 2>&-", 1, ""),
        ]
        env = clean_env(CHATBOTKIT_API_SECRET=SECRET)
        outs = run_concurrently(lambda case: run_python(*case[1], redirect=case[2], env=env), cases)
        for (name, _, _, status, said), out in zip(cases, outs):
            with self.subTest(name):
                self.assertEqual(out.returncode, status, out.stderr)
                self.assertNotIn("Traceback", out.stderr)
                self.assertNotIn("Exception ignored", out.stderr)
                if said:
                    self.assertEqual(out.stderr.count("\n"), 1, out.stderr)
                    self.assertIn(said, out.stderr)

    @waits
    def test_main_runs_as_a_process_without_traceback(self) -> None:
        out = run_python(str(MODULE_FILE), "bot", env=clean_env())
        self.assertEqual(out.returncode, 2)
        self.assertIn("CHATBOTKIT_API_SECRET is not set", out.stderr)
        self.assertNotIn("Traceback", out.stderr)
