# SPDX-License-Identifier: MIT
# pyright: reportUnnecessaryIsInstance=false, reportPrivateUsage=false
# (Callers without a type checker pass anything, so inputs are checked at run time; and "private" here
# means private to this one-file module, whose classes share their underscored helpers.)
"""chatbotkit_session: a one-file, standard-library-only client for ChatBotKit bot sessions.

It calls ``POST /v1/bot/{botId}/session/create``, which opens a conversation for a bot and returns a
short-lived token a browser widget can use. It is the Python counterpart of ``BotSessionClient`` in the
official ``@chatbotkit/sdk`` for Node, made to be copied into a project as this single file, used where
pip is not available (CPython 3.8 to 3.15, free-threaded builds included, and PyPy), or dropped beside an
AWS Lambda handler, where it is also the whole function.

Home: not published anywhere yet; this file is the whole library and README.md in its distribution
(``chatbotkit-session``) is its manual.
Copyright (c) 2026 the chatbotkit_session authors.
Licence: MIT (SPDX: MIT); the full text is in the LICENSE file of the distribution.

The map. Five bands, each a run of sections under a ``# ====`` banner, each using only the bands above
it: a reader who needs only the client stops at the end of band 1.

1. The client. Constants; Errors; Wire types; Input checks; URLs; Options; Secrecy; JSON; The
   createBotSession operation; The retry policy; Logging; The core (no I/O, given its clock); The
   urllib transport; The synchronous client and create_bot_session.
   Adds ``BotSessionClient``, ``ChatBotKitClient``, ``create_bot_session``, ``ClientOptions``,
   ``UrllibTransport``, ``HTTPRequest``, ``HTTPResponse``, the session's TypedDicts and the errors.
2. Kept-alive connections. The HTTP/1.1 exchange (no I/O); The pool rules; KeepAliveTransport.
   Adds ``KeepAliveTransport``.
3. asyncio. AsyncKeepAliveTransport; The asyncio client and acreate_bot_session.
   Adds ``AsyncKeepAliveTransport``, ``AsyncBotSessionClient``, ``acreate_bot_session``.
4. The web endpoint. The endpoint's decisions (no I/O); The endpoint's front doors.
   Adds ``SessionEndpoint``, ``EndpointRequest``, ``EndpointResponse``, ``lambda_handler``.
5. The command line. Adds ``main`` (``python chatbotkit_session.py --help``).

What runs at import, besides definitions: ``_log_from_environment(os.environ.get("CHATBOTKIT_LOG"))``
(Logging, band 1: shows the library's records on stderr when asked); ``os.register_at_fork(...)`` (The
pool rules, band 2: pools and worker threads start afresh in a fork's child); and, only when AWS Lambda
loaded this file as its handler (``_HANDLER``), ``SessionEndpoint.from_env()`` (band 4). Nothing else
runs, connects or starts a thread until it is called.
"""

from __future__ import annotations

import _thread  # to start worker threads without waiting for them, and for their lock (threading costs start-up)
import base64
import binascii
import collections.abc
import email.utils
import functools
import http.client
import io
import json
import json.encoder
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
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Deque,
    Dict,
    Generator,
    Iterable,
    Iterator,
    List,
    Mapping,
    NamedTuple,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Type,
    TypedDict,
    TypeVar,
    Union,
    cast,
)

__version__ = "0.3.1"
__license__ = "MIT"

__all__ = [  # noqa: RUF022 (grouped by band, as the map above; sorted within each band)
    # 1. The client
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BotSessionClient",
    "BotSessionCreateRequest",
    "BotSessionCreateResponse",
    "BotSessionMessage",
    "ChatBotKitClient",
    "ChatBotKitError",
    "ClientOptions",
    "ConflictError",
    "HTTPRequest",
    "HTTPResponse",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "UnprocessableEntityError",
    "UrllibTransport",
    "create_bot_session",
    # 2. Kept-alive connections
    "KeepAliveTransport",
    # 3. asyncio
    "AsyncBotSessionClient",
    "AsyncKeepAliveTransport",
    "acreate_bot_session",
    # 4. The web endpoint
    "EndpointRequest",
    "EndpointResponse",
    "SessionEndpoint",
    "lambda_handler",
    # 5. The command line
    "main",
]


# =========================================================================================================
# 1. The client: what BotSessionClient and create_bot_session need, and nothing else
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------------------------


_DEFAULT_BASE_URL = "https://api.chatbotkit.com"


_OFFICIAL_HOST = "api.chatbotkit.com"


_USER_AGENT = "chatbotkit-session-python/%s (Python %d.%d)" % (
    __version__,
    sys.version_info[0],
    sys.version_info[1],
)


_LOGGER_NAME = "chatbotkit_session"


_MAX_ERROR_BODY_CHARS = 64 * 1024  # how much of a failed response body APIError keeps (after masking)


_MAX_ERROR_TEXT_CHARS = 2000  # how much of any other text of an error is kept (after masking)


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
#
# ChatBotKitError                    every error raised on purpose: message, code, attempts
#  +-- APIError                      the server answered with an error status, or with something not a session
#  |    +-- BadRequestError          400
#  |    +-- AuthenticationError      401
#  |    +-- PermissionDeniedError    403
#  |    +-- NotFoundError            404 (its text names the URL called)
#  |    +-- ConflictError            409
#  |    +-- UnprocessableEntityError 422
#  |    +-- RateLimitError           429
#  |    +-- InternalServerError      500 to 599
#  +-- APIConnectionError            the server could not be reached, or its answer could not be read
#       +-- APITimeoutError          ... in the time given (timeout, total_timeout)
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
    (``code="RESPONSE_TOO_LARGE"``); the statuses most often branched on raise a subclass (drawn above).
    ``status`` is the HTTP status, ``url`` the request URL, ``headers`` the response headers
    (case-insensitive), ``body`` the response text (its first 65,536 characters), ``retry_after`` the
    delay in seconds the server asked for, or None, and ``request_id`` the answer's ``X-Request-Id``
    (what a support team asks for), or None. The client's secret is masked as ``***`` in all of them.
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
        request_id: Optional[str] = None,
    ) -> None:
        super().__init__(message, code)
        self.status = status
        self.url = url
        self.headers: Mapping[str, str] = _Headers(headers or {})
        self.body = body
        self.retry_after = retry_after
        self.request_id: Optional[str] = request_id or self.headers.get("x-request-id") or None

    def __str__(self) -> str:
        answer = "HTTP %d" % self.status
        if self.request_id:
            answer += ", request id %s" % self.request_id
        return "%s (%s): %s" % (self.code, answer, self.message)

    def __repr__(self) -> str:
        return "%s(status=%d, code=%r, message=%r, request_id=%r)" % (
            type(self).__name__,
            self.status,
            self.code,
            self.message,
            self.request_id,
        )


class BadRequestError(APIError):
    """The server answered 400: the request was malformed or refused as given."""


class AuthenticationError(APIError):
    """The server answered 401: the secret is missing, wrong or revoked."""


class PermissionDeniedError(APIError):
    """The server answered 403: the secret may not open sessions for this bot (or run as this user)."""


class NotFoundError(APIError):
    """The server answered 404: no such bot, or no such path. Its text names the URL called, and says why
    when the path kept its ``/api`` prefix on a host that is not ChatBotKit's (see ``_not_found_hint``)."""

    def __str__(self) -> str:
        return super().__str__() + _not_found_hint(self.url)


class ConflictError(APIError):
    """The server answered 409."""


class UnprocessableEntityError(APIError):
    """The server answered 422: the request was well-formed but its values were refused."""


class RateLimitError(APIError):
    """The server answered 429: too many requests; ``retry_after`` is the wait it asked for, if any."""


class InternalServerError(APIError):
    """The server answered with a status from 500 to 599."""


_STATUS_ERRORS: Mapping[int, Type[APIError]] = MappingProxyType(
    {
        400: BadRequestError,
        401: AuthenticationError,
        403: PermissionDeniedError,
        404: NotFoundError,
        409: ConflictError,
        422: UnprocessableEntityError,
        429: RateLimitError,
    }
)


def _error_class(status: int) -> Type[APIError]:
    """The class of the APIError for an answer with *status*: a subclass for the statuses above, else APIError."""
    return InternalServerError if 500 <= status <= 599 else _STATUS_ERRORS.get(status, APIError)


def _too_large(status: int, headers: Mapping[str, str], limit: int, url: str) -> APIError:
    """The error for a body over ``max_response_bytes``, raised by every transport as it reads past it."""
    return _error_class(status)(
        "the response body is larger than max_response_bytes (%d bytes); reading stopped there" % limit,
        "RESPONSE_TOO_LARGE",
        status=status,
        url=url,
        headers=headers,
    )


def _not_found_hint(url: str) -> str:
    """What a 404's text adds: the URL called and, where the path kept the Node SDK's ``/api`` prefix on a
    host that is not ChatBotKit's (a stub or a gateway written for ``/v1/...``), how to call it without."""
    if not url:
        return ""
    hint = "; the URL called was %s" % url
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
    except ValueError:  # a URL from a transport of the caller's own, say
        return hint
    if host != _OFFICIAL_HOST and parts.path.startswith("/api/"):
        hint += (
            " (on any host but %s the path keeps its /api prefix, as in the Node SDK; for a server that "
            'serves /v1/..., pass endpoints={"/api/v1/bot/{botId}/session/create": "/v1/bot/{botId}/session/create"})'
            % _OFFICIAL_HOST
        )
    return hint


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
# Wire types: headers, the HTTP request and response a transport sees, and the session's TypedDicts
# ---------------------------------------------------------------------------------------------------------


class _Headers(Mapping[str, str]):
    """A read-only, case-insensitive mapping of header names to values; its repr masks credentials."""

    __slots__ = ("_index", "_message", "_wire")

    def __init__(self, headers: Union[Mapping[str, str], Iterable[Tuple[str, str]]]) -> None:
        self._message: Union[http.client.HTTPMessage, List[Tuple[str, str]], None] = None
        if isinstance(headers, collections.abc.Mapping):
            pairs: Iterable[Tuple[str, str]] = cast(Mapping[str, str], headers).items()
        else:
            pairs = headers
        self._index: Optional[Dict[str, Tuple[str, str]]] = self._indexed(pairs)
        self._wire: Optional[str] = None

    @classmethod
    def received(cls, message: Union[http.client.HTTPMessage, List[Tuple[str, str]]]) -> _Headers:
        """The headers of a received response, indexed on first use: most successful calls never read them."""
        headers = cls.__new__(cls)
        headers._message = message
        headers._index = None
        headers._wire = None
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
            message = self._message
            index = self._index = self._indexed(
                message if isinstance(message, list) else message.items() if message else ()
            )
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

    def wire(self) -> str:
        """The headers as an HTTP/1.1 header section carries them, one ``Name: value\r\n`` each, made and
        checked once: a name that is not a token, or a value with CR, LF or NUL (which would start a
        header line of its own), raises ValueError naming the header, never its value."""
        wire = self._wire
        if wire is None:
            for name, value in self._items.values():
                if not (isinstance(name, str) and name and _TOKEN_CHARS.issuperset(name)):
                    raise ValueError("HTTPRequest.headers: %s is not a valid header name" % _safe_repr(name)[:80])
                if not isinstance(value, str) or "\r" in value or "\n" in value or "\x00" in value:
                    raise ValueError("HTTPRequest.headers[%r]: a value must be a string without CR, LF or NUL" % name)
            wire = self._wire = "".join("%s: %s\r\n" % pair for pair in self._items.values())
        return wire

    def as_dict(self) -> Dict[str, str]:
        """A plain dict of the headers, names as given (what http.client and urllib take)."""
        return dict(self._items.values())

    def __repr__(self) -> str:
        shown = {name: "***" if key in _SENSITIVE_HEADERS else value for key, (name, value) in self._items.items()}
        return "Headers(%r)" % (shown,)


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "HTTP %d" % status


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


# The default request, empty: a default of None would make the parameter Optional, and a type checker then
# reports a misspelt key as a dict that is not "BotSessionCreateRequest | None" instead of naming the key.
# None is still accepted at run time, as in 0.2.
_NO_REQUEST = cast(BotSessionCreateRequest, _EMPTY)


class _BotSessionCreateResponseRequired(TypedDict):
    id: str
    conversationId: str
    token: str
    expiresAt: float


class BotSessionCreateResponse(_BotSessionCreateResponseRequired, total=False):
    """The session: ``id``, ``conversationId``, ``token``, ``expiresAt`` (epoch ms), maybe ``messages``."""

    messages: List[BotSessionMessage]


# ---------------------------------------------------------------------------------------------------------
# Input checks: every value a caller gives is checked here, before any I/O, naming its field
# ---------------------------------------------------------------------------------------------------------


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


def _safe_repr(value: object) -> str:
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
            % (name, ">=" if allow_zero else ">", _MAX_TIMEOUT_SECONDS, _safe_repr(value))
        )
    return float(value)


def _check_whole(name: str, value: object, low: int, high: Optional[int] = None) -> int:
    """Return *value* if it is an int (not a bool) from *low* (to *high*), else raise naming *name*."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (name, type(value).__name__))
    if value < low or (high is not None and value > high):
        limits = "at least %d" % low if high is None else "from %d to %d" % (low, high)
        raise ValueError("%s must be %s, got %s" % (name, limits, _safe_repr(value)))
    return value


def _is_finite_number(value: object) -> bool:
    """Tell whether *value* is an int or float (not a bool) that a float can hold: not NaN, not infinite,
    not an integer of 309 digits or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


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


def _checked_headers(headers: object) -> _Headers:
    """The ``headers`` option checked: token names, none the transport sets, values HTTP can carry."""
    if not isinstance(headers, collections.abc.Mapping):
        raise TypeError("headers must be a mapping of names to values, not %s" % type(headers).__name__)
    for name, value in cast(Mapping[object, object], headers).items():
        if not isinstance(name, str) or not name or not set(name) <= _TOKEN_CHARS:
            raise ValueError("headers: %s is not a valid header name" % _safe_repr(name))
        if name.lower() in _RESERVED_HEADERS:
            raise ValueError("headers: %r is set by the transport and cannot be overridden" % name)
        _check_text("headers[%r]" % name, value)
    return _Headers(cast(Mapping[str, str], headers))


def _checked_method(method: str) -> str:
    """*method* if it is an HTTP method token, else ValueError: every transport refuses a request line that
    would not be one line (a transport wrapping ours can set anything) before any byte is sent."""
    if method != "POST" and not (isinstance(method, str) and method and _TOKEN_CHARS.issuperset(method)):
        raise ValueError("HTTPRequest.method must be an HTTP method token, got %s" % _safe_repr(method)[:40])
    return method


# ---------------------------------------------------------------------------------------------------------
# URLs: parsing, loopback, the Node SDK's routing rules (host and protocol folding, endpoints, /api)
# ---------------------------------------------------------------------------------------------------------


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
    family = _ip_family(host)
    if family is None:
        return False  # a host name: only localhost names count, whatever DNS says
    address = socket.inet_pton(family, host)
    return address[0] == 127 if family == socket.AF_INET else address == _IPV6_LOOPBACK


def _ip_family(host: str) -> Optional[int]:
    """``AF_INET`` or ``AF_INET6`` if *host* is an IP address (IPv6 with or without brackets), else None."""
    host = host.strip("[]")
    # inet_pton is strict (no "127.1" shorthand) and, unlike the ipaddress module, costs no import.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET if host[-1:].isdigit() else None
    if family is None:
        return None
    try:
        socket.inet_pton(family, host)
    except (OSError, ValueError):
        return None
    return family


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
    host = parts.hostname[:-1] if parts.hostname.endswith(".") else parts.hostname  # a root dot is allowed
    if _ip_family(host) is None and (len(host) > 253 or not all(0 < len(label) < 64 for label in host.split("."))):
        # what the IDNA codec refuses when a transport resolves the name (a bare UnicodeError there)
        raise ValueError("%s has an invalid host name: each dot-separated label must be 1 to 63 characters" % name)
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError("%s has an invalid port: %s" % (name, exc)) from None
    return parts


def _quote_target(value: str) -> str:
    """A path (and query) as a URL carries it: spaces and non-ASCII percent-encoded, as a browser's URL
    parser does; existing escapes, reserved characters and ``{botId}`` placeholders are kept."""
    return urllib.parse.quote(value, safe="/%:@!$&'()*+,;=-._~?#[]{}")


def _folded_base_url(base_url: str, host: Optional[str], protocol: Optional[str]) -> str:
    """*base_url* with *protocol* and *host* applied (the Node SDK's folding), as a browser's URL setters apply them:
    a host without a port keeps the base URL's port."""
    base = urllib.parse.urlsplit(base_url)
    scheme, netloc = base.scheme, base.netloc
    if protocol is not None:
        scheme = _check_text("protocol", protocol).rstrip(":")
        if scheme not in ("http", "https"):
            raise ValueError("protocol must be 'http' or 'https', got %r" % (protocol,))
    if host is not None:
        _check_text("host", host, allow_empty=False)
        try:
            host_parts = urllib.parse.urlsplit("//" + host)
        except ValueError as exc:  # an unclosed "[", say
            raise ValueError("host must be a host name with an optional port (%s), got %r" % (exc, host)) from None
        if host_parts.netloc != host or not host_parts.hostname or "@" in host:
            raise ValueError("host must be a host name with an optional port, got %r" % host)
        _split_http_url("host", "http://" + host)
        netloc = host
        if host_parts.port is None and base.port is not None:
            netloc = "%s:%d" % (host, base.port)
    return urllib.parse.urlunsplit((scheme, netloc, base.path, base.query, ""))


def _checked_endpoints(given: object) -> Dict[str, str]:
    """The ``endpoints`` option checked: each value a path or an absolute http(s) URL, percent-encoded."""
    if not isinstance(given, collections.abc.Mapping):
        raise TypeError("endpoints must be a mapping of paths, not %s" % type(given).__name__)
    endpoints: Dict[str, str] = {}
    for given_key, given_value in cast(Mapping[object, object], given).items():
        key = _check_text("endpoints key", given_key, allow_empty=False)
        where = "endpoints[%r]" % key
        value = _check_text(where, given_value, allow_empty=False)
        if value.startswith("//") or "\\" in value:
            raise ValueError("%s must be a path or an absolute http(s) URL, got %r" % (where, value))
        if _parse_url(where, value).scheme:  # absolute, as a browser's URL parser sees it
            parts = _split_http_url(where, value)
            value = urllib.parse.urlunsplit(parts._replace(path=_quote_target(parts.path), fragment=""))
        else:
            value = _quote_target(value)
        endpoints[key] = value
    return endpoints


