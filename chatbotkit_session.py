# SPDX-License-Identifier: MIT
# pyright: reportUnnecessaryIsInstance=false, reportPrivateUsage=false
# (Callers without a type checker pass anything, so inputs are checked at run time; and "private" here
# means private to this one-file module, whose classes share their underscored helpers.)
"""chatbotkit_session: a one-file, standard-library-only client for ChatBotKit bot sessions.

It calls ``POST /v1/bot/{botId}/session/create``, which opens a conversation for a bot and returns a
short-lived token a browser widget can use. It is the Python counterpart of ``BotSessionClient`` in the
official ``@chatbotkit/sdk`` for Node, made to be copied into a project as this single file, used where
pip is not available (CPython 3.8 to 3.15, free-threaded builds included, and PyPy), or dropped beside an
AWS Lambda handler. It has a synchronous client (``BotSessionClient``) and an asyncio one
(``AsyncBotSessionClient``) on one core.

Home: not published anywhere yet; this file is the whole library and README.md in its distribution
(``chatbotkit-session``) is its manual.
Copyright (c) 2026 the chatbotkit_session authors.
Licence: MIT (SPDX: MIT); the full text is in the LICENSE file of the distribution.
"""

from __future__ import annotations

import _thread  # only for a lock: the threading module would cost start-up time
import collections.abc
import email.utils
import functools
import http.client
import io
import json
import math
import os
import random
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, fields, replace
from types import CodeType, MappingProxyType
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypedDict,
    TypeVar,
    Union,
    cast,
)

__version__ = "0.2.0"
__license__ = "MIT"

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AsyncBotSessionClient",
    "BotSessionClient",
    "BotSessionCreateRequest",
    "BotSessionCreateResponse",
    "BotSessionMessage",
    "ChatBotKitClient",
    "ChatBotKitError",
    "ClientOptions",
    "HTTPRequest",
    "HTTPResponse",
    "KeepAliveTransport",
    "UrllibTransport",
    "acreate_bot_session",
    "create_bot_session",
    "main",
]

# ---------------------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------------------

_DEFAULT_BASE_URL = "https://api.chatbotkit.com"
_OFFICIAL_HOST = "api.chatbotkit.com"
_SESSION_PATH_TEMPLATE = "/api/v1/bot/{botId}/session/create"
_USER_AGENT = "chatbotkit-session-python/%s (Python %d.%d)" % (
    __version__,
    sys.version_info[0],
    sys.version_info[1],
)
_LOGGER_NAME = "chatbotkit_session"

_MAX_ERROR_BODY_CHARS = 64 * 1024  # how much of a failed response body APIError keeps (after masking)
# A session is well under a kilobyte, and a megabyte also holds echoed messages. The cap also bounds
# the time spent digesting the last answer after total_timeout's clock has run (about 0.2 s at the
# worst for a megabyte of hostile JSON on the CI machine, where 16 MiB took seconds).
_DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
_READ_CHUNK_BYTES = 64 * 1024
_MAX_BACKOFF_SECONDS = 8.0  # cap of our own exponential backoff
_MAX_RETRY_AFTER_SECONDS = 60.0  # a server asking for a longer wait is not slept on: we raise at once
# The longest timeout accepted: poll() takes milliseconds as a C int (about 24.8 days), and a socket
# timeout past that overflows. A million seconds (11.6 days) is far beyond any sensible call.
_MAX_TIMEOUT_SECONDS = 1e6
_MAX_JSON_DEPTH = 64  # deeper answers are not sessions; it also keeps the json module clear of RecursionError
_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_ASYNC_WORKERS = 64  # threads an AsyncBotSessionClient may use at once for a synchronous transport
# What http.client and urllib take for "the socket module's default timeout" (None would mean "none").
_SOCKET_DEFAULT_TIMEOUT: Any = vars(socket)["_GLOBAL_DEFAULT_TIMEOUT"]

# Codes for error responses whose body does not carry one (the table of @chatbotkit/fetch).
_STATUS_CODES: Mapping[int, str] = MappingProxyType(
    {
        400: "BAD_REQUEST",
        401: "NOT_AUTHENTICATED",
        402: "NO_SUBSCRIPTION",
        403: "NOT_AUTHORIZED",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        408: "TIMEOUT",
        409: "CONFLICT",
        413: "CONTENT_TOO_LARGE",
        422: "UNPROCESSABLE_ENTITY",
        429: "TOO_MANY_REQUESTS",
        500: "INTERNAL_SERVER_ERROR",
        501: "NOT_IMPLEMENTED",
        502: "BAD_GATEWAY",
        503: "SERVICE_UNAVAILABLE",
        504: "GATEWAY_TIMEOUT",
    }
)

# Header values masked in every repr: they carry credentials.
_SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})
# Headers the transport computes; a caller setting them would corrupt the message framing.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_EMPTY: Mapping[str, Any] = MappingProxyType({})
_IPV6_LOOPBACK = bytes(15) + b"\x01"  # ::1 as inet_pton gives it
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
# Characters that could start a new line or move the cursor in a terminal or a log: escaped in every text
# the library builds from what a server sent (C0, DEL, C1, and the Unicode line and paragraph separators).
_CONTROL_CHARS = frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]))
_CONTROL_ESCAPES = {ord(char): ("\\x%02x" if char < "\u0100" else "\\u%04x") % ord(char) for char in _CONTROL_CHARS}


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------


def _rebuild_error(cls: Type[_E], state: Dict[str, Any]) -> _E:
    """Make an error of class *cls* with attributes *state* (how errors are copied, pickled and masked)."""
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    vars(error).update(state)
    return error


class ChatBotKitError(Exception):
    """Base class of every error this module raises on purpose.

    ``message`` is a human-readable sentence and ``code`` a stable machine-readable string
    (``NOT_AUTHENTICATED``, ``TIMEOUT``, ...); ``attempts`` is how many attempts the call made before
    it raised (None on an error that no call raised). Bad input is not a ChatBotKitError: it raises the
    built-in ``ValueError`` or ``TypeError`` before any network I/O. Errors survive ``copy``,
    ``deepcopy`` and pickling (a process pool hands them back whole).
    """

    def __init__(self, message: str, code: str = "GENERIC_ERROR") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.attempts: Optional[int] = None

    def __str__(self) -> str:
        return "%s: %s" % (self.code, self.message)

    def __reduce__(self) -> Tuple[Callable[..., ChatBotKitError], Tuple[Type[ChatBotKitError], Dict[str, Any]]]:
        return _rebuild_error, (type(self), dict(vars(self)))


_E = TypeVar("_E", bound=ChatBotKitError)


class APIError(ChatBotKitError):
    """The server answered, but not with a usable session.

    Raised for every non-2xx status (3xx included: redirects are never followed), for a 2xx whose body
    is not a session (``code="INVALID_RESPONSE"``) and for a body over the size limit
    (``code="RESPONSE_TOO_LARGE"``). ``status`` is the HTTP status, ``url`` the request URL,
    ``headers`` the response headers (case-insensitive), ``body`` the response text (its first 65,536
    characters), and ``retry_after`` the delay in seconds the server asked for, or None. The client's
    secret is masked as ``***`` in all of them.
    """

    def __init__(
        self,
        message: str,
        code: str,
        *,
        status: int,
        url: str = "",
        headers: Optional[Mapping[str, str]] = None,
        body: str = "",
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message, code)
        self.status = status
        self.url = url
        self.headers: Mapping[str, str] = _Headers(headers or {})
        self.body = body
        self.retry_after = retry_after

    def __str__(self) -> str:
        return "%s (HTTP %d): %s" % (self.code, self.status, self.message)

    def __repr__(self) -> str:
        return "%s(status=%d, code=%r, message=%r)" % (type(self).__name__, self.status, self.code, self.message)


class APIConnectionError(ChatBotKitError):
    """The server could not be reached or the exchange broke off.

    DNS failure, refused or reset connection, TLS failure (``code="TLS_ERROR"``), a malformed answer
    that is not HTTP. The message names ``host:port``, the kind of failure and its text (the secret
    masked). The low-level exception is not chained: it may hold the server's raw bytes.

    ``request_sent`` is False only when the request cannot have reached the server whole: the connection
    was refused, the name did not resolve, the TLS handshake failed, or sending failed before the whole
    request was written. Only such failures are retried under ``retry_timeout=False``. A transport of
    your own marks one by raising ``APIConnectionError(..., request_sent=False)``; any other failure it
    raises counts as possibly sent, except ``ConnectionRefusedError`` and ``socket.gaierror``.
    """

    def __init__(self, message: str, code: str = "CONNECTION_ERROR", *, request_sent: bool = True) -> None:
        super().__init__(message, code)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """An attempt took longer than ``timeout``, or the whole call longer than ``total_timeout``."""

    def __init__(self, message: str, code: str = "TIMEOUT", *, request_sent: bool = True) -> None:
        super().__init__(message, code, request_sent=request_sent)


# ---------------------------------------------------------------------------------------------------------
# Small helpers shared by the sections below
# ---------------------------------------------------------------------------------------------------------


class _Headers(Mapping[str, str]):
    """A read-only, case-insensitive mapping of header names to values; its repr masks credentials."""

    __slots__ = ("_index", "_message")

    def __init__(self, headers: Union[Mapping[str, str], Iterable[Tuple[str, str]]]) -> None:
        self._message: Optional[http.client.HTTPMessage] = None
        if isinstance(headers, collections.abc.Mapping):
            pairs: Iterable[Tuple[str, str]] = cast(Mapping[str, str], headers).items()
        else:
            pairs = headers
        self._index: Optional[Dict[str, Tuple[str, str]]] = self._indexed(pairs)

    @classmethod
    def received(cls, message: http.client.HTTPMessage) -> _Headers:
        """The headers of a received response, indexed on first use: most successful calls never read them."""
        headers = cls.__new__(cls)
        headers._message = message
        headers._index = None
        return headers

    @staticmethod
    def _indexed(pairs: Iterable[Tuple[str, str]]) -> Dict[str, Tuple[str, str]]:
        index: Dict[str, Tuple[str, str]] = {}
        for name, value in pairs:
            key = name.lower()
            if key in index:  # a repeated header: combine as HTTP allows
                value = index[key][1] + ", " + value
            index[key] = (name, value)
        return index

    @property
    def _items(self) -> Dict[str, Tuple[str, str]]:
        index = self._index
        if index is None:  # two threads may both build it: the same dict, harmlessly
            index = self._index = self._indexed(self._message.items() if self._message is not None else ())
        return index

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()][1]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return (name for name, _ in self._items.values())

    def __len__(self) -> int:
        return len(self._items)

    def __reduce__(self) -> Tuple[type, Tuple[List[Tuple[str, str]]]]:
        return _Headers, (list(self._items.values()),)

    def as_dict(self) -> Dict[str, str]:
        """A plain dict of the headers, names as given (what http.client and urllib take)."""
        return dict(self._items.values())

    def __repr__(self) -> str:
        shown = {name: "***" if key in _SENSITIVE_HEADERS else value for key, (name, value) in self._items.items()}
        return "Headers(%r)" % (shown,)


def _plain_headers(headers: Mapping[str, str]) -> Dict[str, str]:
    """Headers as the plain dict http.client and urllib take."""
    return headers.as_dict() if isinstance(headers, _Headers) else dict(headers)


