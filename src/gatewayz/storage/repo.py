"""Queries, as SQLAlchemy Core on an `AsyncConnection` the caller owns (and commits).

Rows come back as plain dicts. Validation errors (unknown role, duplicate email, ...) are
`ValueError`s with a message fit for an operator.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.money import usd_to_nanos
from gatewayz.security.keys import KeyRing, display_prefix, last_four
from gatewayz.storage.tables import (
    ROLES,
    api_keys,
    credit_transactions,
    users,
    utcnow,
)

_MAX_EMAIL = 320
_MAX_KEY_NAME = 100  # api_keys.name is String(100)


def new_user_id() -> str:
    return f"usr_{secrets.token_hex(16)}"


def new_key_id() -> str:
    return f"key_{secrets.token_hex(16)}"


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


async def count_users(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(users))).scalar_one())


async def user_balance_nanos(conn: AsyncConnection, user_id: str) -> int:
    """The user's purchased-credit balance in nano-dollars; `ValueError` for an unknown user."""
    result = await conn.execute(select(users.c.credits_nanos).where(users.c.id == user_id))
    balance = result.scalar_one_or_none()
    if balance is None:
        raise ValueError(f"unknown user {user_id!r}")
    return int(balance)


# ---- API keys ---------------------------------------------------------------------------

_KEY_COLUMNS = [c for c in api_keys.c if c.name != "encrypted_key"]


async def create_api_key(
    conn: AsyncConnection,
    keyring: KeyRing,
    user_id: str,
    env: str,
    name: str = "default",
    is_primary: bool = False,
    *,
    scopes: Sequence[str] | None = None,
    ip_allowlist: Sequence[str] | None = None,
    domain_allowlist: Sequence[str] | None = None,
    limits: Mapping[str, int] | None = None,
    expires_at: datetime | None = None,
    provider_preferences: Mapping[str, Any] | None = None,
    cache_policy: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """A new key for the user: (its row without `encrypted_key`, the plaintext key).

    The plaintext exists only in the return value; store nothing but what is returned here.
    A new primary key demotes the user's previous primary key.
    """
    key = keyring.generate(env)  # ValueError for an unknown env
    if not name or len(name) > _MAX_KEY_NAME:
        raise ValueError(f"key name must be 1-{_MAX_KEY_NAME} characters")
    exists = await conn.execute(select(users.c.id).where(users.c.id == user_id))
    if exists.scalar_one_or_none() is None:
        raise ValueError(f"unknown user {user_id!r}")
    if is_primary:
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.user_id == user_id, api_keys.c.is_primary.is_(True))
            .values(is_primary=False)
        )
    row: dict[str, Any] = {
        "id": new_key_id(),
        "user_id": user_id,
        "name": name,
        "env": env,
        "key_hash": keyring.hash(key),
        "prefix": display_prefix(key),
        "last_four": last_four(key),
        "is_active": True,
        "is_primary": is_primary,
        "scopes": list(scopes) if scopes is not None else None,
        "ip_allowlist": list(ip_allowlist) if ip_allowlist is not None else None,
        "domain_allowlist": list(domain_allowlist) if domain_allowlist is not None else None,
        "limits": dict(limits) if limits is not None else None,
        "created_at": utcnow(),
        "expires_at": expires_at,
        "last_used_at": None,
        "revoked_at": None,
        "provider_preferences": dict(provider_preferences) if provider_preferences else None,
        "cache_policy": dict(cache_policy) if cache_policy else None,
    }
    await conn.execute(insert(api_keys), {**row, "encrypted_key": keyring.encrypt(key)})
    return row, key


# One indexed lookup on key_hash joined to the owner; encrypted_key is never selected.
_FIND_KEY = (
    select(
        api_keys.c.id.label("api_key_id"),
        api_keys.c.user_id,
        api_keys.c.env,
        api_keys.c.is_active.label("key_active"),
        api_keys.c.revoked_at,
        api_keys.c.expires_at,
        users.c.is_active.label("user_active"),
        users.c.role,
        users.c.plan,
        api_keys.c.key_hash,
        api_keys.c.scopes,
        api_keys.c.ip_allowlist,
        api_keys.c.domain_allowlist,
        api_keys.c.limits,
        api_keys.c.provider_preferences,
        api_keys.c.cache_policy,
    )
    .select_from(api_keys.join(users, users.c.id == api_keys.c.user_id))
    .where(api_keys.c.key_hash == bindparam("key_hash"))
)


