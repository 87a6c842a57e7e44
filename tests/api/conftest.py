"""Real gateways for the route tests of this folder (keys, admin, restrictions): one behind a
trusted proxy (127.0.0.1, so tests can present client IPs through X-Forwarded-For) and one
without (X-Forwarded-For ignored); helpers to make users and keys, call the gateway and read the
audit log (imported by route tests elsewhere too). The tests of `billing/` and `payments/` have
gateways of their own."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import select

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.security.keys import KeyRing
from gatewayz.simulators import Simulator
from gatewayz.storage.db import Database
from gatewayz.storage.tables import api_keys, audit_logs
from gatewayz.storage.users import create_user
from tests.e2e.harness import Gateway, gateway_settings, start_gateway

MODEL = "test-model"


@pytest.fixture(scope="session")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


def _start(tmp: Path, upstream: Simulator, **overrides: Any) -> Gateway:
    # A generous IP layer: these tests send many requests from 127.0.0.1, some with bad keys.
    return start_gateway(
        gateway_settings(tmp, upstream, ip_rate_limit_rpm=100_000, **overrides), upstream
    )


@pytest.fixture(scope="session")
def gw(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    g = _start(tmp_path_factory.mktemp("gw"), upstream, trusted_proxies="127.0.0.1")
    yield g
    g.stop()


@pytest.fixture(scope="session")
def gw_direct(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    g = _start(tmp_path_factory.mktemp("gwd"), upstream)
    yield g
    g.stop()


def _run(gateway: Gateway, work: Any) -> Any:
    async def go() -> Any:
        db = Database(gateway.settings.resolved_database_url)
        try:
            async with db.begin() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())


def make_user(gateway: Gateway, email: str, role: str = "dev") -> tuple[str, str]:
    """A new user with one key: (user_id, api_key)."""

    async def work(conn: Any) -> tuple[str, str]:
        user = await create_user(conn, email, role=role, credits_usd=100)
        _, key = await create_api_key(
            conn, KeyRing(*gateway.settings.secrets), user["id"], gateway.settings.env
        )
        return user["id"], key

    result: tuple[str, str] = _run(gateway, work)
    return result


def key_row(gateway: Gateway, key_id: str) -> dict[str, Any]:
    async def work(conn: Any) -> dict[str, Any]:
        row = (await conn.execute(select(api_keys).where(api_keys.c.id == key_id))).mappings()
        return dict(row.one())

    result: dict[str, Any] = _run(gateway, work)
    return result


def audit_rows(
    gateway: Gateway, event: str, wait_for: Any = None, wait_s: float = 5.0
) -> list[dict[str, Any]]:
    """Audit rows of one event (written off the request path: waits until `wait_for(rows)`)."""

    async def work(conn: Any) -> list[dict[str, Any]]:
        result = await conn.execute(
            select(audit_logs).where(audit_logs.c.event == event).order_by(audit_logs.c.id)
        )
        return [dict(r) for r in result.mappings()]

    deadline = time.monotonic() + wait_s
    while True:
        rows: list[dict[str, Any]] = _run(gateway, work)
        if (wait_for(rows) if wait_for else rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def call(
    gateway: Gateway,
    method: str,
    path: str,
    key: str | None = None,
    json: Any = None,
    headers: dict[str, str | bytes] | None = None,
) -> httpx2.Response:
    h: dict[str, str | bytes] = dict(headers or {})
    if key is not None:
        h["authorization"] = f"Bearer {key}"
    with httpx2.Client(trust_env=False, timeout=10.0) as client:
        return client.request(method, f"{gateway.root}{path}", headers=h, json=json)


def chat(
    gateway: Gateway, key: str, headers: dict[str, str | bytes] | None = None
) -> httpx2.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    return call(gateway, "POST", "/v1/chat/completions", key, body, headers)


def messages(
    gateway: Gateway, key: str, headers: dict[str, str | bytes] | None = None
) -> httpx2.Response:
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    return call(gateway, "POST", "/v1/messages", key, body, headers)
