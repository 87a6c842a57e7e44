"""The Anthropic dialect: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

Authenticated by `x-api-key` or `Authorization: Bearer`; `anthropic-version` is accepted (the
translation follows the 2023-06-01 Messages API); `anthropic-beta` flags are sent on to
Anthropic-family providers. Errors use Anthropic's error shape; every answer carries the
request id as `request-id`, as Anthropic's do (the SDKs read it).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import Receive, Scope, Send

from gatewayz.api.access import authorize
from gatewayz.api.asgi import read_body, send_bytes
from gatewayz.api.chat_endpoint import ChatEndpoint, send_error
from gatewayz.canonical.types import ChatRequest, ChatResponse
from gatewayz.errors import GatewayError, InvalidRequest
from gatewayz.ids import unique_hex
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.tokens import estimate_tokens, prompt_chars
from gatewayz.providers.anthropic import request as anthropic_request
from gatewayz.providers.anthropic import response as anthropic_response

if TYPE_CHECKING:
    from gatewayz.services import Services


class AnthropicDialect:
    endpoint = "/v1/messages"

    def parse(self, body: bytes) -> ChatRequest:
        return anthropic_request.parse_request(body)

    def render(self, resp: ChatResponse, call: Call) -> bytes:
        assert call.route is not None
        return anthropic_response.render_response(resp, _message_id(), call.route.model)

    def stream_writer(self, call: Call) -> anthropic_response.StreamRenderer:
        assert call.route is not None and call.req is not None
        return anthropic_response.StreamRenderer(
            _message_id(), call.route.model, estimate_tokens(prompt_chars(call.req))
        )

    def render_error(self, err: GatewayError) -> bytes:
        return anthropic_response.render_error(err)


def _message_id() -> str:
    return "msg_" + unique_hex(12)


ANTHROPIC = AnthropicDialect()
REQUEST_ID = b"request-id"
_BETA = re.compile(r"[A-Za-z0-9._-]{1,100}")


class MessagesEndpoint(ChatEndpoint):
    """POST /v1/messages: the chat endpoint in Anthropic's dialect, with its beta flags."""

    id_header = REQUEST_ID

    def __init__(self, services: Services) -> None:
        super().__init__(services, ANTHROPIC)

    async def read(self, scope: Scope, receive: Receive) -> Any:
        req = await super().read(scope, receive)
        req.betas = betas(scope)
        return req


def betas(scope: Scope) -> list[str] | None:
    """The `anthropic-beta` flags (comma-separated, in one header or several)."""
    flags: list[str] = []
    for k, v in scope["headers"]:
        if k == b"anthropic-beta":
            flags.extend(f.strip() for f in v.decode("latin-1").split(",") if f.strip())
    for flag in flags:
        if not _BETA.fullmatch(flag):
            raise InvalidRequest(
                f"anthropic-beta: '{flag[:100]}' is not a beta flag", param="anthropic-beta"
            )
    return flags or None


class CountTokens:
    """POST /v1/messages/count_tokens: the prompt's size in tokens, estimated locally (about
    4 characters per token) — no provider is called and nothing is charged."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ids = [(REQUEST_ID, scope["gw"].request_id.encode())]
        try:
            await authorize(self.s, scope, permission="chat")
            body = await read_body(scope, receive, self.s.settings.max_body_bytes)
            req = anthropic_request.count_tokens_request(body)
            self.s.resolver.resolve(req.model)  # unknown models are a 404, as for /v1/messages
            chars = prompt_chars(req) + sum(
                len(t.name) + len(t.description or "") + len(orjson.dumps(t.parameters or {}))
                for t in req.tools or ()
            )
            tokens = estimate_tokens(chars, self.s.settings.chars_per_token)
            await send_bytes(send, 200, orjson.dumps({"input_tokens": tokens}), headers=ids)
        except GatewayError as err:
            await send_error(send, ANTHROPIC, err, ids)
