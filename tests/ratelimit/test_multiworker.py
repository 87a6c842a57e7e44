"""CM-2 across processes: `gatewayz serve --workers 2` on PostgreSQL and Redis. A key limited to
N requests per minute gets exactly N successes in a minute, however the kernel spreads its
requests over the workers: the counter is one Redis key, incremented atomically.

Each request goes over a fresh connection; which worker served it is read from /proc (see
tests/deploy/test_postgres_redis.py). The test keeps sending until EACH worker has served at
least N of the key's requests, so per-process counters would have admitted up to 2N."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine

from gatewayz.simulators import Simulator
from gatewayz.storage.tables import api_keys
from tests.deploy.helpers import production_env, run_cli, serve
from tests.deploy.test_postgres_redis import _chat_body, _request

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="worker attribution reads /proc (Linux)"
)

N = 5
WORKERS = 2
MAX_REQUESTS = 200
MODEL = "test-model"


async def _set_limits(db_url: str, user_id: str, limits: dict[str, int]) -> str:
    """Set the limits of the user's (only) key; its id."""
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(
                update(api_keys)
                .where(api_keys.c.user_id == user_id)
                .values(limits=limits)
                .returning(api_keys.c.id)
            )
            (key_id,) = result.scalars().all()
            return str(key_id)
    finally:
        await engine.dispose()


def _wait_for_a_fresh_minute(budget_s: float = 20.0) -> None:
    """Start well inside a minute, so the whole run stays in one window."""
    into = time.time() % 60
    if into > 60 - budget_s:
        time.sleep(60 - into + 0.2)


def test_cm_2_2_1_key_rpm_holds_across_two_workers(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str, upstream: Simulator
) -> None:
    env = production_env(
        postgres_url, redis_url, redis_prefix, upstream.base_url, MODEL, tmp_path / "data"
    )
    result = run_cli(
        ["users", "create", "--email", "limited@example.com", "--credits", "100", "--json"],
        env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    key_id = asyncio.run(_set_limits(postgres_url, created["user_id"], {"rpm": N}))

    with serve(env, tmp_path, tmp_path / "logs", workers=WORKERS) as server:
        workers = server.children()
        assert len(workers) >= WORKERS, server.output()
        _wait_for_a_fresh_minute()
        minute = int(time.time() // 60)
        served: Counter[int | None] = Counter()
        statuses: Counter[int] = Counter()
        by_worker: dict[int | None, Counter[int]] = {}
        sent = 0
        while sent < 2 * N or len([w for w in served if w and served[w] >= N]) < WORKERS:
            assert sent < MAX_REQUESTS, f"workers served {dict(served)}"
            r, owner = _request(
                server,
                workers,
                "POST",
                "/v1/chat/completions",
                key=created["api_key"],
                body=_chat_body(f"limited {sent}"),
            )
            sent += 1
            served[owner] += 1
            statuses[r.status_code] += 1
            by_worker.setdefault(owner, Counter())[r.status_code] += 1
            assert r.headers["x-ratelimit-limit"] == str(N)
            if r.status_code == 429:
                assert int(r.headers["retry-after"]) >= 1
                assert r.headers["x-ratelimit-remaining"] == "0"
            else:
                assert r.status_code == 200, r.text
        assert int(time.time() // 60) == minute, "the run crossed a minute boundary"

    assert None not in served and len(served) == WORKERS and set(served) <= workers
    assert all(n >= N for n in served.values()), served
    assert statuses == Counter({200: N, 429: sent - N}), (statuses, by_worker)
    chats = [r for r in upstream.requests if r.path.endswith("/chat/completions")]
    assert len(chats) == N  # refused requests never reached the provider
    # One shared counter in Redis, under the exact key, with a TTL of at most 60 s.
    client = redis.Redis.from_url(redis_url)
    try:
        key = f"{redis_prefix}rate_limit:{key_id}:{minute}"
        assert [k.decode() for k in client.scan_iter(match=f"{redis_prefix}rate_limit:*")] == [key]
        assert int(client.get(key) or 0) == sent
        assert 0 < client.ttl(key) <= 60
    finally:
        client.close()