async def find_key(
    conn: AsyncConnection, key_hash: str, *, now: datetime | None = None
) -> dict[str, Any] | None:
    """The key with this hash and its owner's role and plan, or None.

    `is_active` is true only if the key and its user are both active and the key is neither
    revoked nor expired (at `now`, default the current time). `expires_at` is returned so a
    cache can re-check expiry later.
    """
    result = await conn.execute(_FIND_KEY, {"key_hash": key_hash})
    found = result.mappings().first()
    if found is None:
        return None
    moment = now or utcnow()
    expires_at = found["expires_at"]
    active = bool(
        found["key_active"]
        and found["user_active"]
        and found["revoked_at"] is None
        and (expires_at is None or expires_at > moment)
    )
    return {
        "api_key_id": found["api_key_id"],
        "user_id": found["user_id"],
        "env": found["env"],
        "is_active": active,
        "role": found["role"],
        "plan": found["plan"],
        "key_hash": found["key_hash"],
        "scopes": found["scopes"],
        "ip_allowlist": found["ip_allowlist"],
        "domain_allowlist": found["domain_allowlist"],
        "limits": found["limits"],
        "provider_preferences": found["provider_preferences"],
        "cache_policy": found["cache_policy"],
        "expires_at": expires_at,
    }


# ---- key management (users' own keys) ----------------------------------------------------

# What a key listing may show: never the encrypted key, never the lookup hash.
_PUBLIC_KEY_COLUMNS = [c for c in api_keys.c if c.name not in ("encrypted_key", "key_hash")]


async def list_user_keys(conn: AsyncConnection, user_id: str) -> list[dict[str, Any]]:
    """The user's keys that are not revoked, oldest first, without secrets or hashes."""
    result = await conn.execute(
        select(*_PUBLIC_KEY_COLUMNS)
        .where(api_keys.c.user_id == user_id, api_keys.c.revoked_at.is_(None))
        .order_by(api_keys.c.created_at, api_keys.c.id)
    )
    return [dict(r) for r in result.mappings()]


async def get_user_key(conn: AsyncConnection, user_id: str, key_id: str) -> dict[str, Any] | None:
    """One of the user's own keys that is not revoked (with `key_hash`, for invalidation), or
    None — also for another user's key, so ids of others' keys reveal nothing."""
    return await get_key(conn, key_id, user_id)


async def get_key(
    conn: AsyncConnection, key_id: str, user_id: str | None = None
) -> dict[str, Any] | None:
    """A key that is not revoked (of `user_id` only, when given), with `key_hash`, or None."""
    query = select(*_PUBLIC_KEY_COLUMNS, api_keys.c.key_hash).where(
        api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None)
    )
    if user_id is not None:
        query = query.where(api_keys.c.user_id == user_id)
    found = (await conn.execute(query)).mappings().first()
    return dict(found) if found is not None else None


_UPDATABLE_KEY_FIELDS = frozenset(
    {
        "name",
        "ip_allowlist",
        "domain_allowlist",
        "limits",
        "expires_at",
        "provider_preferences",
        "cache_policy",
    }
)


async def update_api_key(conn: AsyncConnection, key_id: str, values: Mapping[str, Any]) -> None:
    """Set some of name, ip_allowlist, domain_allowlist, limits, expires_at,
    provider_preferences, cache_policy on a key."""
    unknown = values.keys() - _UPDATABLE_KEY_FIELDS
    if unknown:
        raise ValueError(f"api key fields not updatable: {', '.join(sorted(unknown))}")
    name = values.get("name")
    if "name" in values and (not name or len(name) > _MAX_KEY_NAME):
        raise ValueError(f"key name must be 1-{_MAX_KEY_NAME} characters")
    if values:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))


async def rotate_api_key(
    conn: AsyncConnection, keyring: KeyRing, key_id: str, env: str
) -> tuple[str, str]:
    """A new secret for the same key id: (the new plaintext key, its hash). The old secret's
    hash is replaced, so the old key no longer finds any row."""
    key = keyring.generate(env)
    digest = keyring.hash(key)
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(
            key_hash=digest,
            encrypted_key=keyring.encrypt(key),
            prefix=display_prefix(key),
            last_four=last_four(key),
        )
    )
    return key, digest


async def revoke_api_key(conn: AsyncConnection, key_id: str) -> None:
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(is_active=False, is_primary=False, revoked_at=utcnow())
    )


# ---- users (admin) -----------------------------------------------------------------------


async def list_users(
    conn: AsyncConnection, *, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """A page of users (oldest first) and the total count."""
    result = await conn.execute(
        select(users).order_by(users.c.created_at, users.c.id).limit(limit).offset(offset)
    )
    return [dict(r) for r in result.mappings()], await count_users(conn)


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
