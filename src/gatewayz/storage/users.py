"""Users: rows of `users`, as SQLAlchemy Core on an `AsyncConnection` the caller owns (and
commits).

Rows come back as plain dicts. Validation errors (unknown role, duplicate email, ...) are
`ValueError`s with a message fit for an operator. A user's money columns are the ledger's
(`storage.ledger`); API keys are in `storage.keys`.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.money import usd_to_nanos
from gatewayz.storage.errors import DuplicateValue
from gatewayz.storage.tables import ROLES, credit_transactions, partner_trials, users, utcnow

_MAX_EMAIL = 320
_MAX_PARTNER_CODE = 32  # partner_trials.code is String(32)
# What `record_sign_up` sets on a new user's row.
_SIGN_UP_FIELDS = frozenset(
    {"tier", "trial_ends_at", "privy_user_id", "referred_by_code", "created_at", "updated_at"}
)


def new_user_id() -> str:
    return f"usr_{secrets.token_hex(16)}"


def normalize_email(email: str) -> str:
    """Trimmed, lower-cased email; `ValueError` unless it looks like `local@domain`."""
    value = email.strip().lower()
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or not domain
        or len(value) > _MAX_EMAIL
        or any(ch.isspace() for ch in value)
    ):
        raise ValueError(f"invalid email address: {email!r}")
    return value


# ---- users ------------------------------------------------------------------------------


async def create_user(
    conn: AsyncConnection,
    email: str,
    role: str = "free",
    plan: str = "trial",
    credits_usd: Decimal | int | str = Decimal(0),
) -> dict[str, Any]:
    """Insert a user; starting credits (if any) are recorded as a `grant` transaction."""
    address = normalize_email(email)
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    if not plan:
        raise ValueError("plan must not be empty")
    nanos = usd_to_nanos(credits_usd)
    if nanos < 0:
        raise ValueError("starting credits must not be negative")
    if await get_user_by_email(conn, address) is not None:
        raise ValueError(f"a user with email {address} already exists")
    now = utcnow()
    row: dict[str, Any] = {
        "id": new_user_id(),
        "email": address,
        "role": role,
        "plan": plan,
        "is_active": True,
        "credits_nanos": nanos,
        "referred_by_code": None,
        "trial_ends_at": None,
        "created_at": now,
        "updated_at": now,
    }
    try:
        await conn.execute(insert(users), row)
    except IntegrityError as exc:  # lost a race with a concurrent insert of the same email
        raise ValueError(f"a user with email {address} already exists") from exc
    if nanos > 0:
        await conn.execute(
            insert(credit_transactions),
            {
                "user_id": row["id"],
                "type": "grant",
                "amount_nanos": nanos,
                "balance_after_nanos": nanos,
                "request_id": None,
                "description": "starting credits",
                "created_at": now,
            },
        )
    return row


async def get_user(conn: AsyncConnection, user_id: str) -> dict[str, Any] | None:
    result = await conn.execute(select(users).where(users.c.id == user_id))
    found = result.mappings().first()
    return dict(found) if found is not None else None


async def get_user_by_email(conn: AsyncConnection, email: str) -> dict[str, Any] | None:
    address = email.strip().lower()
    result = await conn.execute(select(users).where(users.c.email == address))
    found = result.mappings().first()
    return dict(found) if found is not None else None


async def get_user_by_privy_id(conn: AsyncConnection, subject: str) -> dict[str, Any] | None:
    result = await conn.execute(select(users).where(users.c.privy_user_id == subject))
    found = result.mappings().first()
    return dict(found) if found is not None else None


async def link_privy_id(conn: AsyncConnection, user_id: str, subject: str) -> None:
    await conn.execute(
        update(users)
        .where(users.c.id == user_id)
        .values(privy_user_id=subject, updated_at=utcnow())
    )


async def record_sign_up(conn: AsyncConnection, user_id: str, values: Mapping[str, Any]) -> None:
    """Set a new user's sign-up details (tier, trial end, Privy id, referral code, times);
    `DuplicateValue` when the Privy id belongs to another user already."""
    unknown = values.keys() - _SIGN_UP_FIELDS
    if unknown:
        raise ValueError(f"not sign-up fields: {', '.join(sorted(unknown))}")
    try:
        await conn.execute(update(users).where(users.c.id == user_id).values(**values))
    except IntegrityError as exc:
        raise DuplicateValue("this login is linked to another user") from exc


async def find_partner_trial(conn: AsyncConnection, code: str) -> dict[str, Any] | None:
    """The active partner trial of `code` (case-insensitive), or None."""
    if len(code) > _MAX_PARTNER_CODE:
        return None
    result = await conn.execute(
        select(partner_trials).where(
            func.upper(partner_trials.c.code) == code.upper(),
            partner_trials.c.is_active.is_(True),
        )
    )
    found = result.mappings().first()
    return dict(found) if found is not None else None


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


async def user_balance_nanos(conn: AsyncConnection, user_id: str) -> int:
    """The user's purchased-credit balance in nano-dollars; `ValueError` for an unknown user."""
    result = await conn.execute(select(users.c.credits_nanos).where(users.c.id == user_id))
    balance = result.scalar_one_or_none()
    if balance is None:
        raise ValueError(f"unknown user {user_id!r}")
    return int(balance)


