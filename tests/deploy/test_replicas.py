"""Two replicas: two separate `gatewayz serve` processes (their own data dirs, as on two hosts)
on one PostgreSQL database and one Redis, started together on an empty database. What the
README's replica guide says is shared is shared: the schema (migrated once), keys, their
revocation, rate limits, circuit breakers and balances."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest

from gatewayz.simulators import Fault, Simulator
from tests.deploy.helpers import Server, _spawn, free_port, production_env, run_cli

MODEL = "test-model"


@pytest.fixture
def replicas(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str, upstream: Simulator
) -> Iterator[tuple[Server, Server, dict[str, str]]]:
    upstream.clear()
    env = production_env(
        postgres_url, redis_url, redis_prefix, upstream.base_url, MODEL, tmp_path / "a"
    )
    env["GATEWAYZ_BREAKER_FAILURE_THRESHOLD"] = "2"
    env_b = {**env, "GATEWAYZ_DATA_DIR": str(tmp_path / "b")}
    logs = tmp_path / "logs"
    (logs / "a").mkdir(parents=True)
    (logs / "b").mkdir()
    # Started together on an empty database: both migrate, one after the other (a lock).
    a = _spawn(env, tmp_path, logs / "a", free_port(), ())
    b = _spawn(env_b, tmp_path, logs / "b", free_port(), ())
    try:
        a.wait_ready()
        b.wait_ready()
        yield a, b, env
    finally:
        a.stop()
        b.stop()


def _call(server: Server, key: str, method: str, path: str, **kw: Any) -> httpx2.Response:
    headers = {"authorization": f"Bearer {key}"}
    return httpx2.request(
        method, f"{server.root}{path}", headers=headers, trust_env=False, timeout=10, **kw
    )


def _chat(server: Server, key: str) -> httpx2.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    return _call(server, key, "POST", "/v1/chat/completions", json=body)


def test_two_replicas_share_keys_revocation_limits_breakers_and_balances(
    replicas: tuple[Server, Server, dict[str, str]], upstream: Simulator, tmp_path: Path
) -> None:
    a, b, env = replicas
    made = run_cli(["users", "create", "--email", "r@example.com", "--credits", "5", "--json"],
                   env, tmp_path)  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]

    # A key made by the CLI works on both replicas; each charge lands in the one balance.
    before = Decimal(_call(b, key, "GET", "/user/balance").json()["balance"])
    assert _chat(a, key).status_code == 200 and _chat(b, key).status_code == 200
    balances = {_call(s, key, "GET", "/user/balance").json()["balance"] for s in (a, b)}
    assert len(balances) == 1 and Decimal(balances.pop()) < before

    # A key made on A (through the API), limited to 3 requests a minute, counted on both.
    created = _call(a, key, "POST", "/user/api-keys", json={"name": "limited", "rpm_limit": 3})
    assert created.status_code in (200, 201), created.text
    limited, limited_id = created.json()["api_key"], created.json()["id"]
    codes = [_chat(s, limited).status_code for s in (a, b, a, b)]
    assert codes == [200, 200, 200, 429], codes

    # Revoked on A: refused on B.
    assert _call(a, key, "DELETE", f"/user/api-keys/{limited_id}").status_code in (200, 204)
    deadline = time.monotonic() + 5
    while _chat(b, limited).status_code != 401:
        assert time.monotonic() < deadline, "B still accepts a key revoked on A"
        time.sleep(0.1)

    # Two provider failures through A open the breaker: B does not call the provider.
    upstream.clear()
    upstream.fault(Fault(status=500))
    upstream.fault(Fault(status=500))
    assert all(_chat(a, key).status_code >= 500 for _ in range(2))
    time.sleep(1.2)  # a replica re-reads a breaker's shared record at most once a second
    sent = len(upstream.requests)
    refused = _chat(b, key)
    assert refused.status_code >= 500 and "circuit" in refused.text.lower(), refused.text
    assert len(upstream.requests) == sent  # the open breaker is B's too
