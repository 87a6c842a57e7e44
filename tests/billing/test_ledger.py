"""The credit ledger (CM-6.2, CM-6.3 library level, CM-6.4, CM-7.10) on SQLite and PostgreSQL.

Every test ends by checking the invariant: balance == sum of ledger rows, held == open holds.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from gatewayz.billing import ledger
from gatewayz.billing.ledger import add_months
from gatewayz.money import usd_to_nanos
from gatewayz.storage.db import Database
from gatewayz.storage.ledger import holds
from gatewayz.storage.ledger.money import LedgerInconsistent, UnknownUser, verify_ledger
from gatewayz.storage.tables import credit_transactions, users
from gatewayz.storage.users import create_user

USD = Decimal
JAN_1 = datetime(2026, 1, 1, tzinfo=UTC)


async def new_user(db: Database, purchased: str = "0", allowance: str | None = None) -> str:
    async with db.begin() as conn:
        user = await create_user(conn, f"{secrets.token_hex(4)}@example.com")
    async with db.connect() as conn:
        if Decimal(purchased):
            await ledger.grant(conn, user["id"], purchased, "purchase")
        if allowance is not None:
            await ledger.reset_allowance(conn, user["id"], usd_to_nanos(allowance), JAN_1)
    return str(user["id"])


async def bal(db: Database, user_id: str) -> ledger.Balance:
    """The balance, after checking it against the ledger (used by every test)."""
    async with db.connect() as conn:
        await verify_ledger(conn, user_id)
        return await ledger.balance(conn, user_id)


async def usage_rows(db: Database, user_id: str) -> list[tuple[int, str | None]]:
    async with db.connect() as conn:
        rows = await conn.execute(
            select(credit_transactions.c.amount_nanos, credit_transactions.c.request_id)
            .where(credit_transactions.c.user_id == user_id, credit_transactions.c.type == "usage")
            .order_by(credit_transactions.c.id)
        )
        return [(int(a), r) for a, r in rows]


# ---- CM-6.2: allowance first, purchased credits never expire ------------------------------


async def test_cm_6_2_1_subscription_allowance_used_before_purchased(db: Database) -> None:
    uid = await new_user(db, purchased="5", allowance="10")
    async with db.connect() as conn:
        assert await ledger.charge(conn, uid, "req-1", usd_to_nanos("3"))
    b = await bal(db, uid)
    assert (b.allowance, b.purchased, b.available) == (USD("7"), USD("5"), USD("12"))


async def test_cm_6_2_2_purchased_credits_used_after_allowance_exhausted(db: Database) -> None:
    uid = await new_user(db, purchased="5", allowance="2")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "req-1", usd_to_nanos("4"))
        assert await ledger.settle(conn, uid, "req-1", usd_to_nanos("3")) == usd_to_nanos("3")
    b = await bal(db, uid)
    assert (b.allowance, b.purchased, b.held) == (USD("0"), USD("4"), USD("0"))
    async with db.connect() as conn:
        assert await ledger.charge(conn, uid, "req-2", usd_to_nanos("1.5"))
    b = await bal(db, uid)
    assert (b.allowance, b.purchased, b.available) == (USD("0"), USD("2.5"), USD("2.5"))


async def test_cm_6_2_3_purchased_credits_never_expire(db: Database) -> None:
    uid = await new_user(db, purchased="7.25", allowance="10")
    async with db.connect() as conn:
        # Two years of monthly resets and a sweep of expired holds far in the future.
        for month in range(1, 25):
            moment = add_months(JAN_1, month)
            assert await ledger.reset_allowance(conn, uid, usd_to_nanos("10"), moment)
        assert await ledger.release_expired(conn, JAN_1 + timedelta(days=3650)) == 0
    b = await bal(db, uid)
    assert b.purchased == USD("7.25")
    assert b.allowance == USD("10")


async def test_cm_6_2_4_subscription_allowance_does_not_roll_over(db: Database) -> None:
    uid = await new_user(db, allowance="10")
    amount = usd_to_nanos("10")
    async with db.connect() as conn:
        assert await ledger.charge(conn, uid, "req-1", usd_to_nanos("3"))
        # Not due yet: nothing changes.
        assert not await ledger.reset_allowance(
            conn, uid, amount, datetime(2026, 1, 31, 23, 59, tzinfo=UTC)
        )
    assert (await bal(db, uid)).allowance == USD("7")
    async with db.connect() as conn:
        assert await ledger.reset_allowance(conn, uid, amount, datetime(2026, 2, 1, tzinfo=UTC))
    assert (await bal(db, uid)).allowance == USD("10")  # the unused $7 is gone, not $17
    async with db.connect() as conn:
        assert not await ledger.reset_allowance(
            conn, uid, amount, datetime(2026, 2, 15, tzinfo=UTC)
        )
        # Months skipped (the job did not run): one reset, anchored to the original cycle.
        assert await ledger.reset_allowance(conn, uid, amount, datetime(2026, 5, 3, tzinfo=UTC))
        resets_at = (
            await conn.execute(select(users.c.allowance_resets_at).where(users.c.id == uid))
        ).scalar_one()
    assert resets_at == datetime(2026, 6, 1, tzinfo=UTC)
    assert (await bal(db, uid)).allowance == USD("10")


def test_add_months_clamps_to_month_end() -> None:
    jan31 = datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert add_months(jan31, 1) == datetime(2026, 2, 28, 12, tzinfo=UTC)
    assert add_months(jan31, 2) == datetime(2026, 3, 31, 12, tzinfo=UTC)
    assert add_months(datetime(2026, 12, 15, tzinfo=UTC), 1) == datetime(2027, 1, 15, tzinfo=UTC)


# ---- CM-6.3 (library level): the pre-flight hold ----------------------------------------


async def test_cm_6_3_2_preflight_hold_reserves_the_estimated_max_cost(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    # 1,000 prompt tokens at $3/M + max_tokens 2,000 at $15/M = $0.033.
    estimate = 1000 * USD("0.000003") + 2000 * USD("0.000015")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "req-1", usd_to_nanos(estimate))
    b = await bal(db, uid)
    assert (b.held, b.available, b.total) == (USD("0.033"), USD("0.967"), USD("1"))


async def test_cm_6_3_3_preflight_passes_when_sufficient(db: Database) -> None:
    uid = await new_user(db, purchased="0.5", allowance="0.5")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "req-1", usd_to_nanos("1"))  # exactly the balance
    assert (await bal(db, uid)).available == 0


async def test_cm_6_3_1_preflight_insufficient_is_refused_and_writes_nothing(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.connect() as conn:
        assert not await ledger.hold(conn, uid, "req-1", usd_to_nanos("1") + 1)
        assert not await ledger.hold(conn, uid, "req-1", usd_to_nanos("1") + 1)
        with pytest.raises(ledger.InsufficientCredits):
            await ledger.charge(conn, uid, "req-2", usd_to_nanos("1") + 1)
    b = await bal(db, uid)
    assert (b.held, b.available) == (0, USD("1"))
    assert await usage_rows(db, uid) == []


# ---- hold / settle / release ------------------------------------------------------------


async def test_settle_charges_actual_cost_and_releases_the_rest(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "a", usd_to_nanos("0.30"))
        assert await ledger.hold(conn, uid, "b", usd_to_nanos("0.20"))
        assert (await ledger.balance(conn, uid)).available == USD("0.5")
        assert await ledger.settle(conn, uid, "a", usd_to_nanos("0.1234")) == usd_to_nanos("0.1234")
    b = await bal(db, uid)
    assert (b.purchased, b.held, b.available) == (USD("0.8766"), USD("0.2"), USD("0.6766"))
    assert await usage_rows(db, uid) == [(-usd_to_nanos("0.1234"), "a")]


async def test_settle_and_release_are_idempotent_and_exclusive(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    cent = usd_to_nanos("0.01")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "a", cent)
        assert await ledger.hold(conn, uid, "a", cent)  # retry while open: same hold
        assert (await ledger.balance(conn, uid)).held == USD("0.01")
        assert await ledger.settle(conn, uid, "a", cent) == cent
        assert await ledger.settle(conn, uid, "a", cent) == 0  # second settle: no-op
        assert not await ledger.release(conn, "a")  # release after settle: no-op
        assert not await ledger.hold(conn, uid, "a", cent)  # request ids are single-use
        assert await ledger.hold(conn, uid, "b", cent)
        assert await ledger.release(conn, "b")  # refund path: nothing charged
        assert not await ledger.release(conn, "b")
        assert await ledger.settle(conn, uid, "b", cent) == 0  # settle after release: no-op
        assert await ledger.settle(conn, uid, "never-held", cent) == 0
    b = await bal(db, uid)
    assert (b.purchased, b.held) == (USD("0.99"), 0)
    assert await usage_rows(db, uid) == [(-cent, "a")]


async def test_settle_zero_cost_writes_no_usage_row(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "a", usd_to_nanos("0.5"))
        assert await ledger.settle(conn, uid, "a", 0) == 0
    assert (await bal(db, uid)).available == USD("1")
    assert await usage_rows(db, uid) == []


async def test_settle_above_the_hold_is_charged_in_full_never_capped(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "a", usd_to_nanos("0.1"))
        assert await ledger.hold(conn, uid, "b", usd_to_nanos("0.6"))
        # The provider billed more than the hold: charged whole, even past the balance.
        assert await ledger.settle(conn, uid, "a", usd_to_nanos("0.5")) == usd_to_nanos("0.5")
        assert await ledger.settle(conn, uid, "b", usd_to_nanos("0.6")) == usd_to_nanos("0.6")
    b = await bal(db, uid)
    assert (b.purchased, b.held, b.available) == (USD("-0.1"), 0, USD("-0.1"))
    async with db.connect() as conn:  # overdrawn: nothing more can be held
        assert not await ledger.hold(conn, uid, "c", 1)


async def test_late_settle_charges_a_hold_the_sweep_released_meanwhile(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.begin() as conn:
        assert await ledger.hold(conn, uid, "open", usd_to_nanos("0.3"))
        assert await ledger.hold(conn, uid, "gone", usd_to_nanos("0.3"), now=JAN_1)
        assert await ledger.release_expired(conn) == 1  # its answer was delivered meanwhile
        late = (holds.settle_late, uid)
        assert await conn.run_sync(*late, "open", usd_to_nanos("0.1")) == usd_to_nanos("0.1")
        assert await conn.run_sync(*late, "gone", usd_to_nanos("0.2")) == usd_to_nanos("0.2")
        # Replayed twice (two workers): charged once.
        assert await conn.run_sync(*late, "open", usd_to_nanos("0.1")) == 0
        assert await conn.run_sync(*late, "gone", usd_to_nanos("0.2")) == 0
    b = await bal(db, uid)
    assert (b.purchased, b.held) == (USD("0.7"), 0)
    assert sorted(await usage_rows(db, uid)) == [
        (-usd_to_nanos("0.2"), "gone"),
        (-usd_to_nanos("0.1"), "open"),
    ]


async def test_settle_requires_the_holding_user(db: Database) -> None:
    owner, other = await new_user(db, purchased="1"), await new_user(db, purchased="1")
    async with db.connect() as conn:
        assert await ledger.hold(conn, owner, "a", usd_to_nanos("0.5"))
        assert await ledger.settle(conn, other, "a", usd_to_nanos("0.5")) == 0
    assert (await bal(db, owner)).held == USD("0.5")
    assert (await bal(db, other)).total == USD("1")


async def test_settle_after_direct_charge_only_releases(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "a", usd_to_nanos("0.5"))
        assert await ledger.charge(conn, uid, "a", usd_to_nanos("0.2"))
        assert await ledger.settle(conn, uid, "a", usd_to_nanos("0.2")) == 0
    b = await bal(db, uid)
    assert (b.purchased, b.held) == (USD("0.8"), 0)


async def test_expired_holds_are_released(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "old", usd_to_nanos("0.4"), now=JAN_1)
        assert await ledger.hold(
            conn, uid, "new", usd_to_nanos("0.4"), now=JAN_1 + timedelta(minutes=10)
        )
        assert await ledger.release_expired(conn, JAN_1 + timedelta(minutes=16)) == 1
        assert await ledger.settle(conn, uid, "old", usd_to_nanos("0.4")) == 0
    b = await bal(db, uid)
    assert (b.held, b.available) == (USD("0.4"), USD("0.6"))


async def test_unknown_user_and_bad_amounts(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.connect() as conn:
        with pytest.raises(UnknownUser):
            await ledger.hold(conn, "usr_missing", "a", 1)
        with pytest.raises(UnknownUser):
            await ledger.charge(conn, "usr_missing", "a", 1)
        with pytest.raises(UnknownUser):
            await ledger.balance(conn, "usr_missing")
        with pytest.raises(ValueError):
            await ledger.hold(conn, uid, "a", -1)
        with pytest.raises(TypeError):
            await ledger.charge(conn, uid, "a", 0.5)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            await ledger.grant(conn, uid, 0.1)  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await ledger.grant(conn, uid, "1", "usage")
        with pytest.raises(ValueError):
            await ledger.grant(conn, uid, "-1", "purchase")
    assert (await bal(db, uid)).total == USD("1")


# ---- CM-6.4: idempotent by request id ---------------------------------------------------


async def test_cm_6_4_1_same_request_id_deducted_once(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    cent = usd_to_nanos("0.01")
    async with db.connect() as conn:
        assert await ledger.charge(conn, uid, "req-1", cent)
        assert not await ledger.charge(conn, uid, "req-1", cent)

    # Retries racing each other, each on its own connection.
    async def retry() -> bool:
        async with db.connect() as conn:
            return await ledger.charge(conn, uid, "req-2", cent)

    assert sorted(await asyncio.gather(*(retry() for _ in range(6)))) == [False] * 5 + [True]
    assert (await bal(db, uid)).purchased == USD("0.98")
    assert await usage_rows(db, uid) == [(-cent, "req-1"), (-cent, "req-2")]


async def test_cm_6_4_1_concurrent_settle_retries_charge_once(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    cent = usd_to_nanos("0.01")
    async with db.connect() as conn:
        assert await ledger.hold(conn, uid, "req-1", cent)

    async def retry() -> int:
        async with db.connect() as conn:
            return await ledger.settle(conn, uid, "req-1", cent)

    assert sorted(await asyncio.gather(*(retry() for _ in range(6)))) == [0] * 5 + [cent]
    b = await bal(db, uid)
    assert (b.purchased, b.held) == (USD("0.99"), 0)


async def test_cm_6_4_2_different_request_ids_deducted_separately(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.connect() as conn:
        assert await ledger.charge(conn, uid, "req-1", usd_to_nanos("0.01"))
        assert await ledger.charge(conn, uid, "req-2", usd_to_nanos("0.01"))
        assert await ledger.hold(conn, uid, "req-3", usd_to_nanos("0.02"))
        assert await ledger.settle(conn, uid, "req-3", usd_to_nanos("0.02"))
    assert (await bal(db, uid)).purchased == USD("0.96")
    assert [r for _, r in await usage_rows(db, uid)] == ["req-1", "req-2", "req-3"]


# ---- grants and adjustments -------------------------------------------------------------


async def test_grants_are_ledger_rows_and_idempotent_by_request_id(db: Database) -> None:
    uid = await new_user(db)
    async with db.connect() as conn:
        assert await ledger.grant(conn, uid, "10", "purchase", request_id="pi_123")
        assert not await ledger.grant(conn, uid, "10", "purchase", request_id="pi_123")
        assert await ledger.grant(conn, uid, Decimal("0.0045"), "grant", description="promo")
        assert await ledger.grant(conn, uid, "-2", "adjustment", description="admin")
        with pytest.raises(ledger.InsufficientCredits):
            await ledger.grant(conn, uid, "-9", "adjustment")
        with pytest.raises(ValueError):
            await ledger.grant(conn, uid, "0.0000000001")  # finer than a nano-dollar
    assert (await bal(db, uid)).purchased == USD("8.0045")


async def test_caller_owned_transaction_rolls_back_as_a_whole(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            assert await ledger.charge(conn, uid, "req-1", usd_to_nanos("0.5"))
            raise RuntimeError("caller failed after charging")
    assert (await bal(db, uid)).purchased == USD("1")
    assert await usage_rows(db, uid) == []


async def test_verify_ledger_detects_a_balance_changed_behind_its_back(db: Database) -> None:
    uid = await new_user(db, purchased="1")
    async with db.begin() as conn:
        await conn.execute(update(users).where(users.c.id == uid).values(credits_nanos=5))
    async with db.connect() as conn:
        with pytest.raises(LedgerInconsistent):
            await verify_ledger(conn, uid)
    async with db.begin() as conn:
        await conn.execute(
            update(users).where(users.c.id == uid).values(credits_nanos=10**9, held_nanos=1)
        )
    async with db.connect() as conn:
        with pytest.raises(LedgerInconsistent, match="open holds"):
            await verify_ledger(conn, uid)


# ---- CM-7.10: plan changes keep purchased credits ---------------------------------------


async def test_cm_7_10_purchased_credits_survive_plan_change(db: Database) -> None:
    uid = await new_user(db, purchased="12.34", allowance="5")
    async with db.connect() as conn:
        assert await ledger.charge(conn, uid, "req-1", usd_to_nanos("1"))
        await ledger.change_plan(conn, uid, "team", allowance_nanos=usd_to_nanos("50"), now=JAN_1)
    b = await bal(db, uid)
    assert (b.purchased, b.allowance) == (USD("12.34"), USD("50"))
    async with db.connect() as conn:
        await ledger.change_plan(conn, uid, "dev")  # downgrade, allowance until next reset
        plan = (await conn.execute(select(users.c.plan).where(users.c.id == uid))).scalar_one()
        with pytest.raises(ValueError):
            await ledger.change_plan(conn, uid, "platinum")
    assert plan == "dev"
    assert (await bal(db, uid)).purchased == USD("12.34")
