"""Prometheus metrics at GET /metrics (CM-13.1–13.5), on the running gateway, read back through
prometheus_client's own parser: each chat call counted once with bounded labels, its duration,
tokens, credits and (streams) time to the first chunk; the scrape token; rate-limit refusals;
the circuit breakers; and the sum over `gatewayz serve --workers 2`."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx2
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.security.keys import KeyRing
from gatewayz.simulators import Simulator
from tests.deploy.helpers import production_env, run_cli, serve
from tests.e2e.harness import (
    Gateway,
    add_user,
    gateway_settings,
    run_db,
    set_price,
    start_gateway,
)

TOKEN = "scrape-" + "s" * 24
MODEL = "test-model"
LABELS = {"provider": "vllm", "model": MODEL}


@pytest.fixture(scope="module")
def gw(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings = gateway_settings(tmp_path_factory.mktemp("metrics"), upstream, metrics_token=TOKEN)
    gateway = start_gateway(settings, upstream)
    set_price(gateway, MODEL, "vllm", prompt="3", completion="15")
    yield gateway
    gateway.stop()


@pytest.fixture
def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


def scrape(gw: Gateway) -> str:
    r = httpx2.get(f"{gw.root}/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return r.text


def value(text: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


def chat(client: openai.OpenAI, **kw: object) -> openai.types.chat.ChatCompletion:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "count me"}], **kw
    )
    completion = raw.parse()
    completion.cost_header = raw.headers["x-gatewayz-cost"]  # type: ignore[attr-defined]
    return completion


def test_cm_13_1_prometheus_inference_request_counter(gw: Gateway, client: openai.OpenAI) -> None:
    before = scrape(gw)
    for _ in range(3):
        chat(client)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="no-such-org/made-up-model-7f3a", messages=[{"role": "user", "content": "x"}]
        )
    after = scrape(gw)
    name = "model_inference_requests_total"
    ok = dict(LABELS, status="200")
    assert value(after, name, **ok) - value(before, name, **ok) == 3
    # A name nobody serves: counted under the bounded label, never as the caller typed it.
    unknown = {"provider": "none", "model": "other", "status": "404"}
    assert value(after, name, **unknown) - value(before, name, **unknown) == 1
    assert "made-up-model" not in after
    assert gw.user_id not in after and gw.api_key not in after


def test_cm_13_2_prometheus_inference_duration_histogram(
    gw: Gateway, client: openai.OpenAI
) -> None:
    name = "model_inference_duration_seconds"
    before = scrape(gw)
    chat(client)
    after = scrape(gw)
    assert value(after, f"{name}_count", **LABELS) - value(before, f"{name}_count", **LABELS) == 1
    grew = value(after, f"{name}_sum", **LABELS) - value(before, f"{name}_sum", **LABELS)
    assert 0 < grew < 10
    inf = dict(LABELS, le="+Inf")
    assert value(after, f"{name}_bucket", **inf) == value(after, f"{name}_count", **LABELS)
    overhead = "gateway_overhead_seconds_count"
    assert value(after, overhead) - value(before, overhead) == 1


def test_cm_13_3_prometheus_tokens_used_counter(gw: Gateway, client: openai.OpenAI) -> None:
    name = "tokens_used_total"
    before = scrape(gw)
    completion = chat(client)
    after = scrape(gw)
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    for kind, count in (("prompt", usage.prompt_tokens), ("completion", usage.completion_tokens)):
        labels = dict(LABELS, token_type=kind)
        assert value(after, name, **labels) - value(before, name, **labels) == count


def test_cm_13_4_prometheus_credits_used_counter(gw: Gateway, client: openai.OpenAI) -> None:
    name = "credits_used_total"
    before = scrape(gw)
    completion = chat(client)
    after = scrape(gw)
    charged = Decimal(completion.cost_header)  # type: ignore[attr-defined]
    assert charged > 0
    grew = value(after, name, **LABELS) - value(before, name, **LABELS)
    assert abs(Decimal(str(grew)) - charged) < Decimal("1e-12")


def test_cm_13_5_prometheus_ttfc_histogram(gw: Gateway, client: openai.OpenAI) -> None:
    name = "time_to_first_chunk_seconds_count"
    before = scrape(gw)
    chat(client)  # not streamed: no first chunk
    middle = scrape(gw)
    assert value(middle, name, **LABELS) == value(before, name, **LABELS)
    stream = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "stream me"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    after = scrape(gw)
    assert value(after, name, **LABELS) - value(middle, name, **LABELS) == 1
    total = "time_to_first_chunk_seconds_sum"
    assert 0 < value(after, total, **LABELS) - value(middle, total, **LABELS) < 10


def test_scrape_needs_the_token_when_one_is_set(gw: Gateway) -> None:
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
        r = httpx2.get(f"{gw.root}/metrics", headers=headers)
        assert r.status_code == 401, headers
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["type"] == "authentication_error"


def test_rate_limit_refusals_are_counted_by_layer(gw: Gateway) -> None:
    user_id, _ = add_user(gw, credits_usd="5")

    async def limited_key(conn: AsyncConnection) -> str:
        keyring = KeyRing(*gw.settings.secrets)
        _, key = await create_api_key(conn, keyring, user_id, "test", "one", limits={"rpm": 1})
        return key

    key = run_db(gw, limited_key)
    limited = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)
    before = scrape(gw)
    chat(limited)
    with pytest.raises(openai.RateLimitError):
        chat(limited)
    after = scrape(gw)
    name = "gatewayz_rate_limit_rejections_total"
    assert value(after, name, layer="rpm") - value(before, name, layer="rpm") == 1
    refused = {"provider": "none", "model": MODEL, "status": "429"}
    grew = value(after, "model_inference_requests_total", **refused) - value(
        before, "model_inference_requests_total", **refused
    )
    assert grew == 1


def test_circuit_breaker_state_is_a_gauge(gw: Gateway) -> None:
    breakers = gw.services.breakers
    for _ in range(breakers.failure_threshold):
        asyncio.run(breakers.record_failure("lm-studio"))
    try:
        text = scrape(gw)
        assert value(text, "gatewayz_circuit_breaker_state", provider="lm-studio", model="") == 2
    finally:
        asyncio.run(breakers.reset("lm-studio"))
    closed = scrape(gw)
    assert value(closed, "gatewayz_circuit_breaker_state", provider="lm-studio", model="") == 0


def test_access_line_per_request_without_the_key(
    gw: Gateway, client: openai.OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="gatewayz.access"):
        raw = client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "log me"}]
        )
        request_id = raw.headers["x-request-id"]
        deadline = time.monotonic() + 5  # logged as the call ends, after the response went out
        while not (mine := _access_lines(caplog, request_id)) and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(mine) == 1
    fields = mine[0].fields  # type: ignore[attr-defined]
    assert fields["status"] == 200 and fields["provider"] == "vllm" and fields["model"] == MODEL
    assert fields["key_id"] and fields["user_id"] == gw.user_id
    assert fields["cost_usd"] == raw.headers["x-gatewayz-cost"]
    assert fields["attempts"] == 1 and fields["cache"] in (None, "miss")
    assert fields["latency_ms"] >= fields["overhead_ms"] >= 0
    assert gw.api_key not in json.dumps(fields) and gw.api_key not in mine[0].getMessage()


def _access_lines(caplog: pytest.LogCaptureFixture, request_id: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "gatewayz.access" and r.fields["request_id"] == request_id  # type: ignore[attr-defined]
    ]


def test_metrics_off_is_404(upstream: Simulator, tmp_path: Path) -> None:
    gateway = start_gateway(gateway_settings(tmp_path, upstream, metrics=False), upstream)
    try:
        r = httpx2.get(f"{gateway.root}/metrics")
        assert r.status_code == 404
    finally:
        gateway.stop()


def test_two_workers_scrape_sums_every_worker(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str, upstream: Simulator
) -> None:
    """N requests over `--workers 2`: any worker's scrape counts exactly N, whichever worker
    served each request."""
    data = tmp_path / "data"
    env = production_env(postgres_url, redis_url, redis_prefix, upstream.base_url, MODEL, data)
    made = run_cli(
        [
            *("users", "create", "--email", "workers@example.com", "--credits", "10"),
            *("--plan", "team", "--json"),
        ],
        env,
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]
    n = 40
    with serve(env, tmp_path, tmp_path / "logs", workers=2) as srv:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        for _ in range(n):  # a connection each: the kernel spreads them over the workers
            with httpx2.Client(trust_env=False, timeout=10) as http:
                r = http.post(
                    f"{srv.root}/v1/chat/completions",
                    json=body,
                    headers={"authorization": f"Bearer {key}"},
                )
                assert r.status_code == 200, r.text
        for _ in range(4):  # every scrape, whichever worker answers it, has the same sum
            with httpx2.Client(trust_env=False, timeout=10) as http:
                text = http.get(f"{srv.root}/metrics").text
            ok = {"provider": "vllm", "model": MODEL, "status": "200"}
            assert value(text, "model_inference_requests_total", **ok) == n, srv.output()
        files = list((tmp_path / "data" / "metrics").glob("*.db"))
        assert len({f.name.rsplit("_", 1)[-1] for f in files}) >= 2  # both workers wrote