def _path_segment(value: str) -> str:
    """*value* escaped as one URL path segment (typical ids are letters and digits: nothing to escape)."""
    return value if value.isalnum() and value.isascii() else urllib.parse.quote(value, safe="")


def _is_localhost_name(host: str) -> bool:
    """``localhost`` or a name under ``.localhost``: loopback by definition (RFC 6761 section 6.3)."""
    host = host.strip("[]").lower().rstrip(".")
    return host == "localhost" or host.endswith(".localhost")


def _is_loopback(host: str) -> bool:
    """Tell whether *host* (a name or an IP address, IPv6 with or without brackets) is this machine.

    The transports connect to a localhost name's loopback addresses themselves, never asking DNS, so
    a name that passes here cannot lead anywhere else.
    """
    if _is_localhost_name(host):
        return True
    host = host.strip("[]").lower().rstrip(".")
    # inet_pton is strict (no "127.1" shorthand) and, unlike the ipaddress module, costs no import.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET if host[-1:].isdigit() else None
    if family is None:
        return False  # a host name: only localhost names count, whatever DNS says
    try:
        address = socket.inet_pton(family, host)
    except (OSError, ValueError):
        return False
    return address[0] == 127 if family == socket.AF_INET else address == _IPV6_LOOPBACK


def _check_text(name: str, value: object, *, allow_empty: bool = True) -> str:
    """Return *value* if it is a string HTTP can carry in a header (Latin-1, no control characters),
    else raise naming *name*."""
    if not isinstance(value, str):
        raise TypeError("%s must be a string, not %s" % (name, type(value).__name__))
    if not allow_empty and not value.strip():
        raise ValueError("%s must not be empty or blank" % name)
    if not _CONTROL_CHARS.isdisjoint(value):
        raise ValueError("%s must not contain control characters (CR, LF, NUL, tab, ...)" % name)
    if not value.isascii():
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError("%s has characters HTTP headers cannot carry (only Latin-1 can be sent)" % name) from None
    return value


def _shown(value: object) -> str:
    """repr(value) for an error message, even for an integer too long to write out."""
    try:
        return repr(value)
    except ValueError:  # more digits than int-to-text conversion allows
        return "an integer of %d bits" % cast(int, value).bit_length()


