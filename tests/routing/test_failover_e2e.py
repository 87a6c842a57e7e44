"""Failover end to end (CM-5.1, CM-5.2): two self-hosted providers serve the same model, each
a simulator; the official SDKs see one normal answer, the headers say what happened."""

from __future__ import annotations

import asyncio
import tomllib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from gatewayz.routing.failover import load_failover_policy
from gatewayz.settings import PROVIDERS_FILE
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
MSG = [{"role": "user", "content": "hello"}]


@pytest.fixture(scope="module")
def gw(
    sims: tuple[Simulator, Simulator], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a, b = sims
    env: dict[str, Any] = {
        **pair_env(sims, MODEL),
        "openai": {"base_url": a.base_url, "api_key": "sk-a"},
        "openrouter": {"base_url": b.base_url, "api_key": "sk-b"},
        "together": {"base_url": b.base_url, "api_key": "sk-b"},
        "groq": {"base_url": b.base_url, "api_key": "sk-b"},
    }
    settings = gateway_settings(
        tmp_path_factory.mktemp("failover"),
        a,
        provider_env=env,
        breaker_open_s=300.0,
        breaker_failure_threshold=5,
    )
    g = start_gateway(settings, a)
    yield g
    g.stop()


@pytest.fixture
def chain(gw: Gateway, sims: tuple[Simulator, Simulator]) -> tuple[str, Simulator, str, Simulator]:
    """(primary slug, its simulator, secondary slug, its simulator), in the gateway's order."""
    return fresh_pair(gw, sims, MODEL)


def client(gw: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)


@pytest.mark.parametrize(
    ("claim", "status"),
    [
        ("5_1_3", 502),
        ("5_1_4", 503),
        ("5_1_5", 504),
        ("5_1_6", 401),
        ("5_1_7", 402),
        ("5_1_8", 403),
        ("5_1_9", 404),
    ],
)
def test_cm_5_1_failover_on_status(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator], claim: str, status: int
) -> None:
    _, primary, second, backup = chain
    primary.fault(Fault(status=status))
    raw = client(gw).chat.completions.with_raw_response.create(model=MODEL, messages=MSG)
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-gatewayz-provider"] == second
    assert raw.headers["x-gatewayz-attempts"] == "2"
    assert len(primary.requests) == 1 and len(backup.requests) == 1


