"""/admin/circuit-breakers on a real gateway sharing Redis with a second CircuitBreakers (as
another worker would): listing, reset (audited), and 403 for callers who are not admins."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import pytest
import redis

from gatewayz.reliability import CircuitBreakers
from gatewayz.simulators import Simulator
from gatewayz.state import RedisState
from tests.api.conftest import audit_rows, call, make_user
from tests.conftest import RUN_ID
from tests.e2e.harness import Gateway, gateway_settings, start_gateway


@pytest.fixture(scope="module")
def prefix(redis_url: str) -> Iterator[str]:
    p = f"gwtest:{RUN_ID}:breakers{secrets.token_hex(3)}:"
    yield p
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{p}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def gw(
    upstream: Simulator, tmp_path_factory: pytest.TempPathFactory, redis_url: str, prefix: str
) -> Iterator[Gateway]:
    settings = gateway_settings(
        tmp_path_factory.mktemp("gwb"),
        upstream,
        ip_rate_limit_rpm=100_000,
        redis_url=redis_url,
        redis_key_prefix=prefix,
        breaker_failure_threshold=5,
    )
    g = start_gateway(settings, upstream)
    yield g
    g.stop()


def other_worker(gw: Gateway, redis_url: str, prefix: str, *provider_model: str | None) -> None:
    """Five failures of `provider` (× model), recorded by another worker's CircuitBreakers."""

    async def go() -> None:
        state = RedisState(redis_url, prefix=prefix)
        try:
            b = CircuitBreakers(state, failure_threshold=gw.settings.breaker_failure_threshold)
            for _ in range(gw.settings.breaker_failure_threshold):
                await b.record_failure(*provider_model)  # type: ignore[arg-type]
        finally:
            await state.close()

    asyncio.run(go())


def _email(tag: str) -> str:
    return f"{tag}{secrets.token_hex(4)}@example.com"


def test_admin_lists_and_resets_breakers(gw: Gateway, redis_url: str, prefix: str) -> None:
    admin_id, admin_key = make_user(gw, _email("admin"), role="admin")
    other_worker(gw, redis_url, prefix, "openai")
    other_worker(gw, redis_url, prefix, "anthropic", "claude-x")
    r = call(gw, "GET", "/admin/circuit-breakers", admin_key)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["object"] == "list"
    by_name = {(e["provider"], e["model"]): e for e in body["data"]}
    openai = by_name[("openai", None)]
    assert openai["state"] == "open" and openai["failures"] == 5
    assert openai["retry_at"] == pytest.approx(openai["opened_at"] + 300)
    assert set(openai) == {"provider", "model", "state", "failures", "opened_at", "retry_at"}
    assert by_name[("anthropic", "claude-x")]["state"] == "open"

    r = call(gw, "POST", "/admin/circuit-breakers/openai/reset", admin_key)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "provider": "openai",
        "model": None,
        "state": "closed",
        "failures": 0,
        "opened_at": None,
        "retry_at": None,
        "previous_state": "open",
    }
    r = call(gw, "POST", "/admin/circuit-breakers/anthropic/reset?model=claude-x", admin_key)
    assert r.status_code == 200 and r.json()["model"] == "claude-x", r.text
    states = {
        (e["provider"], e["model"]): e["state"]
        for e in call(gw, "GET", "/admin/circuit-breakers", admin_key).json()["data"]
    }
    assert states[("openai", None)] == states[("anthropic", "claude-x")] == "closed"
    # The gateway's own breakers (what the request path asks) see the reset.
    assert asyncio.run(_state_of(gw, redis_url, prefix)) == "closed"

    rows = audit_rows(
        gw, "circuit_breaker_reset", lambda rs: sum(x["user_id"] == admin_id for x in rs) >= 2
    )
    mine = [x for x in rows if x["user_id"] == admin_id]
    assert [x["detail"]["provider"] for x in mine] == ["openai", "anthropic"]
    assert mine[0]["detail"] == {
        "provider": "openai",
        "model": None,
        "previous_state": "open",
        "previous_failures": 5,
    }
    assert mine[0]["severity"] == "warning"
    assert mine[0]["path"] == "/admin/circuit-breakers/openai/reset"

    r = call(gw, "POST", "/admin/circuit-breakers/no-such-provider/reset", admin_key)
    assert r.status_code == 404 and r.json()["error"]["code"] == "provider_not_found"


async def _state_of(gw: Gateway, redis_url: str, prefix: str) -> str:
    state = RedisState(redis_url, prefix=prefix)
    try:
        return (await CircuitBreakers(state).state_of("openai")).value
    finally:
        await state.close()


@pytest.mark.parametrize("role", ["free", "dev", "team"])
def test_breaker_routes_refuse_non_admins(
    gw: Gateway, redis_url: str, prefix: str, role: str
) -> None:
    user_id, key = make_user(gw, _email(role), role=role)
    other_worker(gw, redis_url, prefix, "vllm")
    for method, path in (
        ("GET", "/admin/circuit-breakers"),
        ("POST", "/admin/circuit-breakers/vllm/reset"),
    ):
        r = call(gw, method, path, key)
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "insufficient_permissions"
    rows = audit_rows(
        gw, "admin_access_denied", lambda rs: sum(x["user_id"] == user_id for x in rs) >= 2
    )
    assert sum(x["user_id"] == user_id for x in rows) == 2
    _, admin_key = make_user(gw, _email("admin"), role="admin")
    data = call(gw, "GET", "/admin/circuit-breakers", admin_key).json()["data"]
    assert next(e for e in data if e["provider"] == "vllm")["state"] == "open"  # untouched
    assert call(gw, "GET", "/admin/circuit-breakers").status_code == 401


def test_admin_role_holds_the_breakers_permission() -> None:
    from gatewayz.security.roles import load_roles

    roles = load_roles()
    assert roles.allows("admin", "admin:breakers:write")
    assert "reset" in roles.permissions["admin:breakers:write"].lower()
    for role in ("free", "dev", "team"):
        assert not roles.allows(role, "admin:breakers:write")