def _check_seconds(name: str, value: object, *, allow_zero: bool) -> float:
    """Return *value* as a float if it is a finite number of seconds in range, else raise naming *name*."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("%s must be a number, not %s" % (name, type(value).__name__))
    if not (0 <= value <= _MAX_TIMEOUT_SECONDS) or (value == 0 and not allow_zero):  # NaN fails both tests
        raise ValueError(
            "%s must be a number of seconds %s 0 and at most %d, got %s"
            % (name, ">=" if allow_zero else ">", _MAX_TIMEOUT_SECONDS, _shown(value))
        )
    return float(value)


def _parse_url(name: str, url: str) -> urllib.parse.SplitResult:
    """``urllib.parse.urlsplit(url)``, its refusal (an unclosed ``[``, say) raised naming *name*."""
    try:
        return urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise ValueError("%s is not a valid URL (%s), got %r" % (name, exc, url)) from None


def _split_http_url(name: str, url: str) -> urllib.parse.SplitResult:
    """Parse an absolute http(s) URL with an ASCII host and a valid port, or raise ValueError naming *name*."""
    _check_text(name, url, allow_empty=False)
    parts = _parse_url(name, url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("%s must be an http:// or https:// URL with a host, got %r" % (name, url))
    if not parts.netloc.isascii() or " " in parts.netloc:
        raise ValueError(
            "%s must have an ASCII host name (write an international one as xn--...), got %r" % (name, url)
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError("%s must not carry credentials; use the secret option" % name)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError("%s has an invalid port: %s" % (name, exc)) from None
    return parts


def _quote_target(value: str) -> str:
    """A path (and query) as a URL carries it: spaces and non-ASCII percent-encoded, as a browser's URL
    parser does; existing escapes, reserved characters and ``{botId}`` placeholders are kept."""
    return urllib.parse.quote(value, safe="/%:@!$&'()*+,;=-._~?#[]{}")


# ---------------------------------------------------------------------------------------------------------
# Secrecy: the one place that cleans every text leaving the library
# ---------------------------------------------------------------------------------------------------------


def _any_case_hex(digits: str) -> str:
    return "".join("[%s%s]" % (digit.lower(), digit.upper()) if digit.isalpha() else digit for digit in digits)


def _echo_pattern(secret: str) -> str:
    """A regular expression matching *secret* however a server may echo it: each character as itself,
    as a JSON ``\\uXXXX`` escape, percent-encoded (either case of hex), or backslash-escaped."""
    parts: List[str] = []
    for char in secret:
        forms = [re.escape(char), r"\\u" + _any_case_hex("%04x" % ord(char))]
        forms.append("".join("%" + _any_case_hex("%02x" % byte) for byte in char.encode("utf-8")))
        if char in "\\\"'/":
            forms.append(re.escape("\\" + char))
        parts.append("(?:%s)" % "|".join(forms))
    return "".join(parts)


def _escape_control(text: str) -> str:
    """*text* with control characters written as escapes (``\\x0a``), so that it stays on one line."""
    return text.translate(_CONTROL_ESCAPES)


class _Secrecy:
    """Masks the secret in what leaves the library: every error passes through ``scrub`` before it is raised.

    Built per client from its secret; the pattern is compiled on first use, so calls that succeed never
    pay for it.
    """

    __slots__ = ("_pattern", "_secret")

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._pattern: Optional[re.Pattern[str]] = None

    def mask(self, text: str) -> str:
        """*text* with the secret, in any echoed form, replaced by ``***``."""
        if not self._secret:
            return text
        if self._pattern is None:
            self._pattern = re.compile(_echo_pattern(self._secret))
        return self._pattern.sub("***", text)

    def clean(self, text: str) -> str:
        """*text* masked, and with control characters escaped so that it stays on one line."""
        return _escape_control(self.mask(text))

    def scrub(self, error: _E) -> _E:
        """A copy of *error* whose every text is cleaned (the body masked and cut), with no chained exception."""
        state: Dict[str, Any] = {}
        # An echo of the secret takes at most six characters per character of it (\u0073): masking that
        # much past the cut finds every echo that starts before it, without masking the whole body.
        window = _MAX_ERROR_BODY_CHARS + 6 * len(self._secret)
        for name, value in vars(error).items():
            if name == "body" and isinstance(value, str):
                value = self.mask(value[:window])[:_MAX_ERROR_BODY_CHARS]
            elif isinstance(value, str):
                value = self.clean(value)
            elif isinstance(value, _Headers):
                value = _Headers([(self.clean(key), self.clean(item)) for key, item in value.items()])
            state[name] = value
        return _rebuild_error(type(error), state)


# ---------------------------------------------------------------------------------------------------------
# The HTTP exchange, as plain data in and out
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False, eq=False)
class HTTPRequest:
    """One HTTP request as a transport receives it: ``timeout`` (seconds or None) bounds the whole exchange."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes
    timeout: Optional[float]

    def __post_init__(self) -> None:
        if not isinstance(self.headers, _Headers):
            object.__setattr__(self, "headers", _Headers(self.headers))

    def __repr__(self) -> str:
        return "HTTPRequest(method=%r, url=%r, headers=%r, body=<%d bytes>, timeout=%r)" % (
            self.method,
            self.url,
            self.headers,
            len(self.body),
            self.timeout,
        )


@dataclass(frozen=True, repr=False, eq=False)
class HTTPResponse:
    """One HTTP response as a transport returns it; ``headers`` are looked up case-insensitively."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.headers, _Headers):
            object.__setattr__(self, "headers", _Headers(self.headers))

    def __repr__(self) -> str:
        return "HTTPResponse(status=%d, headers=%r, body=<%d bytes>)" % (self.status, self.headers, len(self.body))


Transport = Callable[[HTTPRequest], HTTPResponse]
"""A synchronous transport: sends one request and returns the response, honouring ``request.timeout``."""
AsyncTransport = Callable[[HTTPRequest], Awaitable[HTTPResponse]]
"""An asynchronous transport (a coroutine function); only ``AsyncBotSessionClient`` accepts one."""


_CO_COROUTINE = 0x80  # the code flag of an ``async def`` function (inspect.CO_COROUTINE)


def _is_async_transport(transport: object) -> bool:
    """Tell whether *transport* is a coroutine function, or an object whose ``__call__`` is one.

    Read from the code flags, as ``inspect.iscoroutinefunction`` does, because importing inspect costs
    about 5 ms from Python 3.15 on (measured on 3.15.2), where dataclasses no longer loads it.
    """
    for candidate in (transport, type(transport).__call__):  # callable: its type has __call__
        while isinstance(candidate, functools.partial):
            candidate = cast(Any, candidate).func
        code = getattr(getattr(candidate, "__func__", candidate), "__code__", None)
        if isinstance(code, CodeType) and code.co_flags & _CO_COROUTINE:
            return True
    return False


# ---------------------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------------------


# The default of every keyword that takes an option: "not given". Typed Any so that each keyword can
# carry the option's own type, which is what type checkers and editors check and complete.
class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "<unset>"


_UNSET: Any = _Unset()


def _no_strings() -> Dict[str, str]:
    return {}


@dataclass(frozen=True, repr=False, eq=False)
class ClientOptions:
    """Everything a client needs to know, validated when built and read-only afterwards.

    ``secret`` is the API secret sent as ``Authorization: Bearer``; it never shows in a repr.
    ``base_url`` is where the API lives (any path in it is replaced by the operation's path);
    ``host`` (which may carry a port) and ``protocol`` replace those parts of it when the options are
    built, as the Node SDK does: afterwards ``base_url`` holds the result and both read None, so a later
    ``extend(base_url=...)`` moves every request. ``endpoints`` maps an operation path
    (``/api/v1/bot/{botId}/session/create``, or a concrete one with the bot id raw or escaped) to a
    replacement path or absolute URL. ``run_as_user_id``, ``run_as_child_user_email`` and ``timezone``
    become the ``X-RunAs-User-Id``, ``X-RunAs-Child-User-Email`` and ``X-Timezone`` headers;
    ``headers`` are sent with every request (the computed headers win). ``timeout`` bounds each attempt
    in seconds and ``total_timeout`` the whole call, retries and waits included (None: no limit);
    ``retries``, ``retry_delay`` and ``retry_timeout`` shape the retry policy. ``transport`` replaces the
    default ``UrllibTransport``, which ``ssl_context`` and ``max_response_bytes`` configure.
    ``allow_insecure_http`` permits sending the secret over plain http to a host that is not this machine.
    """

    secret: str = ""
    base_url: str = _DEFAULT_BASE_URL
    host: Optional[str] = None
    protocol: Optional[str] = None
    endpoints: Mapping[str, str] = field(default_factory=_no_strings)
    run_as_user_id: Optional[str] = None
    run_as_child_user_email: Optional[str] = None
    timezone: Optional[str] = None
    headers: Mapping[str, str] = field(default_factory=_no_strings)
    timeout: Optional[float] = 30.0
    total_timeout: Optional[float] = None
    retries: int = 3
    retry_delay: float = 0.25
    retry_timeout: bool = True
    transport: Optional[Union[Transport, AsyncTransport]] = None
    ssl_context: Optional[ssl.SSLContext] = None
    max_response_bytes: int = _DEFAULT_MAX_RESPONSE_BYTES
    allow_insecure_http: bool = False

    def __post_init__(self) -> None:
        _check_text("secret", self.secret)
        if self.secret and not all("!" <= char <= "~" for char in self.secret):
            raise ValueError("secret must be printable ASCII without spaces (was an invisible character pasted?)")
        _split_http_url("base_url", self.base_url)
        if self.host is not None or self.protocol is not None:
            object.__setattr__(self, "base_url", self._folded_base_url())
            object.__setattr__(self, "host", None)
            object.__setattr__(self, "protocol", None)
        object.__setattr__(self, "endpoints", MappingProxyType(self._checked_endpoints()))
        object.__setattr__(self, "headers", self._checked_headers())
        for name in ("run_as_user_id", "run_as_child_user_email", "timezone"):
            if getattr(self, name) is not None:
                _check_text(name, getattr(self, name))
        for name in ("timeout", "total_timeout"):
            if getattr(self, name) is not None:
                _check_seconds(name, getattr(self, name), allow_zero=False)
        if isinstance(self.retries, bool) or not isinstance(self.retries, int):
            raise TypeError("retries must be an int, not %s" % type(self.retries).__name__)
        if not 0 <= self.retries <= 1000:
            raise ValueError("retries must be from 0 to 1000, got %s" % _shown(self.retries))
        _check_seconds("retry_delay", self.retry_delay, allow_zero=True)
        for name in ("retry_timeout", "allow_insecure_http"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError("%s must be a bool, not %s" % (name, type(getattr(self, name)).__name__))
        if self.transport is not None and not callable(self.transport):
            raise TypeError("transport must be callable (HTTPRequest -> HTTPResponse)")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise TypeError("ssl_context must be an ssl.SSLContext, not %s" % type(self.ssl_context).__name__)
        if isinstance(self.max_response_bytes, bool) or not isinstance(self.max_response_bytes, int):
            raise TypeError("max_response_bytes must be an int")
        if self.max_response_bytes <= 0:
            raise ValueError("max_response_bytes must be > 0, got %s" % _shown(self.max_response_bytes))
        self._check_secret_stays_safe()

    def _folded_base_url(self) -> str:
        """``base_url`` with ``protocol`` and ``host`` applied, as a browser's URL setters apply them:
        a host without a port keeps the base URL's port."""
        base = urllib.parse.urlsplit(self.base_url)
        scheme, netloc = base.scheme, base.netloc
        if self.protocol is not None:
            scheme = _check_text("protocol", self.protocol).rstrip(":")
            if scheme not in ("http", "https"):
                raise ValueError("protocol must be 'http' or 'https', got %r" % (self.protocol,))
        if self.host is not None:
            _check_text("host", self.host, allow_empty=False)
            try:
                host_parts = urllib.parse.urlsplit("//" + self.host)
            except ValueError as exc:  # an unclosed "[", say
                raise ValueError(
                    "host must be a host name with an optional port (%s), got %r" % (exc, self.host)
                ) from None
            if host_parts.netloc != self.host or not host_parts.hostname or "@" in self.host:
                raise ValueError("host must be a host name with an optional port, got %r" % self.host)
            _split_http_url("host", "http://" + self.host)
            netloc = self.host
            if host_parts.port is None and base.port is not None:
                netloc = "%s:%d" % (self.host, base.port)
        return urllib.parse.urlunsplit((scheme, netloc, base.path, base.query, ""))

    def _checked_endpoints(self) -> Dict[str, str]:
        if not isinstance(self.endpoints, collections.abc.Mapping):
            raise TypeError("endpoints must be a mapping of paths, not %s" % type(self.endpoints).__name__)
        endpoints: Dict[str, str] = {}
        for key, value in self.endpoints.items():
            _check_text("endpoints key", key, allow_empty=False)
            where = "endpoints[%r]" % key
            _check_text(where, value, allow_empty=False)
            if value.startswith("//") or "\\" in value:
                raise ValueError("%s must be a path or an absolute http(s) URL, got %r" % (where, value))
            if _parse_url(where, value).scheme:  # absolute, as a browser's URL parser sees it
                parts = _split_http_url(where, value)
                value = urllib.parse.urlunsplit(parts._replace(path=_quote_target(parts.path), fragment=""))
            else:
                value = _quote_target(value)
            endpoints[key] = value
        return endpoints

    def _checked_headers(self) -> _Headers:
        if not isinstance(self.headers, collections.abc.Mapping):
            raise TypeError("headers must be a mapping of names to values, not %s" % type(self.headers).__name__)
        for name, value in self.headers.items():
            if not isinstance(name, str) or not name or not set(name) <= _TOKEN_CHARS:
                raise ValueError("headers: %s is not a valid header name" % _shown(name))
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError("headers: %r is set by the transport and cannot be overridden" % name)
            _check_text("headers[%r]" % name, value)
        return _Headers(self.headers)

    def _check_secret_stays_safe(self) -> None:
        """Refuse, before any I/O, a configuration that would send the secret in clear text off this machine."""
        if not self.secret or self.allow_insecure_http:
            return
        targets = [("base_url", self.base_url)]
        targets += [("endpoints[%r]" % key, value) for key, value in self.endpoints.items()]
        for name, url in targets:
            parts = urllib.parse.urlsplit(url)
            if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
                raise ValueError(
                    "%s: refusing to send the secret over plain http to %s; use https, or allow it explicitly "
                    "if you accept the risk (allow_insecure_http=True; on the command line --allow-insecure-http)"
                    % (name, parts.hostname)
                )

    def __repr__(self) -> str:
        shown: List[str] = []
        for option in fields(self):
            value = getattr(self, option.name)
            if option.name == "secret":
                value = "***" if value else ""
            elif option.name == "endpoints":
                value = dict(value)
            shown.append("%s=%r" % (option.name, value))
        return "ClientOptions(%s)" % ", ".join(shown)

    def extend(
        self,
        *,
        secret: str = _UNSET,
        base_url: str = _UNSET,
        host: Optional[str] = _UNSET,
        protocol: Optional[str] = _UNSET,
        endpoints: Mapping[str, str] = _UNSET,
        run_as_user_id: Optional[str] = _UNSET,
        run_as_child_user_email: Optional[str] = _UNSET,
        timezone: Optional[str] = _UNSET,
        headers: Mapping[str, str] = _UNSET,
        timeout: Optional[float] = _UNSET,
        total_timeout: Optional[float] = _UNSET,
        retries: int = _UNSET,
        retry_delay: float = _UNSET,
        retry_timeout: bool = _UNSET,
        transport: Optional[Union[Transport, AsyncTransport]] = _UNSET,
        ssl_context: Optional[ssl.SSLContext] = _UNSET,
        max_response_bytes: int = _UNSET,
        allow_insecure_http: bool = _UNSET,
    ) -> ClientOptions:
        """Return new options with the given options changed; ``headers`` and ``endpoints`` merge key by key.

        Header names merge case-insensitively (a later ``x-foo`` replaces an earlier ``X-Foo``). Every
        other option is replaced. The result is validated like any new options.
        """
        return self._merged(_given(locals()))

    def _merged(self, changes: Dict[str, Any]) -> ClientOptions:
        if "headers" in changes:
            if not isinstance(changes["headers"], collections.abc.Mapping):
                raise TypeError("headers must be a mapping of names to values")
            merged = {name.lower(): (name, value) for name, value in self.headers.items()}
            for name, value in cast(Mapping[str, str], changes["headers"]).items():
                merged[str(name).lower()] = (name, value)
            changes["headers"] = dict(merged.values())
        if "endpoints" in changes:
            if not isinstance(changes["endpoints"], collections.abc.Mapping):
                raise TypeError("endpoints must be a mapping of paths")
            changes["endpoints"] = {**self.endpoints, **changes["endpoints"]}
        return replace(self, **changes)

    @classmethod
    def from_env(
        cls,
        environ: Optional[Mapping[str, str]] = None,
        *,
        secret: str = _UNSET,
        base_url: str = _UNSET,
        host: Optional[str] = _UNSET,
        protocol: Optional[str] = _UNSET,
        endpoints: Mapping[str, str] = _UNSET,
        run_as_user_id: Optional[str] = _UNSET,
        run_as_child_user_email: Optional[str] = _UNSET,
        timezone: Optional[str] = _UNSET,
        headers: Mapping[str, str] = _UNSET,
        timeout: Optional[float] = _UNSET,
        total_timeout: Optional[float] = _UNSET,
        retries: int = _UNSET,
        retry_delay: float = _UNSET,
        retry_timeout: bool = _UNSET,
        transport: Optional[Union[Transport, AsyncTransport]] = _UNSET,
        ssl_context: Optional[ssl.SSLContext] = _UNSET,
        max_response_bytes: int = _UNSET,
        allow_insecure_http: bool = _UNSET,
    ) -> ClientOptions:
        """Build options from ``CHATBOTKIT_API_SECRET``, ``CHATBOTKIT_API_RUNAS_USERID`` and
        ``CHATBOTKIT_API_BASE_URL`` in *environ* (default ``os.environ``), then apply the given options.

        The secret is required: unless ``secret=`` is given, a missing or empty ``CHATBOTKIT_API_SECRET``
        raises ValueError naming the variable. An invalid value from the environment raises naming both
        the variable and the option.
        """
        overrides = _given(locals())
        if environ is None:
            environ = os.environ
        values: Dict[str, Any] = {}
        sources: Dict[str, str] = {}  # option -> the variable its value came from
        for variable, option in (
            ("CHATBOTKIT_API_SECRET", "secret"),
            ("CHATBOTKIT_API_RUNAS_USERID", "run_as_user_id"),
            ("CHATBOTKIT_API_BASE_URL", "base_url"),
        ):
            if environ.get(variable) and option not in overrides:
                values[option] = environ[variable]
                sources[option] = variable
        values.update(overrides)
        if "secret" not in values:
            raise ValueError("CHATBOTKIT_API_SECRET is not set: export it, or pass secret=")
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            for option, variable in sources.items():  # every option error starts with the option's name
                if re.match(r"%s\b" % option, str(exc)):
                    raise type(exc)("%s: %s" % (variable, exc)) from None
            raise


_OPTION_NAMES = tuple(option.name for option in fields(ClientOptions))


def _given(arguments: Mapping[str, Any]) -> Dict[str, Any]:
    """The options among a function's *arguments* (its ``locals()``) that the caller gave."""
    return {name: arguments[name] for name in _OPTION_NAMES if arguments[name] is not _UNSET}


# ---------------------------------------------------------------------------------------------------------
# Transports: UrllibTransport (the default) and KeepAliveTransport
# ---------------------------------------------------------------------------------------------------------


class _DeadlineSocketIO(io.RawIOBase):
    """A socket reader that gives every read only the time left before its connection's deadline.

    http.client's own timeout applies per socket operation, so a server that trickles one byte at a
    time could hold a call forever; reading through this class bounds the whole response (status line,
    headers and body).
    """

    def __init__(self, sock: socket.socket, connection: _DeadlineConnection) -> None:
        super().__init__()
        self._sock = sock
        self._raw = sock.makefile("rb", buffering=0)  # keeps the socket's file reference count right
        self._connection = connection

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> Optional[int]:
        deadline = self._connection.deadline
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout("timed out")
            self._sock.settimeout(remaining)
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()

    def makefile(self, mode: str) -> io.BufferedReader:
        """What HTTPResponse.__init__ asks of a socket: a buffered reader, here one reading through self."""
        return io.BufferedReader(self)


class _DeadlineResponse(http.client.HTTPResponse):
    """An HTTPResponse that reads through a _DeadlineSocketIO bound to its connection."""

    def __init__(self, sock: socket.socket, *args: Any, connection: _DeadlineConnection, **kwargs: Any) -> None:
        super().__init__(_DeadlineSocketIO(sock, connection), *args, **kwargs)  # type: ignore[arg-type]


def _connect_loopback(
    address: Tuple[str, int], timeout: Any = _SOCKET_DEFAULT_TIMEOUT, source_address: Any = None
) -> socket.socket:
    """Connect to a localhost name's port on 127.0.0.1, then ::1, without asking any resolver."""
    failure: Optional[OSError] = None
    for ip in ("127.0.0.1", "::1"):
        try:
            return socket.create_connection((ip, address[1]), timeout, source_address)
        except OSError as exc:
            failure = exc
    raise failure or OSError("no loopback address answered")


class _DeadlineConnection(http.client.HTTPConnection):
    """An HTTPConnection whose responses must be read in full before ``deadline`` (a monotonic time).

    A localhost name is connected to loopback directly (RFC 6761): the secret may travel over plain
    http to such a name only because it cannot lead to another machine.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        self.deadline: Optional[float] = None if timeout is None else time.monotonic() + timeout
        self.response_class = functools.partial(_DeadlineResponse, connection=self)  # type: ignore[assignment]
        if _is_localhost_name(self.host):
            self._create_connection = _connect_loopback


class _DeadlineHTTPSConnection(http.client.HTTPSConnection, _DeadlineConnection):
    """The TLS form of _DeadlineConnection."""


class _HTTPHandler(urllib.request.HTTPHandler):
    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_DeadlineConnection, req)


class _HTTPSHandler(urllib.request.AbstractHTTPHandler):
    # Not a subclass of HTTPSHandler: from Python 3.12 its constructor loads the CA store at once.
    def __init__(self, tls: _TLSContext) -> None:
        super().__init__()
        self._tls = tls

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_DeadlineHTTPSConnection, req, context=self._tls.get())

    https_request = urllib.request.AbstractHTTPHandler.do_request_


def _read_body(response: http.client.HTTPResponse, limit: int, url: str) -> bytes:
    """Read a whole response body, refusing (and stopping at) more than *limit* bytes."""
    if response.length is not None:  # http.client's reading of Content-Length (None when chunked or absent)
        if response.length > limit:
            raise _too_large(response, limit, url)
        return response.read()
    chunks: List[bytes] = []
    total = 0
    while True:
        chunk = response.read(min(_READ_CHUNK_BYTES, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise _too_large(response, limit, url)
        chunks.append(chunk)


def _too_large(response: http.client.HTTPResponse, limit: int, url: str) -> APIError:
    return APIError(
        "the response body is larger than max_response_bytes (%d bytes); reading stopped there" % limit,
        "RESPONSE_TOO_LARGE",
        status=response.status,
        url=url,
        headers=_Headers.received(response.headers),
    )


# What an exchange on the wire can raise: the network (OSError, timeouts and TLS included), HTTP framing
# (HTTPException), and framing so broken that http.client or io trip over it (ValueError: a negative
# chunk size, an unparseable length). Each becomes an APIConnectionError.
_EXCHANGE_FAILURES = (OSError, http.client.HTTPException, ValueError)


def _connection_error(
    exc: BaseException, url: str, timeout: Optional[float], *, sent: Optional[bool] = None
) -> APIConnectionError:
    """Map a network failure to APIConnectionError or APITimeoutError, naming host:port and the reason.

    *sent* says whether the whole request may have been written before *exc* (None: judge by its kind;
    only a refused connection and a name that does not resolve certainly come before sending). The
    text may hold what the server sent (a malformed status line): the client masks and escapes it.
    """
    parts = urllib.parse.urlsplit(url)
    where = "%s:%s" % (parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    reason: BaseException = exc
    while isinstance(reason, urllib.error.URLError) and isinstance(reason.reason, BaseException):
        reason = reason.reason
    if sent is None:
        sent = not isinstance(reason, (ConnectionRefusedError, socket.gaierror))
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return APITimeoutError("no complete answer from %s within %ss (timeout)" % (where, timeout), request_sent=sent)
    if isinstance(reason, ssl.SSLError):
        return APIConnectionError("TLS failure with %s: %s" % (where, reason), "TLS_ERROR", request_sent=sent)
    detail = str(reason.reason) if isinstance(reason, urllib.error.URLError) else str(reason)
    return APIConnectionError(
        "cannot complete the exchange with %s: %s%s" % (where, type(reason).__name__, ": " + detail if detail else ""),
        request_sent=sent,
    )


class _TLSContext:
    """The SSLContext a transport uses, the default one made on first use.

    Loading the system's CA certificates takes milliseconds, which a process that only ever speaks
    plain http (a test, a local gateway) or makes one call (a cold Lambda) should not pay at start-up.
    """

    def __init__(self, context: Optional[ssl.SSLContext]) -> None:
        self._context = context

    def get(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.create_default_context()  # a race makes two equal contexts: harmless
        return self._context


class UrllibTransport:
    """The default transport, built on ``urllib.request``: one connection per call, standard library only.

    It honours the usual proxy environment variables (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``,
    read when the transport is built) except for loopback hosts, which are always reached directly
    (localhost names without asking DNS). It never follows redirects and returns every status as an
    HTTPResponse. TLS uses *ssl_context* (default: ``ssl.create_default_context()``, certificate and
    host-name checks on). A body over *max_response_bytes* raises ``APIError(code="RESPONSE_TOO_LARGE")``
    after reading at most that much; a failed exchange raises APIConnectionError or APITimeoutError.
    """

    def __init__(
        self, ssl_context: Optional[ssl.SSLContext] = None, max_response_bytes: int = _DEFAULT_MAX_RESPONSE_BYTES
    ) -> None:
        tls = _TLSContext(ssl_context)
        self.max_response_bytes = max_response_bytes
        self._proxied = self._opener(urllib.request.ProxyHandler(), tls)
        self._direct = self._opener(urllib.request.ProxyHandler({}), tls)

    @staticmethod
    def _opener(proxies: urllib.request.ProxyHandler, tls: _TLSContext) -> urllib.request.OpenerDirector:
        # Built by hand, not with build_opener(): without HTTPRedirectHandler nothing is followed, and
        # without HTTPErrorProcessor every status comes back as a response instead of an exception.
        opener = urllib.request.OpenerDirector()
        for handler in (proxies, _HTTPHandler(), _HTTPSHandler(tls)):
            opener.add_handler(handler)
        return opener

    def __call__(self, request: HTTPRequest) -> HTTPResponse:
        hostname = urllib.parse.urlsplit(request.url).hostname or ""
        opener = self._direct if _is_loopback(hostname) else self._proxied
        outgoing = urllib.request.Request(
            request.url, data=request.body, headers=_plain_headers(request.headers), method=request.method
        )
        timeout = _SOCKET_DEFAULT_TIMEOUT if request.timeout is None else request.timeout
        try:
            with opener.open(outgoing, timeout=timeout) as response:
                body = _read_body(response, self.max_response_bytes, request.url)
                return HTTPResponse(response.status, _Headers.received(response.headers), body)
        except _EXCHANGE_FAILURES as exc:
            # urllib wraps in URLError exactly what fails while connecting and sending: the request was
            # not written whole. What fails later (the answer) it raises as it is.
            sent = not isinstance(exc, urllib.error.URLError)
            raise _connection_error(exc, request.url, request.timeout, sent=sent) from exc

    def __repr__(self) -> str:
        return "UrllibTransport(max_response_bytes=%d)" % self.max_response_bytes


_Origin = Tuple[str, str, int]  # scheme (or "proxy"), host, port


class KeepAliveTransport:
    """A transport that keeps connections open between calls (``http.client``, standard library only).

    Use it as ``ClientOptions(transport=KeepAliveTransport())`` where many sessions are created from
    one process: a warm call then skips the TCP and TLS handshakes. Idle connections are pooled per
    origin (at most *max_idle_per_origin*, each dropped after *idle_timeout* seconds, below common
    server keep-alive limits) and checked before reuse. A request is sent again on a fresh connection
    only when sending it on a reused one failed, so the server cannot have received it whole; once a
    request was written, any failure goes to the client's retry policy. It is thread-safe, a context
    manager, and ``close()`` closes every idle connection. It honours *ssl_context*,
    *max_response_bytes*, the request timeout and the proxy environment variables (a request that goes
    through a proxy is handed to an internal UrllibTransport) exactly like UrllibTransport.
    """

    def __init__(
        self,
        ssl_context: Optional[ssl.SSLContext] = None,
        max_response_bytes: int = _DEFAULT_MAX_RESPONSE_BYTES,
        *,
        max_idle_per_origin: int = 10,
        idle_timeout: float = 4.0,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self.max_idle_per_origin = max_idle_per_origin
        self.idle_timeout = idle_timeout
        self._ssl_context = ssl_context
        self._tls = _TLSContext(ssl_context)
        self._proxies = urllib.request.getproxies()
        self._origins: Dict[str, _Origin] = {}
        self._proxy_transport: Optional[UrllibTransport] = None
        self._idle: Dict[_Origin, List[Tuple[_DeadlineConnection, float]]] = {}
        self._lock = _thread.allocate_lock()

    def __enter__(self) -> KeepAliveTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection; connections in use close when their call ends. The transport stays usable."""
        with self._lock:
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection, _ in connections:
                connection.close()

    def __call__(self, request: HTTPRequest) -> HTTPResponse:
        parts = urllib.parse.urlsplit(request.url)
        origin = self._origins.get(parts.netloc + parts.scheme)
        if origin is None:
            origin = self._origin(parts)
        if origin[0] == "proxy":
            return self._via_proxy(request)
        selector = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        deadline = None if request.timeout is None else time.monotonic() + request.timeout
        connection = self._checkout(origin)
        response: Optional[http.client.HTTPResponse] = None
        written = False
        try:
            if connection is None:
                connection = self._connect(origin, deadline)
                self._send(connection, request, selector, deadline)
            else:
                try:
                    self._send(connection, request, selector, deadline)
                except OSError as exc:  # the server closed the idle connection: nothing it could act on arrived
                    connection.close()
                    if isinstance(exc, socket.timeout):
                        raise
                    connection = self._connect(origin, deadline)
                    self._send(connection, request, selector, deadline)
            written = True
            response = connection.getresponse()
            body = _read_body(response, self.max_response_bytes, request.url)
        except BaseException as exc:
            if response is not None:  # it may own the socket (will_close): close it too
                response.close()
            if connection is not None:
                connection.close()
            if isinstance(exc, _EXCHANGE_FAILURES):
                raise _connection_error(exc, request.url, request.timeout, sent=written) from exc
            raise
        if response.will_close or connection.sock is None:
            connection.close()
        else:
            self._checkin(origin, connection)
        return HTTPResponse(response.status, _Headers.received(response.headers), body)

    def _origin(self, parts: urllib.parse.SplitResult) -> _Origin:
        """The pool key of a URL (scheme, host, port), or ("proxy", host, port) if a proxy applies to it.

        Remembered per scheme and host[:port] (a few at most) so that calls skip parsing and proxy rules.
        """
        hostname = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        uses_proxy = (
            parts.scheme in self._proxies
            and not _is_loopback(hostname)
            and not urllib.request.proxy_bypass_environment(hostname, self._proxies)  # type: ignore[attr-defined]
        )
        origin = ("proxy" if uses_proxy else parts.scheme, hostname, port)
        if len(self._origins) < 64:
            self._origins[parts.netloc + parts.scheme] = origin
        return origin

    def _via_proxy(self, request: HTTPRequest) -> HTTPResponse:
        if self._proxy_transport is None:
            self._proxy_transport = UrllibTransport(self._ssl_context, self.max_response_bytes)
        return self._proxy_transport(request)

    def _connect(self, origin: _Origin, deadline: Optional[float]) -> _DeadlineConnection:
        scheme, hostname, port = origin
        timeout = _time_left(deadline)
        if scheme == "https":
            return _DeadlineHTTPSConnection(hostname, port, timeout=timeout, context=self._tls.get())
        return _DeadlineConnection(hostname, port, timeout=timeout)

    @staticmethod
    def _send(connection: _DeadlineConnection, request: HTTPRequest, selector: str, deadline: Optional[float]) -> None:
        """Write the whole request (connecting first if the connection is new), bounded by *deadline*."""
        connection.deadline = deadline
        if connection.sock is not None:  # a reused connection: the new deadline bounds the send too
            connection.sock.settimeout(_time_left(deadline))
        connection.request(request.method, selector, body=request.body, headers=_plain_headers(request.headers))

    def _checkout(self, origin: _Origin) -> Optional[_DeadlineConnection]:
        """Take the most recently used live idle connection to *origin*, closing expired or dead ones."""
        now = time.monotonic()
        stale: List[_DeadlineConnection] = []
        found = None
        with self._lock:
            connections = self._idle.get(origin, [])
            while connections:
                connection, idle_since = connections.pop()
                if now - idle_since < self.idle_timeout and not _peer_closed(connection):
                    found = connection
                    break
                stale.append(connection)
        for connection in stale:
            connection.close()
        return found

    def _checkin(self, origin: _Origin, connection: _DeadlineConnection) -> None:
        with self._lock:
            connections = self._idle.setdefault(origin, [])
            if len(connections) < self.max_idle_per_origin:
                connections.append((connection, time.monotonic()))
                return
        connection.close()

    def __repr__(self) -> str:
        with self._lock:
            idle = sum(len(connections) for connections in self._idle.values())
        return "KeepAliveTransport(idle_connections=%d, max_idle_per_origin=%d)" % (idle, self.max_idle_per_origin)


def _time_left(deadline: Optional[float]) -> Optional[float]:
    """Seconds until *deadline* (a monotonic time) as a socket timeout: None for no deadline, never zero."""
    return None if deadline is None else max(deadline - time.monotonic(), 0.001)


def _peer_closed(connection: _DeadlineConnection) -> bool:
    """Tell whether an idle connection is unusable: closed by the server, or holding unexpected bytes."""
    sock = connection.sock
    if sock is None:
        return True
    # Imported here: only a reused kept-alive connection needs it, and from Python 3.14 on urllib.request
    # no longer loads it, so a top-level import would add 40 us to every start-up (measured on 3.14.10).
    import select

    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


# ---------------------------------------------------------------------------------------------------------
# The core: build the request, decide retries, map failures, mask what leaves. No I/O here.
# ---------------------------------------------------------------------------------------------------------


class BotSessionMessage(TypedDict):
    """A message of a bot session: ``type`` (``user``, ``bot``, ``context``, ...) and ``text``."""

    type: str
    text: str


class BotSessionCreateRequest(TypedDict, total=False):
    """The body of createBotSession: every field optional.

    Type checkers refuse a misspelt key or a wrongly typed value in a literal. At run time any mapping is
    accepted, its known fields checked and unknown fields sent as given (fields the API may add later);
    pass a dict built at run time as ``cast(BotSessionCreateRequest, payload)``.
    """

    durationInSeconds: float
    messages: List[BotSessionMessage]
    meta: Dict[str, Any]


class _BotSessionCreateResponseRequired(TypedDict):
    id: str
    conversationId: str
    token: str
    expiresAt: float


class BotSessionCreateResponse(_BotSessionCreateResponseRequired, total=False):
    """The session: ``id``, ``conversationId``, ``token``, ``expiresAt`` (epoch ms), maybe ``messages``."""

    messages: List[BotSessionMessage]


def _as_mapping(value: object) -> Optional[Mapping[Any, Any]]:
    """*value* if it is a mapping, else None (one narrowing that every type checker reads alike)."""
    return value if isinstance(value, collections.abc.Mapping) else None  # pyright: ignore[reportUnknownVariableType]


def _json_default(value: object) -> Any:
    """What the JSON encoder calls for a value it does not know: read-only and other mappings become dicts."""
    mapping = _as_mapping(value)
    if mapping is not None:
        return dict(mapping)
    raise TypeError("%s is not JSON" % type(value).__name__)


# Compact, strict (no NaN or Infinity) and made once: json.dumps with options builds an encoder per call.
_encode_json = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_json_default).encode


def _json_body(value: Any, where: str) -> bytes:
    """Encode *value* as compact JSON bytes, or raise ValueError/TypeError naming the first field JSON cannot hold.

    Keys follow the json module: strings, and numbers, booleans and None, which become strings.
    """
    try:
        body = _encode_json(value).encode("ascii")
    except (TypeError, ValueError, RecursionError):
        _find_not_json(value, where, ())  # raises, naming the field
        raise
    if _nests_too_deep(body):
        _find_not_json(value, where, ())  # the same limit on every interpreter, whatever its recursion limit
    return body


def _check_json_scalar(value: Any, where: str) -> None:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("%s is %r, which JSON cannot represent" % (where, value))
    if isinstance(value, int):
        try:
            int.__repr__(value)
        except ValueError:  # more digits than int-to-text conversion allows (sys.set_int_max_str_digits)
            raise ValueError("%s is an integer too large to write as JSON" % where) from None


def _find_not_json(value: object, where: str, parents: Tuple[int, ...]) -> None:
    """Walk *value* as the JSON encoder does and raise at the first part it cannot encode (the slow path)."""
    _check_json_scalar(value, where)
    if value is None or isinstance(value, (str, int, float)):
        return
    if id(value) in parents:
        raise ValueError("%s contains itself, which JSON cannot represent" % where)
    if len(parents) >= _MAX_JSON_DEPTH:
        raise ValueError("%s is nested more than %d levels deep" % (where, _MAX_JSON_DEPTH))
    chain = (*parents, id(value))
    mapping = _as_mapping(value)
    if mapping is not None:
        for key, item in mapping.items():
            if key is not None and not isinstance(key, (str, int, float)):
                raise TypeError("%s has a key of type %s, which JSON cannot represent" % (where, type(key).__name__))
            _check_json_scalar(key, "%s key" % where)
            _find_not_json(item, "%s.%s" % (where, key), chain)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(cast(Sequence[Any], value)):
            _find_not_json(item, "%s[%d]" % (where, index), chain)
    else:
        raise TypeError("%s is a %s, which JSON cannot represent" % (where, type(value).__name__))


def _no_constant(name: str) -> Any:
    raise ValueError("%s is not JSON (RFC 8259)" % name)


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("%s is out of range" % text)
    return value


# Strict (RFC 8259): NaN, Infinity and numbers too large for a float are refused, not turned into floats.
_decode_json = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite_float).decode


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_BRACKETS_AS_PARENTHESES = bytes.maketrans(b"[{]}", b"(())")


