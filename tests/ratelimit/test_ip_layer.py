"""CM-2.1: the IP layer as ASGI middleware in front of a stand-in endpoint, on MemoryState and
real Redis: per-IP limit, 429 before authentication, velocity mode, valid keys exempt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import pytest
from starlette.types import Receive, Scope, Send

from gatewayz.api.asgi import header, send_bytes
from gatewayz.api.ip_limit import IPRateLimitMiddleware
from gatewayz.api.middleware import RequestContextMiddleware
from gatewayz.context import bearer_token
from gatewayz.errors import Unauthorized
from gatewayz.ratelimit import RateLimiter
from gatewayz.ratelimit.velocity import VelocityTracker
from gatewayz.security.auth import Principal
from gatewayz.security.client_ip import trusted_networks
from gatewayz.settings import Settings

from .conftest import Store, principal

VALID_KEY = "gw_test_" + "v" * 40


class StubAuth:
    """Accepts exactly VALID_KEY; counts every check."""

    def __init__(self) -> None:
        self.checked: list[str | None] = []

    async def authenticate(self, key: str | None) -> Principal:
        self.checked.append(key)
        if key != VALID_KEY:
            raise Unauthorized("Incorrect API key provided.")
        return principal()


@dataclass
class StubServices:
    settings: Settings
    limiter: RateLimiter
    auth: StubAuth = field(default_factory=StubAuth)


class Endpoint:
    """Authenticates like the real endpoints (401 without a valid key, unless the path is
    /open); answers with the status named in the path (/status/503)."""

    def __init__(self, auth: StubAuth) -> None:
        self.auth = auth
        self.reached = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.reached += 1
        path: str = scope["path"]
        key = bearer_token(header(scope, b"authorization"), header(scope, b"x-api-key"))
        if not path.startswith(("/open", "/status", "/health", "/api/")) and key != VALID_KEY:
            await send_bytes(send, 401, b'{"error": "unauthorized"}')
            return
        status = int(path.rsplit("/", 1)[1]) if path.startswith("/status/") else 200
        await send_bytes(send, status, b"{}")


def build(store: Store, **overrides: Any) -> tuple[httpx.AsyncClient, Endpoint, StubServices]:
    settings = Settings(**{"ip_rate_limit_rpm": 5, **overrides})
    services = StubServices(settings, RateLimiter(store.state))
    endpoint = Endpoint(services.auth)
    limited = IPRateLimitMiddleware(endpoint, services)  # type: ignore[arg-type]
    app = RequestContextMiddleware(limited, trusted_networks(settings.trusted_proxies))
    transport = httpx.ASGITransport(app=app, client=("198.51.100.20", 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gw"), endpoint, services


async def test_cm_2_1_1_ip_rate_limit_under_threshold_allows(store: Store) -> None:
    client, endpoint, _ = build(store)
    async with client:
        for i in range(5):
            r = await client.get("/open")
            assert r.status_code == 200
            assert r.headers["x-ratelimit-limit"] == "5"
            assert r.headers["x-ratelimit-remaining"] == str(4 - i)
            assert 0 < int(r.headers["x-ratelimit-reset"]) <= 60
            assert "retry-after" not in r.headers
        r = await client.get("/health")  # probes are not limited
        assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers
    assert endpoint.reached == 6


async def test_stripe_webhook_is_never_ip_limited(store: Store) -> None:
    """Stripe's deliveries must always get their 200 (CM-16.5), however many arrive."""
    client, endpoint, _ = build(store)
    async with client:
        for _ in range(5):
            assert (await client.get("/open")).status_code == 200
        assert (await client.get("/open")).status_code == 429
        for _ in range(10):
            r = await client.post("/api/stripe/webhook", content=b"{}")
            assert r.status_code == 200 and "x-ratelimit-limit" not in r.headers
    assert endpoint.reached == 15


async def test_cm_2_1_2_ip_rate_limit_over_threshold_blocks(store: Store) -> None:
    client, endpoint, services = build(store)
    async with client:
        for _ in range(5):
            assert (await client.get("/open")).status_code == 200
        r = await client.post("/v1/chat/completions", json={})
        assert r.status_code == 429
        err = r.json()["error"]  # OpenAI's shape
        assert err["type"] == "rate_limit_error" and "5 requests per minute" in err["message"]
        assert 1 <= int(r.headers["retry-after"]) <= 60
        assert r.headers["x-ratelimit-remaining"] == "0"
        r = await client.post("/v1/messages", json={})
        assert r.status_code == 429
        body = r.json()  # Anthropic's shape on its route
        assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
        # Another client IP is not affected.
        other = httpx.ASGITransport(app=client._transport.app, client=("198.51.100.21", 1))  # type: ignore[attr-defined]
        async with httpx.AsyncClient(transport=other, base_url="http://gw") as c2:
            assert (await c2.get("/open")).status_code == 200
    assert endpoint.reached == 6
    assert services.limiter.metrics.refused == {"ip": 2}


