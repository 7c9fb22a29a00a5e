# SPDX-License-Identifier: MIT
"""Tests that need a peer from outside the standard library; each skips, saying why, without it.

- h11 (PyPI) with hypothesis: the HTTP/1.1 exchange read differentially against h11 on generated answers.

CI runs this file in a venv that has every peer, and fails if a test was skipped there.
"""

from __future__ import annotations

import importlib.util
import os
import unittest
from typing import Any, List, Tuple

import chatbotkit_session as cbk

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


if __name__ == "__main__":
    unittest.main()