def _nests_too_deep(text: bytes) -> bool:
    """Tell whether the valid JSON *text* nests arrays and objects more than _MAX_JSON_DEPTH deep.

    A few linear passes at C speed (walking the decoded value in Python took seconds for a large answer):
    the strings dropped, only the brackets kept, then the innermost pairs removed once per level.
    """
    if text.count(b"[") + text.count(b"{") <= _MAX_JSON_DEPTH:
        return False
    brackets = _JSON_STRING.sub(b"", text).translate(_BRACKETS_AS_PARENTHESES, _NOT_BRACKETS)
    for _ in range(_MAX_JSON_DEPTH):
        if not brackets:
            return False
        brackets = brackets.replace(b"()", b"")
    return bool(brackets)


def _parse_answer(body: bytes) -> Tuple[Any, Optional[str]]:
    """The decoded JSON of a response body and None, or None and why it is not usable JSON."""
    try:
        payload = _decode_json(body.decode("utf-8"))
    except RecursionError:
        return None, "its body nests too deeply"
    except ValueError:  # UnicodeDecodeError, JSONDecodeError and our strict refusals
        return None, "its body is not JSON"
    if _nests_too_deep(body):
        return None, "its body nests more than %d levels deep" % _MAX_JSON_DEPTH
    return payload, None