def test_cm_5_1_10_no_failover_on_400(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    _, primary, _, backup = chain
    primary.fault(Fault(status=400))
    with pytest.raises(openai.BadRequestError):
        client(gw).chat.completions.create(model=MODEL, messages=MSG)
    assert backup.requests == []


def test_cm_5_1_11_429_is_retried_on_the_same_provider_not_failed_over(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    first, primary, _, backup = chain
    for _ in range(3):
        primary.fault(Fault(status=429, retry_after="0"))
    with pytest.raises(openai.RateLimitError):
        client(gw).chat.completions.create(model=MODEL, messages=MSG)
    assert len(primary.requests) == 3 and backup.requests == []  # 1 + 2 retries
    primary.fault(Fault(status=429, retry_after="0"))
    raw = client(gw).chat.completions.with_raw_response.create(model=MODEL, messages=MSG)
    assert raw.headers["x-gatewayz-provider"] == first
    assert raw.headers["x-gatewayz-attempts"] == "2"


def test_cm_5_1_12_failover_is_transparent_streaming_and_anthropic_too(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    _, primary, second, _ = chain
    primary.fault(Fault(status=503))
    chunks = list(client(gw).chat.completions.create(model=MODEL, messages=MSG, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    primary.fault(Fault(delay_s=0, status=502))
    sdk = anthropic.Anthropic(base_url=gw.root, api_key=gw.api_key, max_retries=0)
    raw = sdk.messages.with_raw_response.create(model=MODEL, max_tokens=50, messages=MSG)
    assert raw.headers["x-gatewayz-provider"] == second
    assert raw.parse().content[0].text


def test_failover_ends_with_the_last_error_when_every_provider_fails(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    _, primary, _, backup = chain
    primary.fault(Fault(status=503))
    backup.fault(Fault(status=502))
    with pytest.raises(openai.APIStatusError) as caught:
        client(gw).chat.completions.create(model=MODEL, messages=MSG)
    assert caught.value.status_code == 502
    assert caught.value.response.headers["x-gatewayz-attempts"] == "2"


def test_open_breaker_skips_the_provider(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    _, primary, second, _ = chain
    for _ in range(5):
        primary.fault(Fault(status=503))
        client(gw).chat.completions.create(model=MODEL, messages=MSG)
    calls = len(primary.requests)
    raw = client(gw).chat.completions.with_raw_response.create(model=MODEL, messages=MSG)
    assert raw.headers["x-gatewayz-provider"] == second
    assert raw.headers["x-gatewayz-attempts"] == "1"
    assert len(primary.requests) == calls  # skipped while its breaker is open


def test_cm_5_2_1_openai_models_fail_over_only_to_openai_then_openrouter(gw: Gateway) -> None:
    routes = gw.services.pipeline.chain("openai/gpt-4o")
    assert [r.provider.slug for r in routes] == ["openai", "openrouter"]


def test_cm_5_2_2_anthropic_models_fail_over_only_to_anthropic_then_openrouter(
    gw: Gateway,
) -> None:
    slugs = [r.provider.slug for r in gw.services.pipeline.chain("anthropic/claude-sonnet-4-5")]
    assert set(slugs) <= {"anthropic", "openrouter"} and "together" not in slugs


def test_cm_5_2_3_open_models_fail_over_across_every_provider_serving_them(
    gw: Gateway,
) -> None:
    llama = "meta-llama/llama-3.3-70b-instruct"
    slugs = [r.provider.slug for r in gw.services.pipeline.chain(llama)]
    assert {"openrouter", "together"} <= set(slugs)


def test_a_long_retry_after_returns_the_429_at_once(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    _, primary, _, backup = chain
    primary.fault(Fault(status=429, retry_after="60"))  # longer than we hold a request
    with pytest.raises(openai.RateLimitError) as caught:
        client(gw).chat.completions.create(model=MODEL, messages=MSG)
    assert caught.value.response.headers["retry-after"] == "60"
    assert len(primary.requests) == 1 and backup.requests == []


def test_only_the_answering_provider_is_charged_at_its_own_price(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    first, primary, second, _ = chain
    set_price(gw, MODEL, first, prompt="1000", completion="1000")
    set_price(gw, MODEL, second, prompt="10", completion="20")
    primary.fault(Fault(status=503))
    r = client(gw).chat.completions.create(model=MODEL, messages=MSG, max_tokens=5)
    expected = (r.usage.prompt_tokens * 10 + r.usage.completion_tokens * 20) / Decimal(10**6)
    assert Decimal(str(r.usage.model_extra["cost"])) == expected


def test_cm_5_1_1_default_failover_chain_has_14_providers() -> None:
    policy = load_failover_policy()
    assert len(policy.chain) == len(set(policy.chain)) == 14
    with PROVIDERS_FILE.open("rb") as f:
        known = set(tomllib.load(f)["providers"])
    assert set(policy.chain) <= known


def test_cm_5_1_2_chain_is_ordered_most_reliable_first(gw: Gateway) -> None:
    assert load_failover_policy().chain == (
        *("onerouter", "openai", "anthropic", "google-vertex", "openrouter", "cerebras"),
        *("huggingface", "featherless", "vercel-ai-gateway", "aihubmix", "anannas"),
        *("alibaba-cloud", "fireworks", "together"),
    )
    # The chain puts openrouter (5th) before together (14th); groq, outside the chain, keeps
    # the resolver's place.
    llama = "meta-llama/llama-3.3-70b-instruct"
    slugs = [r.provider.slug for r in gw.services.pipeline.chain(llama)]
    assert slugs == ["openrouter", "groq", "together"]
    # An explicit order in the request is kept as asked.
    asked = gw.services.pipeline.chain(llama, {"order": ["together", "openrouter"]})
    assert [r.provider.slug for r in asked][:2] == ["together", "openrouter"]


def test_cm_11_4_passive_health_captures_every_attempt(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    first, primary, second, _ = chain
    before = {
        (m["provider"], m["model"]): m["attempts"]
        for m in httpx2.get(f"{gw.root}/status/models", trust_env=False).json()["data"]
    }
    primary.fault(Fault(status=503))
    client(gw).chat.completions.create(model=MODEL, messages=MSG)
    body = httpx2.get(f"{gw.root}/status/models", trust_env=False).json()
    seen = {(m["provider"], m["model"]): m for m in body["data"]}
    failed, answered = seen[(first, MODEL)], seen[(second, MODEL)]
    assert failed["attempts"] == before.get((first, MODEL), 0) + 1 and failed["errors"] >= 1
    assert answered["attempts"] == before.get((second, MODEL), 0) + 1
    assert answered["latency_p50_ms"] > 0 and 0 <= answered["success_rate"] <= 1
    providers = httpx2.get(f"{gw.root}/status/providers", trust_env=False).json()["data"]
    assert {p["provider"] for p in providers} >= {first, second}


def test_a_provider_dying_mid_stream_counts_against_it_without_failover(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    """After the first byte there is no failover: the stream ends with an error event, and
    the failure is counted in the provider's passive health (and its breaker)."""
    first, primary, _, backup = chain

    def errors() -> int:
        data = httpx2.get(f"{gw.root}/status/models", trust_env=False).json()["data"]
        return sum(m["errors"] for m in data if (m["provider"], m["model"]) == (first, MODEL))

    before = errors()
    primary.fault(Fault(text="a b c d e f g h", drop_after_chunks=3))
    with pytest.raises(openai.APIError):
        list(client(gw).chat.completions.create(model=MODEL, messages=MSG, stream=True))
    assert backup.requests == []
    assert errors() == before + 1
    snapshot = asyncio.run(gw.services.breakers.snapshot())
    assert any(b["provider"] == first and b["failures"] >= 1 for b in snapshot)
