"""One chat endpoint for every inbound dialect: authenticate → read the body → parse it into
the canonical request → the chat steps (pipeline/chat.py) → render in the caller's dialect,
whole or streamed.

A dialect (OpenAI's, Anthropic's) supplies only parsing and rendering (`Dialect`). Everything
else — auth, body limits, client-disconnect handling, the error event when an answer fails
mid-stream — is written once, here. The call runs inside its exit stack (pipeline/call.py): what
the steps took is given back before an error is answered; the request-log row is written when
the call ends, whatever ended it, with the status the client saw. An error nobody foresaw is a
500 in the caller's dialect (an error event once a stream has started), logged with its
traceback and reported (observability/error_reports.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, Protocol

from starlette.types import Receive, Scope, Send

from gatewayz.api.access import authorize
from gatewayz.api.asgi import JSON, read_body, send_bytes
from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk, Usage
from gatewayz.context import RequestContext
from gatewayz.errors import GatewayError
from gatewayz.observability.error_reports import report
from gatewayz.pipeline.answer import Answer
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.steps import Steps
from gatewayz.ratelimit import ANONYMOUS
from gatewayz.security.auth import Principal

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
    """The caller's principal: a key's, when the request presents one (failures and allowlist
    violations are audited), else the anonymous caller (`:free` models only: the Limit step)."""
    ctx: RequestContext = scope["gw"]
    if ctx.key is None:
        return ANONYMOUS
    with services.tracing.span("authenticate"):  # tracing off: a shared no-op
        return await authorize(services, scope, permission="chat")


async def send_error(
    send: Send, dialect: Dialect, err: GatewayError, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    headers += extra or ()
    await send_bytes(send, err.status, dialect.render_error(err), headers=headers)


class ChatEndpoint:
    """A raw ASGI endpoint (the hot path: no per-request framework objects). The media
    endpoints (api/media_routes.py) are this one with their own request reading and steps."""

    # A header that repeats the request id on every answer, under the dialect's own name
    # (Anthropic's SDKs read `request-id`; `X-Request-ID` is on every response already).
    id_header: bytes | None = None

    def __init__(self, services: Services, dialect: Dialect) -> None:
        self.s = services
        self.dialect = dialect

    def ids(self, ctx: RequestContext) -> list[tuple[bytes, bytes]]:
        return [(self.id_header, ctx.request_id.encode())] if self.id_header else []

    @property
    def steps(self) -> Steps:
        return self.s.pipeline.steps  # built at start-up, after the routes

    async def read(self, scope: Scope, receive: Receive) -> Any:
        """The canonical request of this endpoint."""
        body = await read_body(scope, receive, self.s.settings.max_body_bytes)
        return self.dialect.parse(body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: RequestContext = scope["gw"]
        s, dialect = self.s, self.dialect
        ids = self.ids(ctx)
        try:
            principal = await authenticate(s, scope)
        except GatewayError as err:
            await send_error(send, dialect, err, ids)
            return
        call = Call(ctx, dialect.endpoint)
        call.principal = principal
        call.row["user_id"] = principal.user_id or None
        call.row["api_key_id"] = principal.api_key_id or None
        started = False  # the status line is sent: errors become stream events
        try:
            async with call:
                call.req = await self.read(scope, receive)
                steps = self.steps
                answer = await steps.answer(call)
                if call.req.stream:
                    started = True
                    await self._stream(call, answer, receive, send, ids)
                else:
                    resp = answer.response()
                    await steps.finish(call)
                    rendered = dialect.render(resp, call)
                    headers = [*_meta(call), *call.limits, *ids]
                    if call.cost_header is not None:
                        headers.append(call.cost_header)
                    content_type = getattr(resp, "content_type", None)  # a transcription's
                    ctype = content_type.encode() if content_type else JSON
                    await send_bytes(send, 200, rendered, ctype, headers)
        except GatewayError as err:
            if not started:
                call.fail(err)
                meta = _meta(call) if call.attempts else []
                await send_error(send, dialect, err, [*call.limits, *meta, *ids])
        except Exception as exc:
            if not started:
                err = internal_error(exc, call)
                call.fail(err)
                await send_error(send, dialect, err, [*call.limits, *ids])
        except BaseException:  # cancelled: nobody is listening any more
            call.disconnected()
            raise
        finally:
            s.served.record(call.served())

    async def _stream(
        self,
        call: Call,
        answer: Answer,
        receive: Receive,
        send: Send,
        ids: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        """Write the answer as it arrives; at its end the steps finish (the charge) and the final
        usage (with the cost) closes the stream. An error after the status line becomes the
        dialect's error event and is raised again, for the call's stack to see it."""
        writer = self.dialect.stream_writer(call)

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            call.gone = True
            answer.abort()

        watcher = asyncio.create_task(watch_disconnect())
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*SSE_HEADERS, *_meta(call), *call.limits, *(ids or ())],
            }
        )
        try:
            first = writer.start()
            if first:
                await send({"type": "http.response.body", "body": first, "more_body": True})
            async for batch in answer.batches():
                data = b"".join(writer.feed(chunk) for chunk in batch if chunk.choices)
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
            answer.release()
            await self.steps.finish(call)
            assert answer.usage is not None
            await send({"type": "http.response.body", "body": writer.finish(answer.usage)})
        except Exception as exc:
            if call.gone:  # it paid for what it received (the hold's clean-up)
                call.disconnected()
            else:
                err = exc if isinstance(exc, GatewayError) else internal_error(exc, call)
                call.fail(err)
                await send({"type": "http.response.body", "body": writer.error(err)})
            raise
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def internal_error(exc: BaseException, call: Call) -> GatewayError:
    """A 500 for an error nobody foresaw: logged with its traceback and reported (Sentry, when
    on: without the request's texts), answered without details."""
    request_id = call.ctx.request_id
    log.error("internal error on request %s", request_id, exc_info=exc)
    provider = call.route.provider.slug if call.route is not None else None
    route = call.row["endpoint"]
    report(exc, request_id=request_id, route=route, provider=provider, request=call.req)
    return GatewayError(
        f"The gateway failed to complete this request (request id {request_id}). It was not "
        "charged; retry, and tell us the request id if it persists.",
        code="internal_error",
    )


def _meta(call: Call) -> list[tuple[bytes, bytes]]:
    """Which provider answered, after how many attempts (failover and 429 retries; 0 for a
    cached answer), and whether the response cache answered (`hit`, `semantic`) or not
    (`miss`, also for requests that are not cacheable); for a `router:*` name, the router's
    choice and why (`X-Gatewayz-Route`)."""
    assert call.route is not None
    meta = [
        (b"x-gatewayz-provider", call.route.provider.slug.encode()),
        (b"x-gatewayz-attempts", str(call.attempts).encode()),
        (b"x-gatewayz-cache", (call.cache or "miss").encode()),
    ]
    if call.decision is not None:  # a router chose the model (pipeline/smart_route.py)
        meta.append((b"x-gatewayz-route", call.decision.header().encode()))
    return meta
