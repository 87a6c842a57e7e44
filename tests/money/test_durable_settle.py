"""A settle that fails never gives the answer away (issue 11, item 7): with PostgreSQL gone
between the hold and the settle, the answers are still delivered with their cost, the settles
wait in the spool (and `/health` says so), and once the database is back every delivered answer
is charged exactly once."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx2 as httpx
import openai
import pytest
from sqlalchemy import func, select

from gatewayz.simulators import Fault, Simulator
from gatewayz.storage.tables import credit_holds
from tests.conftest import _pg_admin
from tests.e2e.harness import Gateway, add_user, gateway_settings, run_db, set_price, start_gateway

from .conftest import COMPLETION_PRICE, MODEL, PROMPT_PRICE, money, usage_rows

PROMPT = [{"role": "user", "content": "x" * 400}]  # 100 prompt tokens
REQUESTS = 5


@pytest.fixture
def pg_gateway(
    upstream: Simulator, postgres_url: str, tmp_path: Path
) -> Iterator[tuple[Gateway, str]]:
    settings = gateway_settings(
        tmp_path,
        upstream,
        database_url=postgres_url,
        billing_settle_retry_s=0.2,
        price_refresh_s=3600,
    )
    env = dict(settings.provider_env)
    env["vllm"] = {"base_url": upstream.base_url, "models": MODEL}
    gw = start_gateway(settings.model_copy(update={"provider_env": env}), upstream)
    set_price(gw, MODEL, "vllm", prompt=PROMPT_PRICE, completion=COMPLETION_PRICE)
    yield gw, postgres_url.rsplit("/", 1)[1]
    gw.stop()


def _open_holds(gw: Gateway) -> int:
    async def count(conn: object) -> int:
        query = select(func.count()).where(credit_holds.c.status == "held")
        return int((await conn.execute(query)).scalar_one())  # type: ignore[attr-defined]

    return run_db(gw, count)


def _database(name: str, up: bool) -> None:
    asyncio.run(_pg_admin(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(up).lower()}'))
    if not up:
        asyncio.run(
            _pg_admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )
        )


def test_database_down_between_hold_and_settle_still_charges_every_answer(
    pg_gateway: tuple[Gateway, str],
) -> None:
    gw, name = pg_gateway
    user, key = add_user(gw, credits_usd="1")
    for _ in range(REQUESTS):  # the provider answers once the database is gone
        gw.upstream.fault(Fault(text="one two three", delay_s=1.5))
    sdk = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)
    answers: list[openai.types.chat.ChatCompletion] = []

    def call() -> None:
        answers.append(sdk.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=50))

    threads = [threading.Thread(target=call) for _ in range(REQUESTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 10
    while _open_holds(gw) < REQUESTS:  # every hold taken: now the database goes away
        assert time.monotonic() < deadline, "holds were not taken"
        time.sleep(0.05)
    _database(name, up=False)
    try:
        for t in threads:
            t.join(timeout=30)
        cost = (100 * PROMPT_PRICE + 3 * COMPLETION_PRICE) / 10**6
        assert len(answers) == REQUESTS  # delivered, with their cost
        assert all(Decimal(str(a.usage.model_extra["cost"])) == cost for a in answers)  # type: ignore[union-attr]
        billing = httpx.get(gw.root + "/health").json()["subsystems"]["billing"]
        assert billing["settles_pending"] == REQUESTS and billing["degraded"]
    finally:
        _database(name, up=True)
    deadline = time.monotonic() + 15
    while gw.services.meter.spool.count():  # replayed once the database is back
        assert time.monotonic() < deadline, "spooled settles were not replayed"
        time.sleep(0.1)
    state = money(gw, user)  # verifies balance == ledger, held == open holds
    assert [r["amount_nanos"] for r in usage_rows(state)] == [-int(cost * 10**9)] * REQUESTS
    assert [h["status"] for h in state["holds"]] == ["settled"] * REQUESTS
    assert state["held_nanos"] == 0
    assert state["credits_nanos"] == int((1 - REQUESTS * cost) * 10**9)
