"""Minimal, fast HTTP/1.1 server connection: an asyncio Protocol driven by httptools.

Keep-alive and pipelining (requests on one connection are answered strictly in order),
Content-Length and chunked request bodies, write flow control. A handler turns each parsed
``Request`` into a ``Reply``; replies without delays are written synchronously in one write."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import cast
from urllib.parse import unquote

import httptools

log = logging.getLogger(__name__)

SSE_CONTENT_TYPE = b"text/event-stream"
JSON_CONTENT_TYPE = b"application/json"
CHUNKED_END = b"0\r\n\r\n"
_MAX_QUEUED = 64
_FLUSH_TIMEOUT_S = 5.0
_TOO_LARGE = (
    b'{"error":{"message":"Request body too large.","type":"invalid_request_error",'
    b'"param":null,"code":"request_too_large"}}'
)
_INTERNAL_ERROR = (
    b'{"error":{"message":"Simulator internal error.","type":"server_error",'
    b'"param":null,"code":null}}'
)


@dataclass(slots=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool
    version: str
    query: str = ""


@dataclass(slots=True)
class Reply:
    """What to send: ``head`` (status line, headers and possibly the whole body), then the
    already-framed ``events`` and ``tail``. ``delay`` waits before anything is sent, ``gap``
    between events; ``drop_after`` aborts the connection after that many events (no tail);
    ``drop_now`` aborts it without sending anything."""

    head: bytes
    events: list[bytes] = field(default_factory=list)
    tail: bytes = b""
    keep_alive: bool = True
    delay: float = 0.0
    gap: float = 0.0
    drop_after: int | None = None
    drop_now: bool = False

    @property
    def immediate(self) -> bool:
        return self.delay <= 0 and self.gap <= 0 and self.drop_after is None


_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def _reason(status: int) -> bytes:
    return _REASONS.get(status, b"Status")


def response_head(
    status: int,
    content_type: bytes,
    keep_alive: bool,
    *,
    length: int | None = None,
    chunked: bool = False,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """Status line and headers. A body is framed by ``length``, or chunked, or (neither) ends
    when the connection closes."""
    parts = [b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n" % (status, _reason(status), content_type)]
    if chunked:
        parts.append(b"Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n")
    elif length is not None:
        parts.append(b"Content-Length: %d\r\n" % length)
    for name, value in headers:
        parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
    if not keep_alive:
        parts.append(b"Connection: close\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)


def response(
    status: int,
    body: bytes,
    keep_alive: bool = True,
    content_type: bytes = JSON_CONTENT_TYPE,
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    head = response_head(status, content_type, keep_alive, length=len(body), headers=headers)
    return head + body


def chunk(data: bytes) -> bytes:
    """One chunked transfer-encoding frame."""
    return b"%x\r\n%s\r\n" % (len(data), data)


Handler = Callable[[Request], Reply]


class Connection(asyncio.Protocol):
    """One client connection. ``conns`` is the server's registry of open connections."""

    def __init__(self, handler: Handler, conns: set[Connection], max_body: int) -> None:
        self._handler = handler
        self._conns = conns
        self._max_body = max_body
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._queue: deque[Request] = deque()
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._final: bytes | None = None  # set on a parse failure: written before closing
        self._busy = False
        self._closed = False
        self._reading_paused = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ transport events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._conns.add(self)
        sock = self._transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._conns.discard(self)
        self._can_write.set()
        if self._task is not None and not self._task.done():
            self._task.cancel()

    def pause_writing(self) -> None:
        self._can_write.clear()

    def resume_writing(self) -> None:
        self._can_write.set()

    def data_received(self, data: bytes) -> None:
        if self._closed or self._final is not None:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._final = b""
        except httptools.HttpParserError:
            if self._too_large:
                self._final = response(413, _TOO_LARGE, keep_alive=False)
            else:
                self._final = response(400, b"Bad Request", False, b"text/plain")
        self._pump()

    def abort(self) -> asyncio.Task[None] | None:
        """Drop the connection now; returns the reply task it cancelled, if any."""
        self._closed = True
        task = self._task
        cancelled = None
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
            cancelled = task
        if self._transport is not None:
            self._transport.abort()
        return cancelled

    # ------------------------------------------------------------------ parser callbacks
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        prior = self._headers.get(key)
        self._headers[key] = text if prior is None else f"{prior}, {text}"

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._max_body:
            self._too_large = True
            raise ValueError("request body too large")
        self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self._parser
        raw_path, _, raw_query = self._url.partition(b"?")
        path = unquote(raw_path.decode("latin-1"))
        self._queue.append(
            Request(
                method=parser.get_method().decode("latin-1"),
                path=path,
                query=raw_query.decode("latin-1"),
                headers=self._headers,
                body=b"".join(self._body),
                keep_alive=parser.should_keep_alive(),
                version=parser.get_http_version(),
            )
        )
        if len(self._queue) >= _MAX_QUEUED and self._transport is not None:
            self._transport.pause_reading()
            self._reading_paused = True

    # ------------------------------------------------------------------ replying
    def _pump(self) -> None:
        """Answer queued requests in order until one needs the event loop (delay, stream gaps)."""
        transport = self._transport
        while not self._busy and not self._closed and transport is not None:
            if not self._queue:
                if self._final is not None:
                    transport.write(self._final)
                    self._close()
                elif self._reading_paused:
                    self._reading_paused = False
                    transport.resume_reading()
                return
            req = self._queue.popleft()
            try:
                reply = self._handler(req)
            except Exception:
                log.exception("simulator handler failed for %s %s", req.method, req.path)
                body = response(500, _INTERNAL_ERROR, req.keep_alive)
                reply = Reply(body, keep_alive=req.keep_alive)
            if reply.immediate:
                if reply.drop_now:
                    self.abort()
                    return
                transport.write(reply.head + b"".join(reply.events) + reply.tail)
                if not reply.keep_alive:
                    self._close()
                    return
            else:
                self._busy = True
                self._task = asyncio.get_running_loop().create_task(self._send_later(reply))

    async def _send_later(self, reply: Reply) -> None:
        try:
            if await self._send(reply) and not self._closed:
                self._busy = False
                self._pump()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("simulator connection failed while replying")
            self.abort()

    async def _send(self, r: Reply) -> bool:
        """Send one delayed/streamed reply; False when the connection is gone or was dropped."""
        if r.delay > 0:
            await asyncio.sleep(r.delay)
        transport = self._transport
        if self._closed or transport is None:
            return False
        if r.drop_now:
            self.abort()
            return False
        events = r.events
        limit = len(events) if r.drop_after is None else min(r.drop_after, len(events))
        if r.gap <= 0:
            transport.write(r.head + b"".join(events[:limit]))
        else:
            transport.write(r.head + (events[0] if limit else b""))
            for event in events[1:limit]:
                await asyncio.sleep(r.gap)
                await self._can_write.wait()
                if self._closed:
                    return False
                transport.write(event)
        if r.drop_after is not None:
            if r.gap > 0:
                await asyncio.sleep(r.gap)
            await self._flush()
            self.abort()
            return False
        transport.write(r.tail)
        if not r.keep_alive:
            self._close()
            return False
        return True

    async def _flush(self) -> None:
        """Wait until the kernel has taken everything written so far (before an abort)."""
        transport = self._transport
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _FLUSH_TIMEOUT_S
        while transport is not None and not self._closed and loop.time() < deadline:
            if transport.get_write_buffer_size() == 0:
                return
            await asyncio.sleep(0.001)

    def _close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()
