"""Migration 0003: users whose credits predate the ledger get an opening row, so it balances."""

from __future__ import annotations

from decimal import Decimal

from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Connection

from gatewayz.billing import ledger
from gatewayz.storage.db import Database, alembic_config, make_engine, upgrade
from gatewayz.storage.ledger.money import verify_ledger


def _upgrade_to(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def test_migration_0003_opens_the_ledger_for_existing_balances(db_url: str) -> None:
    engine = make_engine(db_url, pooled=False)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade_to, "0002")
            # Credits set without a ledger row (possible before 0003), and a balanced user.
            await conn.execute(
                text(
                    "INSERT INTO users (id, email, credits_nanos) VALUES "
                    "('usr_old', 'old@example.com', 1234), ('usr_ok', 'ok@example.com', 5)"
                )
            )
            await conn.execute(
                text(
                    "INSERT INTO credit_transactions "
                    "(user_id, type, amount_nanos, balance_after_nanos) "
                    "VALUES ('usr_ok', 'grant', 5, 5)"
                )
            )
    finally:
        await engine.dispose()
    await upgrade(db_url)
    db = Database(db_url, pool_size=1, max_overflow=0)
    try:
        async with db.connect() as conn:
            for user_id in ("usr_old", "usr_ok"):
                await verify_ledger(conn, user_id)
            old = await ledger.balance(conn, "usr_old")
            rows = await conn.execute(
                text("SELECT user_id, type, amount_nanos FROM credit_transactions ORDER BY id")
            )
            assert [tuple(r) for r in rows] == [
                ("usr_ok", "grant", 5),
                ("usr_old", "adjustment", 1234),
            ]
    finally:
        await db.dispose()
    assert (old.purchased, old.allowance, old.held) == (Decimal("0.000001234"), 0, 0)
