"""Slow clients are cut off (api/http_protocol.py): a request head not complete within
`head_read_timeout_s` gets 408 and a closed connection, a body that stops arriving for
`body_read_timeout_s` gets 408 in the caller's dialect, and a new connection that never sends
anything is closed. Slow but steady clients are served.

Raw sockets against a real gateway, with timeouts of a second and a half set through settings.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from gatewayz.api.http_protocol import CONNECTION_LIMITS, ConnectionLimits
from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import Gateway, gateway_settings, start_gateway
from tests.e2e.raw_http import connect, read_response, read_to_close, status_and_json, trickle

TIMEOUT_S = 1.5
# Generous: the claim is that the connection is cut at all, on a shared, loaded machine.
CUT_WITHIN_S = 15.0
CHAT = b'{"model":"test-model","messages":[{"role":"user","content":"hi"}],"max_tokens":5}'


@pytest.fixture(scope="module")
def slow_gw(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("slow")
    settings = gateway_settings(
        data_dir, upstream, head_read_timeout_s=TIMEOUT_S, body_read_timeout_s=TIMEOUT_S
    )
    gw = start_gateway(settings, upstream)
    yield gw
    gw.stop()


def _connect(gw: Gateway) -> socket.socket:
    return connect(gw.root, CUT_WITHIN_S)


def _head(gw: Gateway, path: bytes, length: int, auth: bytes = b"authorization: Bearer ") -> bytes:
    return (
        b"POST %s HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n%s%s\r\n"
        b"content-length: %d\r\n\r\n" % (path, auth, gw.api_key.encode(), length)
    )


def test_a_trickling_head_gets_408_and_a_closed_connection(slow_gw: Gateway) -> None:
    with _connect(slow_gw) as s:
        got = trickle(
            [s], b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ", 0.1, CUT_WITHIN_S
        )
    status, headers, body = status_and_json(got[0])
    assert status == b"HTTP/1.1 408 Request Timeout", got[0][:200]
    assert headers["connection"] == "close"
    assert headers["content-type"] == "application/json"
    assert body["error"]["code"] == "request_timeout"
    assert body["error"]["type"] == "invalid_request_error"
    assert "1.5" in body["error"]["message"]


def test_fifty_trickling_connections_are_all_cut_off(slow_gw: Gateway) -> None:
    socks = [_connect(slow_gw) for _ in range(50)]
    try:
        got = trickle(socks, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", 0.25, CUT_WITHIN_S)
    finally:
        for s in socks:
            s.close()
    for i, answer in got.items():
        assert answer.startswith(b"HTTP/1.1 408 "), (i, answer[:200])
    # The server is still fine for everyone else.
    with _connect(slow_gw) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_to_close(s).startswith(b"HTTP/1.1 200 ")


def test_a_connection_that_never_sends_is_closed_without_an_answer(slow_gw: Gateway) -> None:
    with _connect(slow_gw) as s:
        assert read_to_close(s) == b""


def test_a_slow_but_steady_request_is_served(slow_gw: Gateway) -> None:
    """The head arrives in pieces within the head timeout; the body in pieces whose gaps are
    each shorter than the body timeout, while the whole body takes longer than it."""
    head = _head(slow_gw, b"/v1/chat/completions", len(CHAT))
    head = head.replace(b"content-length", b"connection: close\r\ncontent-length")
    with _connect(slow_gw) as s:
        for i in range(0, len(head), len(head) // 4 + 1):
            s.sendall(head[i : i + len(head) // 4 + 1])
            time.sleep(0.1)
        for i in range(0, len(CHAT), len(CHAT) // 6 + 1):
            time.sleep(TIMEOUT_S / 3)
            s.sendall(CHAT[i : i + len(CHAT) // 6 + 1])
        answer = read_to_close(s)
    status, _, body = status_and_json(answer)
    assert status == b"HTTP/1.1 200 OK", answer[:300]
    assert body["object"] == "chat.completion"


def test_an_idle_keep_alive_connection_gets_no_408_between_requests(slow_gw: Gateway) -> None:
    """The head timer starts at a head's first byte: idle time after a response is uvicorn's
    keep-alive (5 s), longer than the head timeout here."""
    with _connect(slow_gw) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        first = read_response(s)
        assert first.startswith(b"HTTP/1.1 200 "), first[:200]
        time.sleep(TIMEOUT_S + 0.5)
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_to_close(s).startswith(b"HTTP/1.1 200 ")


def test_a_head_pipelined_behind_a_slow_response_is_not_cut_off(slow_gw: Gateway) -> None:
    """The next request's head, begun while the gateway still works on the previous one
    (for longer than the head timeout), waits on us, not the client: no 408 in the middle of
    the first response, and the head gets its whole time again once that response is out (the
    client finishes it half a timeout later, past where the timer, counted without the wait,
    would have fallen)."""
    slow_gw.upstream.fault(Fault(delay_s=2.9 * TIMEOUT_S))
    first = _head(slow_gw, b"/v1/chat/completions", len(CHAT)) + CHAT
    with _connect(slow_gw) as s:
        s.sendall(first + b"GET /health HTTP/1.1\r\nHost: x\r\n")
        status, _, body = status_and_json(read_response(s))
        assert status == b"HTTP/1.1 200 OK"
        assert body["object"] == "chat.completion"
        time.sleep(TIMEOUT_S / 2)
        s.sendall(b"Connection: close\r\n\r\n")
        assert read_to_close(s).startswith(b"HTTP/1.1 200 ")


def test_a_body_pipelined_behind_a_slow_response_is_not_cut_off(slow_gw: Gateway) -> None:
    """As for a head: a pipelined request's body, half sent while the previous response is
    still being worked on (reading is paused meanwhile), gets its whole time once that
    response is out."""
    slow_gw.upstream.fault(Fault(delay_s=2.9 * TIMEOUT_S))
    first = _head(slow_gw, b"/v1/chat/completions", len(CHAT)) + CHAT
    second = _head(slow_gw, b"/v1/chat/completions", len(CHAT)).replace(
        b"content-length", b"connection: close\r\ncontent-length"
    )
    half = len(CHAT) // 2
    with _connect(slow_gw) as s:
        s.sendall(first + second + CHAT[:half])
        status, _, _ = status_and_json(read_response(s))
        assert status == b"HTTP/1.1 200 OK"
        time.sleep(TIMEOUT_S / 2)
        s.sendall(CHAT[half:])
        status, _, body = status_and_json(read_to_close(s))
    assert status == b"HTTP/1.1 200 OK"
    assert body["object"] == "chat.completion"


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        (b"/v1/chat/completions", b"authorization: Bearer "),
        (b"/v1/messages", b"x-api-key: "),
        (b"/user/api-keys", b"authorization: Bearer "),  # a FastAPI route reads its own body
    ],
)
def test_a_stalled_body_gets_408_in_the_callers_dialect(
    slow_gw: Gateway, path: bytes, auth: bytes
) -> None:
    with _connect(slow_gw) as s:
        s.sendall(_head(slow_gw, path, 1000, auth) + b'{"model": "test-')
        answer = read_to_close(s)
    status, headers, body = status_and_json(answer)
    assert status == b"HTTP/1.1 408 Request Timeout", answer[:300]
    assert headers["connection"] == "close"
    if path == b"/v1/messages":
        assert body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error"
        assert "body" in body["error"]["message"]
    else:
        assert body["error"]["code"] == "request_timeout"
        assert "body" in body["error"]["message"]
    # Nothing of the half-read request reached the upstream provider.
    assert not slow_gw.upstream.requests


# ---- applications slow to read the body, or answering without it -----------------------


async def _slow_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """`/late`: busy for longer than the body timeout before it reads the body (between the
    body timer's first and second checks), then answers the body's size. `/early`: answers at
    once without reading the body, its answer's end coming after the body timeout."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            scope["state"][CONNECTION_LIMITS] = ConnectionLimits(TIMEOUT_S, TIMEOUT_S)
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/early":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"started", "more_body": True})
        await asyncio.sleep(2 * TIMEOUT_S)
        await send({"type": "http.response.body", "body": b" and done"})
        return
    await asyncio.sleep(1.6 * TIMEOUT_S)
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"%d" % size
    headers = [(b"content-length", b"%d" % len(body)), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture(scope="module")
def late_reader() -> Iterator[str]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(
        _slow_app,
        http="gatewayz.api.http_protocol:LimitedHttpToolsProtocol",
        lifespan="on",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_body_the_application_has_not_read_yet_is_not_timed_out(late_reader: str) -> None:
    """A body larger than uvicorn's read buffer, sent at once: reading pauses until the
    application reads, and that pause is not the client's silence."""
    body = b"x" * 1_000_000
    with connect(late_reader, CUT_WITHIN_S) as s:
        s.sendall(b"POST /late HTTP/1.1\r\nHost: x\r\ncontent-length: %d\r\n\r\n" % len(body))
        s.sendall(body)
        answer = read_to_close(s)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert answer.endswith(b"\r\n\r\n%d" % len(body))


def test_a_client_waiting_for_100_continue_is_not_timed_out(late_reader: str) -> None:
    """Until the application reads, the client waits for our `100 Continue`; after it, the
    client has the whole body timeout (it takes most of it here, past the timer's next check)."""
    with connect(late_reader, CUT_WITHIN_S) as s:
        s.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nexpect: 100-continue\r\ncontent-length: 5\r\n\r\n"
        )
        assert s.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        time.sleep(0.8 * TIMEOUT_S)
        s.sendall(b"hello")
        answer = read_to_close(s)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert answer.endswith(b"\r\n\r\n5")


def test_an_answer_begun_before_the_body_stalled_is_finished_not_cut(late_reader: str) -> None:
    """The application answered without the body; the client never sends it: no 408 in the
    middle of that answer, and the connection closes after it."""
    with connect(late_reader, CUT_WITHIN_S) as s:
        s.sendall(b"POST /early HTTP/1.1\r\nHost: x\r\ncontent-length: 100\r\n\r\n{")
        answer = read_to_close(s)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]
    assert b"408" not in answer
    assert answer.endswith(b"started\r\n9\r\n and done\r\n0\r\n\r\n")


def test_an_answer_given_before_the_body_is_not_followed_by_a_408(slow_gw: Gateway) -> None:
    """A request refused before its body was read (a wrong key: 401); the client never sends
    the body: the connection is closed, with nothing after the 401."""
    head = _head(slow_gw, b"/v1/chat/completions", 100).replace(
        slow_gw.api_key.encode(), b"gw_test_" + b"x" * 43
    )
    with _connect(slow_gw) as s:
        s.sendall(head + b"{")
        answer = read_to_close(s)
    assert answer.startswith(b"HTTP/1.1 401 "), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 1, answer
