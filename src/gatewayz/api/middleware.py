"""Pure ASGI middleware (not Starlette's base HTTP middleware class, which costs every request
and breaks streaming).

Every HTTP response gets `X-Request-ID` (the caller's, when it sent a sane one: up to
`REQUEST_ID_LENGTH` characters, the size of every column that stores a request id; any other is
replaced by a generated one, never refused) and
`X-Gatewayz-Overhead-Ms`: time spent in the gateway until the response headers, minus the time
spent waiting for upstream providers (handlers add that to `scope["gw"].upstream_s`).

The request context (`scope["gw"]`) is built here, once per request: the request id, the
client's IP (the socket peer, or `X-Forwarded-For` behind a trusted proxy) and the API key the
request presents — the one place a key is read from the headers.

With tracing on (observability/tracing.py) each request is served inside its SERVER span.
"""

from __future__ import annotations

import re
from time import perf_counter
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gatewayz.api.http_protocol import MAX_HEAD_BYTES, too_large_body
from gatewayz.context import REQUEST_ID, RequestContext, bearer_token
from gatewayz.ids import unique_hex
from gatewayz.observability.tracing import Tracing
from gatewayz.security.client_ip import Network, client_ip
from gatewayz.storage.tables import REQUEST_ID_LENGTH

_SANE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,%d}$" % REQUEST_ID_LENGTH)


class RequestContextMiddleware:
    def __init__(
        self, app: ASGIApp, trusted: tuple[Network, ...] = (), tracing: Tracing | None = None
    ) -> None:
        self.app = app
        self.trusted = trusted
        self.tracing = tracing or Tracing()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = perf_counter()
        rid = b""
        authorization = api_key = None
        head = 0
        for k, v in scope["headers"]:
            head += len(k) + len(v)
            if k == b"x-request-id":
                rid = v
            elif k == b"authorization":
                authorization = v
            elif k == b"x-api-key":
                api_key = v
        if not _SANE_ID.match(rid):
            rid = unique_hex(16).encode()
        ip = client_ip(scope, self.trusted) or "unknown"
        ctx = RequestContext(rid.decode(), t0, ip=ip, key=bearer_token(authorization, api_key))
        scope["gw"] = ctx

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", ()))
                headers.append((b"x-request-id", rid))
                headers.append((b"x-gatewayz-overhead-ms", b"%.3f" % ctx.overhead_ms()))
                message["headers"] = headers
            await send(message)

        # Log lines made while this request is served carry its id (observability/log_config.py).
        token = REQUEST_ID.set(ctx.request_id)
        try:
            if head > MAX_HEAD_BYTES:  # a whole oversized head that came in one read
                await _head_too_large(send_with_headers)
            elif self.tracing.on:
                await self._traced(scope, receive, send_with_headers, ctx.request_id)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            REQUEST_ID.reset(token)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, request_id: str) -> None:
        """The request inside its server span (a child of the caller's `traceparent`)."""
        with self.tracing.server_span(scope, request_id) as span:

            async def send_traced(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.responded(message["status"])
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                span.routed(scope)


async def _head_too_large(send: Send) -> None:
    body = too_large_body(MAX_HEAD_BYTES)
    await send(
        {
            "type": "http.response.start",
            "status": 431,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
