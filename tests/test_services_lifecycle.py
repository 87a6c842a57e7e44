"""Start-up and shutdown of everything a worker holds (services.py): a component that fails at
start leaves nothing running of what started before it (background tasks cancelled, provider
pools closed, the simulator stopped, the database engine's connections closed) and its error
reaches the caller; a normal stop leaves nothing running either. Against a real PostgreSQL,
whose server-side view of connections is what "disposed" means."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.engine import make_url

from gatewayz import services as services_module
from gatewayz.catalog.service import Catalog
from gatewayz.providers.transport import HttpPool, TransportError
from gatewayz.services import Services
from gatewayz.settings import Settings
from gatewayz.storage.db import upgrade
from tests.conftest import PG_HOST, PG_PORT

# An upper bound, not a measurement: PostgreSQL drops a closed connection's backend at once.
CONNECTIONS_GONE_WITHIN_S = 10.0


class Injected(RuntimeError):
    pass


def _settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp_path,
        database_url=database_url,
        fernet_key=Fernet.generate_key().decode(),
        hmac_key="lifecycle-test-hmac-" + "x" * 32,
        simulated_provider=True,
        health_probes=True,  # the prober's task too
        catalog_sync=False,
    )


async def _connections(database_url: str) -> int:
    name = make_url(database_url).database
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", name
        )
    finally:
        await conn.close()
    return count


async def _wait_no_connections(database_url: str) -> int:
    deadline = time.monotonic() + CONNECTIONS_GONE_WITHIN_S
    while (count := await _connections(database_url)) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return count


def _running_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if not t.done()} - {asyncio.current_task()}


async def _assert_nothing_left(
    before: set[asyncio.Task[Any]], pools: list[HttpPool], simulator_port: int, database_url: str
) -> None:
    left = _running_tasks() - before
    assert not left, [t.get_name() for t in left]
    assert pools, "the simulated provider's pool was never built"
    for pool in pools:
        with pytest.raises(TransportError, match="pool is closed"):
            await pool.request("GET", "/models", [])
    with pytest.raises(OSError):
        _, writer = await asyncio.open_connection("127.0.0.1", simulator_port)
        writer.close()
    assert await _wait_no_connections(database_url) == 0


def _pools(services: Services) -> list[HttpPool]:
    found = []
    for provider in services.registry.enabled:
        pool = getattr(provider.adapter, "pool", None)
        if isinstance(pool, HttpPool):
            found.append(pool)
    return found


@pytest.mark.parametrize("failing", ["catalog", "query_cache"])
async def test_a_failure_at_start_stops_what_already_started(
    tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    await upgrade(postgres_url)
    services = Services(_settings(tmp_path, postgres_url))
    seen: dict[str, Any] = {}

    def fail(*_args: Any, **_kwargs: Any) -> Any:
        # What started before this point, as the failing component sees it.
        seen["pools"] = _pools(services)
        seen["simulator_port"] = services.simulator.port if services.simulator else None
        seen["tasks"] = _running_tasks() - before
        raise Injected(f"{failing} could not start")

    async def fail_async(*args: Any, **kwargs: Any) -> Any:
        seen["connections"] = await _connections(postgres_url)
        return fail(*args, **kwargs)

    if failing == "catalog":
        monkeypatch.setattr(Catalog, "start", fail_async)
    else:
        monkeypatch.setattr(services_module, "build_query_cache", fail)
    before = _running_tasks()
    with pytest.raises(Injected, match=f"{failing} could not start"):
        await services.start()
    # The failure came after real work: tasks running, the database in use, the simulator up.
    assert seen["tasks"], "no background task had started before the failure"
    assert seen["simulator_port"]
    if "connections" in seen:
        assert seen["connections"] > 0
    await _assert_nothing_left(before, seen["pools"], seen["simulator_port"], postgres_url)


async def test_stop_stops_everything_start_started(tmp_path: Path, postgres_url: str) -> None:
    await upgrade(postgres_url)
    services = Services(_settings(tmp_path, postgres_url))
    before = _running_tasks()
    await services.start()
    pools, port = _pools(services), services.simulator.port if services.simulator else 0
    assert _running_tasks() - before
    assert await _connections(postgres_url) > 0
    await services.stop()
    await _assert_nothing_left(before, pools, port, postgres_url)