# ---- users (admin) -----------------------------------------------------------------------


async def list_users(
    conn: AsyncConnection, *, limit: int, offset: int, q: str | None = None
) -> tuple[list[dict[str, Any]], int]:
    """A page of users (oldest first) and the total count; with `q`, only the users whose
    e-mail contains it (case-insensitive) or whose id is exactly `q`."""
    query, count = select(users), select(func.count()).select_from(users)
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        match = or_(func.lower(users.c.email).like(f"%{escaped}%", escape="\\"), users.c.id == q)
        query, count = query.where(match), count.where(match)
    result = await conn.execute(
        query.order_by(users.c.created_at, users.c.id).limit(limit).offset(offset)
    )
    total = int((await conn.execute(count)).scalar_one())
    return [dict(r) for r in result.mappings()], total


async def set_user_role(conn: AsyncConnection, user_id: str, role: str) -> str | None:
    """Change a user's role; the previous role, or None for an unknown user."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    result = await conn.execute(select(users.c.role).where(users.c.id == user_id))
    previous = result.scalar_one_or_none()
    if previous is not None:
        await conn.execute(
            update(users).where(users.c.id == user_id).values(role=role, updated_at=utcnow())
        )
    return previous


# ---- referral codes ------------------------------------------------------------------------


async def referral_code_of(conn: AsyncConnection, user_id: str) -> str | None:
    """The user's referral code ('' while they have none); None for an unknown user."""
    row = (await conn.execute(select(users.c.referral_code).where(users.c.id == user_id))).first()
    return None if row is None else (row[0] or "")


async def set_referral_code(conn: AsyncConnection, user_id: str, code: str) -> None:
    """Give the user `code` unless they have one; `DuplicateValue` when another user has it."""
    try:
        await conn.execute(
            update(users)
            .where(users.c.id == user_id, users.c.referral_code.is_(None))
            .values(referral_code=code, updated_at=utcnow())
        )
    except IntegrityError as exc:
        raise DuplicateValue("referral code taken") from exc


async def referrer_of(conn: AsyncConnection, code: str) -> str | None:
    """The user whose referral code is `code` (stored upper-case), or None."""
    found = await conn.execute(select(users.c.id).where(users.c.referral_code == code))
    user_id = found.scalar_one_or_none()
    return None if user_id is None else str(user_id)


async def count_referred(conn: AsyncConnection, code: str) -> int:
    """How many users signed up with `code` (compared trimmed and upper-case)."""
    found = await conn.execute(
        select(func.count())
        .select_from(users)
        .where(func.upper(func.trim(users.c.referred_by_code)) == code)
    )
    return int(found.scalar_one())
