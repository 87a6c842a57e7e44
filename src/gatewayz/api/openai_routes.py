"""The OpenAI dialect: `POST /v1/chat/completions` and `GET /v1/models[/{id}]`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.types import Receive, Scope, Send

from gatewayz.api.access import authorize
from gatewayz.api.asgi import send_bytes
from gatewayz.api.chat_endpoint import send_error
from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk, Usage
from gatewayz.errors import GatewayError
from gatewayz.ids import unique_hex
from gatewayz.pipeline.call import Call
from gatewayz.providers.openai import chat as openai_chat
from gatewayz.providers.openai import request as openai_request

if TYPE_CHECKING:
    from gatewayz.services import Services


class OpenAIDialect:
    endpoint = "/v1/chat/completions"

    def parse(self, body: bytes) -> ChatRequest:
        return openai_request.parse_request(body)

    def render(self, resp: ChatResponse, call: Call) -> bytes:
        assert call.route is not None
        return openai_chat.render_response(
            resp, _completion_id(), int(time.time()), call.route.model
        )

    def stream_writer(self, call: Call) -> OpenAIStreamWriter:
        assert call.route is not None and call.req is not None
        return OpenAIStreamWriter(call.route.model, call.req.include_usage)

    def render_error(self, err: GatewayError) -> bytes:
        return openai_chat.render_error(err)


class OpenAIStreamWriter:
    """`data: {chunk}` events, an optional usage chunk, then `data: [DONE]`."""

    def __init__(self, model: str, include_usage: bool) -> None:
        self.rid, self.created, self.model = _completion_id(), int(time.time()), model
        self.include_usage = include_usage

    def start(self) -> bytes:
        return b""

    def feed(self, chunk: StreamChunk) -> bytes:
        return openai_chat.render_chunk(
            chunk, self.rid, self.created, self.model, self.include_usage
        )

    def finish(self, usage: Usage) -> bytes:
        if not self.include_usage:
            return openai_chat.DONE
        final = openai_chat.render_chunk(
            StreamChunk([], usage), self.rid, self.created, self.model, True
        )
        return final + openai_chat.DONE

    def error(self, err: GatewayError) -> bytes:
        return b"data: " + openai_chat.render_error(err) + b"\n\n"


def _completion_id() -> str:
    return "chatcmpl-" + unique_hex(12)


class Models:
    """GET /v1/models and GET /v1/models/{id}"""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await authorize(self.s, scope, permission="chat")
            model_id = scope.get("path_params", {}).get("model_id")
            # The catalog's models, then the configured and simulated ones (catalog/service.py).
            if model_id is None:
                body = await self.s.catalog.openai_list_body()
            else:
                body = await self.s.catalog.openai_model_body(model_id)
            await send_bytes(send, 200, body)
        except GatewayError as err:
            await send_error(send, OPENAI, err)


OPENAI = OpenAIDialect()
