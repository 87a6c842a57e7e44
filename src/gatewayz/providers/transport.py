"""A small pooled HTTP/1.1 client for upstream providers: asyncio protocol + httptools parser.

One `HttpPool` per provider origin, created once and reused for every request (keep-alive).
Bodies are read chunk by chunk as they arrive (streams are never buffered whole), with
back-pressure: the socket stops being read while the consumer is behind. Timeouts are per
attempt: connect, and read (waiting for the headers or for the next body chunk).

Why not httpx/aiohttp: the gateway's own overhead is the product, and a general-purpose client
spends more CPU per request than the rest of our request path combined. This one does only
what upstream calls need: TLS, keep-alive, chunked and content-length bodies, no redirects,
no compression (we send `Accept-Encoding: identity`).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

from gatewayz.providers.request_safety import check_request

_HIGH_WATER = 1 << 20  # pause reading the socket past 1 MiB of unread body
_IDLE_S = 30.0  # drop pooled connections idle longer than this


class TransportError(Exception):
    """No usable HTTP answer: connect failure, reset, malformed response."""


class ConnectError(TransportError):
    pass


class ReadTimeout(TransportError):
    pass


class _Conn(asyncio.Protocol):
    __slots__ = (
        "_body_mode",
        "_chunks",
        "_complete",
        "_error",
        "_headers_fut",
        "_loop",
        "_paused",
        "_size",
        "_waiter",
        "headers",
        "idle_since",
        "keep_alive",
        "parser",
        "received_any",
        "status",
        "transport",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._headers_fut: asyncio.Future[None] = self._loop.create_future()
        self._chunks: list[bytes] = []
        self._size = 0
        self._complete = False
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._paused = False
        self._body_mode = b""  # b"length", b"chunked" or b"" (until the connection closes)
        self.received_any = False
        self.keep_alive = False

    # ---- asyncio.Protocol ----------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(TransportError(f"malformed upstream response: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        if self._complete:
            return
        if self._headers_fut.done() and not self._body_mode:
            self._complete = True  # close-delimited body ends at EOF
            self._wake()
            return
        self._fail(TransportError(f"upstream closed the connection: {exc or 'EOF'}"))

    # ---- httptools callbacks ------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        self.headers.append((name, value))
        if name == b"content-length":
            self._body_mode = b"length"
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            self._body_mode = b"chunked"

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if self.status in (204, 304):
            self._body_mode = b"length"
        if not self._headers_fut.done():
            self._headers_fut.set_result(None)

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._size += len(body)
        if self._size > _HIGH_WATER and not self._paused and self.transport:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        # Ask now: once the message is complete the parser resets and always answers False.
        self.keep_alive = self.parser.should_keep_alive()
        self._complete = True
        self._wake()

    # ---- internals -------------------------------------------------------------------
    def _wake(self) -> None:
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        if not self._headers_fut.done():
            self._headers_fut.set_exception(exc)
            self._headers_fut.exception()  # mark retrieved
        w = self._waiter
        if w is not None and not w.done():
            w.set_exception(exc)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    async def wait_headers(self, timeout: float) -> None:  # noqa: ASYNC109
        if self._headers_fut.done():
            return self._headers_fut.result()
        try:
            async with asyncio.timeout(timeout):
                await self._headers_fut
        except TimeoutError:
            self.close()
            raise ReadTimeout(f"no response headers within {timeout:g}s") from None

    async def next_chunk(self, timeout: float) -> bytes | None:  # noqa: ASYNC109
        """The body bytes received since the last call; None once the body is complete."""
        while True:
            if self._chunks:
                data = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
                self._chunks.clear()
                self._size = 0
                if self._paused and self.transport is not None:
                    self._paused = False
                    self.transport.resume_reading()
                return data
            if self._complete:
                return None
            if self._error is not None:
                raise self._error
            waiter = self._waiter = self._loop.create_future()
            timer = self._loop.call_later(timeout, _expire, waiter, timeout)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None


def _expire(waiter: asyncio.Future[None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimeout(f"no data from upstream for {timeout:g}s"))


class UpstreamResponse:
    """An upstream answer whose body is read incrementally. Always `release()` it (or use
    `async with`): a fully read keep-alive connection returns to the pool, any other closes."""

    __slots__ = ("_conn", "_pool", "_read_timeout", "headers", "status")

    def __init__(self, pool: HttpPool, conn: _Conn, read_timeout: float) -> None:
        self._pool = pool
        self._conn: _Conn | None = conn
        self._read_timeout = read_timeout
        self.status = conn.status
        self.headers = conn.headers

    def header(self, name: bytes) -> bytes | None:
        for k, v in self.headers:
            if k == name:
                return v
        return None

    async def read(self, limit: int = 64 << 20) -> bytes:
        parts = []
        size = 0
        async for chunk in self.chunks():
            parts.append(chunk)
            size += len(chunk)
            if size > limit:
                self.abort()
                raise TransportError(f"upstream body larger than {limit} bytes")
        return b"".join(parts)

    async def chunks(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        while (chunk := await conn.next_chunk(self._read_timeout)) is not None:
            yield chunk

    def abort(self) -> None:
        """Close the connection now (client gone, error): the pending read ends with an error."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn._fail(TransportError("aborted"))
            conn.close()
            self._pool._done(conn, reuse=False)

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            reuse = conn._complete and conn.usable and conn.keep_alive
            self._pool._done(conn, reuse=reuse)

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()