def _refuse_plain_http_off_machine(base_url: str, endpoints: Mapping[str, str]) -> None:
    """Refuse, before any I/O, URLs that would carry the secret in clear text off this machine."""
    targets = [("base_url", base_url)]
    targets += [("endpoints[%r]" % key, value) for key, value in endpoints.items()]
    for name, url in targets:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
            raise ValueError(
                "%s: refusing to send the secret over plain http to %s; use https, or allow it explicitly "
                "if you accept the risk (allow_insecure_http=True; on the command line --allow-insecure-http)"
                % (name, parts.hostname)
            )


def _operation_url(
    base_url: str, endpoints: Mapping[str, str], path_template: str, path_params: Mapping[str, str]
) -> str:
    """Resolve an operation path like the Node SDK: endpoints (template, raw or escaped key), the base
    URL, and the ``/api`` prefix dropped on the official host."""
    escaped = [("{%s}" % name, _path_segment(value)) for name, value in path_params.items()]
    path = raw_path = path_template
    for (placeholder, value), raw in zip(escaped, path_params.values()):
        path = path.replace(placeholder, value)
        raw_path = raw_path.replace(placeholder, raw)
    if endpoints:
        endpoint = endpoints.get(path) or endpoints.get(raw_path) or endpoints.get(path_template)
        if endpoint is not None:
            for placeholder, value in escaped:
                endpoint = endpoint.replace(placeholder, value)
            path = endpoint
    url = urllib.parse.urljoin(base_url, path)
    parts = urllib.parse.urlsplit(url)
    if parts.hostname == _OFFICIAL_HOST and parts.path.startswith("/api/"):
        url = urllib.parse.urlunsplit(parts._replace(path=parts.path[4:]))
    return url


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
            object.__setattr__(self, "base_url", _folded_base_url(self.base_url, self.host, self.protocol))
            object.__setattr__(self, "host", None)
            object.__setattr__(self, "protocol", None)
        object.__setattr__(self, "endpoints", MappingProxyType(_checked_endpoints(self.endpoints)))
        object.__setattr__(self, "headers", _checked_headers(self.headers))
        for name in ("run_as_user_id", "run_as_child_user_email", "timezone"):
            if getattr(self, name) is not None:
                _check_text(name, getattr(self, name))
        for name in ("timeout", "total_timeout"):
            if getattr(self, name) is not None:
                _check_seconds(name, getattr(self, name), allow_zero=False)
        _check_whole("retries", self.retries, 0, 1000)
        _check_seconds("retry_delay", self.retry_delay, allow_zero=True)
        for name in ("retry_timeout", "allow_insecure_http"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError("%s must be a bool, not %s" % (name, type(getattr(self, name)).__name__))
        if self.transport is not None and not callable(self.transport):
            raise TypeError("transport must be callable (HTTPRequest -> HTTPResponse)")
        if self.ssl_context is not None and not isinstance(self.ssl_context, ssl.SSLContext):
            raise TypeError("ssl_context must be an ssl.SSLContext, not %s" % type(self.ssl_context).__name__)
        _check_whole("max_response_bytes", self.max_response_bytes, 1)
        if self.secret and not self.allow_insecure_http:
            _refuse_plain_http_off_machine(self.base_url, self.endpoints)

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
        return self._merged(_options_given(locals()))

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
        overrides = _options_given(locals())
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


def _options_given(arguments: Mapping[str, Any]) -> Dict[str, Any]:
    """The options among a function's *arguments* (its ``locals()``) that the caller gave."""
    return {name: arguments[name] for name in _OPTION_NAMES if arguments[name] is not _UNSET}


# ---------------------------------------------------------------------------------------------------------
# Secrecy: the one place that masks every text leaving the library
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
    """Masks the secret in what leaves the library: every error passes through ``masked_error`` before it is raised.

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

    def masked_line(self, text: str) -> str:
        """*text* masked, and with control characters escaped so that it stays on one line."""
        return _escape_control(self.mask(text))

    def masked_error(self, error: _E) -> _E:
        """A copy of *error* whose every text is cleaned (the body masked and cut), with no chained exception."""
        state: Dict[str, Any] = {}
        # An echo of the secret takes at most six characters per character of it (\u0073): masking that
        # much past the cut finds every echo that starts before it, without masking the whole body.
        window = _MAX_ERROR_BODY_CHARS + 6 * len(self._secret)
        for name, value in vars(error).items():
            if name == "body" and isinstance(value, str):
                value = self.mask(value[:window])[:_MAX_ERROR_BODY_CHARS]
            elif isinstance(value, str):  # masked whole (a message holds at most a 64 KiB line), then cut
                value = self.masked_line(value)
                if len(value) > _MAX_ERROR_TEXT_CHARS:
                    value = value[:_MAX_ERROR_TEXT_CHARS] + "..."
            elif isinstance(value, _Headers):
                value = _Headers([(self.masked_line(key), self.masked_line(item)) for key, item in value.items()])
            state[name] = value
        return _rebuild_error(type(error), state)


# ---------------------------------------------------------------------------------------------------------
# JSON: strict encoding of requests, strict decoding of answers
# ---------------------------------------------------------------------------------------------------------


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


# One string as JSON, every non-ASCII character escaped: what _encode_json writes for it, at a tenth of the
# cost of building an encoder (the web endpoint writes its few fields with it).
_json_string = json.encoder.encode_basestring_ascii


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


_JSON_STRING = rb'"[^"\\]*(?:\\.[^"\\]*)*"'  # compiled (and cached by re) on first use: large answers only


_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")


_BRACKETS_AS_PARENTHESES = bytes.maketrans(b"[{]}", b"(())")


def _nests_too_deep(text: bytes) -> bool:
    """Tell whether the valid JSON *text* nests arrays and objects more than _MAX_JSON_DEPTH deep.

    A few linear passes at C speed (walking the decoded value in Python took seconds for a large answer):
    the strings dropped, only the brackets kept, then the innermost pairs removed once per level.
    """
    if text.count(b"[") + text.count(b"{") <= _MAX_JSON_DEPTH:
        return False
    brackets = re.sub(_JSON_STRING, b"", text, flags=re.DOTALL).translate(_BRACKETS_AS_PARENTHESES, _NOT_BRACKETS)
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


# ---------------------------------------------------------------------------------------------------------
# The createBotSession operation: its path, headers, request body and answer
# ---------------------------------------------------------------------------------------------------------


_SESSION_PATH_TEMPLATE = "/api/v1/bot/{botId}/session/create"


def _request_headers(options: ClientOptions) -> _Headers:
    """The headers of every request a client with *options* sends (the computed ones win)."""
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


def _session_call(client: _BaseClient, bot_id: str, request: Optional[Mapping[str, Any]]) -> Tuple[str, bytes]:
    """The URL and JSON body of a createBotSession call, both checked before any I/O."""
    return client._core.url(_SESSION_PATH_TEMPLATE, {"botId": _check_bot_id(bot_id)}), _session_request_body(request)


# ---------------------------------------------------------------------------------------------------------
# The retry policy
# ---------------------------------------------------------------------------------------------------------


def _retry_after(headers: Mapping[str, str], now: float) -> Optional[float]:
    """The delay a response asks for (``retry-after-ms``, ``Retry-After`` seconds or an HTTP date, read
    against *now*, the epoch time), or None."""
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
        return max(moment.timestamp() - now, 0.0)
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


def _retry_delay(retry_after: Optional[float], retry_delay: float, attempt: int, jitter: float) -> float:
    """The wait before retry number *attempt* + 1: what the server asked for, taken as given; else our
    backoff from *retry_delay* (none when it is 0)."""
    if retry_after is not None:
        return retry_after
    if not retry_delay:
        return 0.0
    return _backoff_delay(retry_delay, attempt, jitter)


# ---------------------------------------------------------------------------------------------------------
# Logging: the library's records (logging is imported only by a program that uses it)
# ---------------------------------------------------------------------------------------------------------


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
    """Show the library's log records at *level* and above, one line each (``CHATBOTKIT_LOG``, the command
    line's ``--verbose``): on stderr, unless the program's own handlers show them (see ``_shown_elsewhere``).
    The records never hold the secret: URLs and answers are masked like errors."""
    import logging  # only when asked for: see _logger

    logger = logging.getLogger(_LOGGER_NAME)
    logger.setLevel(min(level, logger.level or level))
    if not any(handler.get_name() == _STDERR_HANDLER_NAME for handler in logger.handlers):
        handler = logging.StreamHandler()
        handler.set_name(_STDERR_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler.addFilter(lambda record: not _shown_elsewhere(logger, record))
        logger.addHandler(handler)


def _shown_elsewhere(logger: Any, record: Any) -> bool:
    """Whether a handler of the program's (on our logger, or on one it propagates to: ``basicConfig``'s on the
    root) takes *record*: then that handler shows it, and our stderr line would print it a second time."""
    current = logger
    while current is not None:
        for handler in current.handlers:
            if handler.get_name() != _STDERR_HANDLER_NAME and record.levelno >= handler.level:
                return True
        if not current.propagate:
            return False
        current = current.parent
    return False


def _log_from_environment(value: str) -> None:
    """``CHATBOTKIT_LOG``: debug or info shows the library's records with no code (as ``OPENAI_LOG`` does);
    any other value but the empty one gets one line on stderr naming the accepted ones."""
    name = value.strip().lower()
    if name in _LOG_LEVELS:
        _log_to_stderr(_LOG_LEVELS[name])
    elif name and sys.stderr is not None:  # None under pythonw
        sys.stderr.write(
            "%s: CHATBOTKIT_LOG=%s is not one of %s; the library's records are not shown\n"
            % (_LOGGER_NAME, _escape_control(repr(value)), ", ".join(_LOG_LEVELS))
        )


_log_from_environment(os.environ.get("CHATBOTKIT_LOG", ""))  # runs at import (the module's docstring lists all)


# ---------------------------------------------------------------------------------------------------------
# The core: one call planned as a generator, given its clock and randomness; no I/O here
# ---------------------------------------------------------------------------------------------------------


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


# What the core yields to a driver: a request to send (the driver sends back the HTTPResponse, or the
# exception the transport raised) or a number of seconds to wait (the driver sends back None).
_Step = Union[HTTPRequest, float]


_Outcome = Union[HTTPResponse, BaseException, None]


_Plan = Generator[_Step, _Outcome, Any]


class _Clock(NamedTuple):
    """What the core reads instead of the system, so that a test can drive it: the monotonic clock
    (deadlines, durations), the wall clock (a Retry-After date) and the backoff's jitter, in [0, 1)."""

    monotonic: Callable[[], float]
    wall: Callable[[], float]
    jitter: Callable[[], float]


_SYSTEM_CLOCK = _Clock(time.monotonic, time.time, random.random)  # jitter spreads retries: no secret  # nosec B311


class _Core:
    """One client's calls, with no I/O: the request headers and URLs, the plan of a call, the mapping of
    every failure to a documented error (masked), and the log records.

    The plan is a generator (``plan``): it yields an ``HTTPRequest`` to send, and the driver sends back
    the ``HTTPResponse`` or the exception its transport raised; or it yields a number of seconds to wait,
    and the driver sends back None once it has waited. It returns the decoded answer, or raises the
    error the call ends with. The sync and asyncio drivers are the only loops; the core never blocks.
    """

    __slots__ = ("_urls", "headers", "log", "options", "secrecy")

    def __init__(self, options: ClientOptions) -> None:
        self.options = options
        self.headers = _request_headers(options)
        self.secrecy = _Secrecy(options.secret)
        self.log: Any = _logger()  # None until the program imports logging; then looked up per attempt
        self._urls: Dict[Tuple[str, ...], str] = {}

    def url(self, path_template: str, path_params: Mapping[str, str]) -> str:
        """The URL of an operation: resolved once per client and path (a client serves a bot or a few)."""
        key = (path_template, *path_params.values())
        url = self._urls.get(key)
        if url is None:
            url = _operation_url(self.options.base_url, self.options.endpoints, path_template, path_params)
            if len(self._urls) < 256:
                self._urls[key] = url
        return url

    def plan(
        self,
        url: str,
        body: bytes,
        problem: Callable[[Any], Optional[str]],
        clock: _Clock,
        limit: Optional[float] = None,
    ) -> _Plan:
        """One call as a generator: it yields each request to send and each wait, a driver does them;
        every reading of time and every random draw comes from *clock*.

        *limit* (seconds) bounds the whole call as ``total_timeout`` does, the shorter of the two applying:
        a caller with a deadline of its own (the web endpoint) passes it down rather than extend a client.
        It returns the decoded answer of a 2xx whose *problem* (a phrase, or None) is None, and raises
        the error the call ends with: every failure passes ``_transport_error`` once, where it is masked and mapped.
        """
        options = self.options
        total = options.total_timeout
        if limit is not None and (total is None or limit < total):
            total = limit
        deadline = None if total is None else clock.monotonic() + total
        attempts = options.retries + 1
        made = 0  # attempts made: every error the call ends with says how many
        try:
            for attempt in range(attempts):
                timeout, capped = options.timeout, False
                if deadline is not None:
                    left = deadline - clock.monotonic()
                    if left <= 0:
                        raise self._deadline_error(url, total)
                    if timeout is None or left < timeout:
                        timeout, capped = left, True
                started = clock.monotonic()
                outcome = yield HTTPRequest("POST", url, self.headers, body, timeout)
                made = attempt + 1
                if isinstance(outcome, HTTPResponse):
                    self._log_attempt(url, outcome, clock.monotonic() - started, attempt)
                    if 200 <= outcome.status < 300:
                        return self._checked_payload(outcome, url, problem)
                    error: ChatBotKitError = self._answer_error(outcome, url, clock.wall())
                else:
                    error = self._transport_error(outcome, url, timeout)
                    self._log_attempt(url, error, clock.monotonic() - started, attempt)
                    if capped and isinstance(error, APITimeoutError):
                        raise self._deadline_error(url, total)
                if not _should_retry(error, options.retry_timeout) or attempt + 1 == attempts:
                    raise error
                retry_after = error.retry_after if isinstance(error, APIError) else None
                delay = _retry_delay(retry_after, options.retry_delay, attempt, clock.jitter())
                if deadline is not None and clock.monotonic() + delay >= deadline:
                    raise error  # the wait would end past total_timeout: the caller hears now, not later
                self._log_retry(url, delay, str(error.status) if isinstance(error, APIError) else error.code, attempt)
                if delay > 0:
                    yield delay
        except ChatBotKitError as error:
            error.attempts = made
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _transport_error(self, outcome: _Outcome, url: str, timeout: Optional[float]) -> ChatBotKitError:
        """The documented error for what a transport raised, masked; anything else is re-raised unchanged."""
        if isinstance(outcome, ChatBotKitError):
            return self.secrecy.masked_error(outcome)
        if isinstance(outcome, (OSError, http.client.HTTPException)):
            return self.secrecy.masked_error(_connection_error(outcome, url, timeout))
        if isinstance(outcome, BaseException):
            raise outcome  # a bug in a transport passed in: it is the caller's to see, untouched
        raise TypeError("the transport returned %s, not an HTTPResponse" % type(outcome).__name__)

    def _deadline_error(self, url: str, seconds: Optional[float]) -> ChatBotKitError:
        return self.secrecy.masked_error(
            APITimeoutError("POST %s did not complete within total_timeout (%gs)" % (url, seconds or 0.0))
        )

    def _log_retry(self, url: str, delay: float, why: str, attempt: int) -> None:
        logger = self.log or _logger()
        if logger is not None:
            logger.info(
                "retrying POST %s in %.3fs after %s (attempt %d of %d)",
                self.secrecy.masked_line(url),
                delay,
                why,
                attempt + 2,
                self.options.retries + 1,
            )

    def _log_attempt(
        self, url: str, outcome: Union[HTTPResponse, ChatBotKitError], seconds: float, attempt: int
    ) -> None:
        """The DEBUG line of an attempt: the answer's status and request id, or the failure's code (named only
        when the line is logged: a call nobody logs pays for none of it)."""
        logger = self.log or _logger()
        if logger is not None and logger.isEnabledFor(10):  # logging.DEBUG
            if isinstance(outcome, HTTPResponse):
                request_id = outcome.headers.get("x-request-id")
                said = "%d (request id %s)" % (outcome.status, request_id) if request_id else str(outcome.status)
            else:
                said = "failed (%s)" % outcome.code
            logger.debug(
                "POST %s -> %s in %.1f ms (attempt %d of %d)",
                self.secrecy.masked_line(url),
                self.secrecy.masked_line(said),
                seconds * 1000.0,
                attempt + 1,
                self.options.retries + 1,
            )

    def _answer_error(self, response: HTTPResponse, url: str, now: float) -> APIError:
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
        return self._masked_api_error(response, url, message, code, _retry_after(response.headers, now))

    def _checked_payload(self, response: HTTPResponse, url: str, problem: Callable[[Any], Optional[str]]) -> Any:
        payload, why = _parse_answer(response.body)
        if why is None:
            why = problem(payload)
        if why is None:
            return payload
        message = "the server answered %d but %s" % (response.status, why)
        raise self._masked_api_error(response, url, message, "INVALID_RESPONSE")

    def _masked_api_error(
        self, response: HTTPResponse, url: str, message: str, code: str, retry_after: Optional[float] = None
    ) -> APIError:
        """An APIError for *response*, masked like every error that leaves the library."""
        error = _error_class(response.status)(
            message,
            code,
            status=response.status,
            url=url,
            headers=response.headers,
            body=response.body.decode("utf-8", "replace"),
            retry_after=retry_after,
        )
        return self.secrecy.masked_error(error)


def _advance(plan: Generator[Any, Any, Any], outcome: Any) -> Tuple[bool, Any]:
    """``plan.send(outcome)`` as (False, the next step) or (True, the call's result): a future cannot
    carry StopIteration out of an executor."""
    try:
        return False, plan.send(outcome)
    except StopIteration as done:
        return True, done.value


# ---------------------------------------------------------------------------------------------------------
# The urllib transport: deadlines, addresses, and UrllibTransport (the default), bounded by its deadline
# ---------------------------------------------------------------------------------------------------------


def _deadline(timeout: Optional[float], now: float) -> Optional[float]:
    """The moment a request's *timeout* (seconds, or None for none) runs out, on the clock that read *now*."""
    return None if timeout is None else now + timeout


def _time_left(deadline: Optional[float], now: float) -> Optional[float]:
    """Seconds from *now* to *deadline* as a timeout to wait with: None for no deadline, and never below a
    millisecond (a socket timeout of zero would mean "do not wait"). Every transport counts time this way."""
    return None if deadline is None else max(deadline - now, 0.001)


