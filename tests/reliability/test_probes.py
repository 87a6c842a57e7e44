"""Active health probes by usage tier (CM-11.1 – CM-11.3): the tier schedule on realistic usage,
then the prober against real simulators configured as providers of a real gateway. Rounds are
driven by calling `tick()` on the gateway's event loop, with injected clocks and jitter."""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import openai
import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.reliability.probes import (
    CRITICAL,
    CRITICAL_S,
    POPULAR,
    POPULAR_S,
    STANDARD,
    STANDARD_MAX_S,
    STANDARD_MIN_S,
    USAGE_KEY,
    Prober,
    schedule,
)
from gatewayz.settings import ConfigError, Settings
from gatewayz.simulators import Fault, Simulator
from gatewayz.state import MemoryState, RedisState, StateBackend
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.tables import credit_transactions, request_logs, utcnow
from tests.e2e.harness import Gateway, gateway_settings, run_db, start_gateway

T = TypeVar("T")
Target = tuple[str, str]


# ---- the tier schedule (pure) -----------------------------------------------------------


def realistic_usage(n: int = 100) -> dict[Target, int]:
    """`n` provider × model pairs with a long-tailed (Zipf-like) request count, in no order."""
    providers = ["openai", "groq", "together", "fireworks", "deepinfra"]
    pairs = [
        ((providers[i % len(providers)], f"model-{i:03d}"), 50_000 // (i + 1) + 3) for i in range(n)
    ]
    random.Random(7).shuffle(pairs)
    return dict(pairs)


def by_tier(usage: dict[Target, int]) -> dict[str, list[Target]]:
    out: dict[str, list[Target]] = {CRITICAL: [], POPULAR: [], STANDARD: []}
    for s in schedule(usage):
        out[s.tier].append(s.target)
    return out


def test_cm_11_1_health_check_critical_tier_5min_interval() -> None:
    usage = realistic_usage()
    ranked = sorted(usage, key=lambda t: -usage[t])
    plan = schedule(usage)
    critical = [s for s in plan if s.tier == CRITICAL]
    assert len(critical) == 5
    assert {s.target for s in critical} == set(ranked[:5])  # the busiest 5 %
    assert {s.interval_s for s in critical} == {300.0} == {CRITICAL_S}
    # Any usage at all: at least one critical target.
    assert [s.tier for s in schedule({("groq", "llama"): 1})] == [CRITICAL]
    assert len(by_tier(realistic_usage(10))[CRITICAL]) == 1  # ceil(0.5)
    assert len(by_tier(realistic_usage(21))[CRITICAL]) == 2  # ceil(1.05)
    assert schedule({}) == []


def test_cm_11_2_health_check_popular_tier_30min_interval() -> None:
    usage = realistic_usage()
    ranked = sorted(usage, key=lambda t: -usage[t])
    plan = schedule(usage)
    popular = [s for s in plan if s.tier == POPULAR]
    assert len(popular) == 20
    assert {s.target for s in popular} == set(ranked[5:25])  # the next 20 %
    assert {s.interval_s for s in popular} == {1800.0} == {POPULAR_S}
    tiers = by_tier(usage)
    assert min(usage[t] for t in tiers[CRITICAL]) > max(usage[t] for t in tiers[POPULAR])
    assert min(usage[t] for t in tiers[POPULAR]) > max(usage[t] for t in tiers[STANDARD])
    assert len(by_tier(realistic_usage(10))[POPULAR]) == 2  # ceil(2.0)
    assert len(by_tier(realistic_usage(21))[POPULAR]) == 5  # ceil(4.2)
    small = by_tier(realistic_usage(2))  # never more tiers than targets
    assert (len(small[CRITICAL]), len(small[POPULAR]), len(small[STANDARD])) == (1, 1, 0)


def test_cm_11_3_health_check_standard_tier_2_to_4hr_interval() -> None:
    usage = realistic_usage()
    ranked = sorted(usage, key=lambda t: -usage[t])
    standard = [s for s in schedule(usage) if s.tier == STANDARD]
    assert len(standard) == 75
    assert {s.target for s in standard} == set(ranked[25:])  # the remaining 75 %
    intervals = [s.interval_s for s in standard]
    assert all(7200.0 <= i <= 14400.0 for i in intervals)
    assert (STANDARD_MIN_S, STANDARD_MAX_S) == (7200.0, 14400.0)
    # Jittered: spread over the range, not one constant interval...
    assert len(set(intervals)) == 75
    assert min(intervals) < 7200 + 1800 and max(intervals) > 14400 - 1800
    assert sum(i < 10800 for i in intervals) in range(20, 56)  # roughly half below 3 h
    # ...but stable per target: new counts (the same targets re-ranked) keep each interval.
    reshuffled = {t: c + (1_000_000 if t in ranked[60:] else 0) for t, c in usage.items()}
    again = {s.target: s.interval_s for s in schedule(reshuffled) if s.tier == STANDARD}
    kept = {s.target: s.interval_s for s in standard if s.target in again}
    assert kept and all(again[t] == i for t, i in kept.items())


def test_cm_11_probe_settings_are_validated(tmp_path: Path) -> None:
    defaults = Settings(data_dir=tmp_path)
    assert defaults.health_probes is True
    assert (
        defaults.health_probe_concurrency,
        defaults.health_probe_tick_s,
        defaults.health_probe_timeout_s,
    ) == (4, 30.0, 30.0)
    env = {"GATEWAYZ_HEALTH_PROBES": "false", "GATEWAYZ_HEALTH_PROBE_CONCURRENCY": "2"}
    s = Settings.from_env(env)
    assert s.health_probes is False and s.health_probe_concurrency == 2
    with pytest.raises(ConfigError, match="HEALTH_PROBE_CONCURRENCY"):
        Settings.from_env({"GATEWAYZ_HEALTH_PROBE_CONCURRENCY": "0"})
    with pytest.raises(ConfigError, match="HEALTH_PROBE_TICK_S"):
        Settings.from_env({"GATEWAYZ_HEALTH_PROBE_TICK_S": "0"})
    with pytest.raises(ConfigError, match="unknown"):
        Settings.from_env({"GATEWAYZ_HEALTH_PROBE": "true"})


async def test_cm_11_unreadable_usage_never_ends_a_round(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'not-migrated.db'}")  # no tables at all
    prober = Prober(db, {}, PassiveHealth(), MemoryState(prefix="t:"))
    try:
        assert await prober.tick() == Counter()
        assert prober.schedules == {}
    finally:
        await db.dispose()


# ---- the prober against real providers -----------------------------------------------------


class FakeClock:
    def __init__(self, start: float = 50_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Phase(random.Random):
    """Jitter source that puts a new standard target's first probe `fraction` of its interval
    from now (0: at once)."""

    def __init__(self, fraction: float = 0.0) -> None:
        super().__init__(0)
        self.fraction = fraction

    def uniform(self, a: float, b: float) -> float:
        return a + self.fraction * (b - a)


class CountingHealth(PassiveHealth):
    """PassiveHealth that also counts what it records (read from the test thread)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.recorded: list[tuple[str, str, bool, bool]] = []

    def record(
        self,
        provider: str,
        model: str,
        ok: bool,
        latency_ms: float,
        *,
        ttft_ms: float | None = None,
        probe: bool = False,
    ) -> None:
        super().record(provider, model, ok, latency_ms, ttft_ms=ttft_ms, probe=probe)
        self.recorded.append((provider, model, ok, probe))


def provider_env(a: Simulator, b: Simulator) -> dict[str, dict[str, str]]:
    return {
        "vllm": {"base_url": a.base_url, "models": "test-model,other-model"},
        "lm-studio": {"base_url": b.base_url, "models": "shared-model"},
    }


@pytest.fixture(scope="module")
def gw(
    sims: tuple[Simulator, Simulator], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a, b = sims
    settings = gateway_settings(
        tmp_path_factory.mktemp("probes"), a, provider_env=provider_env(a, b)
    )
    g = start_gateway(settings, a)
    yield g
    g.stop()


@pytest.fixture(autouse=True)
def clean(request: pytest.FixtureRequest) -> None:
    """Each gateway test starts with no usage, no queued faults and no recorded requests."""
    if "gw" not in request.fixturenames:
        return
    gw: Gateway = request.getfixturevalue("gw")
    for sim in request.getfixturevalue("sims"):
        sim.clear()

    async def wipe(conn: AsyncConnection) -> None:
        await conn.execute(delete(request_logs))

    run_db(gw, wipe)


def on_gateway(gw: Gateway, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
    """Run `coro` on the gateway's own event loop (where its provider connections live)."""
    loop = gw.server.servers[0].get_loop()
    return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout)


def add_usage(gw: Gateway, usage: dict[Target, int], age: timedelta = timedelta(0)) -> None:
    """Request-log rows as real requests leave them: `count` per provider × native model."""

    async def work(conn: AsyncConnection) -> None:
        at = utcnow() - age
        rows = [
            {
                "request_id": secrets.token_hex(8),
                "endpoint": "/v1/chat/completions",
                "model": model,
                "provider": provider,
                "native_model": model,
                "status_code": 200,
                "created_at": at,
            }
            for (provider, model), count in usage.items()
            for _ in range(count)
        ]
        await conn.execute(insert(request_logs), rows)

    run_db(gw, work)


def count_rows(gw: Gateway) -> tuple[int, int]:
    """(request-log rows, ledger rows)."""

    async def work(conn: AsyncConnection) -> tuple[int, int]:
        logs = await conn.scalar(select(func.count()).select_from(request_logs))
        ledger = await conn.scalar(select(func.count()).select_from(credit_transactions))
        return int(logs or 0), int(ledger or 0)

    return run_db(gw, work)


def prober(
    gw: Gateway,
    health: PassiveHealth,
    state: StateBackend,
    **kwargs: Any,
) -> Prober:
    return Prober(gw.services.db, gw.services.registry.providers, health, state, **kwargs)


def probed_models(sim: Simulator) -> list[str]:
    return [r.json["model"] for r in sim.requests if r.json is not None]


def test_cm_11_1_due_targets_are_probed_by_tier_and_recorded_as_probes(
    gw: Gateway, sims: tuple[Simulator, Simulator]
) -> None:
    a, b = sims
    # Three targets: the busiest is critical, the next popular, the last standard.
    add_usage(gw, {("vllm", "test-model"): 30, ("lm-studio", "shared-model"): 20})
    add_usage(gw, {("vllm", "other-model"): 1})
    add_usage(gw, {("vllm", "stale-model"): 50}, age=timedelta(hours=25))  # outside 24 h
    clock = FakeClock()
    health = PassiveHealth(clock=clock)
    p = prober(gw, health, MemoryState(prefix="t:", clock=clock), rng=Phase(0.5))

    assert on_gateway(gw, p.tick()) == Counter({"ok": 2})
    assert {t: s.tier for t, s in p.schedules.items()} == {
        ("vllm", "test-model"): CRITICAL,
        ("lm-studio", "shared-model"): POPULAR,
        ("vllm", "other-model"): STANDARD,
    }
    (sent,) = [r.json for r in a.requests]
    assert sent["model"] == "test-model" and sent["max_tokens"] == 1
    assert sent["messages"] == [{"role": "user", "content": "ping"}]
    assert not sent.get("stream")
    assert probed_models(b) == ["shared-model"]
    rows = {(r["provider"], r["model"]): r for r in health.models()}
    assert set(rows) == {("vllm", "test-model"), ("lm-studio", "shared-model")}
    assert all(r["probes"] == r["attempts"] == 1 and r["errors"] == 0 for r in rows.values())
    # A probe is not real traffic: it never makes a target look freshly measured.
    assert health.last_request_at("vllm", "test-model") is None

    standard_due = p.due_at("vllm", "other-model")
    assert standard_due is not None
    standard_interval = p.schedules[("vllm", "other-model")].interval_s
    assert clock.now < standard_due <= clock.now + standard_interval  # jittered first probe

    clock.advance(120)
    assert on_gateway(gw, p.tick()) == Counter()  # nothing due yet
    clock.advance(180)  # 5 min: the critical target again, only it
    assert on_gateway(gw, p.tick()) == Counter({"ok": 1})
    assert probed_models(a) == ["test-model"] * 2 and probed_models(b) == ["shared-model"]
    clock.advance(1500)  # 30 min: the popular one too
    assert on_gateway(gw, p.tick()) == Counter({"ok": 2})
    assert probed_models(b) == ["shared-model"] * 2
    clock.now = standard_due  # the standard target's turn (critical is due again as well)
    on_gateway(gw, p.tick())
    assert "other-model" in probed_models(a)
    assert "stale-model" not in probed_models(a)


def test_cm_11_fresh_real_traffic_skips_the_probe(
    gw: Gateway, sims: tuple[Simulator, Simulator]
) -> None:
    a, _ = sims
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="test-model", messages=[{"role": "user", "content": "hello"}]
    )
    assert raw.parse().choices[0].message.content
    rid = raw.headers["x-request-id"]

    async def logged(conn: AsyncConnection) -> list[Target]:
        rows = await conn.execute(
            select(request_logs.c.provider, request_logs.c.native_model).where(
                request_logs.c.request_id == rid
            )
        )
        return [(p, m) for p, m in rows]

    deadline = time.monotonic() + 5
    while not (targets := run_db(gw, logged)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the request's log row, written off the request path
    ((provider, model),) = targets
    # More of the same earlier (critical tier), and a model with no real traffic lately.
    add_usage(gw, {(provider, model): 5, (provider, "other-model"): 1})
    a.clear()
    health = gw.services.pipeline.health  # where the gateway recorded the real request
    last = health.last_request_at(provider, model)
    assert last is not None
    p = prober(gw, health, MemoryState(prefix="t:"))

    assert on_gateway(gw, p.tick()) == Counter({"fresh": 1, "ok": 1})
    assert probed_models(a) == ["other-model"]  # the freshly measured model was not probed
    assert p.due_at(provider, model) == last + CRITICAL_S  # looked at when the data goes stale


def test_cm_11_probes_in_flight_are_bounded(gw: Gateway, sims: tuple[Simulator, Simulator]) -> None:
    a, _ = sims
    models = [f"slow-{i}" for i in range(8)]
    add_usage(gw, {("vllm", m): 10 + i for i, m in enumerate(models)})
    for _ in models:
        a.fault(Fault(delay_s=0.4))
    clock = FakeClock()
    health = CountingHealth(clock=clock)
    p = prober(gw, health, MemoryState(prefix="t:", clock=clock), concurrency=3, rng=Phase())

    loop = gw.server.servers[0].get_loop()
    started = time.monotonic()
    future = asyncio.run_coroutine_threadsafe(p.tick(), loop)
    peak = 0
    while not future.done():
        received = len(a.requests)  # read before the finished count: never overcounts
        peak = max(peak, received - len(health.recorded))
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    assert future.result() == Counter({"ok": 8})
    assert peak == 3
    assert elapsed >= 3 * 0.4  # three waves of at most three
    assert sorted(probed_models(a)) == models
    assert all(probe and ok for _, _, ok, probe in health.recorded)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_cm_11_two_workers_probe_each_target_once(
    gw: Gateway, sims: tuple[Simulator, Simulator], kind: str, request: pytest.FixtureRequest
) -> None:
    a, b = sims
    usage = {("vllm", "test-model"): 9, ("vllm", "other-model"): 5}
    usage |= {("lm-studio", "shared-model"): 7, ("lm-studio", "tail-model"): 1}
    add_usage(gw, usage)
    clock = FakeClock()
    if kind == "memory":
        shared = MemoryState(prefix="t:", clock=clock)
        states: list[StateBackend] = [shared, shared]
    else:  # two workers' own connections to one Redis, under this test's own prefix
        url: str = request.getfixturevalue("redis_url")
        prefix: str = request.getfixturevalue("redis_prefix")
        states = [RedisState(url, prefix=prefix), RedisState(url, prefix=prefix)]
    healths = [PassiveHealth(clock=clock), PassiveHealth(clock=clock)]
    workers = [prober(gw, h, s, rng=Phase()) for h, s in zip(healths, states, strict=True)]

    async def both() -> list[Counter[str]]:
        try:
            rounds = await asyncio.gather(*(w.tick() for w in workers))
            assert await states[1].get(USAGE_KEY) is not None  # usage read once, shared
            return list(rounds)
        finally:
            for state in {id(s): s for s in states}.values():
                await state.close()

    first, second = on_gateway(gw, both())
    assert first + second == Counter({"ok": 4, "taken": 4})
    assert sorted(probed_models(a) + probed_models(b)) == sorted(m for _, m in usage)
    probes = Counter((r["provider"], r["model"]) for h in healths for r in h.models())
    assert probes == Counter(usage.keys())  # each target's outcome in exactly one worker


def test_cm_11_failing_provider_records_failed_probe(
    gw: Gateway, sims: tuple[Simulator, Simulator]
) -> None:
    a, _ = sims
    add_usage(gw, {("vllm", "test-model"): 3, ("vllm", "other-model"): 1})
    a.fault(Fault(status=503))  # the first probe (the critical target)
    a.fault(Fault(delay_s=2.0))  # the second: slower than the probe's time limit
    clock = FakeClock()
    health = PassiveHealth(clock=clock)
    state = MemoryState(prefix="t:", clock=clock)
    p = prober(gw, health, state, concurrency=1, timeout_s=0.3, rng=Phase())
    breakers_before = on_gateway(gw, gw.services.breakers.snapshot())

    assert on_gateway(gw, p.tick()) == Counter({"failed": 2})
    rows = {r["model"]: r for r in health.models()}
    assert rows["test-model"]["errors"] == rows["test-model"]["probes"] == 1
    assert rows["other-model"]["errors"] == rows["other-model"]["probes"] == 1
    assert rows["other-model"]["latency_p50_ms"] < 1000  # cut off at the time limit
    # Circuit breakers are the request path's business: probes leave them alone.
    assert on_gateway(gw, gw.services.breakers.snapshot()) == breakers_before
    assert on_gateway(gw, gw.services.breakers.get("vllm"))["failures"] == 0
    clock.advance(CRITICAL_S)  # the provider recovered: the next probe says so
    assert on_gateway(gw, p.tick()) == Counter({"ok": 1})
    summary = health.summary("vllm", "test-model")
    assert summary is not None and summary.success_rate == 0.5


def test_cm_11_probes_write_no_ledger_and_no_request_logs(
    gw: Gateway, sims: tuple[Simulator, Simulator]
) -> None:
    a, b = sims
    add_usage(gw, {("vllm", "test-model"): 4, ("lm-studio", "shared-model"): 2})
    logs_before, ledger_before = count_rows(gw)
    p = prober(gw, PassiveHealth(), MemoryState(prefix="t:"), rng=Phase())
    assert on_gateway(gw, p.tick()) == Counter({"ok": 2})
    assert len(a.requests) == 1 and len(b.requests) == 1
    time.sleep(10 * gw.settings.request_log_flush_s)  # past any pending request-log flush
    assert count_rows(gw) == (logs_before, ledger_before)


def test_cm_11_providers_not_served_are_not_probed(
    gw: Gateway, sims: tuple[Simulator, Simulator]
) -> None:
    a, b = sims
    add_usage(gw, {("groq", "llama-3.3-70b-versatile"): 5, ("gone-provider", "m"): 2})
    assert not gw.services.registry.providers["groq"].enabled
    p = prober(gw, PassiveHealth(), MemoryState(prefix="t:"), rng=Phase())
    assert on_gateway(gw, p.tick()) == Counter({"unavailable": 2})
    assert a.requests == [] and b.requests == []


def test_cm_11_gateway_runs_probes_in_the_background(
    sims: tuple[Simulator, Simulator], tmp_path: Path
) -> None:
    a, b = sims
    a.clear()
    settings = gateway_settings(
        tmp_path,
        a,
        provider_env=provider_env(a, b),
        health_probes=True,
        health_probe_tick_s=0.05,
    )

    async def seed() -> None:  # usage from before this start (the database outlives workers)
        await upgrade(settings.resolved_database_url)
        db = Database(settings.resolved_database_url)
        try:
            async with db.begin() as conn:
                row = {
                    "request_id": "earlier",
                    "endpoint": "/v1/chat/completions",
                    "model": "test-model",
                    "provider": "vllm",
                    "native_model": "test-model",
                    "status_code": 200,
                    "created_at": utcnow(),
                }
                await conn.execute(insert(request_logs), [row])
        finally:
            await db.dispose()

    asyncio.run(seed())
    g = start_gateway(settings, a)
    try:
        assert g.services.prober is not None
        deadline = time.monotonic() + 10
        while "test-model" not in probed_models(a) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert probed_models(a) == ["test-model"]

        async def probe_rows() -> list[dict[str, Any]]:
            return g.services.pipeline.health.models()

        deadline = time.monotonic() + 5
        while not (rows := on_gateway(g, probe_rows())) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [(r["model"], r["probes"]) for r in rows] == [("test-model", 1)]
        time.sleep(0.3)  # more rounds: the target is not due again for 5 min
        assert probed_models(a) == ["test-model"]
    finally:
        g.stop()


def test_cm_11_probes_off_by_default_in_the_test_harness(gw: Gateway) -> None:
    assert gw.settings.health_probes is False and gw.services.prober is None
