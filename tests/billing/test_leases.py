"""Credit leases (billing/leases.py, storage/ledger/leases.py) on SQLite and PostgreSQL: many
holds served from one reservation, every request charged once and exactly, the ledger
consistent (balance == rows, held == open holds and leases) at every step, and a dead or stalled
worker's slice recovered by the sweep, never spent twice."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select, text

from gatewayz.billing import ledger
from gatewayz.billing.leases import Charge, Leases
from gatewayz.billing.settle_spool import SettleSpool, replay
from gatewayz.money import nanos_to_usd, usd_to_nanos
from gatewayz.storage.db import Database
from gatewayz.storage.ledger import leases as ledger_leases
from gatewayz.storage.ledger.money import verify_ledger
from gatewayz.storage.ledger.runner import LedgerRunner
from gatewayz.storage.tables import credit_holds, credit_transactions, utcnow
from gatewayz.storage.users import create_user

HOLD = 1_000_000  # nanos: a request's worst case ($0.001)
COST = 300_000  # what it cost


@pytest.fixture
async def runner(db: Database) -> AsyncIterator[LedgerRunner]:
    run = LedgerRunner(db)
    yield run
    await run.close()  # also a "dead" worker's, whose Leases never stopped


def make_leases(runner: LedgerRunner, tmp_path: Path, **kw: Any) -> Leases:
    kw.setdefault("eager", True)  # a lease from the first request (the busy rule: its own test)
    return Leases(runner, SettleSpool(tmp_path / "spool"), trial_plan="trial", **kw)


async def new_user(db: Database, usd: str = "10", plan: str = "dev") -> str:
    async with db.begin() as conn:
        user = await create_user(conn, f"{secrets.token_hex(4)}@example.com", plan=plan)
    async with db.connect() as conn:
        await ledger.grant(conn, user["id"], usd, "purchase")
    return str(user["id"])


async def state(db: Database, user_id: str) -> tuple[ledger.Balance, list[tuple[str, str, int]]]:
    """The balance (checked against the ledger first) and the user's hold and lease rows."""
    async with db.connect() as conn:
        await verify_ledger(conn, user_id)
        rows = await conn.execute(
            select(credit_holds.c.request_id, credit_holds.c.status, credit_holds.c.amount_nanos)
            .where(credit_holds.c.user_id == user_id)
            .order_by(credit_holds.c.created_at)
        )
        return await ledger.balance(conn, user_id), [(r[0], r[1], int(r[2])) for r in rows]


async def usage(db: Database, user_id: str) -> list[int]:
    async with db.connect() as conn:
        rows = await conn.execute(
            select(credit_transactions.c.amount_nanos).where(
                credit_transactions.c.user_id == user_id, credit_transactions.c.type == "usage"
            )
        )
        return sorted(int(r[0]) for r in rows)


