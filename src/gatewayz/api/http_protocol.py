"""uvicorn's httptools protocol with bounds on slow and oversized requests, and Nagle off on
every connection.

Head size: httptools sets no limit: it would buffer a multi-megabyte header in full. This
protocol counts the bytes of a request head that is still incomplete after each network read;
past `MAX_HEAD_BYTES` it answers 431 (OpenAI's error shape) and closes the connection, so memory
stays bounded by the limit plus one read. A head that arrives complete in one read is checked
by the ASGI middleware instead (`api/middleware.py`), against the same limit.

Slow clients: uvicorn times a connection only while it is idle after a response (its keep-alive
timeout, 5 s); a client trickling a head one byte at a time, or sending half a body and then
nothing, holds its connection (and, for the body, a request task) forever. Here:

- a request head must be complete within `head_read_timeout_s` of its first byte, else 408 and
  the connection is closed. A new connection counts from when it opened: uvicorn arms nothing
  for it, so a client that connects and never sends would be held forever. Such a connection
  is closed without an answer (there is no request to answer); waiting the head timeout rather
  than the shorter keep-alive one leaves a client that just connected its whole head budget.
- a body with no byte arriving for `body_read_timeout_s` gets 408 in the dialect of the path
  (OpenAI's or Anthropic's error shape) and the connection is closed; the application sees the
  client disconnect. This is the one place that sees every route's body (the raw ASGI endpoints
  and FastAPI's routes read bodies their own ways).

Time that is ours, not the client's, never counts: while reading is paused (flow control, or a
pipelined request waiting its turn), while a response is still being written on the connection,
or while the client waits for our `100 Continue`.

The timeouts come from the worker's settings through the application's lifespan state, which
uvicorn hands to every protocol it creates (`app.py`), with `gatewayz serve` and in tests alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from asyncio import TimerHandle
from dataclasses import dataclass
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gatewayz.api.asgi import speaks_anthropic
from gatewayz.errors import GatewayError, RequestTimeout
from gatewayz.providers.anthropic import common as anthropic_common
from gatewayz.providers.openai import chat as openai_chat
from gatewayz.settings import Settings

MAX_HEAD_BYTES = 64 * 1024
CONNECTION_LIMITS = "gatewayz.connection_limits"  # the key in the lifespan state


@dataclass(frozen=True)
class ConnectionLimits:
    head_read_timeout_s: float
    body_read_timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.head_read_timeout_s, settings.body_read_timeout_s)

    @classmethod
    def defaults(cls) -> ConnectionLimits:
        """The settings' defaults, for an application run without its lifespan."""
        fields = Settings.model_fields
        return cls(fields["head_read_timeout_s"].default, fields["body_read_timeout_s"].default)


def too_large_body(limit: int) -> bytes:
    return (
        b'{"error":{"message":"Request headers too large: the limit is %d bytes.",'
        b'"type":"invalid_request_error","param":null,"code":"request_headers_too_large"}}' % limit
    )


def _closing_response(status_line: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status_line, len(body), body)
    )


def _timeout_response(err: GatewayError, path: str) -> bytes:
    render = anthropic_common.render_error if speaks_anthropic(path) else openai_chat.render_error
    return _closing_response(b"408 Request Timeout", render(err))


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.app_state.get(CONNECTION_LIMITS) or ConnectionLimits.defaults()
        self._head_timeout: float = limits.head_read_timeout_s
        self._body_timeout: float = limits.body_read_timeout_s
        self._in_head = True  # a message has begun and its head is not complete (431 count)
        self._head_bytes = 0
        # From the connection's start, and from the end of each message, until a head is
        # complete; `_head_started` once a byte of that head (or stray CRLFs) arrived.
        self._awaiting_head = True
        self._head_started = False
        self._head_timer: TimerHandle | None = None
        # From a complete head until its message is complete; the time of the last byte.
        self._in_body = False
        self._body_timer: TimerHandle | None = None
        self._body_progress = 0.0
        self._body_was_ours = False  # at the timer's last check, the wait was ours

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # asyncio turns Nagle off only on sockets created with proto=IPPROTO_TCP; the listening
        # socket uvicorn shares between workers (`--workers N`) has proto 0, so its connections
        # kept Nagle on, and a response written in two parts waited ~40 ms for a delayed ACK.
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._head_started = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._awaiting_head = self._head_started = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        # An upgrade hands the connection to another protocol: no body of ours to time.
        self._in_body = not (self.parser.should_upgrade() and self._should_upgrade())
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._in_body = False
        self._awaiting_head = True
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head:
            self._head_started = True
        elif self._body_timer is not None:
            self._body_progress = self.loop.time()
        super().data_received(data)
        if self.transport.is_closing():
            return
        # Timers are armed after the read, so that a head or body that arrived whole costs none.
        if self._awaiting_head and self._head_started and self._head_timer is None:
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)
        elif self._in_body and self._body_timer is None:
            self._body_progress = self.loop.time()
            self._body_was_ours = False
            self._body_timer = self.loop.call_later(self._body_timeout, self._body_timed_out)
        if not self._in_head:
            return
        # The head is still incomplete: httptools is holding it. No request cycle exists yet,
        # so refusing here cannot collide with a response in progress.
        self._head_bytes += len(data)
        if self._head_bytes > MAX_HEAD_BYTES:
            body = too_large_body(MAX_HEAD_BYTES)
            self.transport.write(_closing_response(b"431 Request Header Fields Too Large", body))
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # A pipelined head or body the client began while we were still answering (it may wait
        # for our answer before sending the rest) gets its whole time from now.
        if self.transport.is_closing():
            return
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)
        self._body_progress = self.loop.time()

    def _ours_to_wait(self) -> bool:
        """Whether the connection is waiting on us: reading paused, or a response still being
        written (its client may send the next request's head before it ends)."""
        return self.flow.read_paused or (
            self.cycle is not None and not self.cycle.response_complete
        )

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._awaiting_head:
            return
        if self._ours_to_wait():
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_timed_out)
            return
        if self._head_started:
            err = RequestTimeout(
                f"Request headers not received in time: the limit is {self._head_timeout:g} s."
            )
            self.transport.write(_timeout_response(err, ""))
        self.transport.close()

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or not self._in_body:
            return
        cycle = self.cycle
        now = self.loop.time()
        # Reading paused, the request queued behind the previous one (pipelined), or the
        # client waiting for our `100 Continue`: not the client's silence. A wait that ended
        # since the last check counts as ended now (the client gets its whole time after it).
        ours = bool(self.flow.read_paused or self.pipeline or cycle.waiting_for_100_continue)
        if ours or self._body_was_ours:
            self._body_progress = now
        self._body_was_ours = ours
        wait = self._body_progress + self._body_timeout - now
        if wait > 0:
            self._body_timer = self.loop.call_later(wait, self._body_timed_out)
            return
        if cycle.response_started:
            # The application answered without the rest of the body: no 408 inside or after its
            # answer; once it is out, uvicorn's keep-alive timeout closes the silent connection.
            return
        err = RequestTimeout(
            f"Request body not received in time: no data for {self._body_timeout:g} s."
        )
        self.transport.write(_timeout_response(err, cycle.scope["path"]))
        # The application sees a client that went away: its reads end, its answer is dropped.
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()
