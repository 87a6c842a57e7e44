"""Shared fixtures: real PostgreSQL and Redis, each test run isolated (its own database name and
Redis key prefix). Without the services the tests that need them skip with a reason, except
under CI=true, where a missing service fails the run."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from gatewayz.observability.log_config import StderrHandler
from gatewayz.simulators import Simulator
from tests.e2e.harness import simulators

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
IN_CI = os.environ.get("CI", "").lower() == "true"
RUN_ID = secrets.token_hex(4)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def _require(service: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    msg = f"{service} not reachable at {host}:{port}"
    if IN_CI:
        pytest.fail(f"{msg} (CI=true: these tests must not be skipped)")
    pytest.skip(msg)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database for one test, dropped afterwards."""
    _require("PostgreSQL", PG_HOST, PG_PORT)
    name = f"gatewayz_test_{RUN_ID}_{secrets.token_hex(3)}"
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    yield f"postgresql+asyncpg://postgres@{PG_HOST}:{PG_PORT}/{name}"
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    _require("Redis", REDIS_HOST, REDIS_PORT)
    yield f"redis://{REDIS_HOST}:{REDIS_PORT}/0"


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test (or run) uses; its keys are deleted afterwards."""
    prefix = f"gwtest:{RUN_ID}:{secrets.token_hex(3)}:"
    yield prefix
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL (not yet migrated) on each backend."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'gatewayz.db'}"
    base: str = request.getfixturevalue("postgres_url")
    return base


@pytest.fixture
async def anyio_backend() -> AsyncIterator[str]:
    yield "asyncio"


@pytest.fixture(scope="module")
def upstream() -> Iterator[Simulator]:
    """One simulator for one test module (tests/e2e shares one per session)."""
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[Simulator, ...]]:
    """Two simulators for one test module (e.g. two providers serving one model)."""
    with simulators(Simulator) as pair:
        yield pair


@pytest.fixture(autouse=True)
def _no_log_handler_left_behind() -> Iterator[None]:
    """A CLI command run in-process (`configure_logging`) installs the gateway's stderr handler
    on the root logger; taken off after the test, so that the access lines of the gateways other
    tests run in threads do not flood the run's output."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(handler)