def _addresses(host: str, port: int) -> List[Tuple[int, Tuple[Any, ...]]]:
    """(family, address) pairs to try for *host*: a localhost name is loopback without asking DNS (RFC
    6761), an IP address is itself, and a name is resolved (which no timeout bounds)."""
    if _is_localhost_name(host):
        return [(socket.AF_INET, ("127.0.0.1", port)), (socket.AF_INET6, ("::1", port))]
    family = _ip_family(host)
    if family is not None:
        return [(family, (host, port))]
    return [(info[0], info[4]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


def _open_socket(host: str, port: int, deadline: Optional[float]) -> socket.socket:
    """A connected TCP socket to *host*:*port*, each address tried within the time left before *deadline*."""
    failure: Optional[OSError] = None
    for family, address in _addresses(host, port):
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.settimeout(_time_left(deadline, time.monotonic()))
            sock.connect(address)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one write per request: no Nagle wait
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
            if deadline is not None and time.monotonic() >= deadline:
                break
    raise failure or OSError("%s has no address" % host)


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
            now = time.monotonic()
            if now >= deadline:
                raise socket.timeout("timed out")
            self._sock.settimeout(_time_left(deadline, now))
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()

    def makefile(self, mode: str) -> io.BufferedReader:
        """What HTTPResponse.__init__ asks of a socket: a buffered reader, here one reading through self."""
        return io.BufferedReader(self)


class _DeadlineResponse(http.client.HTTPResponse):
    """An HTTPResponse that reads through a _DeadlineSocketIO bound to its connection, and skips every
    interim answer: http.client itself skips only 100 and would take a 103 Early Hints for the answer."""

    def __init__(self, sock: socket.socket, *args: Any, connection: _DeadlineConnection, **kwargs: Any) -> None:
        super().__init__(_DeadlineSocketIO(sock, connection), *args, **kwargs)  # type: ignore[arg-type]

    def _read_status(self) -> Tuple[str, int, str]:
        while True:
            version, status, reason = cast(Tuple[str, int, str], super()._read_status())  # type: ignore[misc]
            if not 100 <= status < 200 or status == 101:
                return version, status, reason
            http.client.parse_headers(self.fp)  # the interim answer's header section


class _DeadlineConnection(http.client.HTTPConnection):
    """An HTTPConnection whose responses must be read in full before ``deadline`` (a monotonic time).

    A localhost name is connected to loopback directly (RFC 6761): the secret may travel over plain
    http to such a name only because it cannot lead to another machine.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        timeout = self.timeout if isinstance(self.timeout, (int, float)) else None
        self.deadline = _deadline(timeout, time.monotonic())
        self.response_class = functools.partial(_DeadlineResponse, connection=self)  # type: ignore[assignment]
        self._create_connection = self._connect_within

    def _connect_within(self, address: Tuple[str, int], *args: Any) -> socket.socket:
        """Connect within the time left (http.client would give each address the whole timeout), and
        leave the socket the time left then, which bounds a TLS handshake as a whole."""
        sock = _open_socket(address[0], address[1], self.deadline)
        sock.settimeout(_time_left(self.deadline, time.monotonic()))
        return sock

    def send(self, data: Any) -> None:
        """Send within the time left: the socket's timeout was set before the TLS handshake, which may
        have used most of it."""
        if self.sock is None and self.auto_open:
            self.connect()
        if self.sock is not None and self.deadline is not None:
            self.sock.settimeout(_time_left(self.deadline, time.monotonic()))
        super().send(data)


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


def _content_length_value(value: str) -> str:
    """The one length a Content-Length field value gives (a list of equal values is one length), or
    ValueError saying what is wrong with it: both transports frame bodies by this rule."""
    values = {part.strip(" \t") for part in value.split(",")}
    if len(values) != 1:
        raise ValueError("conflicting Content-Length values")
    length = values.pop()
    if not length.isdigit() or not length.isascii():
        raise ValueError("an invalid Content-Length %r" % value)
    return length


def _read_body(response: http.client.HTTPResponse, limit: int, url: str) -> bytes:
    """Read a whole response body, refusing (and stopping at) more than *limit* bytes."""
    length = response.getheader("content-length")
    if length is not None and not response.chunked:  # http.client would read a length it cannot parse to the close
        try:
            _content_length_value(length)
        except ValueError as why:
            raise http.client.HTTPException(str(why)) from None
    if response.length is not None:  # http.client's reading of Content-Length (None when chunked or absent)
        if response.length > limit:
            raise _too_large(response.status, _Headers.received(response.headers), limit, url)
        return response.read()
    chunks: List[bytes] = []
    total = 0
    while True:
        chunk = response.read(min(_READ_CHUNK_BYTES, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            raise _too_large(response.status, _Headers.received(response.headers), limit, url)
        chunks.append(chunk)


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
        _checked_method(request.method)  # ValueError for a line that would not be one, as the others raise
        cast(_Headers, request.headers).wire()
        hostname = urllib.parse.urlsplit(request.url).hostname or ""
        opener = self._direct if _is_loopback(hostname) else self._proxied
        outgoing = urllib.request.Request(
            request.url, data=request.body, headers=cast(_Headers, request.headers).as_dict(), method=request.method
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

    def close(self) -> None:
        """Nothing to close: each call has its own connection. (Here so that every transport closes.)"""

    def __repr__(self) -> str:
        return "UrllibTransport(max_response_bytes=%d)" % self.max_response_bytes


# ---------------------------------------------------------------------------------------------------------
# The synchronous client and create_bot_session
# ---------------------------------------------------------------------------------------------------------


_C = TypeVar("_C", bound="_BaseClient")


class _BaseClient:
    """What both clients share: the options (through their core) and the transport; ``extend``, ``close``
    and the repr. The asyncio client (band 3) adds its worker threads in ``_setup``."""

    __slots__ = ("_core", "_is_async", "_owns_transport", "_transport")
    _accepts_async_transport = False
    _core: _Core
    _is_async: bool
    _owns_transport: bool
    _transport: Union[Transport, AsyncTransport]

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
        changes = _options_given(locals())
        if options is None:  # with no secret given, the configuration is the environment's (from_env)
            options = ClientOptions(**changes) if "secret" in changes else ClientOptions.from_env(**changes)
        elif not isinstance(options, ClientOptions):
            raise TypeError("options must be a ClientOptions, not %s" % type(options).__name__)
        elif changes:
            options = options._merged(changes)
        self._setup(options, None)

    def _setup(self, options: ClientOptions, parent: Optional[_BaseClient]) -> None:
        """Fill in a client for *options*, sharing *parent*'s transport where it still fits."""
        if (
            parent is not None
            and options.transport is parent.options.transport
            and options.ssl_context is parent.options.ssl_context
            and options.max_response_bytes == parent.options.max_response_bytes
        ):
            self._transport, self._is_async = parent._transport, parent._is_async
            self._owns_transport = parent._owns_transport
        else:
            self._owns_transport = options.transport is None
            self._transport = options.transport or self._default_transport(options)
            self._is_async = _is_async_transport(self._transport)
            if self._is_async and not self._accepts_async_transport:
                raise TypeError("transport is asynchronous (a coroutine function): use AsyncBotSessionClient")
        self._core = _Core(options)

    @staticmethod
    def _default_transport(options: ClientOptions) -> Union[Transport, AsyncTransport]:
        return UrllibTransport(options.ssl_context, options.max_response_bytes)

    @property
    def options(self) -> ClientOptions:
        """The client's options (read-only)."""
        return self._core.options

    def close(self) -> None:
        """Close the transport this client made (its idle connections; those in use close when their call
        ends). The clients ``extend()`` made share that transport, so closing any of them closes it for
        all: close the client you built, once, when you are done. A transport you passed in is yours to
        close. Closing is idempotent, and a closed client still works: it opens new connections."""
        close = getattr(self._transport, "close", None) if self._owns_transport else None
        if close is not None:
            close()

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
        client._setup(self.options._merged(_options_given(locals())), self)
        return client

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self.options)


class ChatBotKitClient(_BaseClient):
    """The synchronous client: it drives the core's plan of each call, sending its requests with the
    transport and sleeping its waits (``time.sleep``); ``BotSessionClient`` adds ``create``.

    Build it from ``ClientOptions`` or from option keywords (given both, the keywords apply as
    ``options.extend(...)``). A client is immutable and safe to share between threads;
    ``extend(...)`` returns a new client of the same class with merged options. ``with`` the client, or
    ``close()``, closes the transport it made.
    """

    __slots__ = ()

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(
        self, url: str, body: bytes, problem: Callable[[Any], Optional[str]], limit: Optional[float] = None
    ) -> Any:
        """Drive the core's plan with the transport and time.sleep."""
        plan = self._core.plan(url, body, problem, _SYSTEM_CLOCK, limit)
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


def create_bot_session(
    client: ChatBotKitClient, bot_id: str, request: BotSessionCreateRequest = _NO_REQUEST
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


class BotSessionClient(ChatBotKitClient):
    """A client for bot sessions: ``BotSessionClient(secret=...).create("bot-id", {...})``."""

    __slots__ = ()

    def create(self, bot_id: str, request: BotSessionCreateRequest = _NO_REQUEST) -> BotSessionCreateResponse:
        """Create a session for bot *bot_id*; see ``create_bot_session`` for *request*, result and errors."""
        return create_bot_session(self, bot_id, request)


# =========================================================================================================
# 2. Kept-alive connections: KeepAliveTransport
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# The HTTP/1.1 exchange: no I/O (h11's model, client side only)
# ---------------------------------------------------------------------------------------------------------


# RFC 9112, as strict as h11 is (which accepts a bare LF as a line end, as RFC 9112 section 2.2 allows).
# A field value may hold any byte but NUL and white space between its visible parts (h11's reading, since
# servers do send other control characters); obs-fold is refused, as RFC 9112 section 5.2 allows.
_grammar_compiled: List[Tuple[re.Pattern[str], re.Pattern[str], re.Pattern[bytes], re.Pattern[bytes]]] = []


def _grammar() -> Tuple[re.Pattern[str], re.Pattern[str], re.Pattern[bytes], re.Pattern[bytes]]:
    """The status line, a header line, a chunk size line and the blank line, compiled on first use: 0.5 ms
    at start-up (measured on 3.11) that a process using only the default transport never needs."""
    if not _grammar_compiled:  # two threads may both compile: equal patterns, harmlessly
        _grammar_compiled.append(
            (
                re.compile(r"HTTP/1\.([0-9]) ([0-9]{3})(?: [^\x00\n\r\x0b\x0c]*)?", re.ASCII),
                re.compile(
                    r"([-!#$%&'*+.^_`|~0-9a-zA-Z]+):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*", re.ASCII
                ),
                re.compile(rb"([0-9A-Fa-f]{1,20})(?:;[^\n]*)?[ \t]*"),
                re.compile(rb"\n\r?\n"),
            )
        )
    return _grammar_compiled[0]


_MAX_HEAD_BYTES = 64 * 1024  # a status line and header section longer than this is not an answer


_HEAD, _LENGTH_BODY, _CHUNK_SIZE, _CHUNK_DATA, _CHUNK_END, _TRAILERS, _CLOSE_BODY, _DONE = range(8)


def _without_cr(line: str) -> str:
    """A line split at LF without the one CR of its CRLF; any other CR stays, and makes the line invalid."""
    return line[:-1] if line.endswith("\r") else line


def _request_bytes(request: HTTPRequest, host: str, target: str) -> bytes:
    """The request as HTTP/1.1 bytes: the caller's headers, then Host and Content-Length. A method or a
    header that would not be one line (a transport wrapping ours can set anything) raises ValueError
    naming it, before any byte is sent."""
    head = "%s %s HTTP/1.1\r\nHost: %s\r\n%sContent-Length: %d\r\n\r\n" % (
        _checked_method(request.method),
        target,
        host,
        cast(_Headers, request.headers).wire(),
        len(request.body),
    )
    return head.encode("latin-1") + request.body


class _Head(NamedTuple):
    """A response's status line and header section as read, before its framing is decided."""

    status: int
    persistent: bool  # HTTP/1.1 without Connection: close (HTTP/1.0 closes, as h11 decides)
    fields: List[Tuple[str, str]]
    length: Optional[str]  # Content-Length, one value however many times it is given
    chunked: bool


def _parsed_head(text: str, grammar: Tuple[re.Pattern[str], re.Pattern[str], Any, Any]) -> _Head:
    """The status line and header fields in *text* (a header section without its blank line), or
    ValueError saying what RFC 9112 does not allow in it."""
    status_line_pattern, header_line = grammar[0], grammar[1]
    if "\n " in text or "\n\t" in text:  # refused before any line is read, whatever it continues
        raise ValueError("obs-fold (a header line folded onto the next)")
    lines = text.split("\n")
    status_line = _without_cr(lines[0])
    match = status_line_pattern.fullmatch(status_line)
    if match is None:
        raise ValueError("a malformed status line %r" % status_line)
    status = int(match.group(2))
    if status < 100:
        raise ValueError("a status code below 100 in %r" % status_line)
    pairs: List[Tuple[str, str]] = []
    length: Optional[str] = None
    chunked = close = False
    for line in lines[1:]:
        line = _without_cr(line)
        field = header_line.fullmatch(line)
        if field is None:
            raise ValueError("a malformed header line %r" % line)
        name, value = field.groups()
        pairs.append((name, value))
        key = name.lower()
        if key == "content-length":
            value = _content_length_value(value)
            if length is not None and value != length:
                raise ValueError("conflicting Content-Length values")
            length = value
        elif key == "transfer-encoding":
            if chunked or value.lower() != "chunked":
                raise ValueError("a Transfer-Encoding other than one 'chunked' (%r)" % value)
            chunked = True
        elif key == "connection":
            close = close or "close" in [token.strip(" \t") for token in value.lower().split(",")]
    return _Head(status, match.group(1) != "0" and not close, pairs, length, chunked)


class _HTTP11Exchange:
    """One request's response from bytes, with no I/O (``_request_bytes`` makes what to send): each
    ``receive(data)`` consumes what arrived (``b""``: the server closed the connection) and returns the
    final response once it is whole, else None.

    Interim (1xx) answers are skipped; a body is framed by Content-Length, chunked coding (trailers
    read and dropped) or the end of the connection. Anything RFC 9112 does not allow raises
    APIConnectionError saying what was wrong; a body over *max_response_bytes* raises
    ``APIError(code="RESPONSE_TOO_LARGE")``. Afterwards ``reusable`` tells whether the connection may carry
    another request: an HTTP/1.1 answer (HTTP/1.0 closes, as h11 decides), framed by length or chunks,
    without ``Connection: close`` and with no byte left over.
    """

    __slots__ = (
        "_body",
        "_buffer",
        "_grammar",
        "_limit",
        "_need",
        "_received",
        "_searched",
        "_started",
        "_state",
        "_tunnel",
        "_url",
        "_where",
        "head",
        "reusable",
    )

    def __init__(self, url: str, where: str, max_response_bytes: int, *, tunnel: bool = False) -> None:
        self._url = url
        self._tunnel = tunnel  # the answer to a CONNECT: a 2xx ends with its header section (RFC 9110 9.3.6)
        self._where = where  # host:port, for messages
        self._grammar = _grammar()
        self._limit = max_response_bytes
        self._buffer = b""
        self._searched = 0  # bytes of _buffer known to hold no line end: a trickled head is scanned once
        self._body: List[bytes] = []
        self._received = 0  # body bytes so far
        self._need = 0  # bytes the current length-framed part still needs
        self._state = _HEAD
        self._started = False  # whether any byte arrived
        self.head: Optional[Tuple[int, _Headers, bool]] = None  # status, headers, keep-alive
        self.reusable = False

    def receive(self, data: bytes) -> Optional[HTTPResponse]:
        if not data:
            return self._closed()
        self._started = True
        self._buffer = self._buffer + data if self._buffer else data
        while True:
            state = self._state
            if state == _HEAD:
                if not self._read_head():
                    return None
            elif state in (_LENGTH_BODY, _CHUNK_DATA):
                buffer, need = self._buffer, self._need
                if len(buffer) < need:
                    self._body.append(buffer)
                    self._buffer, self._need = b"", need - len(buffer)
                    return None
                self._body.append(buffer[:need])
                self._buffer = buffer[need:]
                self._state = _DONE if state == _LENGTH_BODY else _CHUNK_END
            elif state in (_CHUNK_SIZE, _CHUNK_END):
                if not self._read_chunk_line():
                    return None
            elif state == _TRAILERS:
                if not self._read_trailers():
                    return None
            elif state == _CLOSE_BODY:
                self._add_body(len(self._buffer))
                self._body.append(self._buffer)
                self._buffer = b""
                return None
            else:  # _DONE
                return self._response()

    def _read_head(self) -> bool:
        buffer = self._buffer
        blank = self._grammar[3].search(buffer, max(self._searched - 2, 0))
        if blank is None:
            if len(buffer) > _MAX_HEAD_BYTES:
                raise self._broken("a header section longer than %d bytes" % _MAX_HEAD_BYTES)
            self._searched = len(buffer)
            return False
        self._searched = 0
        end, cut = blank.start(), blank.end()
        if end > _MAX_HEAD_BYTES:
            raise self._broken("a header section longer than %d bytes" % _MAX_HEAD_BYTES)
        self._buffer = buffer[cut:]
        try:
            head = _parsed_head(buffer[:end].decode("latin-1"), self._grammar)
        except ValueError as why:
            raise self._broken(str(why)) from None
        status, length, chunked = head.status, head.length, head.chunked
        if status < 200:
            if status == 101:
                raise self._broken("101 Switching Protocols, which was not asked for")
            return True  # an interim answer: the final one follows
        if chunked and length is not None:
            raise self._broken("both Transfer-Encoding and Content-Length")
        tunnel = self._tunnel and status < 300  # the tunnel is open: what follows is the tunnel's
        framed = chunked or length is not None or status in (204, 304)
        keep_alive = tunnel or (head.persistent and framed)
        self.head = (status, _Headers.received(head.fields), keep_alive)
        if status in (204, 304) or tunnel:
            self._state = _DONE
        elif chunked:
            self._state = _CHUNK_SIZE
        elif length is not None:
            self._need = int(length)
            self._add_body(self._need)
            self._state = _LENGTH_BODY if self._need else _DONE
        else:
            self._state = _CLOSE_BODY
        return True

    def _read_chunk_line(self) -> bool:
        buffer = self._buffer
        end = buffer.find(b"\r\n", max(self._searched - 1, 0))
        if end < 0:
            if len(buffer) > _MAX_HEAD_BYTES:
                raise self._broken("a chunk line longer than %d bytes" % _MAX_HEAD_BYTES)
            self._searched = len(buffer)
            return False
        self._searched = 0
        line, self._buffer = buffer[:end], buffer[end + 2 :]
        if self._state == _CHUNK_END:
            if line:
                raise self._broken("chunk data longer than its size")
            self._state = _CHUNK_SIZE
            return True
        match = self._grammar[2].fullmatch(line)
        if match is None:
            raise self._broken("a malformed chunk size line %r" % line)
        self._need = int(match.group(1), 16)
        self._add_body(self._need)
        self._state = _CHUNK_DATA if self._need else _TRAILERS
        return True

    def _read_trailers(self) -> bool:
        """The trailer section after the last chunk, read like a header section and dropped."""
        buffer = self._buffer
        if buffer[:1] == b"\n" or buffer[:2] == b"\r\n":  # no trailers
            lines, cut = [], 1 if buffer[:1] == b"\n" else 2
        else:
            blank = self._grammar[3].search(buffer, max(self._searched - 2, 0))
            if blank is None:
                if len(buffer) > _MAX_HEAD_BYTES:
                    raise self._broken("a trailer section longer than %d bytes" % _MAX_HEAD_BYTES)
                self._searched = len(buffer)
                return False
            self._searched = 0
            lines, cut = buffer[: blank.start()].decode("latin-1").split("\n"), blank.end()
        for line in lines:
            if self._grammar[1].fullmatch(_without_cr(line)) is None:
                raise self._broken("a malformed trailer line %r" % line)
        self._buffer = buffer[cut:]
        self._state = _DONE
        return True

    def _add_body(self, count: int) -> None:
        self._received += count
        if self._received > self._limit:
            status, headers, _ = cast(Tuple[int, _Headers, bool], self.head)
            raise _too_large(status, headers, self._limit, self._url)

    def _closed(self) -> Optional[HTTPResponse]:
        """The server closed the connection: the end of a close-delimited body, or a broken exchange."""
        state = self._state
        if state == _CLOSE_BODY:
            self._state = _DONE
            return self._response()
        if not self._started:
            raise self._broken("no answer: the server closed the connection", "RemoteDisconnected")
        where = "the header section" if state == _HEAD else "the body"
        raise self._broken("the server closed the connection in the middle of %s" % where, "IncompleteRead")

    def _response(self) -> HTTPResponse:
        status, headers, keep_alive = cast(Tuple[int, _Headers, bool], self.head)
        self.reusable = keep_alive and not self._buffer
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        return HTTPResponse(status, headers, body)

    def _broken(self, what: str, kind: str = "malformed answer") -> APIConnectionError:
        return APIConnectionError("cannot complete the exchange with %s: %s: %s" % (self._where, kind, what))


# ---------------------------------------------------------------------------------------------------------
# The pool rules: written once; stale connections, proxies, routes, when to resend, what a fork leaves
# ---------------------------------------------------------------------------------------------------------


_SEND_WHOLE_BYTES = 256 * 1024  # KeepAliveTransport sends a request up to this size at once, a larger one in parts


# State belongs to the process that made it. A pool or a thread pool made before os.fork() compares this
# count, which the child's at-fork hook advances, with the one it was made under, and starts afresh in the
# child: it never uses the parent's sockets, threads or counters, and leaves the parent's alone.
_forks = 0


def _count_fork() -> None:
    global _forks
    _forks += 1


if hasattr(os, "register_at_fork"):  # every POSIX system; there is no fork elsewhere
    os.register_at_fork(after_in_child=_count_fork)


def _has_input(sock: socket.socket) -> bool:
    """Tell whether *sock* has something to read right now (bytes, or the peer's close)."""
    # Imported here: only a reused kept-alive connection needs it, and from Python 3.14 on urllib.request
    # no longer loads it, so a top-level import would add 40 us to every start-up (measured on 3.14.10).
    import select

    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


class _Proxy(NamedTuple):
    """A proxy from the environment: where it listens, and the Proxy-Authorization its URL's credentials make."""

    host: str
    port: int
    authorization: Optional[str]

    @classmethod
    def parse(cls, scheme: str, url: str) -> _Proxy:
        """The proxy for *scheme* given as *url* (``http://user:password@host:port``, or ``host:port``).
        Its text is never shown: it may carry credentials."""
        parts = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        host: Optional[str] = parts.hostname
        try:
            port = parts.port or 80
        except ValueError:
            host, port = None, 0
        if parts.scheme != "http" or not host:
            raise APIConnectionError(
                "the %s proxy from the environment (%s_PROXY) is not an http://host:port URL"
                % (scheme, scheme.upper()),
                "PROXY_ERROR",
                request_sent=False,
            )
        authorization = None
        if parts.username is not None:
            pair = "%s:%s" % (urllib.parse.unquote(parts.username), urllib.parse.unquote(parts.password or ""))
            authorization = "Basic " + base64.b64encode(pair.encode("utf-8")).decode("ascii")
        return cls(host, port, authorization)


class _Route:
    """Where a URL's requests go: the pool key, what to connect to (the origin, or a proxy that opens a
    tunnel to it), and what the request line carries."""

    __slots__ = ("connect", "host", "host_header", "key", "port", "proxy", "target", "tls", "where")

    def __init__(self, url: str, proxies: Mapping[str, str]) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host = parts.hostname or ""
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.host_header = parts.netloc
        self.target = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        if not self.target.isprintable() or " " in self.target or " " in self.host_header:
            raise ValueError("HTTPRequest.url must be a URL without spaces or control characters")
        self.where = "%s:%d" % (self.host, self.port)
        self.proxy: Optional[_Proxy] = None
        self.connect = b""  # the CONNECT request that opens the tunnel, when proxied
        if (
            parts.scheme in proxies
            and not _is_loopback(self.host)
            and not urllib.request.proxy_bypass_environment(self.host, proxies)  # type: ignore[attr-defined]
        ):
            proxy = self.proxy = _Proxy.parse(parts.scheme, proxies[parts.scheme])
            authority = "[%s]:%d" % (self.host, self.port) if ":" in self.host else self.where
            credentials = "" if proxy.authorization is None else "Proxy-Authorization: %s\r\n" % proxy.authorization
            self.connect = ("CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (authority, authority, credentials)).encode()
        self.key = (parts.scheme, self.host, self.port, self.proxy)

    def tunnel_exchange(self) -> _HTTP11Exchange:
        proxy = cast(_Proxy, self.proxy)
        return _HTTP11Exchange("", "the proxy %s:%d" % (proxy.host, proxy.port), _MAX_HEAD_BYTES, tunnel=True)

    def check_tunnel(self, answer: HTTPResponse, exchange: _HTTP11Exchange) -> None:
        """Raise APIConnectionError (code PROXY_ERROR, nothing sent) unless the proxy opened the tunnel."""
        proxy = cast(_Proxy, self.proxy)
        if not 200 <= answer.status < 300 or not exchange.reusable:
            why = (
                "%d %s" % (answer.status, _reason(answer.status)) if answer.status >= 300 else "bytes after its answer"
            )
            raise APIConnectionError(
                "the proxy %s:%d did not open a tunnel to %s: %s" % (proxy.host, proxy.port, self.where, why),
                "PROXY_ERROR",
                request_sent=False,
            )


def _send_again(failure: BaseException) -> bool:
    """The one rule for sending a request again on a fresh connection: only when sending it on a reused
    idle connection failed before the deadline (the server had closed it, so it cannot have received the
    request whole). Once a request was written, any failure goes to the client's retry policy."""
    return isinstance(failure, OSError) and not isinstance(failure, socket.timeout)


class _Pool:
    """What both pooled transports share: routes (direct or through a proxy's tunnel), idle connections
    per route (newest reused first, each checked before reuse, those idle past *idle_timeout* closed as
    the pool is next used), close(), and a fresh start after a fork.

    A pooled connection is any object with ``stale()``, ``close()`` and ``orphan()`` (in a fork's child:
    let go of the parent's connection without touching what the parent shares with the child, such as an
    event loop's epoll set). ``close()`` closes the idle connections and makes the ones in use close when
    their call ends; the pool stays usable.
    """

    def __init__(
        self,
        ssl_context: Optional[ssl.SSLContext],
        max_response_bytes: int,
        max_idle_per_origin: Optional[int],
        idle_timeout: float,
    ) -> None:
        self.max_response_bytes = max_response_bytes
        self.max_idle_per_origin = max_idle_per_origin
        self.idle_timeout = idle_timeout
        self._tls = _TLSContext(ssl_context)
        self._proxies = urllib.request.getproxies()
        self._routes: Dict[str, _Route] = {}
        self._orphans: List[Any] = []  # in a fork's child, the parent's connections, kept from the collector
        self._start()

    def _start(self) -> None:
        self._lock = _thread.allocate_lock()
        self._idle: Dict[Tuple[Any, ...], Deque[Tuple[Any, float]]] = {}
        self._epoch = 0  # advanced by close(): a connection checked out before it is not pooled again
        self._forks = _forks

    def _forked(self) -> None:
        """In a fork's child, start afresh: the parent's connections and lock (which a thread of the
        parent may have held at the fork) are not ours."""
        if self._forks != _forks:
            idle = self._idle
            self._start()
            for connections in idle.values():
                for connection, _ in connections:
                    connection.orphan()
                    self._orphans.append(connection)

    def _route(self, url: str) -> _Route:
        self._forked()
        route = self._routes.get(url)
        if route is None:
            route = _Route(url, self._proxies)
            if len(self._routes) < 64:  # a client has a URL or two: remember them, skip the parsing
                self._routes[url] = route
        return route

    def _checkout(self, key: Tuple[Any, ...]) -> Tuple[Any, int]:
        """The newest live idle connection to *key* (or None) and the epoch it was taken in; on the way,
        the connections idle past idle_timeout are closed."""
        while True:
            now = time.monotonic()
            expired: List[Any] = []
            with self._lock:
                connections = self._idle.get(key)
                while connections and now - connections[0][1] >= self.idle_timeout:
                    expired.append(connections.popleft()[0])
                connection = connections.pop()[0] if connections else None
                epoch = self._epoch
            for old in expired:
                old.close()
            if connection is None or not connection.stale():
                return connection, epoch
            connection.close()

    def _checkin(self, key: Tuple[Any, ...], connection: Any, epoch: int) -> None:
        with self._lock:
            connections = self._idle.get(key)
            if connections is None:
                connections = self._idle[key] = collections.deque()
            cap = self.max_idle_per_origin
            if epoch == self._epoch and (cap is None or len(connections) < cap):
                connections.append((connection, time.monotonic()))
                return
        connection.close()

    def close(self) -> None:
        """Close every idle connection; connections in use close when their call ends. The pool stays usable."""
        self._forked()
        with self._lock:
            idle, self._idle = self._idle, {}
            self._epoch += 1
        for connections in idle.values():
            for connection, _ in connections:
                connection.close()

    def __repr__(self) -> str:
        with self._lock:
            idle = sum(len(connections) for connections in self._idle.values())
        return "%s(idle_connections=%d, max_idle_per_origin=%r)" % (type(self).__name__, idle, self.max_idle_per_origin)


# ---------------------------------------------------------------------------------------------------------
# KeepAliveTransport: blocking sockets
# ---------------------------------------------------------------------------------------------------------


class _Connection:
    """A kept-alive blocking connection: a TCP socket, or a TLS one over it."""

    __slots__ = ("sock",)

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def stale(self) -> bool:
        """Closed by the server, or holding bytes nobody asked for (TLS buffers included): unusable."""
        sock = self.sock
        return (isinstance(sock, ssl.SSLSocket) and sock.pending() > 0) or _has_input(sock)

    def send(
        self, data: bytes, deadline: Optional[float], exchange: Optional[_HTTP11Exchange] = None
    ) -> Optional[HTTPResponse]:
        """Send *data* within the deadline. A request larger than _SEND_WHOLE_BYTES is sent in parts,
        listening between them: an answer that comes before it is all sent (a 413, a 401, while the server
        reads no more) is read into *exchange* and returned, and the rest is not sent."""
        sock = self.sock
        sock.settimeout(_time_left(deadline, time.monotonic()))
        if exchange is None or len(data) <= _SEND_WHOLE_BYTES:
            sock.sendall(data)  # the timeout bounds the whole send
            return None
        import select  # see _has_input

        poller = select.poll() if hasattr(select, "poll") else None
        if poller is not None:
            poller.register(sock, select.POLLIN | select.POLLOUT)
        rest = memoryview(data)
        while rest:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise socket.timeout("timed out")
            left = _time_left(deadline, now)
            if poller is not None:
                events = dict(poller.poll(None if left is None else left * 1000.0)).get(sock.fileno(), 0)
                readable, writable = events & ~select.POLLOUT, events & select.POLLOUT
            else:
                ready = select.select([sock], [sock], [], left)
                readable, writable = bool(ready[0]), bool(ready[1])
            sock.settimeout(_time_left(deadline, time.monotonic()))
            if readable:
                response = exchange.receive(sock.recv(_READ_CHUNK_BYTES))
                if response is not None:
                    return response
            elif writable:
                rest = rest[sock.send(rest[:16384]) :]  # one TLS record at most: a write that never waits long
        return None

    def receive(self, exchange: _HTTP11Exchange, deadline: Optional[float]) -> HTTPResponse:
        sock = self.sock
        while True:
            sock.settimeout(_time_left(deadline, time.monotonic()))
            response = exchange.receive(sock.recv(_READ_CHUNK_BYTES))
            if response is not None:
                return response

    def close(self) -> None:
        self.sock.close()

    orphan = close  # a blocking socket shares nothing with the parent but the connection, which stays open there


class KeepAliveTransport(_Pool):
    """A transport that keeps connections open between calls: blocking sockets, standard library only.

    Use it as ``ClientOptions(transport=KeepAliveTransport())`` where many sessions are created from
    one process: a warm call then skips the TCP and TLS handshakes. It speaks HTTP/1.1 itself (interim
    1xx answers skipped, strict framing). Idle connections are pooled per origin (at most
    *max_idle_per_origin*; each closed once idle *idle_timeout* seconds, below common server keep-alive
    limits, when the pool is next used) and checked before reuse. The request's timeout is one deadline
    for connecting, the proxy's tunnel, the TLS handshake, sending and the whole answer. A request is
    sent again on a fresh connection only when sending it on a reused one failed, so the server cannot
    have received it whole; once a request was written, any failure goes to the client's retry policy.
    A request that goes through a proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``, read when the
    transport is built; loopback hosts never) travels in a CONNECT tunnel the transport opens itself,
    with the proxy URL's credentials as ``Proxy-Authorization``, pooled per proxy and origin like any
    other connection. It is thread-safe, a context manager, and starts afresh in a fork's child;
    ``close()`` closes the idle connections (those in use close when their call ends) and leaves it
    usable. It honours *ssl_context* and *max_response_bytes* like UrllibTransport.
    """

    def __init__(
        self,
        ssl_context: Optional[ssl.SSLContext] = None,
        max_response_bytes: int = _DEFAULT_MAX_RESPONSE_BYTES,
        *,
        max_idle_per_origin: Optional[int] = 10,
        idle_timeout: float = 4.0,
    ) -> None:
        super().__init__(ssl_context, max_response_bytes, max_idle_per_origin, idle_timeout)

    def __enter__(self) -> KeepAliveTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __call__(self, request: HTTPRequest) -> HTTPResponse:
        route = self._route(request.url)
        deadline = _deadline(request.timeout, time.monotonic())
        exchange = _HTTP11Exchange(request.url, route.where, self.max_response_bytes)
        data = _request_bytes(request, route.host_header, route.target)
        connection: Optional[_Connection]
        connection, epoch = self._checkout(route.key)
        written = False
        early: Optional[HTTPResponse] = None  # an answer that came before the request was all sent
        try:
            if connection is not None:
                try:
                    early = connection.send(data, deadline, exchange)
                    written = True
                except OSError as exc:
                    connection.close()
                    connection = None
                    if not _send_again(exc):
                        raise
            if connection is None:
                connection = self._connect(route, deadline)
                early = connection.send(data, deadline, exchange)
                written = True
            response = early or connection.receive(exchange, deadline)
        except BaseException as exc:
            if connection is not None:
                connection.close()
            if isinstance(exc, _EXCHANGE_FAILURES):
                raise _connection_error(exc, request.url, request.timeout, sent=written) from exc
            raise
        if exchange.reusable and early is None:
            self._checkin(route.key, connection, epoch)
        else:
            connection.close()
        return response

    def _connect(self, route: _Route, deadline: Optional[float]) -> _Connection:
        proxy = route.proxy
        sock = (
            _open_socket(proxy.host, proxy.port, deadline) if proxy else _open_socket(route.host, route.port, deadline)
        )
        try:
            if proxy is not None:
                tunnel = _Connection(sock)
                tunnel.send(route.connect, deadline)
                exchange = route.tunnel_exchange()
                route.check_tunnel(tunnel.receive(exchange, deadline), exchange)
            if route.tls:
                sock.settimeout(_time_left(deadline, time.monotonic()))  # bounds the whole handshake
                sock = self._tls.get().wrap_socket(sock, server_hostname=route.host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)


# =========================================================================================================
# 3. asyncio: AsyncKeepAliveTransport, AsyncBotSessionClient and acreate_bot_session
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# AsyncKeepAliveTransport: the asyncio transport, on every event loop
# ---------------------------------------------------------------------------------------------------------


def _tls_read(tls: ssl.SSLObject, incoming: ssl.MemoryBIO) -> Tuple[List[bytes], bool, Optional[ssl.SSLError]]:
    """The plain bytes *tls* can give from what *incoming* holds, whether the stream ended (the server's
    close_notify, or the end of what arrived), and the TLS error that ended reading, if one did."""
    chunks: List[bytes] = []
    while True:
        try:
            chunk = tls.read(_READ_CHUNK_BYTES)
        except ssl.SSLWantReadError:
            return chunks, incoming.eof, None
        except ssl.SSLZeroReturnError:  # the server's close_notify
            return chunks, True, None
        except ssl.SSLError as exc:
            return chunks, True, exc
        if not chunk:
            return chunks, True, None
        chunks.append(chunk)


class _LoopSocket:
    """A socket of one event loop, carrying bytes both ways (TLS, when used, through an ``ssl.SSLObject``
    over memory buffers); ``_AsyncConnection`` below reads HTTP exchanges over it.

    On a loop that watches file descriptors (the selector loops, uvloop) the loop watches the socket for
    the whole life of the connection (``add_reader``, as asyncio's own transports do) and this object
    writes to it; on a loop that cannot (the proactor, Windows' default) it is the protocol of the loop's
    own transport over the socket (``create_connection(sock=...)``). Either way every byte arrives in
    ``data_received`` and is handed, decrypted, to ``_feed``; every byte leaves through ``_write``
    without waiting.
    """

    __slots__ = (
        "alarm",
        "dead",
        "exchange",
        "handshaking",
        "incoming",
        "loop",
        "outgoing",
        "sock",
        "tls",
        "transport",
        "unsent",
        "waiter",
    )

    def __init__(self, sock: socket.socket, loop: Any) -> None:
        self.sock, self.loop = sock, loop
        self.transport: Any = None  # the loop's transport, on a loop without add_reader
        self.tls: Optional[ssl.SSLObject] = None
        self.incoming = self.outgoing = cast(ssl.MemoryBIO, None)
        self.handshaking = False
        self.exchange: Optional[_HTTP11Exchange] = None
        self.waiter: Any = None  # the future of the step being awaited: the handshake, or an answer
        self.alarm: Any = None  # the deadline of the answer being awaited
        self.unsent = bytearray()  # what the socket has not taken yet (add_reader loops)
        self.dead = False

    # -- writing ----------------------------------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self.tls is not None:
            self.tls.write(data)
            data = self.outgoing.read()
        self._send(data)

    def _send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)
            return
        if self.unsent:
            self.unsent += data
            return
        try:
            sent = self.sock.send(data)  # a request nearly always fits whole
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            self._end(exc)
            return
        if sent < len(data):
            self.unsent += data[sent:]
            self.loop.add_writer(self.sock.fileno(), self._writable)

    def _writable(self) -> None:
        """The loop's callback: the socket has room for what it did not take."""
        try:
            sent = self.sock.send(self.unsent)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._end(exc)
            return
        del self.unsent[:sent]
        if not self.unsent:
            self.loop.remove_writer(self.sock.fileno())

    # -- reading: the loop's callbacks ------------------------------------------------------------------------

    def _read_ready(self) -> None:
        """The add_reader callback: the socket has bytes, or the server closed it."""
        try:
            data = self.sock.recv(_READ_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._end(exc)
            return
        if data:
            self.data_received(data)
        else:
            self.eof_received()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self.tls is None:
            self._feed(data)
            return
        self.incoming.write(data)
        if self.handshaking:
            self._handshake_step()
        else:
            self._decrypt()

    def eof_received(self) -> bool:
        if self.tls is None:
            self._feed(b"")
        else:
            self.incoming.write_eof()
            self._handshake_step() if self.handshaking else self._decrypt()
        return False

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        self._end(exc)

    def pause_writing(self) -> None:
        """Requests are small and bounded by the deadline: the transport buffers them."""

    resume_writing = pause_writing

    def _handshake_step(self) -> None:
        tls = cast(ssl.SSLObject, self.tls)
        try:
            tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush_tls()
            if self.incoming.eof:
                self._end(ConnectionResetError("the server closed the connection during the TLS handshake"))
            return
        except BaseException as exc:  # a certificate refused, a protocol error: the caller hears it
            self._end(exc)
            return
        self._flush_tls()
        self.handshaking = False
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _flush_tls(self) -> None:
        if self.outgoing.pending:  # what TLS itself sends (the handshake, a key update)
            self._send(self.outgoing.read())

    def _decrypt(self) -> None:
        """Feed the plain bytes in what arrived, then the end of the stream if the server closed it (its
        close_notify, or the connection's end), even when both came in one read."""
        chunks, ended, error = _tls_read(cast(ssl.SSLObject, self.tls), self.incoming)
        if error is not None:
            self._end(error)
            return
        self._flush_tls()
        if chunks:
            self._feed(b"".join(chunks))
        if ended:
            self._feed(b"")

    def _feed(self, data: bytes) -> None:
        """Plain bytes that arrived (b"": the end of the stream): what reads them overrides this."""
        raise NotImplementedError

    def _end(self, error: Optional[BaseException]) -> None:
        """No more reading: hand *error* (or the close) to a waiting caller, and close the connection."""
        waiter = self.waiter
        self.close()
        if waiter is not None and not waiter.done():
            waiter.set_exception(error or ConnectionResetError("the server closed the connection"))

    def close(self) -> None:
        if self.dead:
            return
        self.dead = True
        transport = self.transport
        if transport is not None:
            try:
                transport.abort()
            except RuntimeError:  # its loop is closed
                self.sock.close()
            return
        if not self.loop.is_closed() and self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            if self.unsent:
                self.loop.remove_writer(self.sock.fileno())
        self.sock.close()

    def orphan(self) -> None:
        """In a fork's child: close this process's copy of the socket and nothing else. The parent's loop
        and its epoll set are shared with the child; removing the socket from them here would leave the
        parent deaf to it."""
        self.dead = True
        self.sock.close()


class _AsyncConnection(_LoopSocket):
    """A kept-alive connection of one event loop, as the pool uses it: ``watch``, ``handshake``, then
    ``begin`` a request whose answer is read into ``waiter``, and ``end_exchange``.

    An answer that comes while the request is still being written (a 413, a 401) is read at once; bytes
    that arrive while the connection is idle, or its close, close it at once.
    """

    __slots__ = ()

    async def watch(self) -> None:
        """Start reading: the loop watches the socket, or (on a loop that cannot) its transport reads it."""
        try:
            self.loop.add_reader(self.sock.fileno(), self._read_ready)
        except NotImplementedError:  # the proactor: the loop's own transport, with self as its protocol
            await self.loop.create_connection(lambda: self, sock=self.sock)

    async def handshake(self, context: ssl.SSLContext, host: str) -> None:
        """The TLS handshake, over whatever was opened (the origin, or a proxy's tunnel to it)."""
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_hostname=host)
        self.handshaking = True
        waiter = self.waiter = self.loop.create_future()
        try:
            self._handshake_step()
            await waiter
        finally:
            self.waiter = None

    def begin(self, exchange: _HTTP11Exchange, data: bytes, deadline: Optional[float]) -> Optional[BaseException]:
        """Send *data*, whose answer *exchange* reads into ``waiter``, with socket.timeout at *deadline*
        (the loop's clock). A send that fails at once (the server had closed the connection) closes it and
        returns the failure: the request did not go."""
        waiter = self.waiter = self.loop.create_future()
        self.exchange = exchange  # before writing: an answer that comes early finds its reader
        self._write(data)
        if self.dead or (self.transport is not None and self.transport.is_closing()):
            self.close()
            self.exchange = self.waiter = None
            return waiter.exception() if waiter.done() else ConnectionResetError("the server closed the connection")
        if deadline is not None:
            self.alarm = self.loop.call_at(deadline, _expire, waiter)
        return None  # the answer (or the failure) comes in self.waiter; then end_exchange()

    def end_exchange(self) -> None:
        """After the answer (or the failure) of what ``begin`` sent: the deadline disarmed."""
        self.exchange = self.waiter = None
        alarm = self.alarm
        if alarm is not None:
            alarm.cancel()
            self.alarm = None

    def stale(self) -> bool:
        """Dead, or holding bytes nobody asked for (TLS buffers included): unusable."""
        tls = self.tls
        if self.dead or (tls is not None and (tls.pending() > 0 or self.incoming.pending > 0)):
            return True
        transport = self.transport
        if transport is not None:
            return bool(transport.is_closing())
        try:
            self.sock.recv(1, socket.MSG_PEEK)  # what arrived since the loop last looked: anything is stale
        except BlockingIOError:
            return False
        except OSError:
            pass
        return True

    def unsent_bytes(self) -> int:
        transport = self.transport
        return len(self.unsent) if transport is None else int(transport.get_write_buffer_size())

    def _feed(self, data: bytes) -> None:
        """Plain bytes for the exchange being read (b"": the end of the stream); idle, they end the connection."""
        waiter, exchange = self.waiter, self.exchange
        if waiter is None or exchange is None or waiter.done():
            self._end(None)  # bytes nobody asked for, or the server's close: closed at once
            return
        try:
            response = exchange.receive(data)
        except BaseException as exc:  # a broken answer, or too large: the caller hears it
            self._end(exc)
            return
        if response is not None:
            waiter.set_result(response)


def _expire(waiter: Any) -> None:
    if not waiter.done():
        waiter.set_exception(socket.timeout("timed out"))


def _wake(waiter: Any, *_: Any) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _timed_out() -> BaseException:
    return socket.timeout("timed out")


def _retrieved(task: Any) -> None:
    """A task whose caller is gone: its exception retrieved, so that asyncio does not log it as lost."""
    if not task.cancelled():
        task.exception()


async def _task_result(
    loop: Any,
    task: Any,
    deadline: Optional[float],
    timed_out: Callable[[], BaseException],
    abandon: Callable[[Any], None] = _retrieved,
) -> Any:
    """*task*'s result, awaited through a future of ours, or ``timed_out()`` raised at *deadline* (the
    loop's clock). Not the task itself, nor ``wait_for``, which before 3.11 returns a result that came as
    its caller was cancelled, swallowing the cancellation: a cancellation always reaches the caller. A task
    the caller gave up on is cancelled, and *abandon* is called with it once it ends."""
    waiter = loop.create_future()
    task.add_done_callback(functools.partial(_wake, waiter))
    alarm = None if deadline is None else loop.call_at(deadline, _wake, waiter)
    try:
        await waiter
    except BaseException:
        task.cancel()
        task.add_done_callback(abandon)
        raise
    finally:
        if alarm is not None:
            alarm.cancel()
    if not task.done():
        task.cancel()
        task.add_done_callback(abandon)
        raise timed_out()
    return task.result()


def _close_opened(task: Any) -> None:
    """A connection opened for a caller that is gone (cancelled, or past its deadline): closed."""
    if not task.cancelled() and task.exception() is None:
        task.result().close()


class AsyncKeepAliveTransport(_Pool):
    """The asyncio transport, and the default of ``AsyncBotSessionClient``: native asyncio, no threads.

    It speaks HTTP/1.1 itself over non-blocking sockets read on the event loop, pooled per origin (or
    proxy and origin) and per loop by KeepAliveTransport's rules (a check before reuse, a request resent
    on a fresh connection only when it was not written, idle connections closed after *idle_timeout*,
    and at once when the server closes them). It runs on every asyncio loop: the selector loops and
    uvloop, where the loop watches the sockets, and the proactor (Windows' default), where the loop's
    own transports carry the bytes. One transport serves successive loops (``asyncio.run()`` called
    again and again) and threads each running a loop: each loop gets its own connections, and those of a
    loop that has closed are closed when the transport next connects. The request's timeout is one
    deadline for resolving, connecting, the proxy's tunnel, the TLS handshake, sending and the whole
    answer; cancelling the awaiting task closes the connection in flight, and a request not yet written
    is never sent. Host names are resolved with the loop's ``getaddrinfo``. A request that goes through
    a proxy (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) travels in a CONNECT tunnel the transport
    opens itself, as KeepAliveTransport does, on the loop, with the same deadline and cancellation. By
    default every idle connection is kept (a burst leaves as many as it had in flight, until
    *idle_timeout*); *max_idle_per_origin* caps them. ``close()`` (or ``await aclose()``) closes the idle
    connections and leaves it usable; it starts afresh in a fork's child without touching the parent's
    loop.
    """

    _honours_timeout = True  # the clients await it as it is: it keeps to request.timeout itself

    def __init__(
        self,
        ssl_context: Optional[ssl.SSLContext] = None,
        max_response_bytes: int = _DEFAULT_MAX_RESPONSE_BYTES,
        *,
        max_idle_per_origin: Optional[int] = None,
        idle_timeout: float = 4.0,
    ) -> None:
        super().__init__(ssl_context, max_response_bytes, max_idle_per_origin, idle_timeout)

    async def __aenter__(self) -> AsyncKeepAliveTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def aclose(self) -> None:
        """``close()``, for ``async with`` and code that awaits its closers."""
        self.close()

    async def __call__(self, request: HTTPRequest) -> HTTPResponse:
        import asyncio  # loaded by whoever awaits this

        loop = asyncio.get_running_loop()
        route = self._route(request.url)
        exchange = _HTTP11Exchange(request.url, route.where, self.max_response_bytes)
        data = _request_bytes(request, route.host_header, route.target)
        deadline = _deadline(request.timeout, loop.time())
        key = (*route.key, loop)
        connection: Optional[_AsyncConnection]
        connection, epoch = self._checkout(key)
        written = False
        try:
            if connection is not None:
                failure = connection.begin(exchange, data, deadline)
                if failure is not None:
                    connection = None
                    if not _send_again(failure):
                        raise failure
            if connection is None:
                connection = await self._opened(loop, route, deadline)
                failure = connection.begin(exchange, data, deadline)
                if failure is not None:
                    raise failure
            written = True
            try:
                response: HTTPResponse = await connection.waiter
            finally:
                connection.end_exchange()
        except BaseException as exc:  # cancellation included: the connection in flight is closed
            if connection is not None:
                connection.close()
            if isinstance(exc, _EXCHANGE_FAILURES):
                raise _connection_error(exc, request.url, request.timeout, sent=written) from None
            raise
        if exchange.reusable and not connection.unsent_bytes() and not connection.dead:
            self._checkin(key, connection, epoch)
        else:
            connection.close()
        return response

    async def _opened(self, loop: Any, route: _Route, deadline: Optional[float]) -> _AsyncConnection:
        """A new connection, opened within the deadline. It opens in a task of its own, awaited through a
        future of ours: a cancellation always reaches the caller (before 3.11 ``wait_for`` could swallow one
        that came as the connection opened, and the request went out anyway), and a connection that opens
        for a caller who is gone is closed."""
        import asyncio  # loaded by whoever awaits this

        opening = asyncio.ensure_future(self._open(loop, route, deadline))
        connection: _AsyncConnection = await _task_result(loop, opening, deadline, _timed_out, _close_opened)
        return connection

    async def _open(self, loop: Any, route: _Route, deadline: Optional[float]) -> _AsyncConnection:
        self._close_idle_of_closed_loops()
        proxy = route.proxy
        host, port = (proxy.host, proxy.port) if proxy else (route.host, route.port)
        if _is_localhost_name(host) or _ip_family(host) is not None:
            addresses = _addresses(host, port)
        else:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = [(info[0], info[4]) for info in infos]
        failure: Optional[BaseException] = None
        for family, address in addresses:
            sock = socket.socket(family, socket.SOCK_STREAM)
            connection = _AsyncConnection(sock, loop)
            try:
                sock.setblocking(False)
                await loop.sock_connect(sock, address)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                await connection.watch()
                if proxy is not None:
                    exchange = route.tunnel_exchange()
                    failure = connection.begin(exchange, route.connect, deadline)
                    if failure is not None:
                        raise failure
                    try:
                        answer: HTTPResponse = await connection.waiter
                    finally:
                        connection.end_exchange()
                    route.check_tunnel(answer, exchange)
                if route.tls:
                    await connection.handshake(self._tls.get(), route.host)
                return connection
            except OSError as exc:
                connection.close()
                failure = exc
            except BaseException:
                connection.close()
                raise
        raise failure or OSError("%s has no address" % host)

    def _close_idle_of_closed_loops(self) -> None:
        with self._lock:
            closed = [key for key in self._idle if key[-1].is_closed()]
            connections = [connection for key in closed for connection, _ in self._idle.pop(key)]
        for connection in connections:
            connection.close()


# ---------------------------------------------------------------------------------------------------------
# The asyncio client and acreate_bot_session
# ---------------------------------------------------------------------------------------------------------


_T = TypeVar("_T")


_ASYNC_WORKERS = 64  # threads an AsyncBotSessionClient may use at once for a synchronous transport


class _Job:
    """A synchronous transport's call that an asyncio client queued for a worker thread."""

    __slots__ = ("cancelled", "deadline", "future", "loop", "request", "transport")

    def __init__(self, loop: Any, future: Any, transport: Transport, request: HTTPRequest) -> None:
        self.loop, self.future, self.transport, self.request = loop, future, transport, request
        self.deadline = _deadline(request.timeout, time.monotonic())
        self.cancelled = False  # set by the awaiting side when it gives up: a job not started never starts

    def run(self) -> None:
        """In a worker thread: call the transport within the time left, and hand back whatever happened."""
        if self.cancelled:
            return  # the caller gave up while it waited for a thread: the request is never sent
        outcome: Any
        request = self.request
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                outcome = TimeoutError("no worker thread was free before the attempt's timeout")
                self._hand_back(outcome)
                return
            request = replace(request, timeout=left)
        try:
            outcome = self.transport(request)
        except BaseException as exc:  # whatever it raises reaches the caller, which never hangs
            outcome = exc
        self._hand_back(outcome)

    def _hand_back(self, outcome: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(_set_result_unless_done, self.future, outcome)
        except RuntimeError:  # the loop is closed: nobody waits for this outcome
            _discard(outcome)


def _set_result_unless_done(future: Any, outcome: Any) -> None:
    if future.done():  # cancelled, or past its deadline
        _discard(outcome)
    else:
        future.set_result(outcome)


def _discard(outcome: Any) -> None:
    """Drop an outcome nobody awaits; a coroutine a transport returned is closed, not left unawaited."""
    if isinstance(outcome, collections.abc.Coroutine):
        cast(Any, outcome).close()


class _Workers:
    """The threads in which an asyncio client runs a synchronous transport: sized for I/O, shared by extend().

    Up to _ASYNC_WORKERS threads, started on demand with _thread, which (unlike threading.Thread.start)
    does not wait for the new thread to run: fifty calls at once start fifty threads without stalling the
    event loop. A thread ends after a minute idle, so a discarded client leaves none behind. A thread that
    cannot start fails the call at once, and its request is never queued. In a fork's child the pool
    starts afresh: the parent's threads are not there.
    """

    __slots__ = ("_forks", "_idle", "_jobs", "_lock", "_threads", "_waiting")

    def __init__(self) -> None:
        self._start()

    def _start(self) -> None:
        # Imported here: queue loads threading, 0.8-2.3 ms at start-up (measured on 3.8 to 3.15), which
        # only an asyncio client running a synchronous transport needs.
        import queue

        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._lock = _thread.allocate_lock()
        self._threads = 0  # started and not ended
        self._idle = 0  # waiting for a job
        self._waiting = 0  # jobs not yet taken
        self._forks = _forks

    def submit(self, loop: Any, transport: Transport, request: HTTPRequest) -> _Job:
        """Queue ``transport(request)``; the job's future (of *loop*) gets the response or the exception."""
        if self._forks != _forks:
            self._start()
        job = _Job(loop, loop.create_future(), transport, request)
        with self._lock:
            start = self._waiting + 1 > self._idle and self._threads < _ASYNC_WORKERS
            self._waiting += 1
            self._threads += start
        if start:
            try:
                _thread.start_new_thread(self._work, ())
            except RuntimeError as exc:  # the system refused a thread: fail now, send nothing
                with self._lock:
                    self._waiting -= 1
                    self._threads -= 1
                raise APIConnectionError(
                    "cannot start a thread to run the transport in: %s" % exc, "NO_THREAD", request_sent=False
                ) from None
        self._jobs.put(job)
        return job

    def _work(self) -> None:
        import queue

        while True:
            with self._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=60.0)
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
            job.run()
            del job


_LOOP_DIGEST_BYTES = 64 * 1024  # larger answers are decoded and checked off the event loop: see _call


async def _within(awaitable: Awaitable[_T], seconds: Optional[float]) -> _T:
    """*awaitable*'s result, or asyncio.TimeoutError after *seconds*: ``asyncio.timeout`` where there is one
    (3.11 on); before, the awaitable runs as a task awaited by _task_result, not ``wait_for``."""
    import asyncio  # loaded by whoever awaits this

    if seconds is None:
        return await awaitable
    timeout = getattr(asyncio, "timeout", None)
    if timeout is not None:
        async with timeout(seconds):
            return await awaitable
    loop = asyncio.get_running_loop()
    result: _T = await _task_result(loop, asyncio.ensure_future(awaitable), loop.time() + seconds, asyncio.TimeoutError)
    return result


def _digest(plan: Generator[Any, Any, Any], outcome: Any, loop: Any, future: Any) -> None:
    """In a thread of its own: advance *plan* with a large answer, and hand the step back to *loop*."""
    try:
        result: Any = _advance(plan, outcome)
    except BaseException as exc:  # the call's error: raised where the caller awaits
        result = exc
    try:
        loop.call_soon_threadsafe(_set_result_unless_done, future, result)
    except RuntimeError:  # the loop is closed: nobody waits
        pass


class AsyncBotSessionClient(_BaseClient):
    """The asyncio client for bot sessions: ``await AsyncBotSessionClient(secret=...).create("bot-id")``.

    Same options, validation, wire format, retry policy, errors, secrecy and logging as
    ``BotSessionClient``; waits use ``asyncio.sleep``. Its default transport is an
    ``AsyncKeepAliveTransport``: native asyncio, pooled, no threads. An asynchronous transport (a
    coroutine function, or any callable returning an awaitable) is awaited, bounded by each attempt's
    timeout; a synchronous one (``UrllibTransport``, ``KeepAliveTransport``, any callable) runs in a
    worker thread of the client's own pool (up to 64 at once), the wait for a thread counted in the
    attempt's timeout. Cancelling the awaiting task returns at once: an exchange in flight is closed, and
    a request that has not started is never sent. Answers over 64 KiB are decoded and checked in a
    thread of their own, started at once, so the loop never stalls on them. ``async with`` the client, or ``await
    client.aclose()``, closes the transport it made (see ``BotSessionClient.close``).
    """

    __slots__ = ("_workers",)
    _accepts_async_transport = True
    _workers: Optional[_Workers]

    @staticmethod
    def _default_transport(options: ClientOptions) -> Union[Transport, AsyncTransport]:
        return AsyncKeepAliveTransport(options.ssl_context, options.max_response_bytes)

    def _setup(self, options: ClientOptions, parent: Optional[_BaseClient]) -> None:
        """The shared part, then worker threads for a synchronous transport (the default needs none),
        shared with *parent* when the transport is."""
        super()._setup(options, parent)
        if isinstance(parent, AsyncBotSessionClient) and parent._transport is self._transport:
            self._workers = parent._workers
        else:
            self._workers = None if self._is_async else _Workers()

    async def __aenter__(self: _C) -> _C:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def aclose(self) -> None:
        """Close the transport this client (or the client it was extended from) made; see ``close()``."""
        self.close()

    async def create(self, bot_id: str, request: BotSessionCreateRequest = _NO_REQUEST) -> BotSessionCreateResponse:
        """Create a session for bot *bot_id*; see ``create_bot_session`` for *request*, result and errors."""
        return await acreate_bot_session(self, bot_id, request)

    async def _call(
        self, url: str, body: bytes, problem: Callable[[Any], Optional[str]], limit: Optional[float] = None
    ) -> Any:
        """Drive the core's plan; the error the call ends with leaves with no context. A loop may resume
        this coroutine inside an except block of its own (PyPy's pure-Python Task does, with the
        transport's exception): the masked error would otherwise carry the unmasked one along."""
        try:
            return await self._drive(url, body, problem, limit)
        except ChatBotKitError as error:
            error.__context__ = None
            raise

    async def _drive(
        self, url: str, body: bytes, problem: Callable[[Any], Optional[str]], limit: Optional[float]
    ) -> Any:
        """Drive the core's plan with the transport (awaited, or in a worker thread) and asyncio.sleep."""
        import asyncio  # loaded by whoever awaits this (at the top it would cost every start-up 17-19 ms)

        plan = self._core.plan(url, body, problem, _SYSTEM_CLOCK, limit)
        step = next(plan)
        while True:
            outcome: _Outcome = None
            if isinstance(step, HTTPRequest):
                outcome = await self._attempt(step)
            else:
                await asyncio.sleep(step)
            if isinstance(outcome, HTTPResponse) and len(outcome.body) > _LOOP_DIGEST_BYTES:
                # Decoding and checking a large answer takes up to 0.3 s at 1 MiB (hostile JSON): not on
                # the loop, and not queued behind a busy default executor past the deadline, but in a
                # thread of its own, started at once. Up to 64 KiB it takes under 20 ms (measured on 3.8
                # and 3.13).
                loop = asyncio.get_running_loop()
                digested = loop.create_future()
                try:
                    _thread.start_new_thread(_digest, (plan, outcome, loop, digested))
                except RuntimeError:  # no thread to be had: on the loop, then
                    digested.set_result(_advance(plan, outcome))
                result = await digested
                if isinstance(result, BaseException):
                    raise result
                done, step = result
            else:
                done, step = _advance(plan, outcome)
            if done:
                return step

    async def _attempt(self, request: HTTPRequest) -> _Outcome:
        """One exchange: the response, or the exception the transport raised (for the core to map)."""
        import asyncio  # loaded by whoever awaits this

        try:
            if self._is_async:
                transport = cast(AsyncTransport, self._transport)
                if getattr(transport, "_honours_timeout", False):
                    return await transport(request)  # it keeps to request.timeout itself, more cheaply
                return await _within(transport(request), request.timeout)
            loop = asyncio.get_running_loop()
            job = cast(_Workers, self._workers).submit(loop, cast(Transport, self._transport), request)
            # The job's own future, with the attempt's deadline set on it: a cancellation always reaches
            # the caller (wait_for, before 3.11, could return an outcome that came as it was cancelled).
            alarm = None if request.timeout is None else loop.call_later(request.timeout, _expire, job.future)
            try:
                outcome: _Outcome = await job.future
            finally:
                job.cancelled = True  # not started by now: never
                if alarm is not None:
                    alarm.cancel()
            if isinstance(outcome, collections.abc.Awaitable):  # a callable that returned an awaitable
                left = _time_left(job.deadline, time.monotonic())
                return await _within(cast(Awaitable[HTTPResponse], outcome), left)
            return outcome
        except asyncio.TimeoutError:  # _within's (a distinct class before 3.11): the attempt's timeout
            return TimeoutError("timed out")
        except Exception as exc:
            return exc


async def acreate_bot_session(
    client: AsyncBotSessionClient,
    bot_id: str,
    request: BotSessionCreateRequest = _NO_REQUEST,
) -> BotSessionCreateResponse:
    """The asyncio form of ``create_bot_session``, for an ``AsyncBotSessionClient``."""
    if not isinstance(client, AsyncBotSessionClient):
        raise TypeError("client must be an AsyncBotSessionClient, not %s" % type(client).__name__)
    url, body = _session_call(client, bot_id, request)
    return await client._call(url, body, _session_problem)  # type: ignore[no-any-return]


# =========================================================================================================
# 4. The web endpoint: SessionEndpoint and lambda_handler
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# The endpoint's decisions: what each request is answered, with no I/O (as _Core's plan has none)
# ---------------------------------------------------------------------------------------------------------


# Every answer of the endpoint is JSON that no cache may keep: a token is a credential.
_ENDPOINT_HEADERS = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))


