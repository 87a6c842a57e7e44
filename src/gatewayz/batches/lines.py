"""One request line of a batch through the same steps as an HTTP request, without HTTP.

What the edge does for a request (api/chat_endpoint.py), done for a line: a request context of
its own (the line's request id: `<batch id>-<line>-<attempt>`), a `Call` with the principal of
the key that created the batch, the line's body parsed by the endpoint's dialect (`LineKind`,
given by the edge), the chat or media steps (limits, routes, hold, failover, the charge), the
answer rendered as the endpoint renders it, and the request-log row written when the call ends,
whatever ended it. A line is charged what the HTTP request would be, less the batch discount
(`Call.discount`: every candidate's price scaled, billing/meter.py).

Its outcome becomes the line of the output or error file, in OpenAI's shape:
`{"id", "custom_id", "response": {"status_code", "request_id", "body"}, "error"}`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from time import perf_counter
from typing import Any

import orjson

from gatewayz.canonical.types import Usage
from gatewayz.context import REQUEST_ID, RequestContext
from gatewayz.errors import GatewayError, RateLimited
from gatewayz.ids import unique_hex
from gatewayz.observability.error_reports import report
from gatewayz.observability.requests import ServedRequests
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.chat import ChatPipeline
from gatewayz.providers.openai.chat import render_error
from gatewayz.security.auth import Principal

log = logging.getLogger("gatewayz.batches")
MAX_REQUEUE_WAIT_S = 60.0  # a rate limit lifting later than this fails the line instead


@dataclass(frozen=True, slots=True)
class LineKind:
    """How the lines of one endpoint are read and answered: the edge's dialect for it."""

    endpoint: str
    parse: Callable[[bytes], Any]  # the body → the canonical request (400s name the field)
    render: Callable[[Any, Call], bytes]  # the answer → the response body
    media: bool = False  # the media steps (embeddings), not chat's


@dataclass(slots=True)
class Outcome:
    status: int
    body: bytes  # the response body (JSON)
    request_id: str
    usage: Usage | None = None
    cost_nanos: int | None = None
    retry_after_s: float | None = None  # refused by the key's rate limits: run it again then

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300


class LineRunner:
    def __init__(self, pipeline: ChatPipeline, served: ServedRequests, discount: Decimal) -> None:
        self.pipeline = pipeline
        self.served = served
        self.discount = discount

    async def run(
        self,
        kind: LineKind,
        principal: Principal,
        request_id: str,
        body: bytes,
        answered: Callable[[], None] = lambda: None,
    ) -> Outcome:
        """Run one line; `answered` is called once the provider's answer is in (from then on the
        line finishes: it is charged and its outcome written, even while the worker stops)."""
        token = REQUEST_ID.set(request_id)
        call = Call(RequestContext(request_id, perf_counter()), kind.endpoint)
        call.principal = principal
        call.discount = self.discount
        call.row["user_id"], call.row["api_key_id"] = principal.user_id, principal.api_key_id
        steps = self.pipeline.media if kind.media else self.pipeline.steps
        try:
            async with call:
                call.req = kind.parse(body)
                answer = await steps.answer(call)
                answered()
                resp = answer.response()
                await steps.finish(call)
                rendered = kind.render(resp, call)
            usage = call.answer.usage if call.answer is not None else None
            return Outcome(200, rendered, request_id, usage, call.row["cost_nanos"])
        except GatewayError as err:
            call.fail(err)
            return _failed(err, request_id)
        except Exception as exc:
            err = _internal_error(exc, call)
            call.fail(err)
            return _failed(err, request_id)
        except BaseException:  # cancelled: the worker is stopping; the line runs again later
            call.row["status_code"], call.row["error_code"] = 499, "batch_line_interrupted"
            raise
        finally:
            self.served.record(call.served())
            REQUEST_ID.reset(token)


def _failed(err: GatewayError, request_id: str) -> Outcome:
    out = Outcome(err.status, render_error(err), request_id)
    if isinstance(err, RateLimited) and err.code == "rate_limit_exceeded":
        try:
            wait = float(err.headers.get("Retry-After", "1"))
        except ValueError:
            wait = 1.0
        if wait <= MAX_REQUEUE_WAIT_S:
            out.retry_after_s = max(wait, 0.5)
    return out


def _internal_error(exc: BaseException, call: Call) -> GatewayError:
    request_id = call.ctx.request_id
    log.error("internal error on batch request %s", request_id, exc_info=exc)
    provider = call.route.provider.slug if call.route is not None else None
    report(exc, request_id=request_id, route=call.row["endpoint"], provider=provider)
    return GatewayError(
        f"The gateway failed to complete this request (request id {request_id}). It was not "
        "charged.",
        code="internal_error",
    )


def _line_id() -> bytes:
    return orjson.dumps(f"batch_req_{unique_hex(12)}")


def output_line(custom_id: str, outcome: Outcome) -> str:
    """The output (or error) file's line of a line that ran."""
    return (
        b'{"id":%s,"custom_id":%s,"response":{"status_code":%d,"request_id":%s,"body":%s},'
        b'"error":null}'
        % (
            _line_id(),
            orjson.dumps(custom_id),
            outcome.status,
            orjson.dumps(outcome.request_id),
            outcome.body,
        )
    ).decode()


def error_line(custom_id: str, code: str, message: str) -> str:
    """The error file's line of a line that did not run (or whose answer was lost)."""
    error = {"code": code, "message": message}
    return orjson.dumps(
        {"id": f"batch_req_{unique_hex(12)}", "custom_id": custom_id, "response": None}
        | {"error": error}
    ).decode()
