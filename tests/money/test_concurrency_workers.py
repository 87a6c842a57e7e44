"""Two `gatewayz serve` workers on PostgreSQL and Redis, 200 parallel requests from one user:
never more served than the balance buys, each charged exactly, and the ledger adds up — at a
flat $0.01 per request, and at token prices with a provider that counts chat-template tokens
(the hold must bound what it bills, issue 11 item 6)."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from gatewayz.simulators import Fault, Simulator
from gatewayz.storage.ledger.money import verify_ledger
from gatewayz.storage.tables import credit_holds, credit_transactions, price_overrides, users
from tests.deploy.helpers import production_env, run_cli, serve

MODEL = "test-model"
PARALLEL = 200


@pytest.fixture(scope="module")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


async def _set_price(db_url: str, price: dict[str, str]) -> None:
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(price_overrides).values(model=MODEL, provider="vllm", price=price)
            )
    finally:
        await engine.dispose()


async def _burst(base_url: str, key: str) -> Counter[int]:
    sdk = openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=30)

    async def one(i: int) -> int:
        try:
            await sdk.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": f"hi {i}"}], max_tokens=5
            )
            return 200
        except openai.APIStatusError as exc:
            return exc.status_code

    try:
        return Counter(await asyncio.gather(*(one(i) for i in range(PARALLEL))))
    finally:
        await sdk.close()


async def _ledger(db_url: str, user_id: str) -> dict[str, object]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            await verify_ledger(conn, user_id)
            row = (await conn.execute(select(users).where(users.c.id == user_id))).mappings().one()
            usage = (
                await conn.execute(
                    select(credit_transactions.c.amount_nanos).where(
                        credit_transactions.c.user_id == user_id,
                        credit_transactions.c.type == "usage",
                    )
                )
            ).scalars()
            holds = (
                await conn.execute(
                    select(credit_holds.c.status).where(credit_holds.c.user_id == user_id)
                )
            ).scalars()
            return {"user": dict(row), "usage": list(usage), "holds": Counter(holds)}
    finally:
        await engine.dispose()


def _burst_at_a_cent(
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    upstream: Simulator,
    credits: str,
) -> tuple[dict[str, str], Counter[int]]:
    """A user with `credits` dollars on the dev plan (not the trial, whose own credit would
    come on top), $0.01 a request, and PARALLEL requests at once on two workers."""
    env = production_env(
        postgres_url, redis_url, redis_prefix, upstream.base_url, MODEL, tmp_path / "data"
    )
    made = run_cli(
        [
            *("users", "create", "--email", "racer@example.com", "--credits", credits),
            *("--plan", "dev", "--rpm-limit", "100000", "--json"),
        ],
        env,
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    user = json.loads(made.stdout)
    asyncio.run(_set_price(postgres_url, {"prompt": "0", "completion": "0", "request": "0.01"}))
    with serve(env, tmp_path, tmp_path / "logs", workers=2) as server:
        assert len(server.children()) >= 2, server.output()
        return user, asyncio.run(_burst(server.base_url, user["api_key"]))


def test_two_workers_never_spend_more_than_the_balance(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str, upstream: Simulator
) -> None:
    user, statuses = _burst_at_a_cent(
        tmp_path, postgres_url, redis_url, redis_prefix, upstream, credits="1.00"
    )
    assert statuses == Counter({200: 100, 402: 100}), statuses
    state = asyncio.run(_ledger(postgres_url, user["user_id"]))
    assert state["user"]["credits_nanos"] == 0 and state["user"]["held_nanos"] == 0
    assert state["usage"] == [-10_000_000] * 100
    assert state["holds"] == Counter({"settled": 100})


def test_two_workers_never_serve_more_than_the_balance_buys_at_token_prices(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str, upstream: Simulator
) -> None:
    # Each answer: 12 prompt tokens (what the provider bills for "hi N" with its chat template;
    # about 1-2 by characters) at $5/M + 5 completion tokens at $10/M = $0.00011. The balance
    # buys 40 of them and a half.
    cost, balance = 110_000, 4_455_000  # nanos
    env = production_env(
        postgres_url, redis_url, redis_prefix, upstream.base_url, MODEL, tmp_path / "data"
    )
    made = run_cli(
        [
            *("users", "create", "--email", "tokens@example.com", "--plan", "dev"),
            *("--credits", "0.004455", "--rpm-limit", "100000", "--json"),
        ],
        env,
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    user = json.loads(made.stdout)
    asyncio.run(_set_price(postgres_url, {"prompt": "5", "completion": "10"}))
    for _ in range(PARALLEL):
        upstream.fault(Fault(text="one two three four five", usage={"prompt_tokens": 12}))
    try:
        with serve(env, tmp_path, tmp_path / "logs", workers=2) as server:
            assert len(server.children()) >= 2, server.output()
            statuses = asyncio.run(_burst(server.base_url, user["api_key"]))
    finally:
        upstream.clear()
    served = statuses[200]
    assert set(statuses) <= {200, 402} and 0 < served <= balance // cost, statuses
    state = asyncio.run(_ledger(postgres_url, user["user_id"]))  # ledger == balance
    assert state["usage"] == [-cost] * served  # every served request charged its exact cost
    assert state["user"]["credits_nanos"] == balance - served * cost >= 0
    assert state["user"]["held_nanos"] == 0
    assert state["holds"] == Counter({"settled": served})


def test_two_workers_serve_a_rich_account_from_leases_each_request_charged_once(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str, upstream: Simulator
) -> None:
    # $10 at $0.01 a request buys 1,000: 200 parallel requests are served from credit leases
    # (a few reservations per worker, not one hold row per request; a worker's first requests
    # from the account are held one by one), each charged once, and the workers give their
    # leases back when they stop.
    user, statuses = _burst_at_a_cent(
        tmp_path, postgres_url, redis_url, redis_prefix, upstream, credits="10.00"
    )
    assert statuses == Counter({200: PARALLEL}), statuses
    state = asyncio.run(_ledger(postgres_url, user["user_id"]))
    assert state["usage"] == [-10_000_000] * PARALLEL
    assert state["user"]["credits_nanos"] == 10_000_000_000 - PARALLEL * 10_000_000
    assert state["user"]["held_nanos"] == 0  # every lease given back at shutdown
    holds = state["holds"]  # leases given back; the few requests before a worker saw it busy
    assert set(holds) <= {"released", "settled"}, holds
    assert 1 <= holds["released"] <= 20 and holds["settled"] <= 20, holds
