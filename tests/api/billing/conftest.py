"""One real gateway for the billing API tests, and helpers to set up state in its database."""

from __future__ import annotations

import asyncio
import functools
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.security.keys import KeyRing
from gatewayz.simulators import Simulator
from gatewayz.storage.db import Database
from gatewayz.storage.tables import audit_logs, users
from gatewayz.storage.users import create_user
from tests.e2e.harness import UPSTREAM_KEY, Gateway, gateway_settings, start_gateway

T = TypeVar("T")


@pytest.fixture(scope="package")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.fixture(scope="package")
def gw(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("billing_api")
    # A generous IP layer: these tests send many refused requests from 127.0.0.1.
    settings = gateway_settings(data_dir, upstream, ip_rate_limit_rpm=100_000)
    # DeepInfra pointed at the simulator too: models the price data has no row for (its Whisper,
    # its image models), served once an administrator prices them (test_admin_billing.py).
    deepinfra = {"base_url": upstream.base_url, "api_key": UPSTREAM_KEY}
    env = {**settings.provider_env, "deepinfra": deepinfra}
    gateway = start_gateway(settings.model_copy(update={"provider_env": env}), upstream)
    yield gateway
    gateway.stop()


def run(gateway: Gateway, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """`work(conn)` in one committed transaction on the gateway's database."""

    async def go() -> T:
        db = Database(gateway.settings.resolved_database_url)
        try:
            async with db.begin() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())


def email(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.com"


def make_user(
    gateway: Gateway,
    tag: str = "user",
    *,
    role: str = "dev",
    plan: str = "dev",
    credits_usd: str | int = 0,
    **columns: Any,
) -> tuple[str, str]:
    """A new user with one key: (user_id, api_key). `columns` are set on the user row."""

    async def work(conn: AsyncConnection) -> tuple[str, str]:
        user = await create_user(conn, email(tag), role=role, plan=plan, credits_usd=credits_usd)
        if columns:
            await conn.execute(update(users).where(users.c.id == user["id"]).values(**columns))
        _, key = await create_api_key(
            conn, KeyRing(*gateway.settings.secrets), user["id"], gateway.settings.env
        )
        return str(user["id"]), key

    return run(gateway, work)


def call(
    gateway: Gateway,
    method: str,
    path: str,
    key: str | None = None,
    *,
    json: Any = None,
    params: Mapping[str, Any] | None = None,
) -> httpx2.Response:
    headers = {"authorization": f"Bearer {key}"} if key is not None else {}
    return _client().request(
        method, f"{gateway.root}{path}", headers=headers, json=json, params=params
    )


@functools.cache
def _client() -> httpx2.Client:
    """One client for the whole package (building one per request costs more than the call)."""
    return httpx2.Client(trust_env=False, timeout=10.0)


@pytest.fixture(scope="package", autouse=True)
def _close_client() -> Iterator[None]:
    yield
    if _client.cache_info().currsize:
        _client().close()
        _client.cache_clear()


def audit_rows(
    gateway: Gateway,
    event: str,
    match: Callable[[dict[str, Any]], bool],
    wait_s: float = 5.0,
    least: int = 1,
) -> list[dict[str, Any]]:
    """The audit rows of `event` satisfying `match` (written off the request path, in batches:
    waits until there are at least `least` of them)."""

    async def work(conn: AsyncConnection) -> list[dict[str, Any]]:
        result = await conn.execute(
            select(audit_logs).where(audit_logs.c.event == event).order_by(audit_logs.c.id)
        )
        return [dict(r) for r in result.mappings()]

    deadline = time.monotonic() + wait_s
    while True:
        rows = [r for r in run(gateway, work) if match(r)]
        if len(rows) >= least or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def assert_openai_error(r: httpx2.Response, status: int, param: str | None = None) -> None:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["message"] and err["type"] and "code" in err and "param" in err
    if param is not None:
        assert err["param"] == param, err
