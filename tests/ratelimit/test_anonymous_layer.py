"""CM-2.3: the anonymous layer — stricter than any tier, keyed by a hash of the IP, 429 when
exceeded — on MemoryState and real Redis."""

from __future__ import annotations

import hashlib

from gatewayz.billing.plans import load_plans
from gatewayz.billing.pricing import is_free_model
from gatewayz.ratelimit import ANONYMOUS, RateLimiter, ip_hash, is_anonymous

from .conftest import MINUTE, Store, fixed, principal


async def test_cm_2_3_1_anonymous_limits_stricter_than_authenticated(store: Store) -> None:
    plans = load_plans()
    assert plans.anonymous_rpm < min(t.rpm for t in plans.tiers.values())
    limiter = RateLimiter(store.state, clock=fixed())
    anon = await limiter.check_anonymous("198.51.100.7")
    keyed = await limiter.check_key(principal("key_cmp", plan="trial"))
    assert anon.limit == plans.anonymous_rpm < keyed.limit
    assert is_anonymous(ANONYMOUS) and not is_anonymous(principal())
    assert is_free_model("meta-llama/llama-3.2-3b-instruct:free")
    assert (
        not is_free_model("gpt-4o") and not is_free_model("free") and not is_free_model(":freebie")
    )


async def test_cm_2_3_2_anonymous_rate_limit_uses_ip_hash(store: Store) -> None:
    limiter = RateLimiter(store.state, clock=fixed())
    ip = "203.0.113.9"
    await limiter.check_anonymous(ip)
    digest = hashlib.sha256(ip.encode()).hexdigest()[:32]
    assert ip_hash(ip) == digest and ip not in digest
    key = f"anon_rate:{digest}:{MINUTE}"
    assert await store.exists(key), f"{store.prefix}{key} missing"
    ttl = await store.ttl(key)
    assert ttl is not None and 55 < ttl <= 60
    assert await store.state.get(key) == b"1"
    # Another IP has its own counter.
    await limiter.check_anonymous("203.0.113.10")
    assert await store.state.get(key) == b"1"


async def test_cm_2_3_3_anonymous_rate_limit_blocks_excess(store: Store) -> None:
    limiter = RateLimiter(store.state, clock=fixed())
    limit = load_plans().anonymous_rpm
    ip = "2001:db8::1"
    allowed = [await limiter.check_anonymous(ip) for _ in range(limit)]
    assert all(d.allowed for d in allowed)
    assert [d.remaining for d in allowed] == list(range(limit - 1, -1, -1))
    refused = await limiter.check_anonymous(ip)
    assert not refused.allowed and refused.scope == "anonymous"
    err = refused.error()
    assert err.status == 429
    assert err.headers["Retry-After"] == "30" and err.headers["X-RateLimit-Remaining"] == "0"
    assert limiter.metrics.refused == {"anonymous": 1}
    assert (await limiter.check_anonymous("2001:db8::2")).allowed  # other IPs unaffected