_ENDPOINT_METHODS = "OPTIONS, POST"


# What a preflight may ask for: the JSON body's type, and a credential of the page's own for authorize=.
_ENDPOINT_REQUEST_HEADERS = "authorization, content-type"


_UPSTREAM_CODE = r"[A-Z][A-Z0-9_]{0,63}"  # an upstream code the browser may see; else UPSTREAM_ERROR


# An origin as a browser sends it (RFC 6454): a lower-case scheme, an ASCII host (names, IPv4, [IPv6]) and
# a port only where it is not the scheme's default. Compiled (and cached by re) on first use.
_ORIGIN = r"([a-z][a-z0-9+.-]*)://((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?|\[[0-9a-f:.]+\])(?::([0-9]{1,5}))?"


_DEFAULT_PORTS: Mapping[str, str] = MappingProxyType({"http": "80", "https": "443", "ws": "80", "wss": "443"})


class _Misconfigured(Exception):
    """A front door cannot serve this endpoint as configured (an asyncio client or an async authorize in a
    synchronous door): the plan answers 500 NOT_CONFIGURED and logs why."""


class _Disconnected(Exception):
    """The ASGI client disconnected while its request body was being read."""


class _BodyFile(Protocol):
    """A request body as a file object (``wsgi.input``), read a bounded number of bytes at a time."""

    def read(self, size: int, /) -> bytes: ...


