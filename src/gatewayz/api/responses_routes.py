"""The OpenAI Responses dialect: `POST /v1/responses` (the chat steps, whole or streamed) and
stored responses, `GET` / `DELETE /v1/responses/{id}`.

A Responses request is parsed into the canonical request (providers/openai/responses.py) and goes
through the same chat steps as the other two dialects — limits, routes, cache, hold, failover,
charge, request log and metrics unchanged; only the edge reads and writes it differently.
Errors use OpenAI's error shape.

With `store` (the default) a completed response is saved for its owner once it is complete,
beside the sending of it (pipeline/stored_responses.py); `previous_response_id` puts the stored
conversation before the new input (after the new instructions: a continuation does not inherit
the old ones). Anonymous callers (`:free` models without a key) have nothing stored (`store`
answers false) and no conversation to continue.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.types import Receive, Scope, Send

from gatewayz.api.access import authorize
from gatewayz.api.asgi import read_body, send_bytes
from gatewayz.api.chat_endpoint import ChatEndpoint, send_error
from gatewayz.api.responses_stream import ResponsesStreamWriter
from gatewayz.canonical.types import ChatResponse
from gatewayz.context import RequestContext
from gatewayz.errors import GatewayError, InvalidRequest
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.stored_responses import new_response_id, not_found
from gatewayz.providers.openai import chat as openai_chat
from gatewayz.providers.openai import responses as codec
from gatewayz.providers.openai import responses_out as out
from gatewayz.security.auth import Principal

if TYPE_CHECKING:
    from gatewayz.services import Services


class ResponsesDialect:
    endpoint = "/v1/responses"

    def __init__(self, services: Services) -> None:
        self.s = services

    def parse(self, body: bytes) -> codec.ResponsesRequest:
        return codec.parse_request(body)

    def render(self, resp: ChatResponse, call: Call) -> bytes:
        req = _request(call)
        choice = resp.choices[0] if resp.choices else None
        output: list[dict[str, Any]] = []
        if choice is not None:
            output = out.output_items(choice.message, choice.finish_reason, choice.logprobs)
        status, incomplete = out.status_of(choice.finish_reason if choice else None)
        body = out.response_object(
            req.params, new_response_id(), int(time.time()), _model(call),
            status=status, output=output, usage=resp.usage, incomplete=incomplete,
        )  # fmt: skip
        self.completed(call, body, resp)
        return orjson.dumps(body)

    def stream_writer(self, call: Call) -> ResponsesStreamWriter:
        req = _request(call)
        return ResponsesStreamWriter(
            req.params,
            new_response_id(),
            _model(call),
            lambda body, resp: self.completed(call, body, resp),
        )

    def render_error(self, err: GatewayError) -> bytes:
        return openai_chat.render_error(err)

    def completed(self, call: Call, body: dict[str, Any], resp: ChatResponse) -> None:
        """A response is complete (rendered whole, or its stream ended): stored when asked."""
        req = _request(call)
        p = req.params
        if not p.store or call.principal is None or not call.principal.user_id:
            self.s.responses.unstored(body["id"])
            return
        answer = [c.message for c in resp.choices[:1]]
        conversation = [*req.messages[p.conversation_start :], *answer]
        self.s.responses.save(call.principal.user_id, body["id"], req.model, conversation, body)


def _request(call: Call) -> codec.ResponsesRequest:
    req = call.req
    assert isinstance(req, codec.ResponsesRequest)
    return req


def _model(call: Call) -> str:
    assert call.route is not None
    return call.route.model  # the name the client asked for


class ResponsesEndpoint(ChatEndpoint):
    """`POST /v1/responses`: the chat endpoint with the Responses dialect."""

    dialect: ResponsesDialect

    def __init__(self, services: Services) -> None:
        super().__init__(services, ResponsesDialect(services))

    async def read(self, scope: Scope, receive: Receive) -> Any:
        body = await read_body(scope, receive, self.s.settings.max_body_bytes)
        req = self.dialect.parse(body)
        p = req.params
        ctx: RequestContext = scope["gw"]
        user_id = ctx.auth.user_id if isinstance(ctx.auth, Principal) else ""
        if not user_id:
            p.store = False  # nobody to keep it for
        if p.previous_response_id is not None:
            if not user_id:
                raise not_found(p.previous_response_id, "previous_response_id")
            history = await self.s.responses.conversation(
                user_id, p.previous_response_id, len(body)
            )
            start = p.conversation_start
            req.messages[start:start] = history
        if not req.messages:
            raise InvalidRequest("Missing required parameter: 'input'.", param="input")
        return req


class StoredResponse:
    """`GET /v1/responses/{id}` (the response object as it was answered) and
    `DELETE /v1/responses/{id}`: the owner's only; anyone else's, an expired or unknown id is a
    404 `response_not_found`."""

    def __init__(self, services: Services) -> None:
        self.s = services
        self.dialect = ResponsesDialect(services)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response_id = scope["path_params"]["response_id"]
        try:
            principal = await authorize(self.s, scope, permission="chat")
            store = self.s.responses
            if scope["method"] == "DELETE":
                if not await store.delete(principal.user_id, response_id):
                    raise not_found(response_id)
                deleted = {"id": response_id, "object": "response", "deleted": True}
                await send_bytes(send, 200, orjson.dumps(deleted))
                return
            row = await store.get(principal.user_id, response_id)
            if row is None:
                raise not_found(response_id)
            await send_bytes(send, 200, row["response"].encode())
        except GatewayError as err:
            await send_error(send, self.dialect, err)
