"""CM-2.2: the key layer — RPM, tokens per day, tokens per month by plan tier, per-key
overrides, headers — on MemoryState and real Redis."""

from __future__ import annotations

import asyncio
import time

import pytest

from gatewayz.billing.plans import load_plans
from gatewayz.ratelimit import RateLimiter, key_limits
from gatewayz.ratelimit.limits import TOKEN_WRITE_DELAY_S

from .conftest import MINUTE, NOW, Store, fixed, principal

DAY, MONTH = "20231114", "202311"  # NOW is 2023-11-14 22:13:30 UTC
TO_DAY_END, TO_MONTH_END = 6390, 16 * 86400 + 6390


async def test_cm_2_2_1_key_rate_limit_tracks_rpm(store: Store) -> None:
    limiter = RateLimiter(store.state, clock=fixed())
    p = principal("key_rpm", limits={"rpm": 3})
    results = [await limiter.check_key(p) for _ in range(4)]
    assert [d.allowed for d in results] == [True, True, True, False]
    assert [d.remaining for d in results] == [2, 1, 0, 0]
    key = f"rate_limit:key_rpm:{MINUTE}"
    assert await store.exists(key), f"{store.prefix}{key} missing"
    ttl = await store.ttl(key)
    assert ttl is not None and 55 < ttl <= 60
    assert await store.state.get(key) == b"4"  # refused requests count too
    # The next minute is a fresh window under a fresh key.
    nxt = RateLimiter(store.state, clock=fixed(NOW + 60))
    assert (await nxt.check_key(p)).allowed
    assert await store.state.get(f"rate_limit:key_rpm:{MINUTE + 1}") == b"1"


async def test_cm_2_2_2_key_rate_limit_enforces_plan_tier(store: Store) -> None:
    plans = load_plans()
    dev, team, ent = (plans.tier(t) for t in ("dev", "team", "enterprise"))
    assert dev.rpm < team.rpm < ent.rpm
    assert dev.tokens_per_day < team.tokens_per_day < ent.tokens_per_day
    assert dev.tokens_per_month < team.tokens_per_month < ent.tokens_per_month
    limiter = RateLimiter(store.state, clock=fixed())
    for tier in (dev, team, ent):
        p = principal(f"key_{tier.slug}", plan=tier.slug)
        first = await limiter.check_key(p)
        assert (first.limit, first.remaining) == (tier.rpm, tier.rpm - 1)
        # Fill the tier's minute exactly; the next request is refused.
        await store.state.incr(f"rate_limit:key_{tier.slug}:{MINUTE}", tier.rpm - 1, 60)
        refused = await limiter.check_key(p)
        assert not refused.allowed and refused.scope == "rpm" and refused.limit == tier.rpm
    # Unknown plans get the most limited tier; a key's override beats its tier.
    assert key_limits(plans, principal(plan="nonsense")).rpm == plans.tier("trial").rpm
    over = key_limits(plans, principal(plan="team", limits={"rpm": 7, "tokens_per_day": 9}))
    assert (over.rpm, over.tokens_per_day, over.tokens_per_month) == (7, 9, team.tokens_per_month)
    # Garbage overrides are ignored, not trusted.
    bad = key_limits(plans, principal(plan="dev", limits={"rpm": "lots", "tokens_per_day": -1}))
    assert (bad.rpm, bad.tokens_per_day) == (dev.rpm, dev.tokens_per_day)


def test_a_users_own_rpm_only_lowers_the_plans_or_the_admins_limit() -> None:
    """`limits.user_rpm` (set by the key's owner) lowers the key's ceiling (an administrator's
    `limits.rpm`, else the plan's) and never raises it: a plan downgraded since it was set, or
    a value stored before users were bounded, still gets the plan's limit at most."""
    plans = load_plans()
    trial, dev = plans.tier("trial"), plans.tier("dev")
    assert key_limits(plans, principal(plan="dev", limits={"user_rpm": 7})).rpm == 7
    assert key_limits(plans, principal(plan="dev", limits={"user_rpm": 10**6})).rpm == dev.rpm
    downgraded = principal(plan="trial", limits={"user_rpm": dev.rpm})
    assert key_limits(plans, downgraded).rpm == trial.rpm
    granted = {"rpm": 5000, "user_rpm": 1000}
    assert key_limits(plans, principal(plan="trial", limits=granted)).rpm == 1000
    assert key_limits(plans, principal(plan="trial", limits={"rpm": 5000})).rpm == 5000
    garbage = principal(plan="dev", limits={"user_rpm": "lots"})
    assert key_limits(plans, garbage).rpm == dev.rpm


async def test_cm_2_2_3_key_rate_limit_tracks_tokens_per_day(store: Store) -> None:
    limiter = RateLimiter(store.state, clock=fixed())
    p = principal("key_tpd", limits={"tokens_per_day": 100})
    assert (await limiter.check_key(p, estimated_tokens=10)).allowed
    await limiter.record_tokens(p, 60)  # real usage, counted after the response
    key = f"rate_limit_tpd:key_tpd:{DAY}"
    assert await store.state.get(key) == b"60"
    ttl = await store.ttl(key)
    assert ttl is not None and 86_000 < ttl <= 86_400
    # 60 used + an estimated 50 would overshoot: refused before the call.
    refused = await limiter.check_key(p, estimated_tokens=50)
    assert not refused.allowed and refused.scope == "tokens_per_day"
    assert refused.limit == 100 and refused.reset_s == pytest.approx(TO_DAY_END)
    assert (await limiter.check_key(p, estimated_tokens=40)).allowed
    await limiter.record_tokens(p, 40)
    assert not (await limiter.check_key(p)).allowed  # budget spent: 100 of 100
    # The next day starts from zero.
    tomorrow = RateLimiter(store.state, clock=fixed(NOW + TO_DAY_END + 1))
    assert (await tomorrow.check_key(p, estimated_tokens=10)).allowed


