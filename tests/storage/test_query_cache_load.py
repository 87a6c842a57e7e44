"""CM-8.3.4: the DB query cache's effect on database load, measured on a realistic request mix
through a real gateway (SQLite and PostgreSQL): the SQL statements that reach the database are
counted (every statement through the engine, plus on SQLite the ledger's own connection), once
with the query cache off and once with it on, on the same mix for fresh users.

The mix, over 10 simulated minutes (the cache's clock is simulated; every request is real):
* every user's application sends a priced chat completion every 10 s;
* most users keep the dashboard open, which refreshes the overview (GET /user/balance, the
  key list, usage by model) every 10 s (2 users), 15 s (2) or 30 s (2) — common polling
  intervals; 2 users only open the dashboard every 2 minutes;
* every 2 minutes each user also opens the usage-by-day view, every 5 minutes the credit
  transactions;
* at 3 minutes each user creates a key, at 7 minutes revokes it (the key list reloads after
  each, so both invalidations are exercised).
Money is never cached: balances and the ledger are read fresh on every request in both runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from gatewayz.simulators import Simulator
from gatewayz.storage.query_cache import GUARD_S, QueryCache, build_query_cache
from tests.e2e.harness import Gateway, add_user, gateway_settings, set_price, start_gateway
from tests.state.harness import FakeClock

from .helpers import MixStatements

MINUTES = 10
CHAT_EVERY_S = 10
REFRESH_S = (10, 10, 15, 15, 30, 30, 120, 120)  # each user's dashboard refresh interval
VIEW_EVERY_S = 120
LEDGER_EVERY_S = 300
KEY_CREATED_AT_S, KEY_REVOKED_AT_S = 180, 420
CHAT = {"model": "test-model", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class User:
    id: str
    key: str
    extra_key_id: str | None = None


@dataclass
class Run:
    statements: MixStatements = field(default_factory=MixStatements)
    cache: QueryCache | None = None
    requests: int = 0


@pytest.fixture(params=["sqlite", "postgres"])
def gw(request: pytest.FixtureRequest, upstream: Simulator, tmp_path: Path) -> Iterator[Gateway]:
    # uvloop: the harness hands uvicorn a socket made with protocol 0, on which the standard
    # loop does not set TCP_NODELAY, and every keep-alive response then waits ~40 ms for a
    # delayed ACK. The statements counted here do not depend on the loop.
    overrides: dict[str, Any] = {"ip_rate_limit_rpm": 1_000_000, "event_loop": "uvloop"}
    if request.param == "postgres":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    gateway = start_gateway(gateway_settings(tmp_path, upstream, **overrides), upstream)
    set_price(gateway, "test-model", "vllm", prompt="1", completion="2")
    yield gateway
    gateway.stop()


@functools.cache
def _client() -> httpx2.Client:
    return httpx2.Client(trust_env=False, timeout=30.0)


@pytest.fixture(scope="module", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    if _client.cache_info().currsize:
        _client().close()
        _client.cache_clear()


def _call(gw: Gateway, run: Run, method: str, path: str, key: str, **kw: Any) -> Any:
    r = _client().request(
        method, f"{gw.root}{path}", headers={"authorization": f"Bearer {key}"}, **kw
    )
    run.requests += 1
    assert r.status_code in (200, 201), (path, r.status_code, r.text)
    return r.json()


def _timeline() -> list[tuple[float, int, str]]:
    """(second, user index, action), in time order."""
    events: list[tuple[float, int, str]] = []
    end = MINUTES * 60
    for u, refresh in enumerate(REFRESH_S):
        offset = u * 0.7  # users are not in lockstep
        events += [(offset + t, u, "chat") for t in range(0, end, CHAT_EVERY_S)]
        events += [(offset + t + 0.1, u, "overview") for t in range(0, end, refresh)]
        events += [(offset + t + 0.2, u, "usage_by_day") for t in range(0, end, VIEW_EVERY_S)]
        events += [(offset + t + 0.3, u, "ledger") for t in range(0, end, LEDGER_EVERY_S)]
        events += [(offset + KEY_CREATED_AT_S + 0.4, u, "create_key")]
        events += [(offset + KEY_REVOKED_AT_S + 0.4, u, "revoke_key")]
    return sorted(events)


def _act(gw: Gateway, run: Run, user: User, action: str) -> None:
    key = user.key
    if action == "chat":
        _call(gw, run, "POST", "/v1/chat/completions", key, json=CHAT)
    elif action == "overview":
        _call(gw, run, "GET", "/user/balance", key)
        _call(gw, run, "GET", "/user/api-keys", key)
        _call(gw, run, "GET", "/user/usage", key)
    elif action == "usage_by_day":
        _call(gw, run, "GET", "/user/usage", key, params={"group_by": "day"})
    elif action == "ledger":
        _call(gw, run, "GET", "/user/credit-transactions", key)
    elif action == "create_key":
        user.extra_key_id = _call(gw, run, "POST", "/user/api-keys", key, json={"name": "ci"})["id"]
        listing = _call(gw, run, "GET", "/user/api-keys", key)["data"]
        assert user.extra_key_id in [k["id"] for k in listing]  # never a stale list
    elif action == "revoke_key":
        _call(gw, run, "DELETE", f"/user/api-keys/{user.extra_key_id}", key)
        listing = _call(gw, run, "GET", "/user/api-keys", key)["data"]
        assert user.extra_key_id not in [k["id"] for k in listing]


def _watch_ledger(gw: Gateway, seen: MixStatements) -> Callable[[], None]:
    """On SQLite the ledger writes through its own sqlite3 connection: count those too."""
    runner = gw.services.meter.ledger
    pool = runner._thread
    if pool is None:  # PostgreSQL: the ledger runs on the engine, already counted
        return lambda: None
    pool.submit(lambda: runner._connection().set_trace_callback(seen.record)).result()
    return lambda: pool.submit(lambda: runner._connection().set_trace_callback(None)).result()


def _run_mix(gw: Gateway, cached: bool) -> Run:
    clock = FakeClock(start=10_000.0)
    run = Run(
        cache=build_query_cache(gw.settings.model_copy(update={"query_cache": cached}), clock)
    )
    gw.services.query_cache = run.cache
    users = [User(*add_user(gw, credits_usd=100)) for _ in REFRESH_S]
    stop_ledger = _watch_ledger(gw, run.statements)
    try:
        with run.statements.watching(gw.services.db.engine):
            for second, u, action in _timeline():
                clock.now = 10_000.0 + second
                _act(gw, run, users[u], action)
    finally:
        stop_ledger()
    return run


def test_cm_8_3_4_db_query_cache_reduces_load_60_to_80_percent(gw: Gateway) -> None:
    ttls = (gw.settings.query_cache_keys_ttl_s, gw.settings.query_cache_usage_ttl_s)
    assert min(ttls) > GUARD_S
    without = _run_mix(gw, cached=False)
    with_cache = _run_mix(gw, cached=True)
    assert without.requests == with_cache.requests
    before = sum(without.statements.cached.values())
    after = sum(with_cache.statements.cached.values())
    reduction = 1 - after / before
    stats = with_cache.cache.stats if with_cache.cache else None
    assert stats is not None and without.cache is not None
    # Off, every lookup read the database; on, only misses did.
    assert without.cache.stats.bypassed == stats.lookups and stats.bypassed == 0
    print(
        f"\nCM-8.3.4 [{gw.services.db.dialect}] {with_cache.requests} requests; "
        f"cached lookups {stats.lookups}: hits {stats.hits}, misses {stats.misses}, "
        f"hit ratio {stats.hit_ratio:.1%}; their SQL statements {before} → {after} "
        f"(−{reduction:.1%}; keys {without.statements.cached['keys']} → "
        f"{with_cache.statements.cached['keys']}, usage {without.statements.cached['usage']} → "
        f"{with_cache.statements.cached['usage']}); all statements of the mix "
        f"{without.statements.total} → {with_cache.statements.total} "
        f"(−{1 - with_cache.statements.total / without.statements.total:.1%})"
    )
    assert reduction >= 0.60
    assert stats.hit_ratio >= 0.60