def _check_bot_id(bot_id: object) -> str:
    if not isinstance(bot_id, str):
        raise TypeError("bot_id must be a string, not %s" % type(bot_id).__name__)
    if not bot_id.strip():
        raise ValueError("bot_id must not be empty or blank")
    if bot_id in (".", ".."):
        raise ValueError("bot_id must not be %r (it would change the URL path)" % bot_id)
    if not bot_id.isprintable() and not _CONTROL_CHARS.isdisjoint(bot_id):
        raise ValueError("bot_id must not contain control characters")
    return bot_id


def _session_request_body(request: Optional[Mapping[str, Any]]) -> bytes:
    """Check a createBotSession request against the schema's types and encode it as JSON bytes."""
    if request is None:
        return b"{}"
    if not isinstance(request, collections.abc.Mapping):
        raise TypeError("request must be a mapping (a dict), not %s" % type(request).__name__)
    duration = request.get("durationInSeconds", 0)
    if isinstance(duration, bool) or not isinstance(duration, (int, float)):
        raise TypeError("request.durationInSeconds must be a number, not %s" % type(duration).__name__)
    messages: object = request.get("messages", ())
    if not isinstance(messages, (list, tuple)):
        raise TypeError("request.messages must be a list, not %s" % type(messages).__name__)
    for index, item in enumerate(cast(Sequence[object], messages)):
        if not isinstance(item, collections.abc.Mapping):
            raise TypeError("request.messages[%d] must be a mapping, not %s" % (index, type(item).__name__))
        message = cast(Mapping[str, object], item)
        for key in ("type", "text"):
            if not isinstance(message.get(key), str):
                raise TypeError(
                    "request.messages[%d].%s must be a string, not %s"
                    % (index, key, "missing" if key not in message else type(message[key]).__name__)
                )
    meta = request.get("meta", _EMPTY)
    if not isinstance(meta, collections.abc.Mapping):
        raise TypeError("request.meta must be a mapping, not %s" % type(meta).__name__)
    return _json_body(request, "request")


