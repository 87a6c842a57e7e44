"""OpenTelemetry traces (CM-13.7): one SERVER span per HTTP request (api/middleware.py), with
child spans for authentication, each chat step (pipeline/steps.py) and each upstream attempt
(routing/fallback.py); exported in batches over OTLP/HTTP (protobuf).

On only when an OTLP endpoint is set (`OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT`, settings.py); the
SDK reads its other `OTEL_*` variables itself (`OTEL_SERVICE_NAME`, here "gatewayz" by default,
`OTEL_TRACES_SAMPLER`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`, ...). Off, callers test
`tracing.on` or get the shared `NO_SPAN`: nothing is made per request, no context var is touched.
The tracer provider is this object's own, not the process-global one (one process may hold many
apps: the tests). A stream's spans end when it ends: the server span, and the span of the step
that answered (`LiveSpan.end_with`); an upstream attempt's span ends once its stream is open.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from contextvars import Token
from types import TracebackType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gatewayz.context import UPSTREAM_TRACE
from gatewayz.settings import Settings

log = logging.getLogger("gatewayz.tracing")

W3C = TraceContextTextMapPropagator()
PROTOCOL = "http/protobuf"  # the one OTLP protocol exported with


class NoSpan:
    """What tracing that is off hands out: one shared object whose methods do nothing."""

    __slots__ = ()

    def __enter__(self) -> NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def set(self, key: str, value: Any) -> None:
        pass

    def end_with(self, stack: AsyncExitStack) -> None:
        pass


NO_SPAN = NoSpan()


class LiveSpan:
    """A started span: the current one (the parent of spans started inside) while its `with`
    block runs, ended at the block's end — or, after `end_with(stack)`, when that stack closes.
    An exception through the block marks it failed. `upstream`: while current, provider requests
    carry its W3C trace context (`UPSTREAM_TRACE`, read by providers/base.py)."""

    __slots__ = ("_later", "_token", "_upstream", "span", "upstream")

    def __init__(self, span: Span, upstream: bool = False) -> None:
        self.span = span
        self.upstream = upstream
        self._later = False
        self._token: Any = None
        self._upstream: Token[tuple[tuple[bytes, bytes], ...]] | None = None

    def __enter__(self) -> LiveSpan:
        ctx = trace.set_span_in_context(self.span)
        self._token = otel_context.attach(ctx)
        if self.upstream:
            carrier: dict[str, str] = {}
            W3C.inject(carrier, ctx)
            headers = tuple((k.encode(), v.encode()) for k, v in carrier.items())
            self._upstream = UPSTREAM_TRACE.set(headers)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._upstream is not None:
            UPSTREAM_TRACE.reset(self._upstream)
        otel_context.detach(self._token)
        if exc is not None:
            failed(self.span, exc)
        if not self._later:
            self.span.end()

    def set(self, key: str, value: Any) -> None:
        self.span.set_attribute(key, value)

    def responded(self, status: int) -> None:
        """An HTTP server span's response status (5xx: an error)."""
        self.span.set_attribute("http.response.status_code", status)
        if status >= 500:
            self.span.set_status(Status(StatusCode.ERROR))

    def routed(self, scope: Mapping[str, Any]) -> None:
        """Name a server span by its route once routed ("GET /v1/models/{model_id}"), or by its
        method alone when no route matched (unbounded paths make no span names)."""
        template = getattr(scope.get("route"), "path", None)  # FastAPI's routes
        if template is None and "endpoint" in scope:  # a plain route: the path, its params named
            template = scope["path"]
            for name, value in (scope.get("path_params") or {}).items():
                head, found, tail = template.rpartition(str(value))
                template = head + "{" + name + "}" + tail if found else template
        method = scope["method"]
        if template:
            self.span.set_attribute("http.route", template)
            self.span.update_name(f"{method} {template}")
        else:
            self.span.update_name(method)

    def end_with(self, stack: AsyncExitStack) -> None:
        """End when `stack` closes (a stream's end), failed if it closes on an exception."""
        self._later = True

        def end(exc_type: Any, exc: BaseException | None, tb: TracebackType | None) -> bool:
            if exc is not None:
                failed(self.span, exc)
            self.span.end()
            return False

        stack.push(end)


