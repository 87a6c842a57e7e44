"""CM-13.7: each HTTP request creates a trace span — end to end: a real gateway (uvicorn, two
simulated providers serving one model) exports its spans over OTLP/HTTP to a real receiver on
127.0.0.1 that decodes them with the OTLP protobufs; plus the tracer itself (flush on shutdown,
the protocol, upstream propagation) against the same receiver."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx2 as httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from gatewayz.context import UPSTREAM_TRACE
from gatewayz.observability.tracing import NO_SPAN, Tracing
from gatewayz.settings import Settings
from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import (
    Gateway,
    fresh_pair,
    gateway_settings,
    pair_env,
    set_price,
    start_gateway,
)

MODEL = "shared-model"
MSG = [{"role": "user", "content": "Say hello"}]
ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
OTEL_VARS = (*ENDPOINT_VARS, "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_TRACES_SAMPLER")
STEP_SPANS = ("authenticate", "rate_limit", "routing", "cache lookup", "hold", "invoke")


# ---- a real OTLP/HTTP receiver ----------------------------------------------------------------
@dataclass
class Exported:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attrs: dict[str, Any]
    error: bool
    start_ns: int
    end_ns: int
    resource: dict[str, Any]


def _attrs(pairs: Any) -> dict[str, Any]:
    out = {}
    for kv in pairs:
        assert isinstance(kv, KeyValue)
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def _key(span: Exported) -> str:
    attempt = span.attrs.get("gatewayz.attempt")
    return span.name if attempt is None else f"{span.name} #{attempt}"


class Receiver:
    """Accepts `POST /v1/traces` (OTLP/HTTP, protobuf) and keeps every span it decodes."""

    def __init__(self) -> None:
        self.spans: list[Exported] = []
        self.posts = 0
        lock = self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                req = ExportTraceServiceRequest()
                req.ParseFromString(body)
                with lock:
                    receiver.posts += 1
                    receiver.spans += [
                        Exported(
                            span.name,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            span.kind,
                            _attrs(span.attributes),
                            span.status.code == Status.STATUS_CODE_ERROR,
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                            _attrs(rs.resource.attributes),
                        )
                        for rs in req.resource_spans
                        for scope in rs.scope_spans
                        for span in scope.spans
                    ]
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def find(self, match: Callable[[Exported], bool]) -> list[Exported]:
        with self.lock:
            return [s for s in self.spans if match(s)]

    def wait(self, match: Callable[[Exported], bool], timeout: float = 10.0) -> list[Exported]:
        deadline = time.monotonic() + timeout
        while not (found := self.find(match)) and time.monotonic() < deadline:
            time.sleep(0.02)
        return found

    def trace_of(self, request_id: str) -> tuple[Exported, dict[str, Exported]]:
        """The server span of a request and every span of its trace by name (the server span
        ends last: once it is here, the rest of its trace is too); upstream attempts, which
        share a name, by `chat <model> #<attempt>`."""
        servers = self.wait(
            lambda s: (
                s.kind == Span.SPAN_KIND_SERVER and s.attrs.get("gatewayz.request_id") == request_id
            )
        )
        assert len(servers) == 1, servers
        spans = self.find(lambda s: s.trace_id == servers[0].trace_id)
        return servers[0], {_key(s): s for s in spans}


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


@pytest.fixture
def otel_env(monkeypatch: pytest.MonkeyPatch, receiver: Receiver) -> pytest.MonkeyPatch:
    """The OTel variables of a test, none inherited; the endpoint set to the receiver."""
    for name in OTEL_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    return monkeypatch


def _gateway(
    tmp: Any, sims: tuple[Simulator, ...], endpoint: str | None, **settings: Any
) -> Gateway:
    """A gateway in front of the pair, started with the OTel endpoint set (or none): the SDK
    reads its variables when tracing starts, so they are restored right after."""
    with pytest.MonkeyPatch.context() as mp:
        for name in OTEL_VARS:
            mp.delenv(name, raising=False)
        if endpoint is not None:
            mp.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
            mp.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
        values = gateway_settings(tmp, sims[0], provider_env=pair_env(sims, MODEL), **settings)
        gw = start_gateway(values, sims[0])
    for slug in ("vllm", "lm-studio"):
        set_price(gw, MODEL, slug, prompt="1000", completion="2000")
    return gw


@pytest.fixture(scope="module")
def traced(
    sims: tuple[Simulator, ...], receiver: Receiver, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gw = _gateway(
        tmp_path_factory.mktemp("traced"), sims, receiver.url, trace_propagate_upstream=True
    )
    yield gw
    gw.stop()


@pytest.fixture(scope="module")
def untraced(
    sims: tuple[Simulator, ...], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    gw = _gateway(tmp_path_factory.mktemp("untraced"), sims, None, trace_propagate_upstream=True)
    yield gw
    gw.stop()


@pytest.fixture
def pair(traced: Gateway, sims: tuple[Simulator, ...]) -> tuple[str, Simulator, str, Simulator]:
    return fresh_pair(traced, sims, MODEL)


def _chat(gw: Gateway, rid: str, headers: dict[str, str] | None = None, **body: Any) -> Any:
    r = httpx.post(
        f"{gw.base_url}/chat/completions",
        json={"model": MODEL, "messages": MSG, **body},
        headers={"Authorization": f"Bearer {gw.api_key}", "X-Request-ID": rid, **(headers or {})},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r


def _id() -> str:
    return f"trace-{time.monotonic_ns()}"


# ---- the gateway, end to end ------------------------------------------------------------------
def test_cm_13_7_trace_created_per_request(
    traced: Gateway, receiver: Receiver, pair: tuple[str, Simulator, str, Simulator]
) -> None:
    rids = [_id() for _ in range(3)]
    for rid in rids:
        _chat(traced, rid)
    others = {_id(): f"/v1/models/{MODEL}", _id(): "/health", _id(): "/no/such/path"}
    auth = {"Authorization": f"Bearer {traced.api_key}"}
    statuses = [
        httpx.get(traced.root + path, headers={"X-Request-ID": rid, **auth}).status_code
        for rid, path in others.items()
    ]
    servers = [receiver.trace_of(rid)[0] for rid in [*rids, *others]]
    assert len({s.trace_id for s in servers}) == len(servers)  # one trace each
    for server in servers[:3]:
        assert server.name == "POST /v1/chat/completions"
        assert server.parent_id == ""
        assert server.attrs["http.request.method"] == "POST"
        assert server.attrs["url.path"] == "/v1/chat/completions"
        assert server.attrs["http.route"] == "/v1/chat/completions"
        assert server.attrs["http.response.status_code"] == 200
        assert server.resource["service.name"] == "gatewayz"
        assert not server.error
    assert [s.attrs["http.response.status_code"] for s in servers[3:]] == statuses
    # Named by the route, parameters named (not the path: it is unbounded); by the method
    # alone when no route matched.
    assert [s.name for s in servers[3:]] == ["GET /v1/models/{model_id}", "GET /health", "GET"]
    assert statuses[2] == 404
    unknown = servers[5]
    assert unknown.attrs["url.path"] == "/no/such/path"


def test_cm_13_7_child_spans_for_auth_steps_and_the_attempt(
    traced: Gateway, receiver: Receiver, pair: tuple[str, Simulator, str, Simulator]
) -> None:
    first = pair[0]
    rid = _id()
    _chat(traced, rid)
    server, spans = receiver.trace_of(rid)
    for name in STEP_SPANS:
        assert spans[name].parent_id == server.span_id, name
        assert spans[name].kind == Span.SPAN_KIND_INTERNAL
        assert server.start_ns <= spans[name].start_ns <= spans[name].end_ns <= server.end_ns
    # In order: each step after the one before it.
    ends = [spans[name].end_ns for name in STEP_SPANS]
    assert ends == sorted(ends)
    attempt = spans[f"chat {MODEL} #1"]
    assert attempt.kind == Span.SPAN_KIND_CLIENT
    assert attempt.parent_id == spans["invoke"].span_id
    assert attempt.attrs["gen_ai.provider.name"] == first
    assert attempt.attrs["gen_ai.request.model"] == MODEL
    assert attempt.attrs["gatewayz.attempt"] == 1
    assert len(spans) == len(STEP_SPANS) + 2


def test_cm_13_7_genai_attributes_and_token_counts(
    traced: Gateway, receiver: Receiver, pair: tuple[str, Simulator, str, Simulator]
) -> None:
    rid = _id()
    r = _chat(traced, rid)
    usage = r.json()["usage"]
    server, _ = receiver.trace_of(rid)
    a = server.attrs
    assert a["gatewayz.request_id"] == rid == r.headers["x-request-id"]
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.response.model"] == MODEL
    assert a["gen_ai.provider.name"] == r.headers["x-gatewayz-provider"]
    assert a["gen_ai.usage.input_tokens"] == usage["prompt_tokens"] > 0
    assert a["gen_ai.usage.output_tokens"] == usage["completion_tokens"] > 0
    assert a["gatewayz.cost_usd"] == pytest.approx(float(r.headers["x-gatewayz-cost"]))
    assert a["gatewayz.cost_usd"] > 0
    assert a["gatewayz.stream"] is False


def test_cm_13_7_streamed_request_spans_end_when_the_stream_ends(
    traced: Gateway, receiver: Receiver, pair: tuple[str, Simulator, str, Simulator]
) -> None:
    _, primary, _, _ = pair
    # Ten words, 50 ms apart: the stream lasts ~0.5 s after it opened.
    primary.fault(
        Fault(text="one two three four five six seven eight nine ten", chunk_delay_s=0.05)
    )
    rid = _id()
    r = _chat(traced, rid, stream=True, stream_options={"include_usage": True})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line[6:].startswith("{")]
    usage = events[-1]["usage"]
    server, spans = receiver.trace_of(rid)
    attempt, invoke = spans[f"chat {MODEL} #1"], spans["invoke"]
    # The attempt ends once the stream is open; the step that answered and the request's span
    # last until the stream's end.
    assert invoke.end_ns - attempt.end_ns >= 0.4e9
    assert server.end_ns >= invoke.end_ns
    assert server.end_ns - server.start_ns >= 0.4e9
    assert attempt.parent_id == invoke.span_id and invoke.parent_id == server.span_id
    assert server.attrs["gatewayz.stream"] is True
    assert server.attrs["gen_ai.usage.input_tokens"] == usage["prompt_tokens"] > 0
    assert server.attrs["gen_ai.usage.output_tokens"] == usage["completion_tokens"] > 0
    assert not invoke.error and not server.error


def test_cm_13_7_failover_attempts_are_siblings_under_invoke(
    traced: Gateway, receiver: Receiver, pair: tuple[str, Simulator, str, Simulator]
) -> None:
    first, primary, second, _ = pair
    primary.fault(Fault(status=503))
    rid = _id()
    r = _chat(traced, rid)
    assert r.headers["x-gatewayz-attempts"] == "2"
    server, spans = receiver.trace_of(rid)
    attempts = sorted(
        (s for s in spans.values() if s.kind == Span.SPAN_KIND_CLIENT),
        key=lambda s: s.start_ns,
    )
    assert [a.attrs["gen_ai.provider.name"] for a in attempts] == [first, second]
    assert [a.attrs["gatewayz.attempt"] for a in attempts] == [1, 2]
    assert {a.parent_id for a in attempts} == {spans["invoke"].span_id}
    failed, answered = attempts
    assert failed.error and failed.attrs["error.type"]
    assert not answered.error
    assert attempts[0].end_ns <= attempts[1].start_ns
    assert server.attrs["gen_ai.provider.name"] == second
    assert not server.error


def test_cm_13_7_incoming_traceparent_keeps_its_trace_and_goes_upstream(
    traced: Gateway, receiver: Receiver, pair: tuple[str, Simulator, str, Simulator]
) -> None:
    _, primary, _, _ = pair
    trace_id, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    rid = _id()
    _chat(traced, rid, headers={"traceparent": f"00-{trace_id}-{parent}-01"})
    server, spans = receiver.trace_of(rid)
    assert (server.trace_id, server.parent_id) == (trace_id, parent)
    assert all(s.trace_id == trace_id for s in spans.values())
    # trace_propagate_upstream is on here: the provider saw the attempt as its parent.
    attempt = spans[f"chat {MODEL} #1"]
    sent = primary.requests[-1].headers["traceparent"]
    assert sent == f"00-{trace_id}-{attempt.span_id}-01"


def test_cm_13_7_nothing_exported_without_an_endpoint(
    untraced: Gateway, receiver: Receiver, sims: tuple[Simulator, ...]
) -> None:
    for sim in sims:
        sim.clear()
    tracing = untraced.services.tracing
    assert isinstance(tracing, Tracing) and not tracing.on and tracing.provider is None
    # The shared no-op everywhere: the steps and the failover hold this very object.
    assert untraced.services.pipeline.steps.tracing is tracing
    assert untraced.services.pipeline.fallback.tracing is tracing
    assert tracing.span("x") is NO_SPAN and tracing.attempt("p", "m", 1) is NO_SPAN
    posts = receiver.posts
    rid = _id()
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    _chat(untraced, rid, headers={"traceparent": parent})
    time.sleep(0.3)  # ten export intervals of the traced gateway
    assert receiver.find(lambda s: s.attrs.get("gatewayz.request_id") == rid) == []
    assert receiver.posts == posts  # nothing else exported by anyone either
    assert all("traceparent" not in r.headers for sim in sims for r in sim.requests)


# ---- the tracer on its own ---------------------------------------------------------------------
def test_cm_13_7_on_only_with_an_otlp_endpoint(otel_env: pytest.MonkeyPatch) -> None:
    otel_env.delenv("OTEL_EXPORTER_OTLP_ENDPOINT")
    assert not Settings().otlp_endpoint_set
    off = Tracing(Settings())
    off.start()
    assert not off.on and off.provider is None
    otel_env.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:1/v1/traces")
    assert Settings().otlp_endpoint_set
    on = Tracing(Settings())
    on.start()
    try:
        assert on.on and on.provider is not None
    finally:
        on.shutdown()
    assert not on.on


def test_cm_13_7_shutdown_flushes_and_service_name_is_configurable(
    otel_env: pytest.MonkeyPatch, receiver: Receiver
) -> None:
    otel_env.setenv("OTEL_BSP_SCHEDULE_DELAY", "600000")  # never on its own during the test
    otel_env.setenv("OTEL_SERVICE_NAME", "gw-test")
    tracing = Tracing(Settings())
    tracing.start()
    with tracing.span("flushed") as span:
        span.set("probe", 1)
    time.sleep(0.2)
    assert receiver.find(lambda s: s.name == "flushed") == []
    tracing.shutdown()
    (flushed,) = receiver.find(lambda s: s.name == "flushed")
    assert flushed.attrs["probe"] == 1 and flushed.resource["service.name"] == "gw-test"


def test_cm_13_7_grpc_asked_for_warns_and_exports_over_http(
    otel_env: pytest.MonkeyPatch, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    otel_env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    tracing = Tracing(Settings())
    with caplog.at_level(logging.WARNING, logger="gatewayz.tracing"):
        tracing.start()
    assert "'grpc' is not supported: exporting with http/protobuf" in caplog.text
    with tracing.span("over-http"):
        pass
    tracing.shutdown()
    assert len(receiver.find(lambda s: s.name == "over-http")) == 1


@pytest.mark.parametrize("propagate", [False, True])
def test_cm_13_7_upstream_traceparent_only_when_asked(
    otel_env: pytest.MonkeyPatch, propagate: bool
) -> None:
    tracing = Tracing(Settings(trace_propagate_upstream=propagate))
    tracing.start()
    try:
        with tracing.attempt("vllm", MODEL, 1) as span:
            carried = dict(UPSTREAM_TRACE.get())
        assert UPSTREAM_TRACE.get() == ()
    finally:
        tracing.shutdown()
    if not propagate:
        assert carried == {}
        return
    ctx = span.span.get_span_context()  # type: ignore[union-attr]
    ids = f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"
    assert carried[b"traceparent"] == ids.encode()