class EndpointRequest(NamedTuple):
    """A POST that passed every check, as ``SessionEndpoint(authorize=...)`` is given it, before anything is
    sent to ChatBotKit: ``method``; ``headers``, a read-only case-insensitive mapping; ``remote_addr``, the
    client's address as the server or the Lambda event gives it (or None); and ``event``, the Lambda event,
    or what a view passed as ``handle(..., event=...)`` (its framework's request object), or None."""

    method: str
    headers: Mapping[str, str]
    remote_addr: Optional[str]
    event: Any


class EndpointResponse(NamedTuple):
    """What a ``SessionEndpoint`` answers: an HTTP status, its headers and a JSON body (empty for 204 and HEAD)."""

    status: int
    headers: Tuple[Tuple[str, str], ...]
    body: bytes


# What authorize= returns (or, as a coroutine function, returns when awaited): True to mint, False to refuse
# with 403, or a mapping of strings to strings sent as the session's meta.
_Verdict = Union[bool, Mapping[str, str]]


_Authorize = Callable[[EndpointRequest], Union[_Verdict, Awaitable[_Verdict]]]


class _ReadBody(NamedTuple):
    """A step of the endpoint's plan: read at most *limit* bytes of the request body and send them back
    (or a ValueError saying why the body cannot be read, which is answered 400)."""

    limit: int


