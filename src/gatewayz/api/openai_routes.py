"""The OpenAI dialect: `POST /v1/chat/completions` and `GET /v1/models[/{id}]` (which answers
Anthropic's Models API too, to requests with `anthropic-version`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import orjson
from starlette.types import Receive, Scope, Send

from gatewayz.api.access import authorize
from gatewayz.api.anthropic_routes import ANTHROPIC
from gatewayz.api.asgi import header, send_bytes
from gatewayz.api.chat_endpoint import send_error
from gatewayz.canonical.types import ChatRequest, ChatResponse, StreamChunk, Usage
from gatewayz.catalog import model_views
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
        legacy = call.req is not None and call.req.legacy_functions
        return openai_chat.render_response(
            resp, _completion_id(), int(time.time()), call.route.model, legacy
        )

    def stream_writer(self, call: Call) -> OpenAIStreamWriter:
        assert call.route is not None and call.req is not None
        req = call.req
        return OpenAIStreamWriter(call.route.model, req.include_usage, req.legacy_functions)

    def render_error(self, err: GatewayError) -> bytes:
        return openai_chat.render_error(err)


class OpenAIStreamWriter:
    """`data: {chunk}` events, an optional usage chunk, then `data: [DONE]`."""

    def __init__(self, model: str, include_usage: bool, legacy: bool = False) -> None:
        self.rid, self.created, self.model = _completion_id(), int(time.time()), model
        self.include_usage = include_usage
        self.legacy = legacy  # `functions` requests: calls go back as `function_call`

    def start(self) -> bytes:
        return b""

    def feed(self, chunk: StreamChunk) -> bytes:
        return openai_chat.render_chunk(
            chunk, self.rid, self.created, self.model, self.include_usage, self.legacy
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
    """GET /v1/models and GET /v1/models/{id}: the catalog's models, then the configured and
    simulated ones; any name a chat request may use (an alias, a bare native id, a
    `{provider}/{native}` pin) answers its canonical model. With `anthropic-version` (and the
    key in `x-api-key` or `Authorization`), in Anthropic's shape, pages and errors
    (catalog/model_views.py)."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        anthropic = header(scope, b"anthropic-version") is not None
        try:
            await authorize(self.s, scope, permission="chat")
            model_id = scope.get("path_params", {}).get("model_id")
            catalog = self.s.catalog
            if model_id is not None:
                found = await model_views.find_model(catalog, self.s.resolver, model_id)
                body = orjson.dumps(model_views.anthropic_model(found) if anthropic else found)
            elif anthropic:
                page = model_views.Page.parse(scope["query_string"])
                body = orjson.dumps(model_views.anthropic_page(await catalog.model_index(), page))
            else:
                body = await catalog.openai_list_body()
            await send_bytes(send, 200, body)
        except GatewayError as err:
            await send_error(send, ANTHROPIC if anthropic else OPENAI, err)


OPENAI = OpenAIDialect()
