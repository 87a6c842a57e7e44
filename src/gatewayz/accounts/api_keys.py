"""Issuing API keys: a new key's plaintext is made by the deployment's key ring and returned
once; the database gets only what `storage.keys.StoredKey` holds (hash, encrypted token, the
parts that may be shown)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gatewayz.security.keys import KeyRing, display_prefix, last_four
from gatewayz.storage import keys
from gatewayz.storage.db import DbConnection


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
