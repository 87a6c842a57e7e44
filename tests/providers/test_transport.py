"""HttpPool / UpstreamResponse against real loopback servers: the project's simulator, and small
hand-written `asyncio.start_server` servers for wire-level cases (framing, reuse, drops)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import orjson
import pytest

from gatewayz.providers.sse import SSEDecoder
from gatewayz.providers.transport import (
    _HIGH_WATER,
    ConnectError,
    HttpPool,
    ReadTimeout,
    TransportError,
)
from gatewayz.simulators import Fault, Simulator

CHAT_BODY = orjson.dumps(
    {"model": "simulated/echo", "messages": [{"role": "user", "content": "Say hello to me"}]}
)
STREAM_BODY = orjson.dumps(
    {
        "model": "simulated/echo",
        "messages": [{"role": "user", "content": "Say hello to me please, in several words"}],
        "stream": True,
    }
)
JSON_HEADERS = [(b"content-type", b"application/json")]


# ---------------------------------------------------------------- a hand-written wire server
@dataclass
class SeenRequest:
    line: str
    headers: list[tuple[str, str]]
    body: bytes
    conn_no: int

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None


Handler = Callable[["WireServer", asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


@dataclass
class WireServer:
    """`asyncio.start_server` on 127.0.0.1; `handler(server, reader, writer, conn_no)` runs per
    connection. Counts accepted connections and records the requests read with `read_request`."""

    handler: Handler
    connections: int = 0
    requests: list[SeenRequest] = field(default_factory=list)
    state: dict[str, object] = field(default_factory=dict)
    port: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._on_conn, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(self, reader, writer, self.connections)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # stop(): end quietly (3.11 logs cancelled handlers)
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def read_request(self, reader: asyncio.StreamReader, conn_no: int) -> SeenRequest | None:
        """One request (head + content-length body); None at EOF."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        headers = []
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers.append((k.strip().lower(), v.strip()))
        length = int(dict(headers).get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        seen = SeenRequest(lines[0], headers, body, conn_no)
        self.requests.append(seen)
        return seen


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def _keep_alive_ok(
    srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int
) -> None:
    """Answer every request on the connection with a small content-length body."""
    while (req := await srv.read_request(r, n)) is not None:
        w.write(_ok(b"ok:" + req.body, b"x-reply: yes\r\n"))
        await w.drain()


@contextlib.asynccontextmanager
async def wire_server(handler: Handler) -> AsyncIterator[WireServer]:
    srv = WireServer(handler)
    await srv.start()
    try:
        yield srv
    finally:
        await srv.stop()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    s = Simulator()
    await s.start()
    yield s
    await s.stop()


async def _get(pool: HttpPool, path: str = "/x", body: bytes = b"") -> tuple[int, bytes]:
    resp = await pool.request("POST", path, [], body)
    async with resp:
        return resp.status, await resp.read()


# ---------------------------------------------------------------- request construction
def test_pool_parses_origin_and_host_header() -> None:
    p = HttpPool("https://api.example.com/openai/v1/")
    assert (p.host, p.port, p.tls, p.base_path) == ("api.example.com", 443, True, "/openai/v1")
    assert p.host_header == b"api.example.com"
    q = HttpPool("http://10.0.0.1:8080")
    assert (q.port, q.tls, q.base_path, q.host_header) == (8080, False, "", b"10.0.0.1:8080")
    assert HttpPool("http://h:80/v1").host_header == b"h"
    with pytest.raises(ValueError):
        HttpPool("ftp://example.com/")
    with pytest.raises(ValueError):
        HttpPool("not a url")


async def test_request_line_and_headers_sent_on_the_wire() -> None:
    async with wire_server(_keep_alive_ok) as srv:
        pool = HttpPool(srv.url + "/base/v1/")
        body = b'{"hello":"world"}'
        resp = await pool.request(
            "POST",
            "/chat/completions",
            [(b"authorization", b"Bearer sk-test"), (b"x-custom", b"custom-value")],
            body,
        )
        assert resp.status == 200
        assert resp.header(b"x-reply") == b"yes"
        assert resp.header(b"content-length") == str(len(body) + 3).encode()
        assert resp.header(b"missing") is None
        assert await resp.read() == b"ok:" + body
        resp.release()

        resp = await pool.request("GET", "/models", [])
        assert await resp.read() == b"ok:"
        resp.release()
        await pool.close()

    post, get = srv.requests
    assert post.line == "POST /base/v1/chat/completions HTTP/1.1"
    assert post.header("host") == f"127.0.0.1:{srv.port}"
    assert post.header("content-length") == str(len(body))
    assert post.header("accept-encoding") == "identity"
    assert post.header("authorization") == "Bearer sk-test"
    assert post.header("x-custom") == "custom-value"
    assert post.body == body
    assert get.line == "GET /base/v1/models HTTP/1.1"
    assert get.header("content-length") == "0"
    assert get.body == b""


async def test_simulator_records_path_headers_and_body(sim: Simulator) -> None:
    pool = HttpPool(sim.base_url)
    resp = await pool.request(
        "POST", "/chat/completions", [*JSON_HEADERS, (b"x-trace", b"t-1")], CHAT_BODY
    )
    assert resp.status == 200
    assert resp.header(b"content-type") == b"application/json"
    data = await resp.read()
    resp.release()
    await pool.close()

    rec = sim.requests[-1]
    assert (rec.method, rec.path) == ("POST", "/v1/chat/completions")
    assert rec.headers["host"] == f"127.0.0.1:{sim.port}"
    assert rec.headers["accept-encoding"] == "identity"
    assert rec.headers["x-trace"] == "t-1"
    assert rec.body == CHAT_BODY
    # content-length framed body, read whole
    assert int(resp.header(b"content-length") or b"-1") == len(data)
    parsed = orjson.loads(data)
    assert parsed["object"] == "chat.completion"
    assert "hello" in parsed["choices"][0]["message"]["content"].lower()


async def test_error_status_is_a_response_not_an_exception(sim: Simulator) -> None:
    sim.fault(Fault(status=503, retry_after="2"))
    pool = HttpPool(sim.base_url)
    async with await pool.request("POST", "/chat/completions", JSON_HEADERS, CHAT_BODY) as resp:
        assert resp.status == 503
        assert resp.header(b"retry-after") == b"2"
        assert "error" in orjson.loads(await resp.read())
    await pool.close()


# ---------------------------------------------------------------- body framing
async def test_chunked_body_yields_incrementally() -> None:
    second_sent = asyncio.Event()
    client_got_first = asyncio.Event()

    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        await srv.read_request(r, n)
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nhello \r\n")
        await w.drain()
        await client_got_first.wait()  # the second chunk only after the client saw the first
        w.write(b"5\r\nworld\r\n")
        second_sent.set()
        w.write(b"0\r\n\r\n")
        await w.drain()
        await r.read()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        resp = await pool.request("GET", "/stream", [])
        assert resp.header(b"transfer-encoding") == b"chunked"
        it = aiter(resp.chunks())
        first = await asyncio.wait_for(anext(it), 2)
        assert first == b"hello "
        assert not second_sent.is_set()
        client_got_first.set()
        rest = [c async for c in it]
        assert b"".join(rest) == b"world"
        resp.release()
        await pool.close()


async def test_simulator_stream_arrives_in_several_reads(sim: Simulator) -> None:
    sim.fault(Fault(chunk_delay_s=0.02))
    pool = HttpPool(sim.base_url)
    resp = await pool.request("POST", "/chat/completions", JSON_HEADERS, STREAM_BODY)
    assert resp.header(b"content-type") == b"text/event-stream"
    decoder = SSEDecoder()
    reads = 0
    events: list[bytes] = []
    async for data in resp.chunks():
        reads += 1
        events += [payload for _event, payload in decoder.feed(data)]
    resp.release()
    await pool.close()
    assert reads >= 3
    assert events[-1] == b"[DONE]"
    text = "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in map(orjson.loads, events[:-1])
        if c["choices"]
    )
    assert "hello" in text.lower()