class HttpPool:
    """Keep-alive connections to one origin, at most `max_connections` in use at once."""

    def __init__(
        self,
        base_url: str,
        *,
        max_connections: int = 512,
        connect_timeout: float = 10.0,
        read_timeout: float = 300.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.base_path = parts.path.rstrip("/")
        default_port = self.port == (443 if self.tls else 80)
        self.host_header = (self.host if default_port else f"{self.host}:{self.port}").encode()
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self._ssl = (ssl_context or ssl.create_default_context()) if self.tls else None
        self._idle: deque[_Conn] = deque()
        self._slots = asyncio.Semaphore(max_connections)
        self._closed = False

    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes = b"",
        *,
        read_timeout: float | None = None,
    ) -> UpstreamResponse:
        """Send a request and wait for the response headers; the body is read afterwards.
        UnsafeRequest, before anything is sent, for a target or header that is not safe."""
        if self._closed:
            raise TransportError("pool is closed")
        target = self.base_path + path
        check_request(method, target, headers)
        timeout = self.read_timeout if read_timeout is None else read_timeout
        head = [
            f"{method} {target} HTTP/1.1\r\n".encode(),
            b"host: ",
            self.host_header,
            b"\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\naccept-encoding: identity\r\n",
        ]
        for k, v in headers:
            head += (k, b": ", v, b"\r\n")
        head.append(b"\r\n")
        payload = b"".join(head) + body
        await self._slots.acquire()
        try:
            for attempt in range(2):
                conn, reused = await self._acquire()
                conn._reset()
                assert conn.transport is not None
                conn.transport.write(payload)
                try:
                    await conn.wait_headers(timeout)
                except ReadTimeout:
                    conn.close()  # mid-request: it can never carry another one
                    raise
                except TransportError:
                    conn.close()
                    # A pooled connection the server had already closed: retry once, fresh.
                    if reused and not conn.received_any and attempt == 0:
                        continue
                    raise
                except BaseException:  # cancelled (the client left, the deadline passed)
                    conn.close()
                    raise
                return UpstreamResponse(self, conn, timeout)
            raise TransportError("unreachable")  # pragma: no cover
        except BaseException:
            self._slots.release()
            raise

    async def _acquire(self) -> tuple[_Conn, bool]:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if conn.usable and now - conn.idle_since < _IDLE_S:
                return conn, True
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Conn(loop),
                    self.host,
                    self.port,
                    ssl=self._ssl,
                    server_hostname=self.host if self.tls else None,
                )
        except TimeoutError:
            raise ConnectError(
                f"connect to {self.host}:{self.port} timed out after {self.connect_timeout:g}s"
            ) from None
        except OSError as exc:
            raise ConnectError(f"cannot connect to {self.host}:{self.port}: {exc}") from None
        return conn, False

    def _done(self, conn: _Conn, *, reuse: bool) -> None:
        if reuse and not self._closed:
            conn.idle_since = time.monotonic()
            self._idle.append(conn)
        else:
            conn.close()
        self._slots.release()

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