def failed(span: Span, exc: BaseException) -> None:
    """Mark `span` failed by `exc`: `error.type` is a GatewayError's code, else the class."""
    span.set_attribute("error.type", getattr(exc, "code", None) or type(exc).__qualname__)
    span.set_status(Status(StatusCode.ERROR, str(exc)[:200] or type(exc).__qualname__))
    if not isinstance(exc, asyncio.CancelledError):
        span.record_exception(exc)


class Tracing:
    """The app's tracer: `start` (at start-up) turns it on when an OTLP endpoint is set;
    `shutdown` exports what is still queued and turns it off."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings
        self.on = False
        self.propagate = settings is not None and settings.trace_propagate_upstream
        self.provider: TracerProvider | None = None
        self.tracer: trace.Tracer = trace.NoOpTracer()

    def start(self) -> None:
        s = self.settings
        if s is None or not s.otlp_endpoint_set or self.provider is not None:
            return
        if s.otlp_protocol != PROTOCOL:
            asked = s.otlp_protocol
            log.warning("OTLP protocol %r is not supported: exporting with %s", asked, PROTOCOL)
        resource = Resource.create()  # OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: "gatewayz"}))
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.provider = provider
        self.tracer = provider.get_tracer("gatewayz")
        self.on = True

    def shutdown(self) -> None:
        """Export the spans still queued (flush), then stop; tracing is off from here."""
        provider, self.provider = self.provider, None
        self.on = False
        self.tracer = trace.NoOpTracer()
        if provider is not None:
            provider.shutdown()

    async def stop(self) -> None:
        await asyncio.to_thread(self.shutdown)  # the flush is a blocking HTTP request

    # ---- spans ---------------------------------------------------------------------------
    def span(self, name: str) -> LiveSpan | NoSpan:
        """An internal span, child of the current one (`NO_SPAN` when off)."""
        if not self.on:
            return NO_SPAN
        return LiveSpan(self.tracer.start_span(name))

    def attempt(self, provider: str, model: str, number: int) -> LiveSpan | NoSpan:
        """A CLIENT span for one upstream attempt (GenAI conventions: "chat <model>")."""
        if not self.on:
            return NO_SPAN
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
            "gatewayz.attempt": number,
        }
        span = self.tracer.start_span(f"chat {model}", kind=SpanKind.CLIENT, attributes=attributes)
        return LiveSpan(span, upstream=self.propagate)

    def server_span(self, scope: Mapping[str, Any], request_id: str) -> LiveSpan:
        """The SERVER span of one HTTP request (an ASGI scope): the child of an incoming W3C
        `traceparent`, when the request carries one. Renamed by `LiveSpan.routed`."""
        carrier = {
            k.decode("latin-1"): v.decode("latin-1")
            for k, v in scope["headers"]
            if k == b"traceparent" or k == b"tracestate"
        }
        parent = W3C.extract(carrier) if carrier else None
        attributes = {
            "http.request.method": scope["method"],
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "gatewayz.request_id": request_id,
        }
        kind = SpanKind.SERVER
        span = self.tracer.start_span(scope["method"], parent, kind, attributes)
        return LiveSpan(span)

    def chat_done(self, row: Mapping[str, Any]) -> None:
        """A chat call's outcome (its request-log row, pipeline/call.py) on the current span
        (the server span), in the GenAI semantic conventions' terms."""
        span = trace.get_current_span()
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gatewayz.request_id": row["request_id"],
            "gen_ai.usage.input_tokens": row["prompt_tokens"],
            "gen_ai.usage.output_tokens": row["completion_tokens"],
            "gatewayz.stream": row["stream"],
        }
        optional = {
            "gen_ai.request.model": row["model"],
            "gen_ai.response.model": row["native_model"],
            "gen_ai.provider.name": row["provider"],
            "gatewayz.cache": row["cache"],
            "error.type": row["error_code"],
        }
        attributes.update((k, v) for k, v in optional.items() if v)
        if row["cost_nanos"] is not None:
            attributes["gatewayz.cost_usd"] = row["cost_nanos"] / 1e9
        span.set_attributes(attributes)
