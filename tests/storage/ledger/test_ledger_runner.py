"""The request path's ledger runner: group commit on SQLite (a savepoint per operation) and on
PostgreSQL (optimistic batches in account order, run again one by one when an operation fails)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from gatewayz.billing import ledger
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.ledger import holds
from gatewayz.storage.ledger.money import UnknownUser, verify_ledger
from gatewayz.storage.ledger.runner import LedgerRunner
from gatewayz.storage.users import create_user


@pytest.fixture
async def setup(db_url: str) -> AsyncIterator[tuple[Database, LedgerRunner, str]]:
    await upgrade(db_url)
    db = Database(db_url)
    async with db.begin() as conn:
        user = await create_user(conn, "r@example.com", credits_usd="1")
    runner = LedgerRunner(db)
    yield db, runner, user["id"]
    await runner.close()
    await db.dispose()


async def test_parallel_operations_share_transactions_and_stay_exact(
    setup: tuple[Database, LedgerRunner, str],
) -> None:
    db, runner, user = setup
    ids = [f"h{i}" for i in range(200)]
    # $1.00 and 200 holds of $0.01: exactly 100 fit, whatever the batching.
    held = await asyncio.gather(*(runner.run(holds.hold, user, i, 10**7) for i in ids))
    assert held.count(True) == 100
    assert runner.batches < len(ids)  # grouped, not one transaction per operation
    granted = [i for i, ok in zip(ids, held, strict=True) if ok]
    charged = await asyncio.gather(*(runner.run(holds.settle, user, i, 10**7) for i in granted))
    assert charged == [10**7] * 100
    async with db.connect() as conn:
        await verify_ledger(conn, user)
        assert (await ledger.balance(conn, user)).total == 0


async def test_a_failing_operation_does_not_undo_its_batch_mates(
    setup: tuple[Database, LedgerRunner, str],
) -> None:
    db, runner, user = setup
    good = [runner.run(holds.hold, user, f"g{i}", 1000) for i in range(5)]
    bad = runner.run(holds.hold, "usr_missing", "x", 1000)
    results = await asyncio.gather(*good, bad, return_exceptions=True)
    assert results[:5] == [True] * 5
    assert isinstance(results[5], UnknownUser)
    async with db.connect() as conn:
        await verify_ledger(conn, user)
        assert (await ledger.balance(conn, user)).held * 10**9 == 5000


async def test_release_queued_after_a_cancelled_hold_runs_after_it(
    setup: tuple[Database, LedgerRunner, str],
) -> None:
    """What the meter relies on when a request is cancelled while its hold is queued: the
    runner keeps order, so the release it queues next finds the hold and drops it."""
    db, runner, user = setup
    waiting = asyncio.ensure_future(runner.run(holds.hold, user, "gone", 1000))
    await asyncio.sleep(0)  # queued
    waiting.cancel()
    assert await runner.run(holds.release, "gone") is True
    async with db.connect() as conn:
        await verify_ledger(conn, user)
        assert (await ledger.balance(conn, user)).held == 0


async def test_postgres_batches_lock_accounts_in_one_order(
    setup: tuple[Database, LedgerRunner, str],
) -> None:
    """Two workers' batches name the same accounts in opposite orders: each batch locks them in
    account order, so neither waits on the other in a cycle (a deadlock would roll a batch back
    and run it again one by one, after PostgreSQL's deadlock timeout)."""
    db, first, _ = setup
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: no lock order between workers")
    async with db.begin() as conn:
        users = [
            (await create_user(conn, f"u{i}@example.com", credits_usd="1"))["id"] for i in range(8)
        ]
    second = LedgerRunner(db)
    try:
        for round_ in range(5):
            ops = [
                runner.run(holds.hold, user, f"{round_}.{n}.{user}", 1000, account=user)
                for n, (runner, order) in enumerate(((first, users), (second, users[::-1])))
                for user in order
            ]
            assert all(await asyncio.gather(*ops))
        assert first.retried == second.retried == 0
        assert first.batches < 5 * len(users)
    finally:
        await second.close()
    async with db.connect() as conn:
        for user in users:
            await verify_ledger(conn, user)
            assert (await ledger.balance(conn, user)).held * 10**9 == 10 * 1000
