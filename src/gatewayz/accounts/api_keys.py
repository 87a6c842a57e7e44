"""Issuing API keys: a new key's plaintext is made by the deployment's key ring and returned
once; the database gets only what `storage.keys.StoredKey` holds (hash, encrypted token, the
parts that may be shown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gatewayz.security.keys import KeyRing, display_prefix, last_four
from gatewayz.storage import keys, users
from gatewayz.storage.db import Database, DbConnection


def stored_key(keyring: KeyRing, key: str) -> keys.StoredKey:
    """What the database keeps of `key`."""
    return keys.StoredKey(
        key_hash=keyring.hash(key),
        encrypted_key=keyring.encrypt(key),
        prefix=display_prefix(key),
        last_four=last_four(key),
    )


async def create_api_key(
    conn: DbConnection,
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
    A new primary key demotes the user's previous primary key. `ValueError` for an unknown env
    or user, or a bad name.
    """
    key = keyring.generate(env)
    row = await keys.insert_api_key(
        conn,
        stored_key(keyring, key),
        user_id,
        env,
        name,
        is_primary,
        scopes=scopes,
        ip_allowlist=ip_allowlist,
        domain_allowlist=domain_allowlist,
        limits=limits,
        expires_at=expires_at,
        provider_preferences=provider_preferences,
        cache_policy=cache_policy,
    )
    return row, key


async def rotate_api_key(
    conn: DbConnection, keyring: KeyRing, key_id: str, env: str
) -> tuple[str, str]:
    """A new secret for the same key id: (the new plaintext key, its hash). The old key no
    longer finds any row."""
    key = keyring.generate(env)
    stored = stored_key(keyring, key)
    await keys.set_key_secret(conn, key_id, stored)
    return key, stored.key_hash


# ---- what the key routes do, each in one transaction of the database given -----------------


async def issue_key(
    db: Database,
    keyring: KeyRing,
    user_id: str,
    env: str,
    name: str,
    **options: Any,
) -> tuple[dict[str, Any], str]:
    """`create_api_key` in a transaction of its own: (the key's row, the plaintext key)."""
    async with db.begin() as conn:
        return await create_api_key(conn, keyring, user_id, env, name, **options)


async def user_keys(db: Database, user_id: str) -> list[dict[str, Any]]:
    """The user's keys that are not revoked, oldest first, without secrets or hashes."""
    async with db.begin() as conn:
        return await keys.list_user_keys(conn, user_id)


async def user_key(db: Database, user_id: str, key_id: str) -> dict[str, Any] | None:
    """One of the user's own keys that is not revoked, or None (also for another's key)."""
    async with db.begin() as conn:
        return await keys.get_user_key(conn, user_id, key_id)


async def update_user_key(
    db: Database,
    keyring: KeyRing,
    user_id: str,
    key_id: str,
    values: Mapping[str, Any],
    *,
    rotate_env: str | None = None,
) -> tuple[dict[str, Any] | None, str | None]:
    """Set `values` on the user's key and, with `rotate_env`, give it a new secret of that env:
    (the key's row after, None when it was revoked meanwhile; the new plaintext or None)."""
    secret: str | None = None
    async with db.begin() as conn:
        await keys.update_api_key(conn, key_id, values)
        if rotate_env is not None:
            secret, _ = await rotate_api_key(conn, keyring, key_id, rotate_env)
        return await keys.get_user_key(conn, user_id, key_id), secret


async def revoke_key(db: Database, key_id: str) -> None:
    async with db.begin() as conn:
        await keys.revoke_api_key(conn, key_id)


@dataclass(frozen=True, slots=True)
class LimitsChange:
    key: dict[str, Any]  # the key's row before the change
    owner_plan: str  # '' when the owner is gone
    previous: dict[str, Any]  # the stored limits before
    limits: dict[str, Any]  # and after


async def set_key_limits(
    db: Database, key_id: str, changes: Mapping[str, int | None]
) -> LimitsChange | None:
    """Merge `changes` into a key's stored limits (None removes one); None for no such key."""
    async with db.begin() as conn:
        row = await keys.get_key(conn, key_id)
        if row is None:
            return None
        owner = await users.get_user(conn, row["user_id"])
        previous = dict(row.get("limits") or {})
        limits = {k: v for k, v in previous.items() if k not in changes}
        limits.update({k: v for k, v in changes.items() if v is not None})
        await keys.update_api_key(conn, key_id, {"limits": limits or None})
    plan = owner["plan"] if owner is not None else ""
    return LimitsChange(row, plan, previous, limits)