def _is_finite_number(value: object) -> bool:
    """Tell whether *value* is an int or float (not a bool) that a float can hold: not NaN, not infinite,
    not an integer of 309 digits or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _session_problem(session: Any) -> Optional[str]:
    """What keeps a decoded createBotSession answer from being a session, or None if it is one."""
    if not isinstance(session, dict):
        return "its body is not a JSON object"
    fields_: Dict[str, Any] = cast(Dict[str, Any], session)
    for key in ("id", "conversationId", "token"):
        value = fields_.get(key)
        if not isinstance(value, str) or not value:
            return "its %r is not a non-empty string" % key
    if not _is_finite_number(fields_.get("expiresAt")):
        return "its 'expiresAt' is not a finite number"
    if "messages" in fields_:
        messages: object = fields_["messages"]
        if not isinstance(messages, list):
            return "its 'messages' is not a list"
        for index, message in enumerate(cast(List[object], messages)):
            if not isinstance(message, dict):
                return "its 'messages[%d]' is not an object" % index
            for key in ("type", "text"):
                if not isinstance(cast(Dict[str, object], message).get(key), str):
                    return "its 'messages[%d].%s' is not a string" % (index, key)
    return None


def _retry_after(headers: Mapping[str, str]) -> Optional[float]:
    """The delay a response asks for (``retry-after-ms``, ``Retry-After`` seconds or HTTP date), or None."""
    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            milliseconds = float(value)
        except ValueError:
            milliseconds = math.nan
        if math.isfinite(milliseconds) and milliseconds >= 0:
            return milliseconds / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        return max(moment.timestamp() - time.time(), 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _should_retry(error: ChatBotKitError, retry_timeout: bool) -> bool:
    """The retry policy: a status that says "try again" (with a wait, if it asks for one, of at most a
    minute), or a failure to reach the server. Under ``retry_timeout=False`` only a failure where the
    request cannot have reached the server whole: retrying anything else could create a second session."""
    if isinstance(error, APIError):
        return error.status in _RETRY_STATUSES and (error.retry_after or 0) <= _MAX_RETRY_AFTER_SECONDS
    return isinstance(error, APIConnectionError) and (retry_timeout or not error.request_sent)


def _backoff_delay(retry_delay: float, attempt: int, jitter: float) -> float:
    """Our own wait before retry number *attempt* + 1: doubling from *retry_delay*, capped, then shortened
    by up to a quarter (*jitter* in [0, 1)) so that many clients failing together do not retry together."""
    return min(retry_delay * 2.0 ** min(attempt, 64), _MAX_BACKOFF_SECONDS) * (1.0 - 0.25 * jitter)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "HTTP %d" % status


def _logger() -> Any:
    """The module's logger, or None while the program has not imported the logging package.

    Nobody can have configured a handler before logging is imported, and our records (DEBUG, INFO) are
    below the last-resort level, so nothing would be shown: not importing it ourselves keeps 2 to 11 ms
    (measured on 3.8 to 3.15) out of the start-up of scripts and Lambda functions that do not log. Once
    it is in sys.modules it is imported properly, which waits if another thread is still initialising it.
    """
    if "logging" not in sys.modules:
        return None
    import logging

    return logging.getLogger(_LOGGER_NAME)


_LOG_LEVELS: Mapping[str, int] = MappingProxyType({"debug": 10, "info": 20})  # logging.DEBUG, logging.INFO
_STDERR_HANDLER_NAME = _LOGGER_NAME + ".stderr"


def _log_to_stderr(level: int) -> None:
    """Send the library's log records at *level* and above to stderr, one line each (``CHATBOTKIT_LOG``,
    the command line's ``--verbose``). The records never hold the secret: URLs are masked like errors."""
    import logging  # only when asked for: see _logger

    logger = logging.getLogger(_LOGGER_NAME)
    logger.setLevel(min(level, logger.level or level))
    if not any(handler.get_name() == _STDERR_HANDLER_NAME for handler in logger.handlers):
        handler = logging.StreamHandler()
        handler.set_name(_STDERR_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger.addHandler(handler)


# CHATBOTKIT_LOG=debug or info: the library's records go to stderr, with no code (as OPENAI_LOG does).
if os.environ.get("CHATBOTKIT_LOG", "").strip().lower() in _LOG_LEVELS:
    _log_to_stderr(_LOG_LEVELS[os.environ["CHATBOTKIT_LOG"].strip().lower()])


# What the core yields to a driver: a request to send (the driver sends back the HTTPResponse, or the
# exception the transport raised) or a number of seconds to wait (the driver sends back None).
_Step = Union[HTTPRequest, float]
_Outcome = Union[HTTPResponse, BaseException, None]
_Plan = Generator[_Step, _Outcome, Any]
_C = TypeVar("_C", bound="_ClientCore")


class _ClientCore:
    """The machinery both clients share, with no I/O: it plans a call as a generator (see ``_plan``)."""

    __slots__ = ("_headers", "_is_async", "_log", "_official_host", "_options", "_secrecy", "_transport", "_workers")
    _accepts_async_transport = False
    _headers: _Headers
    _is_async: bool
    _log: Any
    _official_host: bool
    _options: ClientOptions
    _secrecy: _Secrecy
    _transport: Union[Transport, AsyncTransport]
    _workers: Optional[_Workers]

    def __init__(
        self,
        options: Optional[ClientOptions] = None,
        *,
        secret: str = _UNSET,
        base_url: str = _UNSET,
        host: Optional[str] = _UNSET,
        protocol: Optional[str] = _UNSET,
        endpoints: Mapping[str, str] = _UNSET,
        run_as_user_id: Optional[str] = _UNSET,
        run_as_child_user_email: Optional[str] = _UNSET,
        timezone: Optional[str] = _UNSET,
        headers: Mapping[str, str] = _UNSET,
        timeout: Optional[float] = _UNSET,
        total_timeout: Optional[float] = _UNSET,
        retries: int = _UNSET,
        retry_delay: float = _UNSET,
        retry_timeout: bool = _UNSET,
        transport: Optional[Union[Transport, AsyncTransport]] = _UNSET,
        ssl_context: Optional[ssl.SSLContext] = _UNSET,
        max_response_bytes: int = _UNSET,
        allow_insecure_http: bool = _UNSET,
    ) -> None:
        changes = _given(locals())
        if options is None:  # with no secret given, the configuration is the environment's (from_env)
            options = ClientOptions(**changes) if "secret" in changes else ClientOptions.from_env(**changes)
        elif not isinstance(options, ClientOptions):
            raise TypeError("options must be a ClientOptions, not %s" % type(options).__name__)
        elif changes:
            options = options._merged(changes)
        self._setup(options, None)

    def _setup(self, options: ClientOptions, parent: Optional[_ClientCore]) -> None:
        """Fill in a client for *options*, sharing *parent*'s transport and workers where they still fit."""
        if (
            parent is not None
            and options.transport is parent._options.transport
            and options.ssl_context is parent._options.ssl_context
            and options.max_response_bytes == parent._options.max_response_bytes
        ):
            self._transport, self._is_async, self._workers = parent._transport, parent._is_async, parent._workers
        else:
            self._transport = options.transport or UrllibTransport(options.ssl_context, options.max_response_bytes)
            self._is_async = _is_async_transport(self._transport)
            self._workers = _Workers() if self._accepts_async_transport else None
            if self._is_async and not self._accepts_async_transport:
                raise TypeError("transport is asynchronous (a coroutine function): use AsyncBotSessionClient")
        self._options = options
        self._headers = self._build_headers(options)
        self._official_host = urllib.parse.urlsplit(options.base_url).hostname == _OFFICIAL_HOST
        self._secrecy = _Secrecy(options.secret)
        self._log = _logger()  # None until the program imports logging; then looked up per attempt

    @property
    def options(self) -> ClientOptions:
        """The client's options (read-only)."""
        return self._options

    def extend(
        self: _C,
        *,
        secret: str = _UNSET,
        base_url: str = _UNSET,
        host: Optional[str] = _UNSET,
        protocol: Optional[str] = _UNSET,
        endpoints: Mapping[str, str] = _UNSET,
        run_as_user_id: Optional[str] = _UNSET,
        run_as_child_user_email: Optional[str] = _UNSET,
        timezone: Optional[str] = _UNSET,
        headers: Mapping[str, str] = _UNSET,
        timeout: Optional[float] = _UNSET,
        total_timeout: Optional[float] = _UNSET,
        retries: int = _UNSET,
        retry_delay: float = _UNSET,
        retry_timeout: bool = _UNSET,
        transport: Optional[Union[Transport, AsyncTransport]] = _UNSET,
        ssl_context: Optional[ssl.SSLContext] = _UNSET,
        max_response_bytes: int = _UNSET,
        allow_insecure_http: bool = _UNSET,
    ) -> _C:
        """Return a new client of this class with ``self.options.extend(...)``; self is untouched.

        Cheap when the transport options stay the same (the new client shares the transport), so a
        per-call ``extend(total_timeout=...)`` is fine.
        """
        client = type(self).__new__(type(self))
        client._setup(self._options._merged(_given(locals())), self)
        return client

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self._options)

    @staticmethod
    def _build_headers(options: ClientOptions) -> _Headers:
        headers = {name.lower(): value for name, value in options.headers.items()}
        headers.setdefault("user-agent", _USER_AGENT)
        headers.setdefault("accept", "application/json")
        headers["content-type"] = "application/json"
        if options.secret:
            headers["authorization"] = "Bearer " + options.secret
        for name, value in (
            ("x-runas-user-id", options.run_as_user_id),
            ("x-runas-child-user-email", options.run_as_child_user_email),
            ("x-timezone", options.timezone),
        ):
            if value:
                headers[name] = value
        return _Headers(headers)

    def _url(self, path_template: str, path_params: Mapping[str, str]) -> str:
        """Resolve an operation path like the Node SDK: endpoints (template, raw or escaped key), the base
        URL, and the ``/api`` prefix dropped on the official host."""
        escaped = [("{%s}" % name, _path_segment(value)) for name, value in path_params.items()]
        path = raw_path = path_template
        for (placeholder, value), raw in zip(escaped, path_params.values()):
            path = path.replace(placeholder, value)
            raw_path = raw_path.replace(placeholder, raw)
        endpoints = self._options.endpoints
        if endpoints:
            endpoint = endpoints.get(path) or endpoints.get(raw_path) or endpoints.get(path_template)
            if endpoint is not None:
                for placeholder, value in escaped:
                    endpoint = endpoint.replace(placeholder, value)
                path = endpoint
        url = urllib.parse.urljoin(self._options.base_url, path)
        parts = urllib.parse.urlsplit(url)
        if parts.hostname == _OFFICIAL_HOST and parts.path.startswith("/api/"):
            url = urllib.parse.urlunsplit(parts._replace(path=parts.path[4:]))
        return url

    def _plan(self, url: str, body: bytes, problem: Callable[[Any], Optional[str]]) -> _Plan:
        """One call as a generator: it yields each request to send and each wait, a driver does them.

        It returns the decoded answer of a 2xx whose *problem* (a phrase, or None) is None, and raises
        the error the call ends with: every failure passes ``_fail`` once, where it is masked and mapped.
        """
        options = self._options
        deadline = None if options.total_timeout is None else time.monotonic() + options.total_timeout
        attempts = options.retries + 1
        made = 0  # attempts made: every error the call ends with says how many
        try:
            for attempt in range(attempts):
                timeout, capped = options.timeout, False
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise self._deadline_error(url)
                    if timeout is None or left < timeout:
                        timeout, capped = left, True
                started = time.monotonic()
                outcome = yield HTTPRequest("POST", url, self._headers, body, timeout)
                made = attempt + 1
                if isinstance(outcome, HTTPResponse):
                    self._log_attempt(url, str(outcome.status), started, attempt)
                    if 200 <= outcome.status < 300:
                        return self._decoded(outcome, url, problem)
                    error: ChatBotKitError = self._api_error(outcome, url)
                else:
                    error = self._fail(outcome, url, timeout)
                    self._log_attempt(url, "failed (%s)" % error.code, started, attempt)
                    if capped and isinstance(error, APITimeoutError):
                        raise self._deadline_error(url)
                if not _should_retry(error, options.retry_timeout) or attempt + 1 == attempts:
                    raise error
                retry_after = error.retry_after if isinstance(error, APIError) else None
                delay = self._retry_delay(attempt, retry_after)
                if deadline is not None and time.monotonic() + delay >= deadline:
                    raise error  # the wait would end past total_timeout: the caller hears now, not later
                self._log_retry(url, delay, str(error.status) if isinstance(error, APIError) else error.code, attempt)
                if delay > 0:
                    yield delay
        except ChatBotKitError as error:
            error.attempts = made
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _fail(self, outcome: _Outcome, url: str, timeout: Optional[float]) -> ChatBotKitError:
        """The documented error for what a transport raised, masked; anything else is re-raised unchanged."""
        if isinstance(outcome, ChatBotKitError):
            return self._secrecy.scrub(outcome)
        if isinstance(outcome, (OSError, http.client.HTTPException)):
            return self._secrecy.scrub(_connection_error(outcome, url, timeout))
        if isinstance(outcome, BaseException):
            raise outcome  # a bug in a transport passed in: it is the caller's to see, untouched
        raise TypeError("the transport returned %s, not an HTTPResponse" % type(outcome).__name__)

    def _deadline_error(self, url: str) -> ChatBotKitError:
        return self._secrecy.scrub(
            APITimeoutError("POST %s did not complete within total_timeout (%ss)" % (url, self._options.total_timeout))
        )

    def _retry_delay(self, attempt: int, retry_after: Optional[float]) -> float:
        if retry_after is not None:
            return retry_after  # the server's word, taken as given
        if not self._options.retry_delay:
            return 0.0
        return _backoff_delay(self._options.retry_delay, attempt, random.random())  # timing jitter, not a secret: # nosec B311

    def _log_retry(self, url: str, delay: float, why: str, attempt: int) -> None:
        logger = self._log or _logger()
        if logger is not None:
            logger.info(
                "retrying POST %s in %.3fs after %s (attempt %d of %d)",
                self._secrecy.clean(url),
                delay,
                why,
                attempt + 2,
                self._options.retries + 1,
            )

    def _log_attempt(self, url: str, outcome: str, started: float, attempt: int) -> None:
        logger = self._log or _logger()
        if logger is not None and logger.isEnabledFor(10):  # logging.DEBUG
            logger.debug(
                "POST %s -> %s in %.1f ms (attempt %d of %d)",
                self._secrecy.clean(url),
                outcome,
                (time.monotonic() - started) * 1000.0,
                attempt + 1,
                self._options.retries + 1,
            )

    def _api_error(self, response: HTTPResponse, url: str) -> APIError:
        """The APIError for a non-2xx response (code and message from a JSON body when present)."""
        status = response.status
        code = _STATUS_CODES.get(status, "ERROR_%d" % status)
        message = _reason(status)
        payload, _ = _parse_answer(response.body)
        if isinstance(payload, dict):
            fields_: Dict[str, Any] = cast(Dict[str, Any], payload)
            if isinstance(fields_.get("code"), str) and fields_["code"]:
                code = fields_["code"]
            if isinstance(fields_.get("message"), str) and fields_["message"]:
                message = fields_["message"]
        if 300 <= status < 400:
            location = response.headers.get("location", "(no Location header)")
            message = "the server redirected to %s (%s); redirects are not followed" % (location, message)
        return self._error(response, url, message, code, _retry_after(response.headers))

    def _decoded(self, response: HTTPResponse, url: str, problem: Callable[[Any], Optional[str]]) -> Any:
        payload, why = _parse_answer(response.body)
        if why is None:
            why = problem(payload)
        if why is None:
            return payload
        message = "the server answered %d but %s" % (response.status, why)
        raise self._error(response, url, message, "INVALID_RESPONSE")

    def _error(
        self, response: HTTPResponse, url: str, message: str, code: str, retry_after: Optional[float] = None
    ) -> APIError:
        """An APIError for *response*, masked like every error that leaves the library."""
        error = APIError(
            message,
            code,
            status=response.status,
            url=url,
            headers=response.headers,
            body=response.body.decode("utf-8", "replace"),
            retry_after=retry_after,
        )
        return self._secrecy.scrub(error)