async def serve(leases: Leases, user_id: str, n: int) -> None:
    """`n` concurrent requests: hold from a lease, charge COST."""

    async def one(i: int) -> None:
        lease = await leases.reserve(user_id, HOLD, None)
        assert lease is not None
        await asyncio.sleep(0)
        await leases.charge(lease, HOLD, Charge(f"req-{i}-{secrets.token_hex(3)}", COST, 7, "m"))

    await asyncio.gather(*(one(i) for i in range(n)))


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_many_requests_one_reservation_each_charged_once(
    db: Database, runner: LedgerRunner, tmp_path: Path
) -> None:
    user = await new_user(db)
    leases = make_leases(runner, tmp_path)
    await serve(leases, user, 300)
    assert leases.grows <= 4  # 300 holds, a handful of reservations
    assert leases.flushes < 300  # charges written in batches
    balance, rows = await state(db, user)
    assert await usage(db, user) == [-COST] * 300
    (lease_row,) = rows
    assert lease_row[0].startswith(ledger_leases.PREFIX) and lease_row[1] == "held"
    assert balance.purchased == balance.total == nanos_to_usd(usd_to_nanos("10") - 300 * COST)
    assert balance.held == nanos_to_usd(lease_row[2]) > 0  # the slice still reserved
    await leases.stop()  # gives it back
    balance, rows = await state(db, user)
    assert balance.held == 0 and rows[0][1] == "released"
    assert balance.available == balance.total


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_an_idle_lease_is_given_back_and_a_busy_one_kept_alive(
    db: Database, runner: LedgerRunner, tmp_path: Path
) -> None:
    user = await new_user(db)
    now = [1000.0]
    leases = make_leases(runner, tmp_path, idle_s=2.0, ttl_s=30.0, clock=lambda: now[0])
    held = await leases.reserve(user, HOLD, None)  # in flight
    assert held is not None
    now[0] += 11  # past a third of the TTL, still in use: touched, kept
    await leases.run_once()
    (row,) = (await state(db, user))[1]
    assert row[1] == "held"
    leases.release(held, HOLD)
    now[0] += 3  # idle for longer than idle_s: given back
    await leases.run_once()
    balance, rows = await state(db, user)
    assert rows[0][1] == "released" and balance.held == 0
    again = await leases.reserve(user, HOLD, None)  # a new lease next time
    assert again is not None and again.id != held.id
    await leases.stop()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_a_dead_workers_slice_is_recovered_by_the_sweep(
    db: Database, runner: LedgerRunner, tmp_path: Path
) -> None:
    user = await new_user(db)
    dead = make_leases(runner, tmp_path / "dead")
    await serve(dead, user, 20)
    lease = await dead.reserve(user, HOLD, None)  # in flight when the worker dies
    assert lease is not None
    before, _ = await state(db, user)
    assert before.held > 0
    # The worker dies: nothing of it runs again. After the lease's TTL the sweep releases it.
    async with db.connect() as conn:
        assert await ledger.release_expired(conn, utcnow() + timedelta(seconds=61)) == 1
    after, rows = await state(db, user)
    assert after.held == 0 and after.total == before.total  # given back, charged nothing more
    assert [r[1] for r in rows] == ["released"]
    assert await usage(db, user) == [-COST] * 20  # what it served was charged, once


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_a_stalled_workers_charges_still_land_once_after_its_lease_was_swept(
    db: Database, runner: LedgerRunner, tmp_path: Path
) -> None:
    user = await new_user(db)
    leases = make_leases(runner, tmp_path)
    lease = await leases.reserve(user, HOLD, None)
    assert lease is not None
    async with db.connect() as conn:  # the worker stalled past the lease's TTL
        assert await ledger.release_expired(conn, utcnow() + timedelta(seconds=61)) == 1
    await leases.charge(lease, HOLD, Charge("late-1", COST, 3, "m"))  # charged all the same
    balance, rows = await state(db, user)  # held not given back twice: consistent, 0
    assert balance.held == 0 and await usage(db, user) == [-COST]
    assert balance.total == nanos_to_usd(usd_to_nanos("10") - COST)
    fresh = await leases.reserve(user, HOLD, None)  # the swept lease serves no more
    assert fresh is not None and fresh.id != lease.id
    await leases.stop()
    balance, rows = await state(db, user)
    assert balance.held == 0 and [r[1] for r in rows] == ["released", "released"]


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_charges_the_database_refuses_are_spooled_and_land_once(
    db: Database, runner: LedgerRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    user = await new_user(db)
    spooled: list[None] = []
    leases = make_leases(runner, tmp_path, on_spooled=lambda: spooled.append(None))
    lease = await leases.reserve(user, HOLD, None)
    assert lease is not None

    async def down(op: object, *args: object, **kwargs: object) -> object:
        raise OSError("connection refused")

    monkeypatch.setattr(runner, "run_serial", down)  # the lease flusher's connection
    await leases.charge(lease, HOLD, Charge("spooled-1", COST, 3, "m"))
    assert leases.spool.count() == 1
    assert len(spooled) == 1  # counted (gatewayz_settles_spooled_total)
    monkeypatch.undo()
    assert await replay(leases.spool, runner) == 1
    assert await replay(leases.spool, runner) == 0
    assert await usage(db, user) == [-COST]
    async with db.connect() as conn:  # the dropped lease's reservation expires
        assert await ledger.release_expired(conn, utcnow() + timedelta(seconds=61)) == 1
    balance, _ = await state(db, user)
    assert balance.held == 0 and balance.total == nanos_to_usd(usd_to_nanos("10") - COST)


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_no_lease_near_the_end_of_a_balance_the_days_cap_or_on_the_trial(
    db: Database, runner: LedgerRunner, tmp_path: Path
) -> None:
    leases = make_leases(runner, tmp_path)
    small = await new_user(db, usd="0.1")  # 100 holds' worth: held request by request
    assert await leases.reserve(small, HOLD, None) is None
    capped = await new_user(db)  # $10 but a $0.15 daily cap
    assert await leases.reserve(capped, HOLD, 150_000_000) is None
    trial = await new_user(db, plan="trial")
    assert await leases.reserve(trial, HOLD, None) is None
    grows = leases.grows
    assert await leases.reserve(small, HOLD, None) is None  # not asked again at once
    assert leases.grows == grows
    nearly = await new_user(db, usd="0.5")  # a lease, until fewer than 200 holds are left
    lease = await leases.reserve(nearly, HOLD, None)
    assert lease is not None and lease.amount == 8 * HOLD  # 8 holds to start with
    for _ in range(6):  # 7 of 8 held; its account spends elsewhere meanwhile
        assert await leases.reserve(nearly, HOLD, None) is lease
    async with db.connect() as conn:
        await ledger.grant(conn, nearly, "-0.19", "adjustment")  # 302 holds of HOLD left
    # A request holding 2 × HOLD: 302 < 200 such holds, so the lease does not grow (though
    # what it lacks, one HOLD, would fit 200 times).
    assert await leases.reserve(nearly, 2 * HOLD, None) is None
    rich = await new_user(db, usd="1")  # 1000 holds' worth: a slice of at most a quarter
    lease = await leases.reserve(rich, HOLD, None)
    assert lease is not None and HOLD <= lease.amount <= usd_to_nanos("1") // 4
    for user in (small, capped, trial):
        assert (await state(db, user))[1] == []
    await leases.stop()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_a_charge_written_before_is_not_written_twice(
    db: Database, runner: LedgerRunner, tmp_path: Path
) -> None:
    user = await new_user(db)
    leases = make_leases(runner, tmp_path)
    lease = await leases.reserve(user, 3 * HOLD, None)
    assert lease is not None
    await leases.charge(lease, HOLD, Charge("twice", COST, 3, "m"))
    # The same request id again (a replay), beside a new one, in one batch.
    await asyncio.gather(
        leases.charge(lease, HOLD, Charge("twice", COST, 3, "m")),
        leases.charge(lease, HOLD, Charge("once", 2 * COST, 3, "m")),
    )
    assert await usage(db, user) == [-2 * COST, -COST]
    await leases.stop()
    balance, _ = await state(db, user)  # the running balance of each row checked too
    assert balance.held == 0 and balance.total == nanos_to_usd(usd_to_nanos("10") - 3 * COST)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_only_a_busy_account_gets_a_lease(
    db: Database, runner: LedgerRunner, tmp_path: Path
) -> None:
    user = await new_user(db)
    now = [1000.0]
    leases = make_leases(runner, tmp_path, eager=False, clock=lambda: now[0])
    assert await leases.reserve(user, HOLD, None) is None  # a first request: held by itself
    now[0] += 5
    assert await leases.reserve(user, HOLD, None) is None  # now and then: still
    now[0] += 0.5
    lease = await leases.reserve(user, HOLD, None)  # two within 2 s: busy
    assert lease is not None and leases.grows == 1
    assert (await state(db, user))[1][0][0] == lease.id
    await leases.stop()


@pytest.mark.parametrize("db_url", ["sqlite", "postgres"], indirect=True)
async def test_an_account_deleted_meanwhile_does_not_hold_back_anothers_charges(
    db: Database, runner: LedgerRunner, tmp_path: Path
) -> None:
    kept, gone = await new_user(db), await new_user(db)
    leases = make_leases(runner, tmp_path)
    lease_kept = await leases.reserve(kept, HOLD, None)
    lease_gone = await leases.reserve(gone, HOLD, None)
    assert lease_kept is not None and lease_gone is not None
    async with db.begin() as conn:  # the account disappears while its request is in flight
        for table in ("credit_transactions", "credit_holds", "api_keys", "users"):
            column = "id" if table == "users" else "user_id"
            await conn.execute(text(f"DELETE FROM {table} WHERE {column} = :u"), {"u": gone})
    await asyncio.gather(  # one batch for both accounts
        leases.charge(lease_kept, HOLD, Charge("kept-1", COST, 3, "m")),
        leases.charge(lease_gone, HOLD, Charge("gone-1", COST, 3, "m")),
    )
    assert await usage(db, kept) == [-COST]  # landed all the same
    assert [p.hold_id for _, p in leases.spool.pending()] == ["gone-1"]  # kept for an operator
    await leases.stop()
    assert (await state(db, kept))[0].held == 0


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
async def test_a_flush_costs_the_same_statements_for_one_account_or_thirty(
    db: Database, runner: LedgerRunner, tmp_path: Path
) -> None:
    statements: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement)

    async def flush_of(users: list[str]) -> int:
        leases = make_leases(runner, tmp_path)
        held = [await leases.reserve(user, HOLD, None) for user in users]
        statements.clear()
        await asyncio.gather(  # charged together: one batch per lease, one flush
            *(
                leases.charge(lease, HOLD, Charge(f"{lease.id}-1", COST, 3, "m"))
                for lease in held
                if lease is not None
            )
        )
        count = len(statements)
        await leases.stop()
        return count

    event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        one = await flush_of([await new_user(db)])
        thirty = await flush_of([await new_user(db) for _ in range(30)])
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    assert thirty == one <= 5
    for user in await _users(db):
        balance, _ = await state(db, user)  # each account charged once, its ledger consistent
        assert balance.held == 0


async def _users(db: Database) -> list[str]:
    async with db.connect() as conn:
        return [str(r[0]) for r in await conn.execute(text("SELECT id FROM users"))]