async def test_close_delimited_body_ends_at_eof() -> None:
    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        await srv.read_request(r, n)
        w.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npart one, ")
        await w.drain()
        await asyncio.sleep(0.05)
        w.write(b"part two")
        await w.drain()
        w.close()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        resp = await pool.request("GET", "/", [])
        assert resp.header(b"content-length") is None
        assert await resp.read() == b"part one, part two"
        resp.release()
        # the connection ended with the body: the next request needs a new one
        resp = await pool.request("GET", "/", [])
        assert await resp.read() == b"part one, part two"
        resp.release()
        await pool.close()
    assert srv.connections == 2


async def test_empty_204_body() -> None:
    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        while await srv.read_request(r, n):
            w.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        for _ in range(2):
            resp = await asyncio.wait_for(pool.request("GET", "/", []), 2)
            assert resp.status == 204
            assert await asyncio.wait_for(resp.read(), 2) == b""
            resp.release()
        await pool.close()
    assert srv.connections == 1


# ---------------------------------------------------------------- keep-alive and retries
async def test_keep_alive_reuses_one_connection() -> None:
    async with wire_server(_keep_alive_ok) as srv:
        pool = HttpPool(srv.url)
        for i in range(3):
            assert await _get(pool, body=b"%d" % i) == (200, b"ok:%d" % i)
        await pool.close()
    assert srv.connections == 1
    assert [r.conn_no for r in srv.requests] == [1, 1, 1]