class _Workers:
    """The threads in which an asyncio client runs a synchronous transport: sized for I/O, shared by extend().

    Up to _ASYNC_WORKERS threads, started on demand with _thread, which (unlike threading.Thread.start)
    does not wait for the new thread to run: fifty calls at once start fifty threads without stalling the
    event loop. A thread ends after a minute idle, so a discarded client leaves none behind. A result goes
    back to its loop, and is dropped if the awaiting task was cancelled meanwhile.
    """

    __slots__ = ("_idle", "_jobs", "_lock", "_threads", "_waiting")

    def __init__(self) -> None:
        # Imported here: queue loads threading, 0.8-2.3 ms at start-up (measured on 3.8 to 3.15), which
        # only an asyncio client running a synchronous transport needs.
        import queue

        self._jobs: queue.SimpleQueue[Tuple[Any, Any, Callable[[HTTPRequest], Any], HTTPRequest]] = queue.SimpleQueue()
        self._lock = _thread.allocate_lock()
        self._threads = 0  # started and not ended
        self._idle = 0  # waiting for a job
        self._waiting = 0  # jobs not yet taken

    def run(self, loop: Any, transport: Transport, request: HTTPRequest) -> Any:
        """A future (of *loop*) for the outcome of ``transport(request)``: the response or the exception."""
        future = loop.create_future()
        with self._lock:
            self._waiting += 1
            start = self._waiting > self._idle and self._threads < _ASYNC_WORKERS
            if start:
                self._threads += 1
        self._jobs.put((loop, future, transport, request))
        if start:
            _thread.start_new_thread(self._work, ())
        return future

    def _work(self) -> None:
        import queue

        while True:
            with self._lock:
                self._idle += 1
            try:
                loop, future, transport, request = self._jobs.get(timeout=60.0)
            except queue.Empty:
                with self._lock:
                    self._idle -= 1
                    if self._waiting <= self._idle:  # no job counts on this thread: end it
                        self._threads -= 1
                        return
                continue
            with self._lock:
                self._idle -= 1
                self._waiting -= 1
            outcome: _Outcome
            try:
                outcome = transport(request)
            except Exception as exc:  # handed to the core, which maps it
                outcome = exc
            try:
                loop.call_soon_threadsafe(_settle, future, outcome)
            except RuntimeError:  # the loop is closed: nobody waits for this outcome
                pass
            del loop, future, outcome


def _settle(future: Any, outcome: _Outcome) -> None:
    if not future.cancelled():
        future.set_result(outcome)


# ---------------------------------------------------------------------------------------------------------
# Drivers: the synchronous and the asyncio client
# ---------------------------------------------------------------------------------------------------------


class ChatBotKitClient(_ClientCore):
    """The synchronous client machinery: options, transport, retries and error mapping.

    Build it from ``ClientOptions`` or from option keywords (given both, the keywords apply as
    ``options.extend(...)``). A client is immutable and safe to share between threads;
    ``extend(...)`` returns a new client of the same class with merged options.
    """

    __slots__ = ()

    def _call(self, url: str, body: bytes, problem: Callable[[Any], Optional[str]]) -> Any:
        """Drive ``_plan`` with the transport and time.sleep."""
        plan = self._plan(url, body, problem)
        transport = cast(Transport, self._transport)
        step = next(plan)
        while True:
            outcome: _Outcome = None
            if isinstance(step, HTTPRequest):
                try:
                    outcome = transport(step)
                except Exception as exc:  # handed to the core, which maps it; raised from there, unchained
                    outcome = exc
            else:
                time.sleep(step)
            try:
                step = plan.send(outcome)
            except StopIteration as done:
                return done.value


class AsyncBotSessionClient(_ClientCore):
    """The asyncio client for bot sessions: ``await AsyncBotSessionClient(secret=...).create("bot-id")``.

    Same options, validation, wire format, retry policy, errors, secrecy and logging as
    ``BotSessionClient``; waits use ``asyncio.sleep``. A synchronous transport (the default
    ``UrllibTransport``, ``KeepAliveTransport``, any callable) runs in a worker thread of the client's
    own pool (up to 64 at once), so the event loop is never blocked; an asynchronous transport (a
    coroutine function taking an HTTPRequest and returning an HTTPResponse) is awaited directly,
    bounded by each attempt's timeout. Cancelling the awaiting task returns at once; a call already
    running in a thread finishes there within its timeout and its outcome is discarded.
    """

    __slots__ = ()
    _accepts_async_transport = True

    async def create(self, bot_id: str, request: Optional[BotSessionCreateRequest] = None) -> BotSessionCreateResponse:
        """Create a session for bot *bot_id*; see ``create_bot_session`` for *request*, result and errors."""
        return await acreate_bot_session(self, bot_id, request)

    async def _call(self, url: str, body: bytes, problem: Callable[[Any], Optional[str]]) -> Any:
        """Drive ``_plan`` with the transport (awaited, or in a worker thread) and asyncio.sleep."""
        import asyncio

        plan = self._plan(url, body, problem)
        step = next(plan)
        while True:
            outcome: _Outcome = None
            if isinstance(step, HTTPRequest):
                outcome = await self._attempt(step)
            else:
                await asyncio.sleep(step)
            try:
                step = plan.send(outcome)
            except StopIteration as done:
                return done.value

    async def _attempt(self, request: HTTPRequest) -> _Outcome:
        """One exchange: the response, or the exception the transport raised (for the core to map)."""
        import asyncio

        try:
            if self._is_async:
                transport = cast(AsyncTransport, self._transport)
                return await asyncio.wait_for(transport(request), request.timeout)
            workers = cast(_Workers, self._workers)  # every asyncio client has its pool
            outcome: _Outcome = await workers.run(asyncio.get_running_loop(), cast(Transport, self._transport), request)
            return outcome
        except asyncio.TimeoutError:  # wait_for's (a distinct class before 3.11): the attempt's timeout
            return TimeoutError("timed out")
        except Exception as exc:
            return exc


# ---------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------


