"""Rotating the deployment's two secrets without losing a key: every API key is decrypted with
the old Fernet secret and stored again under the new ones (a new Fernet token, a new HMAC
lookup hash), every webhook signing secret re-encrypted, and the secrets' fingerprint replaced
(security/fingerprint.py) — in one transaction, so a failure changes nothing. Processes still
running with the old secrets stop finding keys at the commit: restart every replica with the
new secrets right after (docs/replicas.md)."""

from __future__ import annotations

from dataclasses import dataclass

from gatewayz.security.fingerprint import NAME, fingerprint
from gatewayz.security.keys import KeyRing
from gatewayz.storage import meta
from gatewayz.storage.db import DbConnection
from gatewayz.storage.rekey import rekey_api_keys, rekey_webhook_secrets


@dataclass(frozen=True)
class Rotated:
    api_keys: int
    webhook_secrets: int


async def rotate_secrets(
    conn: DbConnection, old: KeyRing, new: KeyRing, new_secrets: tuple[bytes, bytes]
) -> Rotated:
    """Re-key everything stored under `old` to `new` (ValueError, nothing changed, when a row
    was not made with `old`: the old secrets given are not this database's)."""

    def rekey_key(token: str) -> tuple[str, str]:
        plain = old.decrypt(token)
        return new.encrypt(plain), new.hash(plain)

    keys = await rekey_api_keys(conn, rekey_key)
    hooks = await rekey_webhook_secrets(conn, lambda token: new.encrypt(old.decrypt(token)))
    await meta.replace(conn, NAME, fingerprint(*new_secrets))
    return Rotated(keys, hooks)
