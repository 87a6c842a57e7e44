"""The OpenAI dialect: `POST /v1/chat/completions`, `GET /v1/models[/{id}]`.

Raw ASGI endpoints: the chat route is the hot path, so it avoids per-request framework objects
(FastAPI dependency solving, Request/Response wrappers). Errors are OpenAI-shaped.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from typing import TYPE_CHECKING

import orjson
from starlette.types import Receive, Scope, Send

from gatewayz.api.asgi import header, read_body, send_bytes
from gatewayz.context import RequestContext
from gatewayz.errors import GatewayError, ModelNotFound
from gatewayz.pipeline.chat import Call, StreamSession
from gatewayz.security.auth import Principal, bearer_token
from gatewayz.wire import openai_chat, openai_request

if TYPE_CHECKING:
    from gatewayz.services import Services

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def send_openai_error(send: Send, err: GatewayError) -> None:
    headers = [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
    await send_bytes(send, err.status, openai_chat.render_error(err), headers=headers)


async def authenticate(services: Services, scope: Scope) -> Principal:
    key = bearer_token(header(scope, b"authorization"), header(scope, b"x-api-key"))
    return await services.auth.authenticate(key)


class ChatCompletions:
    """POST /v1/chat/completions"""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: RequestContext = scope["gw"]
        s = self.s
        try:
            principal = await authenticate(s, scope)
        except GatewayError as err:
            await send_openai_error(send, err)
            return
        call = Call(ctx, principal, "/v1/chat/completions")
        try:
            body = await read_body(scope, receive, s.settings.max_body_bytes)
            req = openai_request.parse_request(body)
            if req.stream:
                session = await s.pipeline.stream(call, req)
                await self._stream(call, session, receive, send)
            else:
                resp = await s.pipeline.complete(call, req)
                assert call.route is not None
                out = openai_chat.render_response(
                    resp, _completion_id(), int(time.time()), call.route.model
                )
                await send_bytes(send, 200, out, headers=_provider_headers(call))
        except GatewayError as err:
            call.fail(err)
            await send_openai_error(send, err)
        finally:
            call.finish(s.request_log)

    async def _stream(
        self, call: Call, session: StreamSession, receive: Receive, send: Send
    ) -> None:
        assert call.route is not None and call.req is not None
        rid, created, model = _completion_id(), int(time.time()), call.route.model
        include_usage = call.req.include_usage
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
                "headers": [*SSE_HEADERS, *_provider_headers(call)],
            }
        )
        ok = False
        try:
            async for batch in session.batches():
                out = []
                for chunk in batch:
                    if chunk.choices:
                        out.append(
                            openai_chat.render_chunk(chunk, rid, created, model, include_usage)
                        )
                    elif include_usage:  # the final usage chunk
                        out.append(openai_chat.render_chunk(chunk, rid, created, model, True))
                if out:
                    await send(
                        {"type": "http.response.body", "body": b"".join(out), "more_body": True}
                    )
            ok = True
            await send({"type": "http.response.body", "body": openai_chat.DONE})
        except GatewayError as err:
            session.settle_partial()
            if gone:
                call.row["status_code"], call.row["error_code"] = 499, "client_disconnected"
            else:
                # Headers are gone: the error becomes an event in OpenAI's shape, then the end.
                call.fail(err)
                event = b"data: " + openai_chat.render_error(err) + b"\n\n"
                await send({"type": "http.response.body", "body": event})
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if ok:
                session.release()
            else:
                session.abort()


def _completion_id() -> str:
    return "chatcmpl-" + secrets.token_hex(12)


def _provider_headers(call: Call) -> list[tuple[bytes, bytes]]:
    assert call.route is not None
    return [(b"x-gatewayz-provider", call.route.provider.slug.encode())]


class Models:
    """GET /v1/models and GET /v1/models/{id}"""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await authenticate(self.s, scope)
            model_id = scope.get("path_params", {}).get("model_id")
            models = self.s.model_list()
            if model_id is None:
                body = orjson.dumps({"object": "list", "data": models})
            else:
                found = next((m for m in models if m["id"] == model_id), None)
                if found is None:
                    raise ModelNotFound(f"The model '{model_id}' does not exist.", param="model")
                body = orjson.dumps(found)
            await send_bytes(send, 200, body)
        except GatewayError as err:
            await send_openai_error(send, err)
