"""CM-2 end to end: a real gateway (uvicorn) in front of the provider simulator, called with the
official SDKs. Key limits, the anonymous `:free` layer, the IP layer before authentication,
velocity mode, and Redis being down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx2 as httpx
import openai
import pytest

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.ratelimit import ip_hash
from gatewayz.security.keys import KeyRing
from gatewayz.simulators import Simulator
from gatewayz.simulators.faults import Fault
from gatewayz.storage.db import Database
from gatewayz.storage.keys import find_key
from gatewayz.storage.users import create_user
from tests.api.conftest import audit_rows
from tests.e2e.harness import Gateway, gateway_settings, request_log_rows, start_gateway

from .conftest import NOW

MODEL, FREE_MODEL = "test-model", "test-model:free"
LIMIT_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset")


def _settings(data_dir: Path, upstream: Simulator, **overrides: Any) -> Any:
    settings = gateway_settings(data_dir, upstream, **overrides)
    env = dict(settings.provider_env)
    env["vllm"] = {"base_url": upstream.base_url, "models": f"{MODEL},{FREE_MODEL}"}
    return settings.model_copy(update={"provider_env": env})


def _gateway(tmp: Path, upstream: Simulator, **overrides: Any) -> Gateway:
    # Callers are told apart by X-Forwarded-For from the loopback "proxy".
    overrides.setdefault("trusted_proxies", "127.0.0.1")
    gw = start_gateway(_settings(tmp, upstream, **overrides), upstream)
    gw.services.limiter.clock = lambda: NOW  # one fixed minute: no boundary flakiness
    return gw


@pytest.fixture(scope="module")
def gateway(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gw = _gateway(tmp_path_factory.mktemp("rl"), upstream)
    yield gw
    gw.stop()


def make_key(gw: Gateway, email: str, limits: dict[str, int] | None, plan: str = "trial") -> str:
    async def create() -> str:
        db = Database(gw.settings.resolved_database_url)
        try:
            async with db.begin() as conn:
                user = await create_user(conn, email, role="dev", plan=plan, credits_usd=100)
                _, key = await create_api_key(
                    conn, KeyRing(*gw.settings.secrets), user["id"], gw.settings.env, limits=limits
                )
                return key
        finally:
            await db.dispose()

    return asyncio.run(create())


def oai(gw: Gateway, key: str, ip: str = "192.0.2.1") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gw.base_url,
        api_key=key,
        max_retries=0,
        default_headers={"x-forwarded-for": ip},
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


def chat(client: openai.OpenAI, model: str = MODEL, **kw: Any) -> Any:
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": "hello"}], **kw
    )


def test_cm_2_2_1_key_rpm_override_429_with_headers(gateway: Gateway) -> None:
    key = make_key(gateway, "rpm3@example.com", {"rpm": 3})
    client = oai(gateway, key)
    remaining = []
    for i in range(3):
        raw = chat(client, stream=(i == 1))  # streamed responses carry the headers too
        assert raw.status_code == 200
        assert raw.headers["x-ratelimit-limit"] == "3"
        assert raw.headers["x-ratelimit-reset"] == "30"
        remaining.append(raw.headers["x-ratelimit-remaining"])
        if i == 1:
            assert "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert remaining == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as exc:
        chat(client)
    r = exc.value.response
    assert r.status_code == 429 and r.headers["retry-after"] == "30"
    assert [r.headers[h] for h in LIMIT_HEADERS] == ["3", "0", "30"]
    assert r.headers["x-request-id"]
    assert exc.value.body["type"] == "rate_limit_error"  # type: ignore[index]
    # The same key on the Anthropic route: refused in Anthropic's shape.
    claude = anthropic.Anthropic(
        base_url=gateway.root,
        api_key=key,
        max_retries=0,
        http_client=httpx.Client(trust_env=False),  # type: ignore[arg-type]
    )
    with pytest.raises(anthropic.RateLimitError) as aexc:
        claude.messages.create(
            model=MODEL, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
        )
    assert aexc.value.response.headers["retry-after"] == "30"
    assert aexc.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    # Refused calls never reached the provider.
    assert len([r for r in gateway.upstream.requests if r.path.endswith("/chat/completions")]) == 3


def test_cm_2_2_3_real_usage_counts_against_tokens_per_day(gateway: Gateway) -> None:
    key = make_key(gateway, "tpd@example.com", {"tokens_per_day": 15})
    client = oai(gateway, key)
    first = chat(client)
    assert first.status_code == 200
    used = first.parse().usage.total_tokens
    assert 0 < used < 15
    counter = f"rate_limit_tpd:{_key_id(gateway, key)}:20231114"
    deadline = time.monotonic() + 5
    while asyncio.run(gateway.services.state.get(counter)) != str(used).encode():
        assert time.monotonic() < deadline, "usage not counted after the response"
        time.sleep(0.01)
    # Spend the rest: the next call's estimate does not fit any more.
    gateway_state_incr(gateway, counter, 15 - used)
    with pytest.raises(openai.RateLimitError) as exc:
        chat(client)
    assert exc.value.response.headers["x-ratelimit-limit"] == "15"
    assert "tokens per day" in exc.value.message


def _key_id(gw: Gateway, key: str) -> str:
    async def find() -> str:
        db = Database(gw.settings.resolved_database_url)
        try:
            async with db.begin() as conn:
                row = await find_key(conn, KeyRing(*gw.settings.secrets).hash(key))
                assert row is not None
                return str(row["api_key_id"])
        finally:
            await db.dispose()

    return asyncio.run(find())


def gateway_state_incr(gw: Gateway, key: str, amount: int) -> None:
    asyncio.run(gw.services.state.incr(key, amount, 86400))  # MemoryState: no loop affinity


def test_cm_2_3_anonymous_free_models_allowed_then_limited(gateway: Gateway) -> None:
    ip = "198.51.100.200"
    anon = httpx.Client(base_url=gateway.base_url, trust_env=False)
    body = {"model": FREE_MODEL, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"x-forwarded-for": ip}
    limit = gateway.services.limiter.plans.anonymous_rpm
    with anon:
        # Without a key a model that is not `:free` stays 401.
        r = anon.post("/chat/completions", json={**body, "model": MODEL}, headers=headers)
        assert r.status_code == 401 and "':free' models" in r.json()["error"]["message"]
        # ...and, like every failed authentication, it is audited (by IP; no key was sent).
        rows = audit_rows(gateway, "auth_failed", lambda rs: any(x["ip"] == ip for x in rs))
        row = next(x for x in rows if x["ip"] == ip)
        assert row["detail"]["key_presented"] is False
        for i in range(limit):
            r = anon.post(
                "/chat/completions", json=body, headers={**headers, "x-request-id": f"anon-{i}"}
            )
            assert r.status_code == 200, r.text
            assert r.headers["x-ratelimit-limit"] == str(limit)
            assert r.headers["x-ratelimit-remaining"] == str(limit - 1 - i)
        r = anon.post("/chat/completions", json=body, headers=headers)
        assert r.status_code == 429 and r.headers["retry-after"] == "30"
        assert r.json()["error"]["type"] == "rate_limit_error"
        # The Anthropic route, same IP, same budget: 429 in Anthropic's shape.
        r = anon.post(
            "/messages",
            json={**body, "max_tokens": 8},
            headers={**headers, "anthropic-version": "2023-06-01"},
        )
        assert r.status_code == 429 and r.json()["type"] == "error"
        # Another IP has its own budget; a keyed caller is not touched by the anonymous layer.
        assert (
            anon.post(
                "/chat/completions", json=body, headers={"x-forwarded-for": "198.51.100.201"}
            ).status_code
            == 200
        )
    assert chat(oai(gateway, gateway.api_key, ip), model=FREE_MODEL).status_code == 200
    counter = f"anon_rate:{ip_hash(ip)}:{NOW // 60:.0f}"
    assert asyncio.run(gateway.services.state.get(counter)) == str(limit + 2).encode()
    rows = request_log_rows(gateway, "anon-0")
    assert rows and rows[0]["user_id"] is None and rows[0]["api_key_id"] is None
    assert rows[0]["status_code"] == 200 and rows[0]["model"] == FREE_MODEL


def test_cm_2_1_ip_layer_before_auth_valid_keys_exempt(upstream: Simulator, tmp_path: Path) -> None:
    gw = _gateway(tmp_path, upstream, ip_rate_limit_rpm=3)
    try:
        with httpx.Client(base_url=gw.base_url, trust_env=False) as c:
            ip = {"x-forwarded-for": "203.0.113.50"}
            bad = {**ip, "authorization": "Bearer gw_test_" + "z" * 43}
            first = [c.get("/models", headers=bad) for _ in range(3)]
            assert [r.status_code for r in first] == [401, 401, 401]
            assert [r.headers["x-ratelimit-remaining"] for r in first] == ["2", "1", "0"]
            r = c.get("/models", headers=bad)  # the IP layer answers before authentication
            assert r.status_code == 429 and r.json()["error"]["type"] == "rate_limit_error"
            assert r.headers["retry-after"] and r.headers["x-request-id"]
            assert c.post("/chat/completions", json={}, headers=ip).status_code == 429
            good = {**ip, "authorization": f"Bearer {gw.api_key}"}
            assert all(c.get("/models", headers=good).status_code == 200 for _ in range(5))
            assert c.get("/models", headers={"x-forwarded-for": "203.0.113.51"}).status_code == 401
            assert c.get(f"{gw.root}/health", headers=ip).status_code == 200
        for _ in range(3):  # the SDK with a valid key, same IP: exempt
            assert chat(oai(gw, gw.api_key, "203.0.113.50")).status_code == 200
    finally:
        gw.stop()


def test_cm_2_1_4_velocity_mode_tightens_ip_limits(upstream: Simulator, tmp_path: Path) -> None:
    gw = _gateway(tmp_path, upstream, ip_rate_limit_rpm=4, velocity_min_requests=8)
    try:
        with httpx.Client(base_url=gw.base_url, trust_env=False) as c:
            before = [c.get("/models", headers={"x-forwarded-for": "192.0.2.10"}) for _ in range(5)]
            assert [r.status_code for r in before] == [401] * 4 + [429]
            assert before[0].headers["x-ratelimit-limit"] == "4"
            # A burst of provider failures: 5xx for a quarter or more of the last minute.
            for _ in range(20):
                upstream.fault(Fault(status=500))
            client = oai(gw, gw.api_key)
            statuses = []
            for _ in range(4):
                try:
                    statuses.append(chat(client).status_code)
                except openai.APIStatusError as exc:
                    statuses.append(exc.status_code)
            assert sum(s >= 500 for s in statuses) >= 3, statuses
            upstream.clear()
            after = [c.get("/models", headers={"x-forwarded-for": "192.0.2.11"}) for _ in range(3)]
            assert [r.status_code for r in after] == [401, 401, 429]
            assert after[0].headers["x-ratelimit-limit"] == "2"
    finally:
        upstream.clear()
        gw.stop()


def test_cm_2_4_1_gateway_serves_with_redis_down(upstream: Simulator, tmp_path: Path) -> None:
    gw = _gateway(tmp_path, upstream, redis_url="redis://127.0.0.1:1/0")
    try:
        key = make_key(gw, "down@example.com", {"rpm": 2})
        client = oai(gw, key)
        assert [chat(client).headers["x-ratelimit-remaining"] for _ in range(2)] == ["1", "0"]
        with pytest.raises(openai.RateLimitError):  # still enforced, by the fallback
            chat(client)
        assert gw.services.limiter.metrics.state_fallbacks >= 1
    finally:
        gw.stop()
