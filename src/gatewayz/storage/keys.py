"""API keys: rows of `api_keys`, as SQLAlchemy Core on an `AsyncConnection` the caller owns.

A key reaches the database only as a `StoredKey` — its lookup hash, its encrypted token and the
parts that may be shown — made by the key ring (`accounts.api_keys` issues keys); `encrypted_key`
is written here and never read back. Lookups are by hash (`find_key`, the request path's).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.tables import api_keys, users, utcnow

MAX_KEY_NAME = 100  # api_keys.name is String(100)


@dataclass(frozen=True, slots=True)
class StoredKey:
    """What is stored of one key: never the plaintext."""

    key_hash: str  # the lookup value (HMAC of the key)
    encrypted_key: str  # a token only the deployment's key ring opens
    prefix: str  # shown: `gw_{env}_` and four characters
    last_four: str  # shown


def new_key_id() -> str:
    return f"key_{secrets.token_hex(16)}"


async def insert_api_key(
    conn: AsyncConnection,
    stored: StoredKey,
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
) -> dict[str, Any]:
    """Store a new key of the user; its row without `encrypted_key`. A new primary key demotes
    the user's previous primary key."""
    if not name or len(name) > MAX_KEY_NAME:
        raise ValueError(f"key name must be 1-{MAX_KEY_NAME} characters")
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
        "key_hash": stored.key_hash,
        "prefix": stored.prefix,
        "last_four": stored.last_four,
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
    await conn.execute(insert(api_keys), {**row, "encrypted_key": stored.encrypted_key})
    return row


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
    if "name" in values and (not name or len(name) > MAX_KEY_NAME):
        raise ValueError(f"key name must be 1-{MAX_KEY_NAME} characters")
    if values:
        await conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(**values))


async def set_key_secret(conn: AsyncConnection, key_id: str, stored: StoredKey) -> None:
    """A new secret for the same key id (rotation). The old secret's hash is replaced, so the
    old key no longer finds any row."""
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(
            key_hash=stored.key_hash,
            encrypted_key=stored.encrypted_key,
            prefix=stored.prefix,
            last_four=stored.last_four,
        )
    )


async def revoke_api_key(conn: AsyncConnection, key_id: str) -> None:
    await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(is_active=False, is_primary=False, revoked_at=utcnow())
    )
