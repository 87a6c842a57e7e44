"""One chat endpoint for every inbound dialect: authenticate → read body → parse into the
canonical request → pipeline → render in the caller's dialect, streaming or not.

A dialect (OpenAI's, Anthropic's) supplies only parsing and rendering (`Dialect`). Everything
else — auth, body limits, the request log, client-disconnect handling, the error event when a
provider fails mid-stream — is written once, here. An error nobody foresaw is a 500 in the
caller's dialect (an error event once a stream has started), logged with its traceback; the
call's exit stack has given back what the request held before the error is answered, and the
request log records the status the client saw.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Protocol

from starlette.types import Receive, Scope, Send

from gatewayz.api.asgi import header, read_body, send_bytes
from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk, Usage
from gatewayz.context import RequestContext
from gatewayz.errors import GatewayError
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.stream import StreamSession
from gatewayz.ratelimit import ANONYMOUS
from gatewayz.ratelimit.endpoint import admit, presents_key
from gatewayz.security.access import authorize
from gatewayz.security.auth import Principal, bearer_token

if TYPE_CHECKING:
    from gatewayz.services import Services

log = logging.getLogger("gatewayz.api")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class StreamWriter(Protocol):
    """Renders one response stream in a dialect (stateful: a dialect may need to open and
    close blocks)."""

    def start(self) -> bytes: ...

    def feed(self, chunk: StreamChunk) -> bytes: ...

    def finish(self, usage: Usage) -> bytes: ...

    def error(self, err: GatewayError) -> bytes: ...


class Dialect(Protocol):
    endpoint: str

    def parse(self, body: bytes) -> ChatRequest: ...

    def render(self, resp: ChatResponse, call: Call) -> bytes: ...

    def stream_writer(self, call: Call) -> StreamWriter: ...

    def render_error(self, err: GatewayError) -> bytes: ...


async def authenticate(services: Services, scope: Scope) -> Principal:
    key = bearer_token(header(scope, b"authorization"), header(scope, b"x-api-key"))
    # Failures are audited; the key's IP/domain allowlists are enforced (403, audited).
    return await authorize(services, scope, key, permission="chat")


async def send_error(
    send: Send, dialect: Dialect, err: GatewayError, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    headers += extra or ()
    await send_bytes(send, err.status, dialect.render_error(err), headers=headers)


class ChatEndpoint:
    """A raw ASGI endpoint (the hot path: no per-request framework objects)."""

    def __init__(self, services: Services, dialect: Dialect) -> None:
        self.s = services
        self.dialect = dialect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: RequestContext = scope["gw"]
        s, dialect = self.s, self.dialect
        try:
            # No key at all: anonymous, for `:free` models only (ratelimit.endpoint.admit).
            principal = await authenticate(s, scope) if presents_key(scope) else ANONYMOUS
        except GatewayError as err:
            await send_error(send, dialect, err)
            return
        call = Call(ctx, principal, dialect.endpoint)
        limits: list[tuple[bytes, bytes]] = []  # X-RateLimit-* once the call is counted
        started = False  # the response's status line is sent: errors become stream events
        try:
            async with call:
                body = await read_body(scope, receive, s.settings.max_body_bytes)
                req = dialect.parse(body)
                limits = await admit(s, scope, principal, call, req)
                if req.stream:
                    session = await s.pipeline.stream(call, req)
                    started = True
                    await self._stream(call, session, receive, send, limits)
                else:
                    resp = await s.pipeline.complete(call, req)
                    rendered = dialect.render(resp, call)
                    await s.pipeline.deliver(call, resp)
                    headers = [*_meta(call), *limits]
                    if call.cost_header is not None:
                        headers.append(call.cost_header)
                    await send_bytes(send, 200, rendered, headers=headers)
        except GatewayError as err:
            call.fail(err)
            meta = _meta(call) if call.attempts else []
            await send_error(send, dialect, err, [*limits, *meta])
        except Exception as exc:
            err = internal_error(exc, ctx.request_id)
            call.fail(err)
            if not started:
                await send_error(send, dialect, err, limits)
        except BaseException:  # cancelled: nobody is listening any more
            call.row["status_code"], call.row["error_code"] = 499, "client_disconnected"
            raise
        finally:
            call.finish(s.request_log)
            # A cached answer used no provider tokens: it does not count against token limits.
            tokens = 0 if call.cache else call.row["total_tokens"]
            await s.limiter.record_tokens(principal, tokens)

    async def _stream(
        self,
        call: Call,
        session: StreamSession,
        receive: Receive,
        send: Send,
        limits: list[tuple[bytes, bytes]],
    ) -> None:
        writer = self.dialect.stream_writer(call)
        gone = False

        async def watch_disconnect() -> None:
            nonlocal gone
            while (await receive())["type"] != "http.disconnect":
                pass
            gone = True
            session.abort()

        watcher = asyncio.create_task(watch_disconnect())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, *_meta(call), *limits],
            }
        )
        ok = False
        try:
            first = writer.start()
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            out: list[bytes] = []
            async for batch in session.batches():
                for chunk in batch:
                    if chunk.choices:
                        out.append(writer.feed(chunk))
                    elif chunk.usage is not None:  # the pipeline's final usage chunk
                        out.append(writer.finish(chunk.usage))
                data = b"".join(out)
                out.clear()
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            ok = True
            await send({"type": "http.response.body", "body": b""})
        except Exception as exc:
            err = exc if isinstance(exc, GatewayError) else internal_error(exc, call.ctx.request_id)
            if gone:  # bill what was produced before the client left
                await session.settle_partial()
                call.row["status_code"], call.row["error_code"] = 499, "client_disconnected"
            else:  # the provider (or the gateway) failed mid-stream: refunded
                await session.refund(err)
                # The status line is gone: the error becomes an event in the dialect's shape.
                call.fail(err)
                await send({"type": "http.response.body", "body": writer.error(err)})
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if ok:
                session.release()  # else the call's exit stack aborts the upstream


def internal_error(exc: BaseException, request_id: str) -> GatewayError:
    """A 500 for an error nobody foresaw: logged with its traceback, answered without details."""
    log.error("internal error on request %s", request_id, exc_info=exc)
    return GatewayError(
        f"The gateway failed to complete this request (request id {request_id}). It was not "
        "charged; retry, and tell us the request id if it persists.",
        code="internal_error",
    )


def _meta(call: Call) -> list[tuple[bytes, bytes]]:
    """Which provider answered, after how many attempts (failover and 429 retries; 0 for a
    cached answer), and whether the response cache answered (`hit`, `semantic`) or not
    (`miss`, also for requests that are not cacheable)."""
    assert call.route is not None
    return [
        (b"x-gatewayz-provider", call.route.provider.slug.encode()),
        (b"x-gatewayz-attempts", str(call.attempts).encode()),
        (b"x-gatewayz-cache", (call.cache or "miss").encode()),
    ]