async def test_release_before_the_body_is_complete_closes_the_connection() -> None:
    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        while await srv.read_request(r, n):
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nhead\r\n")
            await w.drain()
            await asyncio.sleep(0.05)
            w.write(b"4\r\ntail\r\n0\r\n\r\n")
            await w.drain()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        resp = await pool.request("POST", "/", [], b"x")
        resp.release()  # body not complete: the connection cannot carry another request
        assert await _get(pool, body=b"y") == (200, b"headtail")
        assert await _get(pool, body=b"z") == (200, b"headtail")  # that one was complete
        await pool.close()
    assert srv.connections == 2
    assert [r.conn_no for r in srv.requests] == [1, 2, 2]


async def test_connection_closed_while_idle_is_replaced() -> None:
    """The server closes after each response without saying `connection: close`."""

    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        req = await srv.read_request(r, n)
        assert req is not None
        w.write(_ok(b"once:" + req.body))
        await w.drain()
        w.close()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        assert await _get(pool, body=b"1") == (200, b"once:1")
        await asyncio.sleep(0.05)  # the FIN reaches the idle pooled connection
        assert await _get(pool, body=b"2") == (200, b"once:2")
        assert await _get(pool, body=b"3") == (200, b"once:3")  # no pause: may race the FIN
        await pool.close()
    assert srv.connections == 3
    assert [r.body for r in srv.requests] == [b"1", b"2", b"3"]


async def test_stale_pooled_connection_is_retried_once_on_a_fresh_one() -> None:
    """The pooled connection dies when the request is already written (server read it and
    closed without answering): the request is sent again, once, on a new connection."""

    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        req = await srv.read_request(r, n)
        assert req is not None
        w.write(_ok(b"conn%d:" % n + req.body))
        await w.drain()
        await srv.read_request(r, n)  # the next request on this connection: hang up on it

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        assert await _get(pool, body=b"a") == (200, b"conn1:a")
        assert await _get(pool, body=b"b") == (200, b"conn2:b")
        await pool.close()
    assert srv.connections == 2
    assert [(r.conn_no, r.body) for r in srv.requests] == [(1, b"a"), (1, b"b"), (2, b"b")]


async def test_fresh_connection_dropped_without_answer_is_not_retried() -> None:
    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        await srv.read_request(r, n)  # then close without a response

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        with pytest.raises(TransportError) as exc_info:
            await pool.request("POST", "/", [], b"once")
        assert not isinstance(exc_info.value, ReadTimeout | ConnectError)
        await pool.close()
    assert len(srv.requests) == 1
    assert srv.connections == 1


async def test_simulator_drop_without_response_raises(sim: Simulator) -> None:
    sim.fault(Fault(drop_after_chunks=0))
    pool = HttpPool(sim.base_url)
    with pytest.raises(TransportError):
        await pool.request("POST", "/chat/completions", JSON_HEADERS, CHAT_BODY)
    assert len(sim.requests) == 1
    await pool.close()


# ---------------------------------------------------------------- errors and timeouts
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connect_error_on_closed_port_releases_the_slot() -> None:
    pool = HttpPool(f"http://127.0.0.1:{_closed_port()}/v1", max_connections=1)
    for _ in range(2):  # a leaked slot would make the second attempt hang
        with pytest.raises(ConnectError, match="cannot connect"):
            await asyncio.wait_for(pool.request("GET", "/models", []), 2)
    await pool.close()


async def test_read_timeout_on_headers_is_not_retried(sim: Simulator) -> None:
    pool = HttpPool(sim.base_url, read_timeout=0.2, max_connections=1)
    # warm the pool: the slow request goes out on a reused connection (the retryable case)
    async with await pool.request("POST", "/chat/completions", JSON_HEADERS, CHAT_BODY) as r:
        await r.read()
    sim.fault(Fault(delay_s=1.0))
    t0 = time.monotonic()
    with pytest.raises(ReadTimeout, match="no response headers"):
        await pool.request("POST", "/chat/completions", JSON_HEADERS, CHAT_BODY)
    assert time.monotonic() - t0 < 0.9  # the timeout, not the 1 s upstream delay
    assert len(sim.requests) == 2  # the warm-up and the timed-out one, not a retry
    # the slot was released and the timed-out connection was not pooled
    async with await pool.request("POST", "/chat/completions", JSON_HEADERS, CHAT_BODY) as r:
        assert r.status == 200
        assert orjson.loads(await r.read())["object"] == "chat.completion"
    await pool.close()


