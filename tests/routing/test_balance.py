"""Load balancing (routing/balance.py): health-weighted order, sort by price / latency /
throughput with floors, weighted traffic splits; per-request `provider` preferences and per-key
defaults; the overall request deadline; provider × model circuit breakers. Unit level with an
injected clock, then end to end through a real gateway with two simulators and the SDKs."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace
from typing import Any, cast

import httpx2
import openai
import pytest

from gatewayz.billing.pricing import Price
from gatewayz.errors import InvalidRequest
from gatewayz.providers.provider import Provider
from gatewayz.reliability.breaker import BreakerState
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.routing.balance import Balancer, Preferences
from gatewayz.routing.detect import parse_override
from gatewayz.routing.resolve import Route
from gatewayz.simulators import Fault, Simulator
from tests.e2e.harness import Gateway, fresh_pair, gateway_settings, set_price, start_gateway

MODEL = "balanced-model"
OTHER = "other-model"
CHOICES = "choices-model"  # served by cohere and vllm
MSG = [{"role": "user", "content": "hello"}]


def route(slug: str) -> Route:
    return Route(cast(Provider, SimpleNamespace(slug=slug)), "m", "m")


def slugs(routes: tuple[Route, ...]) -> list[str]:
    return [r.provider.slug for r in routes]


def price(usd: str) -> Price:
    return Price(prompt=Decimal(usd), completion=Decimal(usd))


ABC = (route("a"), route("b"), route("c"))


def feed(health: PassiveHealth, slug: str, ok: int, failed: int, latency_ms: float = 100) -> None:
    for _ in range(ok):
        health.record(slug, "m", True, latency_ms)
    for _ in range(failed):
        health.record(slug, "m", False, latency_ms)


# ---- unit: the balancer ----------------------------------------------------------------------


def test_a_healthy_or_unmeasured_primary_keeps_the_chain_order() -> None:
    health = PassiveHealth(summary_ttl_s=0)
    b = Balancer(health, {})
    assert slugs(b.order(ABC, "m", Preferences(), {})) == ["a", "b", "c"]
    feed(health, "a", ok=19, failed=1)  # 95 %: healthy
    assert slugs(b.order(ABC, "m", Preferences(), {})) == ["a", "b", "c"]
    feed(health, "a", ok=0, failed=3)  # 19 of 23: below 90 %
    assert slugs(b.order(ABC, "m", Preferences(), {}))[0] == "b"


def test_health_weighted_order_promotes_healthy_providers_over_a_failing_primary() -> None:
    health = PassiveHealth(summary_ttl_s=0)
    b = Balancer(health, {}, healthy_rate=0.9)
    feed(health, "a", ok=6, failed=4)  # 60 %
    feed(health, "b", ok=2, failed=8)  # 20 %
    # c unmeasured counts as healthy; the sick ones follow, best first.
    assert slugs(b.order(ABC, "m", Preferences(), {})) == ["c", "a", "b"]
    # Fewer than MIN_SAMPLES attempts never demote.
    fresh = PassiveHealth(summary_ttl_s=0)
    feed(fresh, "a", ok=0, failed=4)
    assert slugs(Balancer(fresh, {}).order(ABC, "m", Preferences(), {}))[0] == "a"


def test_an_explicit_order_is_kept_whatever_the_health() -> None:
    health = PassiveHealth(summary_ttl_s=0)
    feed(health, "a", ok=0, failed=10)
    b = Balancer(health, {})
    assert slugs(b.order(ABC, "m", Preferences(ordered=True), {})) == ["a", "b", "c"]


def test_sort_latency_puts_the_lowest_p50_first_and_unmeasured_last() -> None:
    health = PassiveHealth(summary_ttl_s=0)
    feed(health, "a", ok=5, failed=0, latency_ms=300)
    feed(health, "c", ok=5, failed=0, latency_ms=40)
    b = Balancer(health, {})
    assert slugs(b.order(ABC, "m", Preferences(sort="latency"), {})) == ["c", "a", "b"]


def test_sort_throughput_puts_the_fastest_generator_first() -> None:
    health = PassiveHealth(summary_ttl_s=0)
    health.record_output("a", "m", tokens=100, seconds=2.0)  # 50 tok/s
    health.record_output("b", "m", tokens=100, seconds=0.5)  # 200 tok/s
    for slug in "ab":
        feed(health, slug, ok=1, failed=0)
    b = Balancer(health, {})
    assert slugs(b.order(ABC, "m", Preferences(sort="throughput"), {})) == ["b", "a", "c"]


def test_sort_price_is_the_cheapest_meeting_the_health_and_latency_floors() -> None:
    health = PassiveHealth(summary_ttl_s=0)
    prices = {"a": price("5"), "b": price("1"), "c": price("2")}
    b = Balancer(health, {})
    assert slugs(b.order(ABC, "m", Preferences(sort="price"), prices)) == ["b", "c", "a"]
    feed(health, "b", ok=5, failed=5)  # cheapest, but failing: below the quality floor
    assert slugs(b.order(ABC, "m", Preferences(sort="price"), prices)) == ["c", "a", "b"]
    feed(health, "c", ok=10, failed=0, latency_ms=900)  # next cheapest, but slow
    feed(health, "a", ok=10, failed=0, latency_ms=100)
    fast = Preferences(sort="price", max_latency_ms=500)
    assert slugs(b.order(ABC, "m", fast, prices)) == ["a", "c", "b"]


def test_a_weighted_split_spreads_first_attempts_by_weight() -> None:
    draws = iter([0.0, 0.69, 0.71, 0.99])
    b = Balancer(PassiveHealth(), {"m": {"b": 70, "c": 30}}, rng=lambda: next(draws))
    firsts = [slugs(b.order(ABC, "m", Preferences(), {}))[0] for _ in range(4)]
    assert firsts == ["b", "b", "c", "c"]
    # The rest keep their order behind the drawn one; other models are untouched.
    b.rng = lambda: 0.9
    assert slugs(b.order(ABC, "m", Preferences(), {})) == ["c", "a", "b"]
    assert slugs(b.order(ABC, "other", Preferences(), {})) == ["a", "b", "c"]
    # Statistically, with the real generator: about 70/30 and a never drawn.
    real = Balancer(PassiveHealth(), {"m": {"b": 70, "c": 30}})
    counts = Counter(slugs(real.order(ABC, "m", Preferences(), {}))[0] for _ in range(4000))
    assert counts["a"] == 0 and 0.66 < counts["b"] / 4000 < 0.74


def test_a_split_never_draws_a_demoted_provider() -> None:
    health = PassiveHealth(summary_ttl_s=0)
    feed(health, "b", ok=1, failed=9)
    b = Balancer(health, {"m": {"b": 90, "c": 10}}, rng=lambda: 0.0)
    assert slugs(b.order(ABC, "m", Preferences(), {}))[0] == "c"


@pytest.mark.parametrize(
    "value",
    [
        {"sort": "cheapest"},
        {"sort": 1},
        {"max_latency_ms": 0},
        {"max_latency_ms": True},
        {"max_latency_ms": "fast"},
        {"data_collection": "deny"},  # not supported: refused, never silently ignored
    ],
)
def test_bad_provider_preferences_are_a_400(value: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_override(value)
    assert caught.value.param == "provider"


def test_sort_alone_does_not_restrict_the_providers() -> None:
    ov = parse_override({"sort": "latency", "max_latency_ms": 250})
    assert ov is not None and not ov.restricts and ov.sort == "latency"
    assert ov.max_latency_ms == 250.0
    assert parse_override({"ignore": ["a"], "sort": "price"}).restricts  # type: ignore[union-attr]


# ---- end to end ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gw(
    sims: tuple[Simulator, Simulator], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a, b = sims
    env: dict[str, Any] = {
        "vllm": {"base_url": a.base_url, "models": f"{MODEL},{OTHER},{CHOICES}"},
        "lm-studio": {"base_url": b.base_url, "models": MODEL},
        # Cohere's native format takes no n > 1: a request asking for it skips cohere.
        "cohere": {"base_url": a.base_url, "api_key": "sk-cohere", "models": CHOICES},
    }
    settings = gateway_settings(
        tmp_path_factory.mktemp("balance"), a, provider_env=env, breaker_failure_threshold=5
    )
    g = start_gateway(settings, a)
    yield g
    g.stop()


@pytest.fixture
def chain(gw: Gateway, sims: tuple[Simulator, Simulator]) -> tuple[str, Simulator, str, Simulator]:
    """(primary slug, its simulator, secondary slug, its simulator) with fresh breakers,
    health and prices."""
    first, primary, second, backup = fresh_pair(gw, sims, MODEL, OTHER)
    for slug in (first, second):
        set_price(gw, MODEL, slug, prompt="1", completion="1")
    return first, primary, second, backup


def client(gw: Gateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key or gw.api_key, max_retries=0)


def answered_by(gw: Gateway, key: str | None = None, **extra: Any) -> tuple[str, str]:
    raw = client(gw, key).chat.completions.with_raw_response.create(
        model=MODEL, messages=MSG, extra_body=extra or None
    )
    assert raw.parse().choices[0].message.content
    return raw.headers["x-gatewayz-provider"], raw.headers["x-gatewayz-attempts"]


def test_an_intermittently_failing_primary_is_demoted_before_its_breaker_opens(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, primary, second, _ = chain
    # Every other request fails on the primary: the breaker never sees 5 in a row ...
    for i in range(10):
        if i % 2 == 0:
            primary.fault(Fault(status=503))
        answered_by(gw)
    assert asyncio.run(gw.services.breakers.state_of(first)) is BreakerState.CLOSED
    # ... but its success rate (~67 %) is below the threshold: the healthy one goes first.
    monkeypatch.setattr(gw.services.pipeline.health, "summary_ttl_s", 0)
    calls = len(primary.requests)
    assert answered_by(gw) == (second, "1")
    assert len(primary.requests) == calls


def test_sort_price_in_the_request_picks_the_cheaper_provider(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    first, _, second, backup = chain
    set_price(gw, MODEL, first, prompt="9", completion="9")
    set_price(gw, MODEL, second, prompt="1", completion="2")
    assert answered_by(gw)[0] == first  # by default: the chain
    assert answered_by(gw, provider={"sort": "price"}) == (second, "1")
    assert len(backup.requests) == 1


def test_sort_latency_in_the_request_picks_the_faster_provider(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, primary, second, _ = chain
    monkeypatch.setattr(gw.services.pipeline.health, "summary_ttl_s", 0)
    for _ in range(3):
        primary.fault(Fault(delay_s=0.15))
        answered_by(gw)
    answered_by(gw, provider={"order": [second]})
    assert answered_by(gw, provider={"sort": "latency"})[0] == second


def test_a_key_default_applies_and_the_request_overrides_it_field_by_field(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    first, _, second, _ = chain
    headers = {"Authorization": f"Bearer {gw.api_key}"}
    r = httpx2.post(
        f"{gw.base_url.removesuffix('/v1')}/user/api-keys",
        json={"name": "pinned", "provider_preferences": {"order": [second]}},
        headers=headers,
        trust_env=False,
    )
    assert r.status_code == 201, r.text
    assert r.json()["provider_preferences"] == {"order": [second]}
    key = r.json()["api_key"]
    assert answered_by(gw, key) == (second, "1")
    assert answered_by(gw, key, provider={"order": [first]})[0] == first
    assert answered_by(gw, key, provider=first)[0] == first  # a plain slug pins


@pytest.mark.parametrize(
    "prefs", [{"sort": "fastest"}, {"order": ["no-such-provider"]}, {"bogus": 1}]
)
def test_bad_key_provider_preferences_are_a_400_naming_the_field(
    gw: Gateway, prefs: dict[str, Any]
) -> None:
    r = httpx2.post(
        f"{gw.base_url.removesuffix('/v1')}/user/api-keys",
        json={"name": "bad", "provider_preferences": prefs},
        headers={"Authorization": f"Bearer {gw.api_key}"},
        trust_env=False,
    )
    assert r.status_code == 400, r.text
    assert "provider_preferences" in r.text


def test_a_bad_sort_in_the_request_is_a_400_in_the_openai_dialect(gw: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).chat.completions.create(
            model=MODEL, messages=MSG, extra_body={"provider": {"sort": "random"}}
        )
    assert "sort" in caught.value.message


def test_the_request_deadline_bounds_attempts_and_retries(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, primary, _, backup = chain
    fallback = gw.services.pipeline.fallback
    monkeypatch.setattr(fallback, "rules", replace(fallback.rules, deadline_s=0.6))
    primary.fault(Fault(delay_s=3))
    t = time.monotonic()
    with pytest.raises(openai.APIStatusError) as caught:
        client(gw).chat.completions.create(model=MODEL, messages=MSG)
    elapsed = time.monotonic() - t
    assert caught.value.status_code == 504 and caught.value.code == "deadline_exceeded"
    assert elapsed < 2.5  # cut at the deadline, not after the provider's 3 s
    assert backup.requests == []  # no time left to fail over
    # A Retry-After that would outlive the deadline goes back at once.
    primary.fault(Fault(status=429, retry_after="2"))
    monkeypatch.setattr(fallback, "rules", replace(fallback.rules, max_retry_wait_s=5.0))
    t = time.monotonic()
    with pytest.raises(openai.RateLimitError):
        client(gw).chat.completions.create(model=MODEL, messages=MSG)
    assert time.monotonic() - t < 1.5


def test_a_model_missing_on_a_provider_opens_only_that_model_breaker(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    sims = {chain[0]: chain[1], chain[2]: chain[3]}
    vllm = sims["vllm"]
    breakers = gw.services.breakers
    native = next(
        r.native_id for r in gw.services.pipeline.chain(MODEL) if r.provider.slug == "vllm"
    )
    for _ in range(5):
        vllm.fault(Fault(status=404))
        answered_by(gw, provider={"order": ["vllm", "lm-studio"]})
    assert asyncio.run(breakers.state_of("vllm", native)) is BreakerState.OPEN
    assert asyncio.run(breakers.state_of("vllm")) is BreakerState.CLOSED
    calls = len(vllm.requests)
    assert answered_by(gw, provider={"order": ["vllm", "lm-studio"]}) == ("lm-studio", "1")
    assert len(vllm.requests) == calls  # the broken model is skipped there ...
    r = client(gw).chat.completions.with_raw_response.create(model=OTHER, messages=MSG)
    assert r.headers["x-gatewayz-provider"] == "vllm"  # ... the provider still serves others
    assert len(vllm.requests) == calls + 1


def test_passive_health_records_time_to_first_token_and_throughput(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, primary, _, _ = chain
    monkeypatch.setattr(gw.services.pipeline.health, "summary_ttl_s", 0)
    primary.fault(Fault(chunk_delay_s=0.02))
    stream = client(gw).chat.completions.create(model=MODEL, messages=MSG, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    rows = httpx2.get(f"{gw.base_url.removesuffix('/v1')}/status/models", trust_env=False)
    (row,) = [m for m in rows.json()["data"] if m["provider"] == first]
    assert row["ttft_p50_ms"] is not None and row["ttft_p50_ms"] > 0
    native = gw.services.pipeline.chain(MODEL)[0].native_id
    summary = gw.services.pipeline.health.summary(first, native)
    assert summary is not None and summary.tokens_per_s is not None and summary.tokens_per_s > 0


def test_a_provider_that_cannot_take_the_request_is_skipped_not_failed(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    for slug in ("cohere", "vllm"):
        set_price(gw, CHOICES, slug, prompt="1", completion="1")
    # Cohere's API returns no log probabilities (canonical/fidelity.py: refused there).
    raw = client(gw).chat.completions.with_raw_response.create(
        model=CHOICES,
        messages=MSG,
        logprobs=True,
        extra_body={"provider": {"order": ["cohere", "vllm"]}},
    )
    assert raw.parse().choices[0].logprobs is not None
    assert raw.headers["x-gatewayz-provider"] == "vllm"
    assert raw.headers["x-gatewayz-attempts"] == "1"  # nothing was sent to cohere
    assert asyncio.run(gw.services.breakers.state_of("cohere")) is BreakerState.CLOSED
    # Only cohere allowed: a 400 naming the field, in the caller's dialect.
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).chat.completions.create(
            model=CHOICES, messages=MSG, logprobs=True, extra_body={"provider": "cohere"}
        )
    assert caught.value.code == "unsupported_by_provider" and caught.value.param == "logprobs"


def test_providers_whose_context_window_is_too_small_are_left_out(
    gw: Gateway, chain: tuple[str, Simulator, str, Simulator]
) -> None:
    first, primary, second, _ = chain
    long = [{"role": "user", "content": "word " * 200}]  # about 250 tokens
    set_price(gw, MODEL, first, prompt="1", completion="1", context=100)
    set_price(gw, MODEL, second, prompt="1", completion="1", context=100_000)
    raw = client(gw).chat.completions.with_raw_response.create(model=MODEL, messages=long)
    assert raw.headers["x-gatewayz-provider"] == second
    assert raw.headers["x-gatewayz-attempts"] == "1" and primary.requests == []
    assert answered_by(gw)[0] == first  # a short prompt still fits the first
    set_price(gw, MODEL, second, prompt="1", completion="1", context=100)
    with pytest.raises(openai.BadRequestError) as caught:
        client(gw).chat.completions.create(model=MODEL, messages=long)
    assert caught.value.code == "context_length_exceeded"
