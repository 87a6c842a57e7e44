"""Re-keying what is stored under the deployment's secrets (accounts/secret_rotation.py): every
API key's Fernet token and HMAC lookup hash, every webhook signing secret's Fernet token."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.tables import api_keys
from gatewayz.storage.webhook_tables import webhook_endpoints


async def rekey_api_keys(conn: AsyncConnection, rekey: Callable[[str], tuple[str, str]]) -> int:
    """`rekey(encrypted_key) -> (new encrypted_key, new key_hash)` on every key; how many."""
    rows = (await conn.execute(select(api_keys.c.id, api_keys.c.encrypted_key))).all()
    for key_id, token in rows:
        encrypted, key_hash = rekey(token)
        await conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id)
            .values(encrypted_key=encrypted, key_hash=key_hash)
        )
    return len(rows)


async def rekey_webhook_secrets(conn: AsyncConnection, rekey: Callable[[str], str]) -> int:
    """`rekey(secret_enc) -> new secret_enc` on every webhook endpoint; how many."""
    table = webhook_endpoints
    rows = (await conn.execute(select(table.c.id, table.c.secret_enc))).all()
    for hook_id, token in rows:
        await conn.execute(
            update(table).where(table.c.id == hook_id).values(secret_enc=rekey(token))
        )
    return len(rows)
