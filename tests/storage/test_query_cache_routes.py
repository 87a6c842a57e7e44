"""The DB query cache behind the routes of a real gateway: a repeated key list or usage report
reaches the database once, and every key change made through the gateway — POST, PATCH and
DELETE /user/api-keys, and a Privy login asking for a new key — shows in the very next list
(after a change the list is read afresh, and not cached again for `GUARD_S`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gatewayz.simulators import Simulator
from tests.accounts.conftest import privy_settings, public_pem, sign
from tests.e2e.harness import Gateway, add_user, gateway_settings, start_gateway

from .helpers import MixStatements

PRIVY_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def gw(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("query-cache-routes")
    settings = gateway_settings(data_dir, upstream, **privy_settings(public_pem(PRIVY_KEY)))
    gateway = start_gateway(settings, upstream)
    yield gateway
    gateway.stop()


def _call(gw: Gateway, method: str, path: str, key: str, **kw: Any) -> Any:
    r = httpx2.request(
        method,
        f"{gw.root}{path}",
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
        trust_env=False,
        **kw,
    )
    assert r.status_code in (200, 201), r.text
    return r.json()


def _names(gw: Gateway, key: str) -> list[str]:
    return [k["name"] for k in _call(gw, "GET", "/user/api-keys", key)["data"]]


def test_key_list_is_read_once(gw: Gateway) -> None:
    _, key = add_user(gw)
    sql = MixStatements()
    with sql.watching(gw.services.db.engine):
        first = _names(gw, key)
        assert _names(gw, key) == first and _names(gw, key) == first
    assert sql.cached["keys"] == 1


def test_key_list_is_fresh_after_every_key_change(gw: Gateway) -> None:
    token = sign(PRIVY_KEY, sub="did:privy:query-cache")
    login = httpx2.post(f"{gw.root}/auth", json={"token": token}, timeout=10, trust_env=False)
    assert login.status_code == 200, login.text
    key = login.json()["api_key"]
    first = _names(gw, key)
    relogin = httpx2.post(
        f"{gw.root}/auth", json={"token": token, "new_api_key": True}, timeout=10, trust_env=False
    )
    assert relogin.status_code == 200 and relogin.json()["api_key"]
    assert len(_names(gw, key)) == len(first) + 1
    created = _call(gw, "POST", "/user/api-keys", key, json={"name": "ci"})
    assert "ci" in _names(gw, key)
    _call(gw, "PATCH", f"/user/api-keys/{created['id']}", key, json={"name": "deploy"})
    names = _names(gw, key)
    assert "deploy" in names and "ci" not in names
    _call(gw, "DELETE", f"/user/api-keys/{created['id']}", key)
    assert "deploy" not in _names(gw, key)
    assert gw.services.query_cache.stats.invalidations >= 4


def test_usage_report_is_read_once_per_view(gw: Gateway) -> None:
    login = httpx2.post(
        f"{gw.root}/auth",
        json={"token": sign(PRIVY_KEY, sub="did:privy:query-cache-usage")},
        timeout=10,
        trust_env=False,
    )
    key = login.json()["api_key"]
    sql = MixStatements()
    with sql.watching(gw.services.db.engine):
        by_model = _call(gw, "GET", "/user/usage", key)
        reads = sql.cached["usage"]
        assert reads >= 2  # grouped and totals
        assert _call(gw, "GET", "/user/usage", key) == by_model
        csv = httpx2.get(
            f"{gw.root}/user/usage",
            params={"format": "csv"},
            headers={"authorization": f"Bearer {key}"},
            timeout=10,
            trust_env=False,
        )
        assert csv.status_code == 200 and csv.text.startswith("model,")
        assert sql.cached["usage"] == reads  # the same report, from the cache
        _call(gw, "GET", "/user/usage", key, params={"group_by": "day"})
        assert sql.cached["usage"] > reads  # another view is another read
