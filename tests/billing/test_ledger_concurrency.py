"""Concurrent holds never overspend: $1.00, 200 attempts at $0.01 → exactly 100 succeed.

In one process over many connections (both backends), and on PostgreSQL from two processes at
once, each with its own pool: the serving shape of several workers.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import secrets
import time
from decimal import Decimal

from sqlalchemy import text

from gatewayz.billing import ledger
from gatewayz.money import usd_to_nanos
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.ledger.money import verify_ledger
from gatewayz.storage.users import create_user

CENT = usd_to_nanos("0.01")


async def _attempt(db: Database, user_id: str, request_id: str) -> bool:
    """What a request does: reserve the estimate, then settle the actual cost."""
    async with db.connect() as conn:
        if not await ledger.hold(conn, user_id, request_id, CENT):
            return False
        assert await ledger.settle(conn, user_id, request_id, CENT) == CENT
        return True


async def _attempts(url: str, user_id: str, prefix: str, count: int) -> int:
    db = Database(url, pool_size=10, max_overflow=10)
    try:
        results = await asyncio.gather(
            *(_attempt(db, user_id, f"{prefix}-{i}") for i in range(count))
        )
    finally:
        await db.dispose()
    return sum(results)


def _worker(url: str, user_id: str, prefix: str, count: int, start_at: float) -> int:
    """Runs in a spawned process: waits for the common start, then fires its attempts."""
    time.sleep(max(0.0, start_at - time.time()))
    return asyncio.run(_attempts(url, user_id, prefix, count))


async def _user_with_one_dollar(url: str) -> str:
    await upgrade(url)
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        async with db.begin() as conn:
            user = await create_user(conn, f"{secrets.token_hex(4)}@example.com")
        async with db.connect() as conn:
            assert await ledger.grant(conn, user["id"], "1.00", "purchase")
    finally:
        await db.dispose()
    return str(user["id"])


async def _assert_spent_exactly_one_dollar(url: str, user_id: str) -> None:
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        async with db.connect() as conn:
            await verify_ledger(conn, user_id)
            balance = await ledger.balance(conn, user_id)
            usage = await conn.execute(
                text(
                    "SELECT count(*), sum(amount_nanos) FROM credit_transactions "
                    "WHERE user_id = :uid AND type = 'usage'"
                ),
                {"uid": user_id},
            )
            count, total = usage.one()
    finally:
        await db.dispose()
    assert (balance.available, balance.held, balance.total) == (0, 0, 0)
    assert (count, int(total)) == (100, -usd_to_nanos(Decimal("1.00")))


async def test_cm_6_concurrent_holds_never_exceed_balance(db_url: str) -> None:
    user_id = await _user_with_one_dollar(db_url)
    assert await _attempts(db_url, user_id, "req", 200) == 100
    await _assert_spent_exactly_one_dollar(db_url, user_id)


async def test_cm_6_concurrent_holds_from_two_processes_on_postgres(postgres_url: str) -> None:
    user_id = await _user_with_one_dollar(postgres_url)
    start_at = time.time() + 3  # after both interpreters have started and imported
    context = multiprocessing.get_context("spawn")
    with context.Pool(2) as pool:
        jobs = [
            pool.apply_async(_worker, (postgres_url, user_id, f"w{n}", 100, start_at))
            for n in range(2)
        ]
        results = [job.get(timeout=60) for job in jobs]
    assert sum(results) == 100
    assert all(r > 0 for r in results)  # both workers really competed for the balance
    await _assert_spent_exactly_one_dollar(postgres_url, user_id)