@pytest.mark.parametrize("how", ["read timeout", "cancelled"])
async def test_a_request_abandoned_before_its_headers_closes_its_connection(how: str) -> None:
    """A timed-out or cancelled request's connection is closed at once (the provider sees
    EOF), never left open and unpooled until the provider gives up on it."""
    eof = asyncio.Event()

    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        await srv.read_request(r, n)  # and never answer
        await r.read()  # returns at EOF
        eof.set()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url, read_timeout=0.2 if how == "read timeout" else 30)
        if how == "read timeout":
            with pytest.raises(ReadTimeout):
                await pool.request("POST", "/", [], b"x")
        else:
            task = asyncio.create_task(pool.request("POST", "/", [], b"x"))
            while not srv.requests:
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await asyncio.wait_for(eof.wait(), 2)
        await pool.close()


async def test_per_request_read_timeout_overrides_the_pool_default(sim: Simulator) -> None:
    pool = HttpPool(sim.base_url, read_timeout=30)
    sim.fault(Fault(delay_s=1.0))
    with pytest.raises(ReadTimeout):
        await pool.request("POST", "/chat/completions", JSON_HEADERS, CHAT_BODY, read_timeout=0.1)
    await pool.close()


async def test_read_timeout_between_body_chunks() -> None:
    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        while await srv.read_request(r, n):
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
            await w.drain()
            if n == 1:
                await asyncio.sleep(5)  # stalls mid-body (cancelled when the server stops)
            w.write(b"0\r\n\r\n")

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url, read_timeout=0.2)
        resp = await pool.request("GET", "/", [])
        it = aiter(resp.chunks())
        assert await anext(it) == b"abc"
        t0 = time.monotonic()
        with pytest.raises(ReadTimeout, match="no data from upstream"):
            await anext(it)
        assert 0.15 < time.monotonic() - t0 < 0.9
        resp.release()
        assert await _get(pool) == (200, b"abc")  # on a new connection
        await pool.close()
    assert srv.connections == 2


async def test_simulator_stall_between_events_times_out(sim: Simulator) -> None:
    sim.fault(Fault(chunk_delay_s=1.0))
    pool = HttpPool(sim.base_url, read_timeout=0.2)
    resp = await pool.request("POST", "/chat/completions", JSON_HEADERS, STREAM_BODY)
    got = b""
    with pytest.raises(ReadTimeout):
        async for data in resp.chunks():
            got += data
    assert got.startswith(b"data: ")  # the first event arrived before the stall
    resp.abort()
    await pool.close()


async def test_truncated_content_length_body_raises(sim: Simulator) -> None:
    sim.fault(Fault(drop_after_chunks=1))  # headers and half the body, then the drop
    pool = HttpPool(sim.base_url)
    resp = await pool.request("POST", "/chat/completions", JSON_HEADERS, CHAT_BODY)
    assert resp.status == 200
    with pytest.raises(TransportError, match="closed the connection"):
        await resp.read()
    resp.release()
    await pool.close()


async def test_simulator_stream_dropped_mid_body_raises(sim: Simulator) -> None:
    sim.fault(Fault(drop_after_chunks=2, chunk_delay_s=0.01))
    pool = HttpPool(sim.base_url)
    resp = await pool.request("POST", "/chat/completions", JSON_HEADERS, STREAM_BODY)
    decoder = SSEDecoder()
    events = []
    with pytest.raises(TransportError):
        async for data in resp.chunks():
            events += decoder.feed(data)
    assert len(events) == 2
    resp.release()
    await pool.close()


async def test_read_limit_aborts() -> None:
    async with wire_server(_keep_alive_ok) as srv:
        pool = HttpPool(srv.url)
        resp = await pool.request("POST", "/", [], b"x" * 100)
        with pytest.raises(TransportError, match="larger than 10 bytes"):
            await resp.read(limit=10)
        resp.release()  # no-op after the abort
        assert await _get(pool, body=b"z") == (200, b"ok:z")
        await pool.close()
    assert srv.connections == 2


async def test_malformed_response_raises_transport_error() -> None:
    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        await srv.read_request(r, n)
        w.write(b"HTTX/9.9 banana\r\n\r\n")
        await w.drain()
        await r.read()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        with pytest.raises(TransportError, match="malformed upstream response") as exc_info:
            await asyncio.wait_for(pool.request("GET", "/", []), 2)
        assert type(exc_info.value) is TransportError
        await pool.close()
    assert len(srv.requests) == 1  # not retried