def _session_call(client: _ClientCore, bot_id: str, request: Optional[Mapping[str, Any]]) -> Tuple[str, bytes]:
    """The URL and JSON body of a createBotSession call, both checked before any I/O."""
    return client._url(_SESSION_PATH_TEMPLATE, {"botId": _check_bot_id(bot_id)}), _session_request_body(request)


def create_bot_session(
    client: ChatBotKitClient, bot_id: str, request: Optional[BotSessionCreateRequest] = None
) -> BotSessionCreateResponse:
    """Create a session for bot *bot_id* and return it: ``{id, conversationId, token, expiresAt, ...}``.

    *request* is the createBotSession body (``durationInSeconds``, ``messages``, ``meta``, or more);
    it is checked against the schema's types first, so a malformed one raises ValueError or TypeError
    naming the field before any network I/O. Failures raise APIError, APIConnectionError or
    APITimeoutError after the client's retries.
    """
    if not isinstance(client, ChatBotKitClient):
        raise TypeError("client must be a ChatBotKitClient, not %s" % type(client).__name__)
    url, body = _session_call(client, bot_id, request)
    return client._call(url, body, _session_problem)  # type: ignore[no-any-return]


async def acreate_bot_session(
    client: AsyncBotSessionClient,
    bot_id: str,
    request: Optional[BotSessionCreateRequest] = None,
) -> BotSessionCreateResponse:
    """The asyncio form of ``create_bot_session``, for an ``AsyncBotSessionClient``."""
    if not isinstance(client, AsyncBotSessionClient):
        raise TypeError("client must be an AsyncBotSessionClient, not %s" % type(client).__name__)
    url, body = _session_call(client, bot_id, request)
    return await client._call(url, body, _session_problem)  # type: ignore[no-any-return]


class BotSessionClient(ChatBotKitClient):
    """A client for bot sessions: ``BotSessionClient(secret=...).create("bot-id", {...})``."""

    __slots__ = ()

    def create(self, bot_id: str, request: Optional[BotSessionCreateRequest] = None) -> BotSessionCreateResponse:
        """Create a session for bot *bot_id*; see ``create_bot_session`` for *request*, result and errors."""
        return create_bot_session(self, bot_id, request)


# ---------------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------------


_PROG = "chatbotkit-session"


def main(argv: Optional[List[str]] = None) -> int:
    """Run the command line (``chatbotkit-session BOT_ID ...``) and return its exit status.

    Exit 0 on success (the session as JSON on stdout), 1 for an API or network error or when stdout
    cannot take the output (closed, full, a broken pipe), 2 for a usage or configuration error, 130 when
    interrupted (Ctrl-C); errors are one line on stderr, never a traceback, never the secret. A closed
    or failing stderr changes none of these.
    """
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _CLIStream(stdout, strict=True), _CLIStream(stderr, strict=False)
    try:
        status = _run_cli(sys.argv[1:] if argv is None else argv, os.environ)
        sys.stdout.flush()  # a full disk shows here, and is reported, rather than at exit
        return status
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted\n" % _PROG)
        return 130
    except _OutputError as exc:
        if not isinstance(exc.__cause__, BrokenPipeError):  # the reader went away (``| head``): nothing to say
            sys.stderr.write("%s: error: cannot write to stdout: %s\n" % (_PROG, exc))
        _discard_output(stdout)
        return 1
    finally:
        sys.stdout, sys.stderr = stdout, stderr


class _OutputError(Exception):
    """stdout is closed or refused a write: the command line reports it and exits 1."""


class _CLIStream:
    """sys.stdout or sys.stderr while the command line runs. A *strict* stream (stdout) raises
    _OutputError when it is closed or a write fails, even where argparse would swallow that; the other
    (stderr) drops what it cannot write, so that a closed stderr changes no exit status."""

    def __init__(self, stream: Optional[Any], *, strict: bool) -> None:
        self._stream = stream
        self._strict = strict
        self._failure: Optional[_OutputError] = None

    def write(self, text: str) -> int:
        self._do("write", text)
        return len(text)

    def flush(self) -> None:
        self._do("flush")

    def _do(self, method: str, *args: Any) -> None:
        if self._failure is not None:
            raise self._failure
        try:
            if self._stream is None:
                raise OSError("the stream is closed")
            getattr(self._stream, method)(*args)
        except (OSError, ValueError) as exc:  # ValueError: a closed file object
            if self._strict:
                self._failure = _OutputError(exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc))
                self._failure.__cause__ = exc
                raise self._failure from exc


def _discard_output(stream: Optional[Any]) -> None:
    """Point stdout's descriptor at the null device, so that the flush at exit neither fails nor prints."""
    try:
        if stream is not None:
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    except (OSError, ValueError):
        pass


class _UsageError(Exception):
    """A command-line mistake: reported with the usage line, exit status 2."""


def _run_cli(argv: List[str], environ: Mapping[str, str]) -> int:
    import argparse  # kept out of import time: only the command line needs it

    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Create a ChatBotKit bot session and print it as JSON. The secret comes from "
        "CHATBOTKIT_API_SECRET (and CHATBOTKIT_API_RUNAS_USERID, CHATBOTKIT_API_BASE_URL are read too); "
        "CHATBOTKIT_LOG=debug or info logs to stderr.",
    )
    parser.add_argument("bot_id", metavar="BOT_ID", help="the bot to open a session with")
    parser.add_argument(
        "--message",
        action="append",
        default=[],
        metavar="TYPE:TEXT",
        help="add a message (repeatable), e.g. user:Hello",
    )
    parser.add_argument("--duration", metavar="SECONDS", help="durationInSeconds: how long the session stays open")
    parser.add_argument(
        "--meta", action="append", default=[], metavar="KEY=VALUE", help="add a meta entry (repeatable)"
    )
    parser.add_argument(
        "--request-json", metavar="FILE|-", help="read a whole request object from a file or stdin; flags add to it"
    )
    parser.add_argument(
        "--base-url", metavar="URL", help="API base URL (default: CHATBOTKIT_API_BASE_URL or %s)" % _DEFAULT_BASE_URL
    )
    parser.add_argument("--timeout", type=float, metavar="S", help="seconds per attempt (default 30)")
    parser.add_argument("--total-timeout", type=float, metavar="S", help="seconds for the whole call (default: none)")
    parser.add_argument("--retries", type=int, metavar="N", help="retries after the first attempt (default 3)")
    parser.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="permit sending the secret over plain http to a host that is not this machine",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the request instead of sending it (no secret needed)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="log each attempt and retry to stderr (as CHATBOTKIT_LOG=debug does)"
    )
    parser.add_argument("--version", action="version", version="%(prog)s " + __version__)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse has printed usage and error, or --help / --version
        return exit_.code if isinstance(exit_.code, int) else 2
    if args.verbose:
        _log_to_stderr(_LOG_LEVELS["debug"])
    try:
        request = _cli_request(args)
        client = BotSessionClient(_cli_options(args, environ))
        url, body = _session_call(client, args.bot_id, request)
    except (ValueError, TypeError, _UsageError) as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write("%s: error: %s\n" % (_PROG, _escape_control(str(exc))))
        return 2
    if args.dry_run:
        sys.stdout.write("POST %s\n" % url)
        for name, value in client._headers.items():
            sys.stdout.write("%s: %s\n" % (name, "Bearer ***" if name == "authorization" else value))
        sys.stdout.write("\n%s\n" % json.dumps(json.loads(body), indent=2))
        if not client.options.secret:
            sys.stderr.write("%s: note: CHATBOTKIT_API_SECRET is not set; a real call needs it\n" % _PROG)
        return 0
    try:
        session = client._call(url, body, _session_problem)
    except ChatBotKitError as exc:
        sys.stderr.write("%s: error: %s%s\n" % (_PROG, exc, _cli_error_detail(exc)))
        return 1
    sys.stdout.write(json.dumps(session, indent=2) + "\n")
    return 0


def _cli_error_detail(error: ChatBotKitError) -> str:
    """What the error line adds to the error: the wait a server asked for, and how many attempts were made."""
    said: List[str] = []
    retry_after = error.retry_after if isinstance(error, APIError) else None
    if retry_after is not None:
        said.append("the server asked to retry after %g s" % retry_after)
        if retry_after > _MAX_RETRY_AFTER_SECONDS:
            said[-1] += ", longer than the %g s this client waits" % _MAX_RETRY_AFTER_SECONDS
    if error.attempts:
        said.append("%d attempt%s" % (error.attempts, "" if error.attempts == 1 else "s"))
    return " (%s)" % "; ".join(said) if said else ""


def _cli_options(args: Any, environ: Mapping[str, str]) -> ClientOptions:
    overrides: Dict[str, Any] = {}
    for name in ("base_url", "timeout", "total_timeout", "retries"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.allow_insecure_http:
        overrides["allow_insecure_http"] = True
    if not environ.get("CHATBOTKIT_API_SECRET"):
        if not args.dry_run:
            raise _UsageError(
                "CHATBOTKIT_API_SECRET is not set: export it (add --dry-run to see the request without it)"
            )
        overrides["secret"] = ""  # a dry run sends nothing and needs no secret: # nosec
    return ClientOptions.from_env(environ, **overrides)


def _cli_request(args: Any) -> Dict[str, Any]:
    request: Dict[str, Any] = {}
    if args.request_json is not None:
        request = _read_request_json(args.request_json)
    if args.message:
        messages: List[Any] = request.get("messages", [])
        if not isinstance(messages, list):
            raise _UsageError("--request-json: messages must be a list to add --message to it")
        for item in args.message:
            kind, colon, text = item.partition(":")
            if not colon or not kind:
                raise _UsageError("--message must be TYPE:TEXT (for example user:Hello), got %r" % item)
            messages = [*messages, {"type": kind, "text": text}]
        request["messages"] = messages
    if args.meta:
        given: Dict[str, Any] = request.get("meta", {})
        if not isinstance(given, dict):
            raise _UsageError("--request-json: meta must be an object to add --meta to it")
        meta = dict(given)
        for item in args.meta:
            key, equals, value = item.partition("=")
            if not equals or not key:
                raise _UsageError("--meta must be KEY=VALUE, got %r" % item)
            meta[key] = value
        request["meta"] = meta
    if args.duration is not None:
        request["durationInSeconds"] = _cli_number("--duration", args.duration)
    return request


def _read_request_json(source: str) -> Dict[str, Any]:
    name = "stdin" if source == "-" else source
    try:
        if source == "-":
            text = sys.stdin.read()
        else:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
        request: Any = json.loads(text, parse_constant=_no_constant)
    except OSError as exc:
        raise _UsageError("--request-json: cannot read %s: %s" % (name, exc.strerror or exc)) from None
    except (ValueError, RecursionError) as exc:
        raise _UsageError("--request-json: %s is not valid JSON: %s" % (name, exc)) from None
    if not isinstance(request, dict):
        raise _UsageError("--request-json: %s must hold a JSON object" % name)
    return cast(Dict[str, Any], request)


def _cli_number(flag: str, text: str) -> float:
    try:
        number = float(text) if any(char in text for char in ".eEn") else int(text)
    except ValueError:
        raise _UsageError("%s must be a number, got %r" % (flag, text)) from None
    if not _is_finite_number(number):
        raise _UsageError("%s must be a finite number, got %r" % (flag, text))
    return number


if __name__ == "__main__":
    sys.exit(main())
