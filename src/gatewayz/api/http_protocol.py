"""uvicorn's httptools protocol with a bound on request-head size, and Nagle off on every
connection.

httptools sets no limit: it would buffer a multi-megabyte header in full. This protocol counts
the bytes of a request head that is still incomplete after each network read; past
`MAX_HEAD_BYTES` it answers 431 (OpenAI's error shape) and closes the connection, so memory
stays bounded by the limit plus one read. A head that arrives complete in one read is checked
by the ASGI middleware instead (`api/middleware.py`), against the same limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024


def too_large_body(limit: int) -> bytes:
    return (
        b'{"error":{"message":"Request headers too large: the limit is %d bytes.",'
        b'"type":"invalid_request_error","param":null,"code":"request_headers_too_large"}}' % limit
    )


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True
        self._head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # asyncio turns Nagle off only on sockets created with proto=IPPROTO_TCP; the listening
        # socket uvicorn shares between workers (`--workers N`) has proto 0, so its connections
        # kept Nagle on, and a response written in two parts waited ~40 ms for a delayed ACK.
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        # The head is still incomplete: httptools is holding it. No request cycle exists yet,
        # so refusing here cannot collide with a response in progress.
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            body = too_large_body(MAX_HEAD_BYTES)
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json"
                b"\r\ncontent-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
            )
            self.transport.close()