async def test_malformed_chunked_framing_raises_mid_body() -> None:
    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        await srv.read_request(r, n)
        w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\nok\r\n")
        await w.drain()
        await asyncio.sleep(0.02)
        w.write(b"zz-not-hex\r\n\r\n")
        await w.drain()
        await r.read()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        resp = await pool.request("GET", "/", [])
        got = []
        with pytest.raises(TransportError, match="malformed"):
            async for c in resp.chunks():
                got.append(c)
        assert got == [b"ok"]
        resp.release()
        await pool.close()


# ---------------------------------------------------------------- abort, limits, back-pressure
async def test_abort_mid_body_closes_the_connection() -> None:
    eof_seen = asyncio.Event()

    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        while await srv.read_request(r, n):
            w.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nfirst\r\n")
            await w.drain()
            if n == 1:
                await r.read()  # returns at EOF: the client hung up
                eof_seen.set()
                return
            w.write(b"0\r\n\r\n")

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url, max_connections=1)
        resp = await pool.request("GET", "/", [])
        it = aiter(resp.chunks())
        assert await anext(it) == b"first"
        pending = asyncio.ensure_future(anext(it))  # a reader waiting for more
        await asyncio.sleep(0.02)
        resp.abort()
        with pytest.raises(TransportError, match="aborted"):
            await pending
        await asyncio.wait_for(eof_seen.wait(), 2)
        assert [c async for c in resp.chunks()] == []  # nothing more after abort
        # the slot came back (max_connections=1) and the aborted connection was not reused
        resp2 = await asyncio.wait_for(pool.request("GET", "/", []), 2)
        assert await resp2.read() == b"first"
        resp2.release()
        await pool.close()
    assert srv.connections == 2
    assert [r.conn_no for r in srv.requests] == [1, 2]


async def test_max_connections_limits_concurrency() -> None:
    active = 0
    peak = 0

    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        nonlocal active, peak
        while (req := await srv.read_request(r, n)) is not None:
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.08)
            active -= 1
            w.write(_ok(req.body))
            await w.drain()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url, max_connections=2)
        results = await asyncio.gather(*(_get(pool, body=b"%d" % i) for i in range(5)))
        await pool.close()
    assert results == [(200, b"%d" % i) for i in range(5)]
    assert peak == 2
    assert srv.connections == 2
    assert len(srv.requests) == 5


async def test_backpressure_large_body_read_slowly_arrives_intact() -> None:
    size = 8 << 20
    payload = bytes(range(256)) * (size // 256)

    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        await srv.read_request(r, n)
        w.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
        for i in range(0, size, 64 << 10):
            w.write(payload[i : i + (64 << 10)])
            await w.drain()
        await r.read()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        resp = await pool.request("GET", "/big", [])
        parts = []
        async for c in resp.chunks():
            parts.append(c)
            await asyncio.sleep(0.1 if len(parts) == 1 else 0.005)  # a slow consumer
        resp.release()
        await pool.close()
    assert b"".join(parts) == payload
    # reading paused at the high-water mark: no read returned (nearly) the whole body at once
    assert max(map(len, parts)) <= _HIGH_WATER + (1 << 20)
    assert len(parts) >= 4


# ---------------------------------------------------------------- closing the pool
async def test_close_drops_idle_connections_and_refuses_requests() -> None:
    eof_seen = asyncio.Event()

    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        await _keep_alive_ok(srv, r, w, n)
        eof_seen.set()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        assert await _get(pool) == (200, b"ok:")
        await pool.close()
        await asyncio.wait_for(eof_seen.wait(), 2)  # the idle keep-alive connection was closed
        with pytest.raises(TransportError, match="closed"):
            await pool.request("GET", "/", [])
    assert len(srv.requests) == 1


async def test_response_released_after_close_is_not_pooled() -> None:
    eof_seen = asyncio.Event()

    async def handler(srv: WireServer, r: asyncio.StreamReader, w: asyncio.StreamWriter, n: int):
        await _keep_alive_ok(srv, r, w, n)
        eof_seen.set()

    async with wire_server(handler) as srv:
        pool = HttpPool(srv.url)
        resp = await pool.request("GET", "/", [])
        await pool.close()
        assert await resp.read() == b"ok:"  # an in-flight response still completes
        resp.release()
        await asyncio.wait_for(eof_seen.wait(), 2)