async def test_cm_2_1_3_ip_rate_limit_applied_before_auth(store: Store) -> None:
    client, endpoint, _services = build(store, ip_rate_limit_rpm=3)
    async with client:
        bad = {"authorization": "Bearer gw_test_not-a-real-key"}
        statuses = [(await client.get("/v1/models", headers=bad)).status_code for _ in range(5)]
    # Authentication answers 401 while the IP has budget; past it the IP layer answers 429
    # and the request never reaches authentication in the endpoint.
    assert statuses == [401, 401, 401, 429, 429]
    assert endpoint.reached == 3


async def test_cm_2_1_4_velocity_detection_triggers_on_anomalous_pattern(store: Store) -> None:
    client, _endpoint, _ = build(store, ip_rate_limit_rpm=8, velocity_min_requests=20)
    async with client:
        ok = {"authorization": f"Bearer {VALID_KEY}"}  # exempt, but their outcomes count
        for i in range(20):
            await client.get("/status/503" if i % 4 == 0 else "/status/200", headers=ok)
        # 5 of 20 (25 %) were 5xx: velocity mode halves the limit for anonymous callers.
        statuses = [(await client.get("/open")).status_code for _ in range(6)]
    assert statuses == [200, 200, 200, 200, 429, 429]


def test_cm_2_1_4_velocity_tracker_thresholds_and_cooldown() -> None:
    now = [1000.0]
    v = VelocityTracker(100, 0.25, 0.5, 180, clock=lambda: now[0])
    for i in range(100):  # 24 % errors: not anomalous
        v.record(503 if i < 24 else 200)
    assert not v.active and v.limit(300) == 300
    v.record(502)  # 25 of 101 ≈ 24.8 %: still below
    assert not v.active
    v.record(500)  # 26 of 102 > 25 %: anomalous
    assert v.active and v.limit(300) == 150 and v.activations == 1
    now[0] += 179
    assert v.active
    now[0] += 2
    assert not v.active and v.limit(300) == 300
    # Old traffic ages out of the 60 s window: 30 errors alone are not 100 requests.
    fresh = VelocityTracker(100, 0.25, 0.5, 180, clock=lambda: now[0])
    for _ in range(90):
        fresh.record(200)
    now[0] += 61
    for _ in range(30):
        fresh.record(500)
    assert not fresh.active
    assert VelocityTracker(1, 0.25, 0.5, 180).limit(1) == 1  # never below one request


async def test_cm_2_1_5_authenticated_users_exempt_from_ip_limits(store: Store) -> None:
    client, _endpoint, services = build(store, ip_rate_limit_rpm=2)
    async with client:
        good = {"authorization": f"Bearer {VALID_KEY}"}
        for _ in range(10):
            r = await client.get("/v1/models", headers=good)
            assert r.status_code == 200
            assert "x-ratelimit-limit" not in r.headers  # not counted at the IP layer
        also = {"x-api-key": VALID_KEY}
        assert (await client.get("/v1/models", headers=also)).status_code == 200
        # The key's validity is checked, not its shape: wrong keys are limited.
        wrong = {"authorization": f"Bearer {VALID_KEY[:-1]}x"}
        statuses = [(await client.get("/open", headers=wrong)).status_code for _ in range(3)]
        assert statuses == [200, 200, 429]
        # Anonymous callers from the same IP still have their own budget... now spent.
        assert (await client.get("/open")).status_code == 429
        assert (await client.get("/v1/models", headers=good)).status_code == 200
    assert VALID_KEY in services.auth.checked and f"{VALID_KEY[:-1]}x" in services.auth.checked


@pytest.mark.parametrize("xff", ["garbage, , 999.1.1.1", "203.0.113.5"])
async def test_ip_layer_uses_forwarded_ip_only_behind_trusted_proxy(store: Store, xff: str) -> None:
    client, _, _ = build(store, ip_rate_limit_rpm=1, trusted_proxies="198.51.100.0/24")
    async with client:
        assert (await client.get("/open", headers={"x-forwarded-for": xff})).status_code == 200
        assert (await client.get("/open", headers={"x-forwarded-for": xff})).status_code == 429
        other = {"x-forwarded-for": "192.0.2.77"}
        assert (await client.get("/open", headers=other)).status_code == 200
