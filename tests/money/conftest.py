"""A gateway whose prices the tests set, users with small balances, and ledger probes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.simulators import Simulator
from gatewayz.storage.ledger.money import verify_ledger
from gatewayz.storage.tables import credit_holds, credit_transactions, users
from tests.e2e import harness
from tests.e2e.harness import Gateway, gateway_settings, run_db, start_gateway

MODEL, FREE_MODEL = "test-model", "test-model:free"
# USD per 1M tokens: 100 prompt tokens = $0.001, 1000 completion tokens = $0.02.
PROMPT_PRICE, COMPLETION_PRICE = Decimal(10), Decimal(20)


@pytest.fixture(scope="package")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.fixture(scope="package")
def gateway(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    settings = gateway_settings(
        tmp_path_factory.mktemp("money"),
        upstream,
        upstream_read_timeout_s=0.5,
        price_refresh_s=3600,  # the tests set prices directly on the meter
        # Per-request holds: these tests read each request's hold row (credit leases serve
        # holds from memory; their own tests are test_leases.py).
        billing_leases=False,
    )
    env = dict(settings.provider_env)
    env["vllm"] = {"base_url": upstream.base_url, "models": f"{MODEL},{FREE_MODEL}"}
    gw = start_gateway(settings.model_copy(update={"provider_env": env}), upstream)
    set_price(gw, prompt=PROMPT_PRICE, completion=COMPLETION_PRICE)
    yield gw
    gw.stop()


@pytest.fixture(autouse=True)
def _clean(upstream: Simulator) -> None:
    upstream.clear()


def set_price(gateway: Gateway, model: str = MODEL, provider: str = "vllm", **price: Any) -> None:
    harness.set_price(gateway, model, provider, **price)


def money(gateway: Gateway, user_id: str) -> dict[str, Any]:
    """The user's money columns, their ledger rows and holds; the ledger checked consistent."""

    async def work(conn: AsyncConnection) -> dict[str, Any]:
        await verify_ledger(conn, user_id)
        row = (await conn.execute(select(users).where(users.c.id == user_id))).mappings().one()
        rows = await conn.execute(
            select(credit_transactions)
            .where(credit_transactions.c.user_id == user_id)
            .order_by(credit_transactions.c.id)
        )
        holds = await conn.execute(select(credit_holds).where(credit_holds.c.user_id == user_id))
        return {
            **dict(row),
            "ledger": [dict(r._mapping) for r in rows],
            "holds": [dict(r._mapping) for r in holds],
        }

    return run_db(gateway, work)


def usage_rows(state: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in state["ledger"] if r["type"] == "usage"]


def wait_settled(gateway: Gateway, user_id: str, wait_s: float = 5.0) -> None:
    """Wait until the user has no open hold (a stream the client left settles after it)."""

    async def open_holds(conn: AsyncConnection) -> int:
        rows = await conn.execute(
            select(credit_holds.c.request_id).where(
                credit_holds.c.user_id == user_id, credit_holds.c.status == "held"
            )
        )
        return len(rows.all())

    deadline = time.monotonic() + wait_s
    while run_db(gateway, open_holds) and time.monotonic() < deadline:
        time.sleep(0.05)
