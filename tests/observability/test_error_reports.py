"""CM-13.6: unhandled exceptions are captured by Sentry (observability/error_reports.py).

The SDK talks to a real local receiver (an HTTP server on 127.0.0.1 that takes Sentry envelopes,
gzip or not) instead of sentry.io, in front of a real gateway (uvicorn, tests/e2e/harness.py)
and the provider simulator. What a test asserts about privacy is asserted on the raw bytes the
SDK sent."""

from __future__ import annotations

import asyncio
import gzip
import json
import secrets
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from gatewayz import __version__, background
from gatewayz.background import Periodic
from gatewayz.errors import GatewayError, InvalidRequest
from gatewayz.observability import error_reports
from gatewayz.pipeline.call import Call
from gatewayz.settings import ConfigError, Settings
from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import UPSTREAM_KEY, Gateway, gateway_settings, start_gateway

MODEL = "test-model"  # served by the "vllm" provider in the harness's settings


class InjectedForSentry(RuntimeError):
    """The error nobody foresaw (a class of its own: events are found by its name)."""


# ---- the receiver ------------------------------------------------------------------------------
class Receiver:
    """Sentry's ingestion endpoint, as far as the SDK sees it: POST /api/<project>/envelope/."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []  # each envelope as sent (decompressed)
        self.paths: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                with receiver.lock:
                    receiver.raw.append(body)
                    receiver.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.dsn = f"http://publickey@127.0.0.1:{self.port}/1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def mark(self) -> int:
        with self.lock:
            return len(self.raw)

    def since(self, mark: int) -> list[bytes]:
        with self.lock:
            return self.raw[mark:]

    def events(self, mark: int) -> list[dict[str, Any]]:
        return [event for raw in self.since(mark) for event in _events(raw)]


def _events(raw: bytes) -> list[dict[str, Any]]:
    """The error events of one envelope: a header line, then items (a header line with the
    item's type and maybe its length, then its payload)."""
    out = []
    _, _, rest = raw.partition(b"\n")
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] :].lstrip(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        if header.get("type") == "event":
            out.append(json.loads(payload))
    return out


def _flush_and_collect(receiver: Receiver, mark: int, settle_s: float = 0.3) -> list[Any]:
    """Every event sent since `mark`: the SDK's queue flushed, then a moment for stragglers."""
    import sentry_sdk

    sentry_sdk.flush(timeout=5)
    time.sleep(settle_s)
    return receiver.events(mark)


def _exception_type(event: dict[str, Any]) -> str:
    return str(event["exception"]["values"][-1]["type"])


# ---- fixtures ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def gw(
    receiver: Receiver, upstream: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway reporting to the receiver. Its shutdown closes the SDK's client: nothing is
    reported after this module, by it or by any other gateway in this process."""
    settings = gateway_settings(
        tmp_path_factory.mktemp("gw"), upstream, sentry_dsn=receiver.dsn, ip_rate_limit_rpm=100_000
    )
    gateway = start_gateway(settings, upstream)
    try:
        assert error_reports._client is not None, "the gateway's start initialised Sentry"
        yield gateway
    finally:
        gateway.stop()
        if error_reports._client is not None:  # the server did not shut down in time
            asyncio.run(error_reports.shutdown())
    import sentry_sdk

    assert not sentry_sdk.get_client().is_active()
    assert background.report_failure is None


def _chat(gw: Gateway, rid: str, prompt: str, path: str = "/v1/chat/completions") -> httpx.Response:
    body = {"model": MODEL, "max_tokens": 20, "messages": [{"role": "user", "content": prompt}]}
    headers = {"Authorization": f"Bearer {gw.api_key}", "X-Request-ID": rid}
    if path == "/v1/messages":
        headers = {"x-api-key": gw.api_key, "anthropic-version": "2023-06-01", "X-Request-ID": rid}
    return httpx.post(gw.root + path, json=body, headers=headers, timeout=30)


def _fail_after_the_answer(gw: Gateway, monkeypatch: pytest.MonkeyPatch, message: Any) -> None:
    """Make the Invoke step's finish (the provider has answered: the call has its route) raise
    `InjectedForSentry(message(call))`."""
    (invoke,) = [s for s in gw.services.pipeline.steps.steps if type(s).__name__ == "Invoke"]

    async def finish(call: Call) -> None:
        raise InjectedForSentry(message(call))

    monkeypatch.setattr(invoke, "finish", finish)


# ---- CM-13.6 -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "dialect"), [("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic")]
)
def test_cm_13_6_sentry_captures_exceptions(
    gw: Gateway, receiver: Receiver, monkeypatch: pytest.MonkeyPatch, path: str, dialect: str
) -> None:
    rid = "sentry-" + secrets.token_hex(6)
    _fail_after_the_answer(gw, monkeypatch, lambda call: "an unforeseen failure")
    mark = receiver.mark()
    r = _chat(gw, rid, "Say hello", path)

    # The client: a 500 in its dialect, with the request id (and no details of the failure).
    assert r.status_code == 500, r.text
    assert r.headers["x-request-id"] == rid
    error = r.json()["error"]
    if dialect == "openai":
        assert error["code"] == "internal_error" and error["type"] == "api_error"
    else:
        assert r.json()["type"] == "error" and error["type"] == "api_error"
    assert rid in error["message"] and "unforeseen" not in r.text

    # Sentry: exactly one event for it, with the exception and the tags.
    events = [
        e for e in _flush_and_collect(receiver, mark) if _exception_type(e) == "InjectedForSentry"
    ]
    assert len(events) == 1, events
    (event,) = events
    assert event["tags"] == {"request_id": rid, "route": path, "provider": "vllm"}
    assert event["exception"]["values"][-1]["value"] == "an unforeseen failure"
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "finish" and not any("vars" in f for f in frames)
    assert event["environment"] == "test" and event["release"] == __version__
    assert all(p == "/api/1/envelope/" for p in receiver.paths)


def test_cm_13_6_nothing_private_reaches_sentry(
    gw: Gateway, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The prompt, the caller's key, a provider key and a Bearer token, all in the failure's
    message (and the prompt and key in the request), appear nowhere in what the SDK sent."""
    rid = "sentry-" + secrets.token_hex(6)
    marker = "PROMPT-MARKER-" + secrets.token_hex(8)
    provider_key = "sk-proj-" + secrets.token_hex(16)
    bearer = secrets.token_hex(12)

    def message(call: Call) -> str:
        assert call.req is not None and call.ctx.key == gw.api_key
        prompt = call.req.messages[0].content
        return (
            f"failed for key {call.ctx.key}: prompt {prompt!r}, {json.dumps(prompt)}; "
            f"upstream {provider_key}; Authorization: Bearer {bearer}; api_key={bearer}"
        )

    _fail_after_the_answer(gw, monkeypatch, message)
    mark = receiver.mark()
    r = _chat(gw, rid, f"Please repeat {marker}\nand then say 'hi'", "/v1/chat/completions")
    assert r.status_code == 500

    events = [e for e in _flush_and_collect(receiver, mark) if e["tags"].get("request_id") == rid]
    assert len(events) == 1 and _exception_type(events[0]) == "InjectedForSentry"
    sent = b"".join(receiver.since(mark))
    key_secret = gw.api_key.removeprefix(f"gw_{gw.settings.env}_")
    for private in (marker, gw.api_key, key_secret, provider_key, bearer, UPSTREAM_KEY):
        assert private.encode() not in sent, private
    assert b"Please repeat" not in sent
    value = events[0]["exception"]["values"][-1]["value"]
    assert value.startswith('failed for key [Filtered]: prompt "[Filtered]", "[Filtered]"; ')
    assert "upstream [Filtered]; Authorization: [Filtered]" in value
    assert "request" not in events[0] and "user" not in events[0]


def test_gateway_errors_are_not_reported(
    gw: Gateway, receiver: Receiver, upstream: Simulator
) -> None:
    """Expected errors — a 400, an unknown model, a bad key, a provider's failure — are answered
    and not reported."""
    mark = receiver.mark()
    rids = [f"expected-{i}-" + secrets.token_hex(4) for i in range(4)]
    headers = {"Authorization": f"Bearer {gw.api_key}"}
    url = gw.base_url + "/chat/completions"
    r = httpx.post(url, json={"model": MODEL}, headers={**headers, "X-Request-ID": rids[0]})
    assert r.status_code == 400
    body = {"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(url, json=body, headers={**headers, "X-Request-ID": rids[1]})
    assert r.status_code == 404
    bad_key = {"Authorization": "Bearer gw_test_" + "x" * 43, "X-Request-ID": rids[2]}
    assert httpx.post(url, json=body, headers=bad_key).status_code == 401
    upstream.fault(Fault(status=500))
    r = _chat(gw, rids[3], "hello there")
    assert r.status_code == 502, r.text
    events = _flush_and_collect(receiver, mark)
    assert not [e for e in events if e.get("tags", {}).get("request_id") in rids], events
    expected = {c.__name__ for c in _subclasses(GatewayError)}
    assert not [e for e in events if _exception_type(e) in expected], events


def _subclasses(cls: type) -> set[type]:
    return {cls}.union(*(_subclasses(c) for c in cls.__subclasses__()))


def test_cm_13_6_the_app_handler_reports(
    gw: Gateway, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected error outside the chat path (a FastAPI route) is a 500 in the caller's
    dialect and reported with the request id and the route's template."""

    def broken() -> int:
        raise InjectedForSentry("health broke")

    monkeypatch.setattr(gw.services.meter.spool, "count", broken)
    mark = receiver.mark()
    r = httpx.get(gw.root + "/health", headers={"X-Request-ID": "health-probe-1"})
    assert r.status_code == 500 and r.json()["error"]["type"] == "api_error"
    events = [
        e for e in _flush_and_collect(receiver, mark) if _exception_type(e) == "InjectedForSentry"
    ]
    assert [e["tags"] for e in events] == [{"request_id": "health-probe-1", "route": "/health"}]


def test_cm_13_6_background_job_failures_are_reported(receiver: Receiver, gw: Gateway) -> None:
    class Broken(Periodic):
        name = "broken job " + secrets.token_hex(3)

        async def run_once(self) -> None:
            raise InjectedForSentry("the job broke")

    async def run_a_while() -> None:
        job = Broken(0.01)
        job.start()
        await asyncio.sleep(0.1)
        await job.stop()

    mark = receiver.mark()
    asyncio.run(run_a_while())
    events = [
        e for e in _flush_and_collect(receiver, mark) if _exception_type(e) == "InjectedForSentry"
    ]
    assert events and all(e["tags"] == {"job": Broken.name} for e in events)


def test_report_skips_gateway_errors_and_scrub_removes_everything_private(
    gw: Gateway, receiver: Receiver
) -> None:
    key = "gw_live_" + secrets.token_urlsafe(32)
    event: dict[str, Any] = {
        "request": {
            "method": "POST",
            "url": f"https://gw.example/v1/chat/completions?key={key}",
            "query_string": f"key={key}",
            "data": {"messages": [{"role": "user", "content": "secret prompt"}]},
            "cookies": {"session": "abc"},
            "headers": {"Authorization": f"Bearer {key}", "x-api-key": key, "Cookie": "a=b"}
            | {"Content-Type": "application/json", "X-Trace": f"token={key}"},
            "env": {"REMOTE_ADDR": "10.0.0.1"},
        },
        "user": {"ip_address": "10.0.0.1"},
        "breadcrumbs": {"values": [{"message": f"called with {key}", "data": {"api_key": key}}]},
        "extra": {"note": f"Bearer {key}", "password": "hunter2", "stripe": "sk_live_abcdefgh12"},
        "exception": {
            "values": [
                {
                    "type": "ValidationError",
                    "value": "1 error [type=x, input_value='secret prompt', input_type=str]",
                    "stacktrace": {"frames": [{"function": "f", "vars": {"key": key}}]},
                }
            ]
        },
    }
    out = error_reports.scrub(event, {})
    assert out is not None
    assert key not in json.dumps(out) and "secret prompt" not in json.dumps(out)
    assert "hunter2" not in json.dumps(out) and "sk_live_" not in json.dumps(out)
    assert out["request"] == {
        "method": "POST",
        "url": "https://gw.example/v1/chat/completions",
        "headers": {"Content-Type": "application/json", "X-Trace": "token=[Filtered]"},
    }
    assert "user" not in out and out["breadcrumbs"]["values"][0]["data"]["api_key"] == "[Filtered]"
    assert out["exception"]["values"][0]["stacktrace"]["frames"] == [{"function": "f"}]
    assert "input_value=[Filtered], input_type=str" in out["exception"]["values"][0]["value"]

    # While reporting is on (the gateway's), a GatewayError given to `report` is not sent.
    mark = receiver.mark()
    error_reports.report(InvalidRequest("a 400"), request_id="direct-400")
    error_reports.report(InjectedForSentry("not a GatewayError"), request_id="direct-500")
    sent = [e.get("tags", {}).get("request_id") for e in _flush_and_collect(receiver, mark)]
    assert [rid for rid in sent if rid and rid.startswith("direct-")] == ["direct-500"]


def test_a_failing_scrub_drops_the_event(
    gw: Gateway, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail closed: an event the scrubber could not clean is not sent."""

    def broken(*_args: Any) -> Any:
        raise ValueError("scrubber broke")

    monkeypatch.setattr(error_reports, "_clean", broken)
    mark = receiver.mark()
    error_reports.report(InjectedForSentry("x"), request_id="scrub-broke")
    sent = [e.get("tags", {}).get("request_id") for e in _flush_and_collect(receiver, mark)]
    assert "scrub-broke" not in sent


# ---- on only with a DSN; settings ----------------------------------------------------------
def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        env={"PATH": "/usr/bin:/bin", "SENTRY_AGENT_HINTS": "0"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_without_a_dsn_nothing_is_initialised() -> None:
    """No DSN: the SDK is not even imported, by the whole app or by reporting an error."""
    out = _python(
        "import sys, asyncio\n"
        "import gatewayz.app, gatewayz.services\n"
        "from gatewayz.observability import error_reports\n"
        "from gatewayz.settings import Settings\n"
        "assert error_reports.init(Settings()) is False\n"
        "error_reports.report(RuntimeError('x'), request_id='r')\n"
        "asyncio.run(error_reports.shutdown())\n"
        "print(sorted(m for m in sys.modules if m.startswith('sentry_sdk')))\n"
    )
    assert out == "[]"


def test_sentry_leaves_opentelemetry_alone() -> None:
    """sentry-sdk 3.x initialised as the gateway does: the global tracer provider and propagator
    are untouched, no OpenTelemetry module is imported, our own TracerProvider instance keeps
    exporting its spans, a report inside a span does not change the current span, and outgoing
    HTTP calls get no Sentry trace headers (no integration patches http.client)."""
    out = _python(
        "import sys, http.client\n"
        "from opentelemetry import propagate, trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from gatewayz.observability import error_reports\n"
        "from gatewayz.settings import Settings\n"
        "exporter = InMemorySpanExporter()\n"
        "provider = TracerProvider()\n"
        "provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "textmap = propagate.get_global_textmap()\n"
        "putrequest = http.client.HTTPConnection.putrequest\n"
        "before = {m for m in sys.modules if m.startswith('opentelemetry')}\n"
        "assert error_reports.init(Settings(sentry_dsn='http://k@127.0.0.1:9/1'))\n"
        "import sentry_sdk\n"
        "assert {m for m in sys.modules if m.startswith('opentelemetry')} == before\n"
        "assert trace._TRACER_PROVIDER is None\n"
        "assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)\n"
        "assert propagate.get_global_textmap() is textmap\n"
        "assert http.client.HTTPConnection.putrequest is putrequest\n"
        "assert sorted(sentry_sdk.get_client().integrations) == "
        "['atexit', 'dedupe', 'excepthook', 'threading']\n"
        "assert sentry_sdk.get_client().options['traces_sample_rate'] is None\n"
        "with provider.get_tracer('t').start_as_current_span('ours') as span:\n"
        "    error_reports.report(RuntimeError('x'))\n"
        "    assert trace.get_current_span() is span\n"
        "assert [s.name for s in exporter.get_finished_spans()] == ['ours']\n"
        "assert len(provider._active_span_processor._span_processors) == 1\n"
        "sentry_sdk.get_client().close(timeout=0)\n"
        "print('ok')\n"
    )
    assert out == "ok"


@pytest.mark.parametrize(
    "dsn",
    ["nonsense", "https://o1.ingest.sentry.io/1", "https://key@host/project", "ftp://k@h/1"],
)
def test_a_bad_dsn_fails_at_startup(dsn: str) -> None:
    with pytest.raises(ConfigError, match=r"GATEWAYZ_SENTRY_DSN: .*not a Sentry DSN") as info:
        Settings.from_env({"GATEWAYZ_SENTRY_DSN": dsn})
    assert dsn not in str(info.value)  # a DSN is a credential: not quoted back


def test_dsn_settings() -> None:
    s = Settings.from_env({"GATEWAYZ_SENTRY_DSN": "https://abc@o1.ingest.sentry.io/42"})
    assert s.sentry_dsn is not None and s.sentry_sample_rate == 1.0
    assert Settings.from_env({"GATEWAYZ_SENTRY_DSN": ""}).sentry_dsn is None  # set but empty: off
    with pytest.raises(ConfigError, match="GATEWAYZ_SENTRY_SAMPLE_RATE"):
        Settings.from_env({"GATEWAYZ_SENTRY_SAMPLE_RATE": "1.5"})