async def test_cm_2_2_4_key_rate_limit_tracks_tokens_per_month(store: Store) -> None:
    limiter = RateLimiter(store.state, clock=fixed())
    p = principal("key_tpm", limits={"tokens_per_month": 1000, "tokens_per_day": 10_000})
    await limiter.record_tokens(p, 999)
    key = f"rate_limit_tpm:key_tpm:{MONTH}"
    assert await store.state.get(key) == b"999"
    ttl = await store.ttl(key)
    assert ttl is not None and 31 * 86400 - 60 < ttl <= 31 * 86400
    assert (await limiter.check_key(p, estimated_tokens=1)).allowed
    await limiter.record_tokens(p, 1)
    refused = await limiter.check_key(p)
    assert not refused.allowed and refused.scope == "tokens_per_month"
    assert refused.reset_s == pytest.approx(TO_MONTH_END)
    # Another day of the same month: still refused. The next month: allowed.
    later = RateLimiter(store.state, clock=fixed(NOW + 2 * 86400))
    assert not (await later.check_key(p)).allowed
    december = RateLimiter(store.state, clock=fixed(NOW + TO_MONTH_END + 1))
    assert (await december.check_key(p)).allowed


async def test_cm_2_2_5_rate_limit_returns_proper_headers(store: Store) -> None:
    limiter = RateLimiter(store.state, clock=fixed())
    p = principal("key_hdr", limits={"rpm": 2})
    ok = dict(await limiter.check_key(p) and (await limiter.check_key(p)).header_items())
    assert ok == {"X-RateLimit-Limit": "2", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}
    refused = await limiter.check_key(p)
    err = refused.error()
    assert err.status == 429 and err.type == "rate_limit_error"
    assert err.headers == {
        "X-RateLimit-Limit": "2",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "30",
        "Retry-After": "30",
    }
    raw = dict(refused.headers())
    assert raw[b"retry-after"] == b"30" and raw[b"x-ratelimit-limit"] == b"2"


def count_writes(store: Store) -> list[int]:
    """Count the store's `incr_many` calls (round trips), in the list's one element."""
    writes = [0]
    real = store.state.incr_many

    async def counted(items):  # type: ignore[no-untyped-def]
        writes[0] += 1
        return await real(items)

    store.state.incr_many = counted  # type: ignore[method-assign]
    return writes


async def test_usage_of_calls_ending_together_is_written_in_one_round_trip(store: Store) -> None:
    # The request path queues a call's usage (add_tokens) instead of waiting for its own
    # increment: the calls that end while a batch is on its way share the next one.
    limiter = RateLimiter(store.state, clock=fixed())
    p = principal("key_batch", limits={"tokens_per_day": 1_000})
    writes = count_writes(store)
    for _ in range(50):
        limiter.add_tokens(p, 10)
    await limiter.flush()
    assert await store.state.get(f"rate_limit_tpd:key_batch:{DAY}") == b"500"
    assert await store.state.get(f"rate_limit_tpm:key_batch:{MONTH}") == b"500"
    assert writes[0] == 1  # one round trip for the 50 calls' usage
    # Usage not yet sent goes with the key's next check: counted there, not a second time.
    for _ in range(10):
        limiter.add_tokens(p, 10)
    refused = await limiter.check_key(p, estimated_tokens=401)  # 600 used + 401 > 1,000
    assert not refused.allowed and refused.scope == "tokens_per_day"
    assert writes[0] == 2
    await limiter.flush()
    assert writes[0] == 2 and await store.state.get(f"rate_limit_tpd:key_batch:{DAY}") == b"600"
    assert (await limiter.check_key(p, estimated_tokens=400)).allowed


async def test_a_checks_round_trip_carries_the_usage_of_the_call_before(store: Store) -> None:
    # Calls that follow each other: each one's usage goes with the next one's check, so one
    # round trip per call instead of two.
    limiter = RateLimiter(store.state, clock=fixed())
    p = principal("key_carry", limits={"tokens_per_day": 10_000})
    writes = count_writes(store)
    started = time.monotonic()
    for _ in range(20):
        assert (await limiter.check_key(p)).allowed
        limiter.add_tokens(p, 5)
        await asyncio.sleep(0.001)  # the response goes out, the next request comes in
    elapsed = time.monotonic() - started
    await limiter.flush()
    # 20 checks, plus a write of its own now and then (at most one per TOKEN_WRITE_DELAY_S)
    # and the last call's: not 40.
    assert 21 <= writes[0] <= 22 + elapsed / TOKEN_WRITE_DELAY_S < 40
    assert await store.state.get(f"rate_limit_tpd:key_carry:{DAY}") == b"100"
