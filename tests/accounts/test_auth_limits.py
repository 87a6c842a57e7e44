"""Per-IP limits on the auth endpoints (CM-12.1, CM-12.2), on the memory backend and on Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import pytest

from gatewayz.simulators import Simulator
from tests.accounts.conftest import TokenFactory, privy_settings
from tests.e2e.harness import Gateway, gateway_settings, start_gateway


@pytest.fixture(params=["memory", "redis"])
def state_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "memory":
        return {}
    return {
        "redis_url": request.getfixturevalue("redis_url"),
        "redis_key_prefix": request.getfixturevalue("redis_prefix"),
    }


@pytest.fixture
def limited_privy(
    upstream: Simulator, privy_pem: str, tmp_path: Any, state_overrides: dict[str, Any]
) -> Iterator[Gateway]:
    gw = start_gateway(
        gateway_settings(tmp_path, upstream, **privy_settings(privy_pem, **state_overrides)),
        upstream,
    )
    yield gw
    gw.stop()


@pytest.fixture
def limited_email(
    upstream: Simulator, tmp_path: Any, state_overrides: dict[str, Any]
) -> Iterator[Gateway]:
    gw = start_gateway(gateway_settings(tmp_path, upstream, **state_overrides), upstream)
    yield gw
    gw.stop()


def _login(gw: Gateway, token: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{gw.root}/auth", json={"token": token}, headers=headers, timeout=10)


def _register(gw: Gateway, email: str, **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gw.root}/auth/register", json={"email": email}, headers=headers, timeout=10
    )


def _assert_429(r: httpx.Response, window_s: float) -> None:
    assert r.status_code == 429, r.text
    assert r.json()["error"]["type"] == "rate_limit_error"
    retry = int(r.headers["retry-after"])
    assert 0 < retry <= window_s
    assert r.headers["x-ratelimit-remaining"] == "0"


def test_cm_12_1_login_rate_limit_10_per_15min(
    limited_privy: Gateway, make_token: TokenFactory
) -> None:
    s = limited_privy.settings
    assert (s.login_rate_limit, s.login_rate_window_s) == (10, 900.0)
    token = make_token()
    statuses = [_login(limited_privy, token).status_code for _ in range(5)]
    statuses += [_login(limited_privy, "garbage").status_code for _ in range(5)]
    assert statuses == [200] * 5 + [401] * 5  # failed attempts count too
    _assert_429(_login(limited_privy, token), 900)
    # The refusal comes before the token is even looked at.
    _assert_429(_login(limited_privy, "garbage"), 900)


def test_cm_12_2_register_rate_limit_3_per_hour(limited_email: Gateway) -> None:
    s = limited_email.settings
    assert (s.register_rate_limit, s.register_rate_window_s) == (3, 3600.0)
    statuses = [_register(limited_email, f"r{i}@example.com").status_code for i in range(2)]
    statuses.append(_register(limited_email, "not-an-email").status_code)  # counts as well
    assert statuses == [201, 201, 400]
    _assert_429(_register(limited_email, "r9@example.com"), 3600)


def test_cm_12_2_privy_sign_ups_count_as_registrations(
    limited_privy: Gateway, make_token: TokenFactory
) -> None:
    tokens = [make_token() for _ in range(3)]
    for token in tokens:
        r = _login(limited_privy, token)
        assert r.status_code == 200 and r.json()["is_new_user"]
    _assert_429(_login(limited_privy, make_token()), 3600)  # a 4th new account from this IP
    # Logins of existing users are not sign-ups: still allowed (under the login limit).
    r = _login(limited_privy, tokens[0])
    assert r.status_code == 200 and not r.json()["is_new_user"]


@pytest.fixture
def proxied_email(upstream: Simulator, tmp_path: Any) -> Iterator[Gateway]:
    gw = start_gateway(
        gateway_settings(tmp_path, upstream, trusted_proxies="127.0.0.1/32"), upstream
    )
    yield gw
    gw.stop()


def test_limits_are_per_client_ip(proxied_email: Gateway) -> None:
    a = {"X-Forwarded-For": "203.0.113.5"}
    b = {"X-Forwarded-For": "203.0.113.6"}
    for i in range(3):
        assert _register(proxied_email, f"a{i}@example.com", **a).status_code == 201
    _assert_429(_register(proxied_email, "a9@example.com", **a), 3600)
    assert _register(proxied_email, "b0@example.com", **b).status_code == 201
    # Garbage in X-Forwarded-For never becomes an identity: it falls back to the peer.
    junk = {"X-Forwarded-For": "not-an-ip, ::zz"}
    assert _register(proxied_email, "c0@example.com", **junk).status_code == 201


def test_login_limit_shared_across_gateways_on_redis(
    upstream: Simulator,
    privy_pem: str,
    tmp_path: Any,
    redis_url: str,
    redis_prefix: str,
    make_token: TokenFactory,
) -> None:
    """Two gateway processes' worth of state (two Services) on one Redis count together."""
    shared = privy_settings(privy_pem, redis_url=redis_url, redis_key_prefix=redis_prefix)
    one = start_gateway(gateway_settings(tmp_path / "one", upstream, **shared), upstream)
    two = start_gateway(gateway_settings(tmp_path / "two", upstream, **shared), upstream)
    try:
        for gw in (one, two) * 5:
            assert _login(gw, "garbage").status_code == 401
        _assert_429(_login(one, "garbage"), 900)
        _assert_429(_login(two, "garbage"), 900)
    finally:
        one.stop()
        two.stop()