class _Mint(NamedTuple):
    """A step of the endpoint's plan: create the session (the JSON *body* for the configured bot) within
    *seconds*, and send back the session or the exception the call ended with."""

    body: bytes
    seconds: float


_EndpointStep = Union[_ReadBody, EndpointRequest, _Mint]


_EndpointPlan = Generator[_EndpointStep, Any, EndpointResponse]


def _stderr_line(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _check_origin(origin: object, name: str) -> str:
    """One allowed origin as a browser sends it in ``Origin``, or ``*``; anything no browser sends raises,
    saying what to write instead (it would otherwise never match)."""
    if not isinstance(origin, str):
        raise TypeError("%s must hold strings, not %s" % (name, type(origin).__name__))
    text = origin.strip().rstrip("/").lower()
    if text == "*":
        return text
    shown = _escape_control(repr(origin[:80]))
    if "*" in text:
        raise ValueError(
            "%s: %s has a wildcard; list each origin, or allow every origin with '*' alone" % (name, shown)
        )
    if not text.isascii():
        raise ValueError("%s: %s: write its host as browsers send it, in ASCII (xn--...)" % (name, shown))
    match = re.fullmatch(_ORIGIN, text)
    if match is None:
        raise ValueError("%s: %s is not an origin (scheme://host[:port], no path) nor '*'" % (name, shown))
    scheme, host, port = match.groups()
    if port is not None and not 0 < int(port) < 65536:
        raise ValueError("%s: %s has a port out of range" % (name, shown))
    if port is not None and port.lstrip("0") == _DEFAULT_PORTS.get(scheme):
        raise ValueError(
            "%s: %s: browsers send it without the default port, as %r" % (name, shown, scheme + "://" + host)
        )
    return text


def _check_origins(origins: object, name: str) -> Tuple[str, ...]:
    """Origins as browsers send them (``scheme://host[:port]``, lower case, no path), or ``("*",)``."""
    if isinstance(origins, str) or not isinstance(origins, collections.abc.Iterable):
        raise TypeError(
            "%s must be a list of origins such as ['https://shop.example'], not %s" % (name, type(origins).__name__)
        )
    checked = tuple(dict.fromkeys(_check_origin(origin, name) for origin in cast(Iterable[object], origins)))
    if "*" in checked and len(checked) > 1:
        raise ValueError("%s: '*' allows every origin and cannot be listed with others" % name)
    return checked


def _check_hosts(hosts: object, name: str) -> Tuple[str, ...]:
    """Host names the endpoint answers to (``Host`` without its port), lower case."""
    if isinstance(hosts, str) or not isinstance(hosts, collections.abc.Iterable):
        raise TypeError(
            "%s must be a list of host names such as ['shop.example'], not %s" % (name, type(hosts).__name__)
        )
    checked: List[str] = []
    for host in cast(Iterable[object], hosts):
        text = _check_text(name, host, allow_empty=False).strip().lower().rstrip(".")
        if not re.fullmatch(_ORIGIN, "http://" + text) or ":" in text:
            raise ValueError(
                "%s: %s is not a host name (no scheme, no port)" % (name, _escape_control(repr(host)[:80]))
            )
        checked.append(text)
    return tuple(checked)


def _host_name(host: str) -> str:
    """The name part of a ``Host`` header value, lower case: without its port, IPv6 kept in brackets."""
    host = host.strip().lower()
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and (not name.startswith("[") or name.endswith("]")):
        host = name
    return host.rstrip(".")


def _check_meta(meta: Mapping[Any, Any]) -> Dict[str, str]:
    """What authorize= returned as the session's meta: strings to strings, or TypeError saying otherwise."""
    checked: Dict[str, str] = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise TypeError(
                "authorize returned a meta entry %s: %s; it must map strings to strings"
                % (type(key).__name__, type(value).__name__)
            )
        checked[key] = value
    return checked


def _first_message(body: bytes, max_body_bytes: int, max_message_chars: int) -> str:
    """The optional first message of a POST body to the endpoint; ValueError says what is wrong with the body."""
    if len(body) > max_body_bytes:
        raise ValueError("the body must be at most %d bytes" % max_body_bytes)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8") from None
    if not text.strip():
        return ""
    if _nests_too_deep(body):  # measured first: CPython 3.14 parses 30,000 levels without a RecursionError
        raise ValueError("the body nests too deeply")
    try:
        payload = _decode_json(text)  # the module's strict reading: no NaN, no number a float cannot hold
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise ValueError('the body must be a JSON object such as {"message": "Hello"}')
    payload = cast(Dict[str, Any], payload)
    unknown = sorted(set(payload) - {"message"}) if len(payload) > 1 or "message" not in payload else ()
    if unknown:
        raise ValueError(
            "only 'message' may be sent; got %s" % ", ".join(_escape_control(repr(key)[:40]) for key in unknown[:5])
        )
    message: object = payload.get("message")
    if message is None:
        return ""
    if not isinstance(message, str):
        raise ValueError("message must be a string")
    if len(message) > max_message_chars:
        raise ValueError("message must be at most %d characters" % max_message_chars)
    try:
        message.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("message must be valid Unicode text (it holds a lone surrogate)") from None
    return message


class _EndpointAnswers:
    """How the endpoint answers, with no I/O: JSON with the headers every answer has (``Vary: Origin``
    unless every origin is allowed), an error's code and message, the answer to a call's outcome, and the
    one JSON log line of a failure, masked here."""

    __slots__ = ("allowed_origins", "log", "secrecy")
    allowed_origins: Tuple[str, ...]
    log: Callable[[str], None]
    secrecy: _Secrecy

    def _finish(self, outcome: Any, cors: Tuple[Tuple[str, str], ...]) -> EndpointResponse:
        """The answer to a POST, from the session or the exception its call ended with."""
        if isinstance(outcome, _Misconfigured):
            self._log_failure(500, "NOT_CONFIGURED", str(outcome))
            return self._refuse(500, "NOT_CONFIGURED", "the chat endpoint is not configured", cors)
        if not isinstance(outcome, BaseException):  # a session, checked by the client: strings, a finite number
            expires = outcome["expiresAt"]
            body = '{"conversationId":%s,"token":%s,"expiresAt":%s}' % (
                _json_string(outcome["conversationId"]),
                _json_string(outcome["token"]),
                float.__repr__(expires) if isinstance(expires, float) else int.__repr__(expires),
            )
            return self._answer(200, body.encode("ascii"), cors)
        if isinstance(outcome, APITimeoutError):
            self._log_failure(504, outcome.code, str(outcome), outcome)
            return self._refuse(504, "TIMEOUT", "the chat service did not answer in time", cors)
        code = outcome.code if isinstance(outcome, ChatBotKitError) else "UNEXPECTED_ERROR"
        code = code if re.fullmatch(_UPSTREAM_CODE, code) else "UPSTREAM_ERROR"
        self._log_failure(502, code, str(outcome) if isinstance(outcome, ChatBotKitError) else repr(outcome), outcome)
        return self._refuse(502, code, "the chat service could not open a session", cors)

    def _answer(self, status: int, body: bytes, extra: Iterable[Tuple[str, str]] = ()) -> EndpointResponse:
        """An answer with *body* (JSON, or empty), and the headers every answer has, then *extra*."""
        headers = (_ENDPOINT_HEADERS if body else _ENDPOINT_HEADERS[1:]) + tuple(extra)
        if self.allowed_origins != ("*",) and ("Vary", "Origin") not in headers:
            headers += (("Vary", "Origin"),)  # the answer depends on Origin: no shared cache may mix them
        return EndpointResponse(status, headers, body)

    def _refuse(self, status: int, code: str, message: str, cors: Iterable[Tuple[str, str]] = ()) -> EndpointResponse:
        return self._answer(status, _encode_json({"code": code, "message": message}).encode("ascii"), cors)

    @staticmethod
    def _headless(answer: EndpointResponse) -> EndpointResponse:
        """*answer* for a HEAD request: the same status and headers, no body (RFC 9110 section 9.3.2)."""
        return answer._replace(body=b"")

    def _log_failure(self, status: int, code: str, text: str, error: Optional[BaseException] = None) -> None:
        """One JSON line for the log: the answer's status and code, and the error, masked here."""
        line: Dict[str, Any] = {"level": "error", "logger": _LOGGER_NAME + ".endpoint", "status": status, "code": code}
        line["error"] = self.secrecy.masked_line(text)
        if error is not None:
            line["errorType"] = type(error).__name__
            line["attempts"] = getattr(error, "attempts", None)
            if isinstance(error, APIError) and error.request_id:
                line["requestId"] = self.secrecy.masked_line(error.request_id)
        try:
            self.log(json.dumps(line))
        except Exception:  # a failing log must not turn an answer into a crash  # nosec B110
            pass


class _EndpointRules(_EndpointAnswers):
    """The endpoint's configuration and every decision it makes, with no I/O: which requests are refused
    before their body is read, what a body may hold, what authorize= may answer, the deadline, and the
    answer to each outcome. ``plan`` is one request as a generator, driven by the front doors."""

    __slots__ = (
        "allowed_hosts",
        "authorize",
        "bot_id",
        "deadline_margin",
        "max_body_bytes",
        "max_message_chars",
        "preflight_max_age",
        "request",
        "request_fields",
        "time_budget",
    )

    def __init__(
        self,
        bot_id: str,
        secrecy: _Secrecy,
        allowed_origins: Tuple[str, ...],
        allowed_hosts: Tuple[str, ...],
        request: Dict[str, Any],
        limits: Tuple[int, int, int],
        times: Tuple[float, float],
        authorize: Optional[_Authorize],
        log: Callable[[str], None],
    ) -> None:
        self.bot_id, self.secrecy, self.request, self.authorize, self.log = bot_id, secrecy, request, authorize, log
        self.request_fields = _encode_json(request)[1:-1]  # the configured part of every request, as JSON
        self.allowed_origins, self.allowed_hosts = allowed_origins, allowed_hosts
        self.max_message_chars, self.max_body_bytes, self.preflight_max_age = limits
        self.time_budget, self.deadline_margin = times

    def plan(
        self,
        method: str,
        headers: Mapping[str, str],
        remote_addr: Optional[str],
        event: Any,
        remaining: Optional[float],
        clock: _Clock,
    ) -> _EndpointPlan:
        """One request as a generator (*headers* with lower-case names): it yields a ``_ReadBody``, an
        ``EndpointRequest`` for authorize= and a ``_Mint``, each at most once and in that order, and
        returns the answer. The deadline starts now: the platform's *remaining* time less the margin."""
        started = clock.monotonic()
        method = method.upper()
        cors = self._cors(headers.get("origin"), headers)
        early = self._before_body(method, headers, cors)
        if isinstance(early, EndpointResponse):
            return self._headless(early) if method == "HEAD" else early
        cors = cors or ()
        body = yield _ReadBody(early)
        try:
            if isinstance(body, ValueError):
                raise body
            message = _first_message(body, self.max_body_bytes, self.max_message_chars)
        except ValueError as error:
            return self._refuse(400, "BAD_REQUEST", str(error), cors)
        meta: Optional[Dict[str, str]] = None
        if self.authorize is not None:
            verdict = yield EndpointRequest(method, _Headers(headers), remote_addr, event)
            decision = self._authorized(verdict, cors)
            if isinstance(decision, EndpointResponse):
                return decision
            meta = decision
        seconds = self._budget(remaining) - (clock.monotonic() - started)
        if seconds <= 0:
            outcome: Any = APITimeoutError("no time was left before the platform's deadline", request_sent=False)
        else:
            outcome = yield _Mint(self._session_body(message, meta), seconds)
        return self._finish(outcome, cors)

    # -- before the body: method, host, origin, type and length --------------------------------------------

    def _cors(self, origin: Optional[str], headers: Mapping[str, str]) -> Optional[Tuple[Tuple[str, str], ...]]:
        """The CORS headers for a request from *origin*: () for no origin or the page's own (same-origin
        requests need none), None when that origin is not allowed."""
        if self.allowed_origins == ("*",):
            return (("Access-Control-Allow-Origin", "*"),)
        if origin is None:
            return ()
        if origin.lower() in self.allowed_origins:
            return (("Access-Control-Allow-Origin", origin), ("Vary", "Origin"))
        host = headers.get("host")
        if host is not None and origin.lower().partition("://")[2] == host.strip().lower():
            return ()  # the endpoint's own origin (a page the same server serves); Host is checked apart
        return None

    def _before_body(
        self, method: str, headers: Mapping[str, str], cors: Optional[Tuple[Tuple[str, str], ...]]
    ) -> Union[EndpointResponse, int]:
        """The answer a request gets before its body is read, or for a POST to read, how many bytes of its
        body to read: enough to tell one over the cap, no more than its Content-Length."""
        if self.allowed_hosts and not self._host_allowed(headers.get("host")):
            return self._refuse(403, "HOST_NOT_ALLOWED", "this endpoint does not answer to that host name")
        if method == "OPTIONS":
            if "origin" not in headers or "access-control-request-method" not in headers:
                return self._answer(204, b"", (("Allow", _ENDPOINT_METHODS),))
            if cors is None:
                return self._refuse(403, "ORIGIN_NOT_ALLOWED", "this origin may not open chat sessions here")
            return self._answer(204, b"", (*cors, *self._preflight_headers()))
        if method != "POST":
            return self._refuse(405, "METHOD_NOT_ALLOWED", "use POST", (*(cors or ()), ("Allow", _ENDPOINT_METHODS)))
        if cors is None:  # a page of another origin: refused before anything is minted, preflight or not
            return self._refuse(403, "ORIGIN_NOT_ALLOWED", "this origin may not open chat sessions here")
        if not self.bot_id:
            self._log_failure(500, "NOT_CONFIGURED", "the endpoint has no bot_id")
            return self._refuse(500, "NOT_CONFIGURED", "the chat endpoint is not configured", cors)
        content_type = headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type != "application/json":  # so that every cross-origin POST from a browser is preflighted
            return self._refuse(415, "UNSUPPORTED_MEDIA_TYPE", "send the body as application/json", cors)
        length = headers.get("content-length")
        if length is None:
            return self.max_body_bytes + 1
        try:
            length = _content_length_value(length)
        except ValueError:
            return self._refuse(400, "BAD_REQUEST", "the Content-Length is not a number of bytes", cors)
        if len(length.lstrip("0")) > 15 or int(length) > self.max_body_bytes:
            return self._refuse(400, "BAD_REQUEST", "the body must be at most %d bytes" % self.max_body_bytes, cors)
        return int(length)

    def _host_allowed(self, host: Optional[str]) -> bool:
        """Whether ``Host`` names this endpoint: an allowed name, or an IP address (which DNS rebinding,
        the attack this check stops, cannot put there)."""
        if host is None:
            return False
        name = _host_name(host)
        return name in self.allowed_hosts or _ip_family(name) is not None if name else False

    def _preflight_headers(self) -> Tuple[Tuple[str, str], ...]:
        return (
            ("Access-Control-Allow-Methods", "POST"),
            ("Access-Control-Allow-Headers", _ENDPOINT_REQUEST_HEADERS),
            ("Access-Control-Max-Age", str(self.preflight_max_age)),
        )

    # -- the body ---------------------------------------------------------------------------------------------

    def _session_request(self, message: Optional[str]) -> BotSessionCreateRequest:
        """The createBotSession request: the configured duration, and the first user message if any."""
        request = cast(BotSessionCreateRequest, dict(self.request))
        if message:
            request["messages"] = [{"type": "user", "text": message}]
        return request

    def _session_body(self, message: str, meta: Optional[Dict[str, str]]) -> bytes:
        """``_session_request`` (with *meta*) as JSON, written from parts already checked (the configured
        duration, the message, authorize='s strings): create()'s walk of a caller's request is not needed."""
        fields = [self.request_fields] if self.request_fields else []
        if message:
            fields.append('"messages":[{"type":"user","text":%s}]' % _json_string(message))
        if meta is not None:
            fields.append('"meta":' + _encode_json(meta))
        return ("{%s}" % ",".join(fields)).encode("ascii")

    # -- authorize= and the deadline -----------------------------------------------------------------------

    def _authorized(
        self, verdict: Any, cors: Tuple[Tuple[str, str], ...]
    ) -> Union[EndpointResponse, Dict[str, str], None]:
        """What authorize= answered made a decision: the session's meta, None to go on without, or the
        answer that ends the request."""
        if verdict is True:
            return None
        if verdict is False:
            return self._refuse(403, "NOT_AUTHORIZED", "you may not open a chat session", cors)
        try:
            if isinstance(verdict, BaseException):
                raise verdict
            meta = _as_mapping(verdict)
            if meta is None:
                raise TypeError(
                    "authorize must return True, False or a mapping of strings, not %s" % type(verdict).__name__
                )
            return _check_meta(meta)
        except _Misconfigured as error:
            self._log_failure(500, "NOT_CONFIGURED", str(error))
            return self._refuse(500, "NOT_CONFIGURED", "the chat endpoint is not configured", cors)
        except Exception as error:  # authorize= failed: nothing is sent, the answer says no more than that
            self._log_failure(500, "AUTHORIZE_FAILED", "authorize raised %r" % error, error)
            return self._refuse(500, "INTERNAL_ERROR", "the chat endpoint failed", cors)

    def _budget(self, remaining: Optional[float]) -> float:
        """Seconds the call to ChatBotKit may take: the budget, and the platform's time less the margin."""
        if remaining is None:
            return self.time_budget
        return min(self.time_budget, float(remaining) - self.deadline_margin)


# ---------------------------------------------------------------------------------------------------------
# The endpoint's front doors: handle, ahandle, WSGI, ASGI and Lambda, each a few lines over the plan
# ---------------------------------------------------------------------------------------------------------


def _endpoint_environment(environ: Mapping[str, str]) -> Tuple[str, int, Tuple[str, ...]]:
    """The bot, the session duration and the allowed origins that *environ* gives the endpoint, or
    ValueError naming the variable that is missing or bad."""
    bot_id = environ.get("CHATBOTKIT_BOT_ID", "").strip()
    if not bot_id:
        raise ValueError("CHATBOTKIT_BOT_ID is not set: set it to the bot that browsers open sessions with")
    try:
        _check_bot_id(bot_id)
    except ValueError as error:
        raise ValueError("CHATBOTKIT_BOT_ID: %s" % error) from None
    duration = environ.get("CHATBOTKIT_SESSION_DURATION", "3600").strip()
    if not re.fullmatch(r"[0-9]{1,6}", duration) or not 1800 <= int(duration) <= 86400:
        raise ValueError("CHATBOTKIT_SESSION_DURATION must be whole seconds from 1800 to 86400, got %r" % duration[:40])
    origins = [origin for origin in environ.get("CHATBOTKIT_ALLOWED_ORIGINS", "").split(",") if origin.strip()]
    allowed_origins = _check_origins(origins, "CHATBOTKIT_ALLOWED_ORIGINS")
    return bot_id, int(duration), allowed_origins


class _EndpointCalls:
    """What the endpoint's front doors drive its plan with: a blocking driver (``handle``, WSGI, Lambda)
    and an asyncio one (``ahandle``, ASGI), each giving the plan the body, authorize='s verdict and the
    session (or the exception its call ended with)."""

    client: Union[BotSessionClient, AsyncBotSessionClient, None]
    _rules: _EndpointRules

    def _drive(self, plan: _EndpointPlan, read: Callable[[int], Union[bytes, ValueError]]) -> EndpointResponse:
        """Run *plan*: read the body with *read*, ask authorize=, create the session; blocking."""
        outcome: Any = None
        while True:
            done, step = _advance(plan, outcome)
            if done:
                return cast(EndpointResponse, step)
            if isinstance(step, _ReadBody):
                outcome = read(step.limit)
            elif isinstance(step, EndpointRequest):
                outcome = self._verdict(step)
            else:
                outcome = self._mint(step)

    def _verdict(self, request: EndpointRequest) -> Any:
        """authorize='s answer (or the exception it raised) in a synchronous front door."""
        authorize = cast(_Authorize, self._rules.authorize)
        if _is_async_transport(authorize):
            return _Misconfigured("authorize is a coroutine function: serve the endpoint with ahandle or asgi")
        try:
            verdict = authorize(request)
        except Exception as error:  # mapped to a 500 by the plan, never raised to the server
            return error
        if isinstance(verdict, collections.abc.Awaitable):
            _discard(verdict)
            return _Misconfigured("authorize returned an awaitable: serve the endpoint with ahandle or asgi")
        return verdict

    def _mint(self, step: _Mint) -> Any:
        """The session (or the exception its call ended with) from a ``BotSessionClient``, blocking."""
        client = self.client
        if not isinstance(client, ChatBotKitClient):
            return _Misconfigured(
                "the endpoint has no client"
                if client is None
                else "handle, wsgi and lambda_handler need a BotSessionClient (asgi and ahandle take either)"
            )
        try:
            url = client._core.url(_SESSION_PATH_TEMPLATE, {"botId": self._rules.bot_id})
            return client._call(url, step.body, _session_problem, step.seconds)
        except Exception as error:  # mapped to an answer by the plan, never raised to the server
            return error

    def _mint_by(self, step: _Mint, deadline: float) -> Any:
        """``_mint`` in a worker thread, with the time that is left when the thread takes it up."""
        left = deadline - time.monotonic()
        if left <= 0:
            return APITimeoutError("no worker thread was free before the deadline", request_sent=False)
        return self._mint(step._replace(seconds=left))

    async def _adrive(
        self, plan: _EndpointPlan, body: Union[bytes, str, AsyncIterable[bytes], None]
    ) -> EndpointResponse:
        """Run *plan*: read *body*, await authorize= and create the session."""
        outcome: Any = None
        while True:
            done, step = _advance(plan, outcome)
            if done:
                return cast(EndpointResponse, step)
            if isinstance(step, _ReadBody):
                if isinstance(body, (bytes, bytearray, memoryview, str)) or body is None:
                    outcome = _capped_body(body, step.limit)
                else:
                    outcome = await _acapped_body(body, step.limit)
            elif isinstance(step, EndpointRequest):
                outcome = await self._averdict(step)
            else:
                outcome = await self._amint(step)

    async def _averdict(self, request: EndpointRequest) -> Any:
        try:
            verdict = cast(_Authorize, self._rules.authorize)(request)
            if isinstance(verdict, collections.abc.Awaitable):
                return await verdict
            return verdict
        except Exception as error:  # mapped to a 500 by the plan, never raised to the server
            return error

    async def _amint(self, step: _Mint) -> Any:
        import asyncio  # loaded by whoever awaits this

        client = self.client
        if isinstance(client, AsyncBotSessionClient):
            try:
                url = client._core.url(_SESSION_PATH_TEMPLATE, {"botId": self._rules.bot_id})
                return await client._call(url, step.body, _session_problem, step.seconds)
            except Exception as error:  # mapped to an answer by the plan, never raised to the server
                return error
        if client is None:
            return self._mint(step)
        # A BotSessionClient blocks: in a worker thread of the loop's executor, and the time spent
        # waiting for one counts against the deadline (a thread taken up too late sends nothing).
        deadline = time.monotonic() + step.seconds
        work = asyncio.get_running_loop().run_in_executor(None, self._mint_by, step, deadline)
        try:
            return await _within(work, step.seconds + 0.05)  # the thread's own call ends at the deadline
        except asyncio.TimeoutError:
            return APITimeoutError("no worker thread was free before the deadline", request_sent=False)


class SessionEndpoint(_EndpointCalls):
    """The server side of a chat widget: answers a browser's ``POST`` with a new session for one bot.

    ``SessionEndpoint(client, "bot-id", allowed_origins=["https://shop.example"])`` answers

    - ``POST`` with ``Content-Type: application/json`` and an empty body, ``{}`` or ``{"message": "first
      user message"}``: ``200 {"conversationId", "token", "expiresAt"}``. The bot, the duration and
      everything else sent to ChatBotKit come from here, never from the request;
    - ``400 {"code": "BAD_REQUEST", "message"}`` for a body that is not such a JSON object (over
      *max_body_bytes*, not UTF-8 JSON, another key, a message that is not a string or longer than
      *max_message_chars*, nesting too deep) or a bad ``Content-Length``; ``415`` for another
      ``Content-Type`` or none (so that a browser preflights every cross-origin POST);
    - ``403 {"code": "ORIGIN_NOT_ALLOWED"}`` for a request from a page of an origin that is neither in
      *allowed_origins* nor the endpoint's own, preflight or not; ``403 {"code": "HOST_NOT_ALLOWED"}``
      when *allowed_hosts* is given and ``Host`` is neither one of them nor an IP address (DNS rebinding);
      ``403 {"code": "NOT_AUTHORIZED"}`` when *authorize* refuses;
    - ``405`` with ``Allow`` for other methods (HEAD without a body); ``502 {"code": <ChatBotKit's code>,
      "message"}`` when the API fails or cannot be reached; ``504 {"code": "TIMEOUT"}`` when the call runs
      out of time; ``500`` when it is not configured or *authorize* raised. The failures behind 5xx
      answers are passed to *log* as one JSON line each, with the secret masked (stderr by default).
    - CORS: an ``Origin`` in *allowed_origins* gets ``Access-Control-Allow-Origin`` (that origin); its
      ``OPTIONS`` preflight ``204`` with the method, the ``content-type`` and ``authorization`` headers and
      a max age of *preflight_max_age*; another origin gets no CORS header and its preflight ``403``.
      ``allowed_origins=["*"]`` allows every origin, and only when given so.

    *authorize*, a callable (or coroutine function, for ``ahandle`` and ``asgi``), is given an
    ``EndpointRequest`` for each POST that passed the checks, before anything is sent to ChatBotKit: it
    returns False to refuse, True to go on, or a mapping of strings to strings sent as the session's
    ``meta`` (which of your users the conversation belongs to).

    Every answer is JSON with ``Cache-Control: no-store``. The whole call to ChatBotKit, retries included,
    is bounded by *time_budget* seconds, and by the time the platform gives less *deadline_margin* (an
    AWS Lambda context's remaining time, or ``remaining=`` of ``handle``).

    Front doors: ``endpoint.wsgi`` (a WSGI application), ``endpoint.asgi`` (an ASGI 3 application, for an
    ``AsyncBotSessionClient``), ``endpoint.lambda_handler(event, context)``; ``handle`` and ``ahandle`` for
    a view in any framework.
    """

    asgi: Callable[
        [Dict[str, Any], Callable[[], Awaitable[Dict[str, Any]]], Callable[[Dict[str, Any]], Awaitable[None]]],
        Awaitable[None],
    ]
    """An ASGI 3 application (HTTP, and the lifespan protocol); awaits an ``AsyncBotSessionClient``. A plain
    coroutine function, so that servers that guess the interface (``uvicorn module:app``) take it for ASGI 3."""

    def __init__(
        self,
        client: Union[BotSessionClient, AsyncBotSessionClient, None],
        bot_id: Optional[str],
        *,
        allowed_origins: Iterable[str] = (),
        allowed_hosts: Iterable[str] = (),
        authorize: Optional[_Authorize] = None,
        duration: Optional[float] = None,
        max_message_chars: int = 4000,
        max_body_bytes: int = 64 * 1024,
        time_budget: float = 10.0,
        deadline_margin: float = 0.5,
        preflight_max_age: int = 600,
        log: Callable[[str], None] = _stderr_line,
    ) -> None:
        if client is not None and not isinstance(client, (ChatBotKitClient, AsyncBotSessionClient)):
            raise TypeError(
                "client must be a BotSessionClient or an AsyncBotSessionClient, not %s" % type(client).__name__
            )
        if bot_id is not None and bot_id != "":
            _check_bot_id(bot_id)
        elif bot_id is not None and not isinstance(bot_id, str):
            raise TypeError("bot_id must be a string, not %s" % type(bot_id).__name__)
        if authorize is not None and not callable(authorize):
            raise TypeError("authorize must be a callable, not %s" % type(authorize).__name__)
        if not callable(log):
            raise TypeError("log must be a callable taking one line of text, not %s" % type(log).__name__)
        request: Dict[str, Any] = {}
        if duration is not None:
            request["durationInSeconds"] = duration
            _session_request_body(request)  # a bad duration fails here, naming the field
        self.client = client
        self._rules = _EndpointRules(
            bot_id or "",
            client._core.secrecy if client is not None else _Secrecy(""),
            _check_origins(allowed_origins, "allowed_origins"),
            _check_hosts(allowed_hosts, "allowed_hosts"),
            request,
            (
                _check_whole("max_message_chars", max_message_chars, 1),
                _check_whole("max_body_bytes", max_body_bytes, 2),
                _check_whole("preflight_max_age", preflight_max_age, 0),
            ),
            (
                _check_seconds("time_budget", time_budget, allow_zero=False),
                _check_seconds("deadline_margin", deadline_margin, allow_zero=True),
            ),
            authorize,
            log,
        )

        async def asgi(
            scope: Dict[str, Any],
            receive: Callable[[], Awaitable[Dict[str, Any]]],
            send: Callable[[Dict[str, Any]], Awaitable[None]],
        ) -> None:
            await _asgi_app(self, scope, receive, send)

        self.asgi = asgi

    @classmethod
    def from_env(
        cls,
        client: Union[BotSessionClient, AsyncBotSessionClient, None] = None,
        *,
        environ: Optional[Mapping[str, str]] = None,
        authorize: Optional[_Authorize] = None,
        log: Callable[[str], None] = _stderr_line,
    ) -> SessionEndpoint:
        """The endpoint the environment describes, as the module's ``lambda_handler`` builds it:
        ``CHATBOTKIT_BOT_ID``, ``CHATBOTKIT_ALLOWED_ORIGINS`` (comma-separated origins, or ``*``) and
        ``CHATBOTKIT_SESSION_DURATION`` (1800 to 86400 seconds, default 3600) of *environ* (default
        ``os.environ``). Without *client*, a ``BotSessionClient`` from the environment (``ClientOptions.
        from_env``: 10 s per attempt, 2 retries). A missing or bad variable raises ValueError naming it."""
        environ = os.environ if environ is None else environ
        bot_id, duration, allowed_origins = _endpoint_environment(environ)
        if client is None:
            client = BotSessionClient(ClientOptions.from_env(environ, timeout=10.0, retries=2))
        return cls(client, bot_id, allowed_origins=allowed_origins, duration=duration, authorize=authorize, log=log)

    def __repr__(self) -> str:
        return "SessionEndpoint(bot_id=%r, allowed_origins=%r)" % (self.bot_id, list(self.allowed_origins))

    @property
    def bot_id(self) -> str:
        """The bot every session is opened with ("" when none is configured)."""
        return self._rules.bot_id

    @property
    def allowed_origins(self) -> Tuple[str, ...]:
        """The origins whose pages may fetch sessions, as browsers send them, or ``("*",)``."""
        return self._rules.allowed_origins

    @property
    def allowed_hosts(self) -> Tuple[str, ...]:
        """The host names the endpoint answers to (IP addresses always), or () for any."""
        return self._rules.allowed_hosts

    def handle(
        self,
        method: str,
        headers: Union[Mapping[str, str], Iterable[Tuple[str, str]]],
        body: Union[bytes, str, _BodyFile, None] = b"",
        *,
        remaining: Optional[float] = None,
        remote_addr: Optional[str] = None,
        event: Any = None,
    ) -> EndpointResponse:
        """Answer one request: its method, headers (a mapping or pairs, any case) and body (bytes, text, or
        a file object of which at most ``max_body_bytes + 1`` bytes, and no more than its Content-Length,
        are read). *remaining* is the time the platform allows, in seconds; *remote_addr* and *event* are
        handed to *authorize*. Blocks on a ``BotSessionClient``."""
        fields = _header_fields(headers)
        plan = self._rules.plan(method, fields, remote_addr, event, remaining, _SYSTEM_CLOCK)
        return self._drive(plan, functools.partial(_capped_body, body))

    async def ahandle(
        self,
        method: str,
        headers: Union[Mapping[str, str], Iterable[Tuple[str, str]]],
        body: Union[bytes, str, AsyncIterable[bytes], None] = b"",
        *,
        remaining: Optional[float] = None,
        remote_addr: Optional[str] = None,
        event: Any = None,
    ) -> EndpointResponse:
        """``handle`` for asyncio: awaits an ``AsyncBotSessionClient`` (a ``BotSessionClient`` runs in a
        worker thread, within the same deadline) and a coroutine-function *authorize*. *body* is bytes,
        text, or an async iterable of byte chunks (Starlette's ``request.stream()``), read no further than
        ``max_body_bytes + 1`` bytes."""
        plan = self._rules.plan(method, _header_fields(headers), remote_addr, event, remaining, _SYSTEM_CLOCK)
        return await self._adrive(plan, body)

    def wsgi(self, environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
        """A WSGI application (PEP 3333): mount it at the path the page posts to."""
        return _wsgi_app(self, environ, start_response)

    def lambda_handler(self, event: Any, context: Any) -> Dict[str, Any]:
        """An AWS Lambda handler. An HTTP event (a Function URL, API Gateway HTTP API payload 2.0, REST API
        payload 1.0, an ALB with or without multi-value headers; base64 bodies too) gets a proxy response.
        A direct invocation (``aws lambda invoke``, another function), ``{"botId": optional, "message":
        optional, "durationInSeconds": optional}``, returns the whole session, and raises ValueError naming
        the field of a bad event."""
        return _lambda_answer(self, event, context)


def _wsgi_app(endpoint: SessionEndpoint, environ: Dict[str, Any], start_response: Callable[..., Any]) -> List[bytes]:
    """``SessionEndpoint.wsgi``: the request from *environ*, the answer through *start_response*."""
    headers = {key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    body: Union[bytes, _BodyFile] = b""
    if headers.get("content-length") or environ.get("wsgi.input_terminated"):
        body = environ["wsgi.input"]  # read at most Content-Length (PEP 3333), and the cap
    method = environ.get("REQUEST_METHOD", "GET")
    answer = endpoint.handle(method, headers, body, remote_addr=environ.get("REMOTE_ADDR") or None)
    start_response("%d %s" % (answer.status, _reason(answer.status)), list(answer.headers))
    return [answer.body]


async def _asgi_app(
    endpoint: SessionEndpoint,
    scope: Dict[str, Any],
    receive: Callable[[], Awaitable[Dict[str, Any]]],
    send: Callable[[Dict[str, Any]], Awaitable[None]],
) -> None:
    """``SessionEndpoint.asgi``: HTTP, and the lifespan protocol."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return

    async def chunks() -> AsyncIterator[bytes]:
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            yield bytes(message.get("body", b""))
            more = bool(message.get("more_body", False))

    headers = [(bytes(name).decode("latin-1"), bytes(value).decode("latin-1")) for name, value in scope["headers"]]
    client_address = scope.get("client")
    remote_addr = str(client_address[0]) if client_address else None
    try:
        answer = await endpoint.ahandle(scope["method"], headers, chunks(), remote_addr=remote_addr)
    except _Disconnected:  # the browser went away before its body arrived: nobody to answer
        return
    start = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in answer.headers]
    await send({"type": "http.response.start", "status": answer.status, "headers": start})
    await send({"type": "http.response.body", "body": answer.body})


def _lambda_answer(endpoint: SessionEndpoint, event: Any, context: Any) -> Dict[str, Any]:
    """``SessionEndpoint.lambda_handler``: a proxy response to an HTTP event, the session to a direct call."""
    remaining: Optional[float] = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining = context.get_remaining_time_in_millis() / 1000.0
    http_event = cast(Dict[str, Any], event) if isinstance(event, dict) else {}
    request_context = _as_mapping(http_event.get("requestContext")) or _EMPTY
    route = _as_mapping(request_context.get("http"))
    if "httpMethod" not in http_event and route is None:
        return _lambda_direct(endpoint, event, remaining)
    method = str(http_event.get("httpMethod") or (route or _EMPTY).get("method", ""))
    fields = _lambda_headers(http_event)
    identity = _as_mapping(request_context.get("identity")) or _EMPTY
    remote_addr = (route or identity).get("sourceIp")
    plan = endpoint._rules.plan(method, fields, remote_addr, event, remaining, _SYSTEM_CLOCK)
    answer = endpoint._drive(plan, functools.partial(_lambda_body, http_event))
    reply: Dict[str, Any] = {"statusCode": answer.status}
    if "elb" in request_context:
        reply["statusDescription"] = "%d %s" % (answer.status, _reason(answer.status))
    if isinstance(http_event.get("headers"), dict) or not isinstance(http_event.get("multiValueHeaders"), dict):
        reply["headers"] = dict(answer.headers)
    else:  # an ALB with multi-value headers on reads only this key
        reply["multiValueHeaders"] = {name: [value] for name, value in answer.headers}
    reply.update(body=answer.body.decode("utf-8"), isBase64Encoded=False)
    return reply


def _lambda_direct(endpoint: SessionEndpoint, event: Any, remaining: Optional[float]) -> Dict[str, Any]:
    """A direct invocation's answer: the whole session, or ValueError naming the field of a bad event."""
    if not isinstance(event, dict):
        raise ValueError("event must be a JSON object")
    fields = cast(Dict[str, Any], event)
    bot_id = fields.get("botId", endpoint.bot_id)
    if not isinstance(bot_id, str) or not bot_id.strip():
        raise ValueError("event.botId must be a non-empty string (no bot is configured)")
    message = fields.get("message")
    if message is not None and not isinstance(message, str):
        raise ValueError("event.message must be a string")
    request = endpoint._rules._session_request(message)
    if fields.get("durationInSeconds") is not None:
        duration = fields["durationInSeconds"]
        if isinstance(duration, bool) or not isinstance(duration, (int, float)):
            raise ValueError("event.durationInSeconds must be a number")
        request["durationInSeconds"] = duration
    client = endpoint.client
    if not isinstance(client, ChatBotKitClient):
        raise TypeError("a direct invocation needs a BotSessionClient")
    seconds = endpoint._rules._budget(remaining)
    if seconds <= 0:
        raise APITimeoutError("no time was left before the platform's deadline", request_sent=False)
    url, body = _session_call(client, bot_id, request)
    return dict(client._call(url, body, _session_problem, seconds))


def _header_fields(headers: Union[Mapping[str, str], Iterable[Tuple[str, str]]]) -> Dict[str, str]:
    """Request headers as a dict with lower-case names, from a mapping (any case) or (name, value) pairs."""
    items = getattr(headers, "items", None)
    pairs = cast(Iterable[Tuple[str, str]], items() if callable(items) else headers)
    return {str(name).lower(): str(value) for name, value in pairs}


def _capped_body(body: Union[bytes, str, _BodyFile, None], limit: int) -> bytes:
    """At most *limit* bytes of a request body: a file object is read no further."""
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")[:limit]  # a lone surrogate is then not UTF-8: a 400
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body[:limit])
    chunks: List[bytes] = []
    while limit > 0:
        chunk = body.read(limit)
        if not chunk:
            break
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


async def _acapped_body(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """At most *limit* bytes of a request body arriving as chunks: the rest is never read."""
    data = bytearray()
    async for chunk in chunks:
        data += chunk
        if len(data) >= limit:
            break
    close = getattr(chunks, "aclose", None)
    if close is not None:
        await close()
    return bytes(data[:limit])


def _lambda_headers(event: Mapping[str, Any]) -> Dict[str, str]:
    """An HTTP event's request headers, lower-case names: ``headers``, or an ALB's ``multiValueHeaders``."""
    single = _as_mapping(event.get("headers"))
    if single is not None:
        return _header_fields(single)
    multi = _as_mapping(event.get("multiValueHeaders")) or _EMPTY
    return {
        str(name).lower(): ", ".join(map(str, cast(List[object], values))) if isinstance(values, list) else str(values)
        for name, values in multi.items()
    }


def _lambda_body(event: Mapping[str, Any], limit: int) -> Union[bytes, ValueError]:
    """At most *limit* bytes of an HTTP event's body, or the ValueError (a 400) that it cannot be read."""
    body = event.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):  # a hand-written console test event, say: API Gateway sends text
        return ValueError("the event's body must be a string (JSON as text), not %s" % type(body).__name__)
    if not event.get("isBase64Encoded"):
        return _capped_body(body, limit)
    try:
        return base64.b64decode(body, validate=True)[:limit]
    except (binascii.Error, ValueError):
        return ValueError("the body is not valid base64, as isBase64Encoded says it is")


_lambda_endpoint: Optional[SessionEndpoint] = None


def lambda_handler(event: Any, context: Any) -> Dict[str, Any]:
    """The AWS Lambda handler ``chatbotkit_session.lambda_handler``: this one file is the whole function.

    Its endpoint is ``SessionEndpoint.from_env()``, built once per container from ``CHATBOTKIT_API_SECRET``,
    ``CHATBOTKIT_BOT_ID``, ``CHATBOTKIT_SESSION_DURATION`` (1800 to 86400 seconds, default 3600) and
    ``CHATBOTKIT_ALLOWED_ORIGINS`` (comma-separated origins, or ``*``); see ``SessionEndpoint.lambda_handler``
    for what it answers.
    """
    global _lambda_endpoint
    if _lambda_endpoint is None:
        _lambda_endpoint = SessionEndpoint.from_env()
    return _lambda_endpoint.lambda_handler(event, context)


# Loaded by AWS Lambda as the handler (Lambda sets _HANDLER): build the endpoint now, so that a missing or
# bad variable fails the init, naming it, rather than the first invocation.
if os.environ.get("_HANDLER") == __name__ + ".lambda_handler":
    _lambda_endpoint = SessionEndpoint.from_env()


# =========================================================================================================
# 5. The command line: main
# =========================================================================================================


# ---------------------------------------------------------------------------------------------------------
# The command line
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
    parser.add_argument(
        "--serve",
        metavar="[HOST:]PORT",
        help="serve a SessionEndpoint for BOT_ID on http://HOST:PORT/ for front-end development (wsgiref; "
        "HOST defaults to 127.0.0.1, PORT 0 picks a free one) until Ctrl-C",
    )
    parser.add_argument(
        "--allow-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="with --serve: an origin whose pages may fetch sessions (repeatable), e.g. http://localhost:5173",
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
        server = _dev_server(args, client, request) if args.serve is not None else None
    except (ValueError, TypeError, OSError, _UsageError) as exc:
        parser.print_usage(sys.stderr)
        sys.stderr.write("%s: error: %s\n" % (_PROG, _escape_control(str(exc))))
        return 2
    if server is not None:
        with server:
            host, port = server.server_address[:2]
            host = "[%s]" % host if ":" in host else host
            sys.stdout.write(
                "%s: serving sessions of bot %s on http://%s:%d/ (POST; allowed origins: %s); Ctrl-C stops\n"
                % (_PROG, _escape_control(args.bot_id), host, port, ", ".join(args.allow_origin) or "none")
            )
            sys.stdout.flush()
            server.serve_forever()
        return 0
    if args.dry_run:
        sys.stdout.write("POST %s\n" % url)
        for name, value in client._core.headers.items():
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


def _dev_server(args: Any, client: BotSessionClient, request: Mapping[str, Any]) -> Any:
    """The --serve development server: a SessionEndpoint under wsgiref, bound but not yet serving.

    A thread per connection, each given 10 s to send its request (a browser's idle preconnect holds up
    no one), and ``Host`` checked: the server holds the real secret, and a page that rebinds its own
    name to this machine's address (DNS rebinding) names itself there."""
    import socketserver  # only --serve needs these
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    if args.dry_run or set(request) - {"durationInSeconds"}:
        raise _UsageError("--serve takes BOT_ID, --duration and --allow-origin; browsers send the first message")
    host, _, port = args.serve.rpartition(":")
    if not port.isdigit() or int(port) > 65535:
        raise _UsageError("--serve must be [HOST:]PORT, got %r" % args.serve)
    host = host.strip("[]") or "127.0.0.1"
    names = ("localhost",) if _ip_family(host) is not None else ("localhost", host)
    endpoint = SessionEndpoint(
        client,
        args.bot_id,
        allowed_origins=args.allow_origin,
        allowed_hosts=names,
        duration=request.get("durationInSeconds"),
    )

    class Server(socketserver.ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if _ip_family(host) == socket.AF_INET6 else socket.AF_INET

    class Handler(WSGIRequestHandler):
        timeout = 10.0  # seconds a connection may take to send its request

        def handle(self) -> None:
            try:
                super().handle()
            except OSError:  # the client went quiet past the timeout, or away: its connection ends
                self.close_connection = True

    return make_server(host, int(port), endpoint.wsgi, server_class=Server, handler_class=Handler)


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
