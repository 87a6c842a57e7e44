"""The secrets' fingerprint: replicas must share `GATEWAYZ_FERNET_KEY` and `GATEWAYZ_HMAC_KEY`
(docs/replicas.md). The first process to start on a database stores a fingerprint of its two
secrets there; a process whose secrets give another fingerprint refuses to start and says why,
instead of answering 401 to every key made elsewhere. The fingerprint is an HMAC under the HMAC
secret of a digest of the Fernet secret: it tells whether secrets match, and nothing about them.
`gatewayz secrets rotate` replaces it with the new secrets' (accounts/secret_rotation.py)."""

from __future__ import annotations

import hashlib
import hmac

from gatewayz.settings import ConfigError
from gatewayz.storage import meta
from gatewayz.storage.db import Database

NAME = "secrets_fingerprint"


def fingerprint(fernet_key: bytes, hmac_key: bytes) -> str:
    digest = hashlib.sha256(b"gatewayz-fernet|" + fernet_key).digest()
    return hmac.new(hmac_key, b"gatewayz-secrets-v1|" + digest, hashlib.sha256).hexdigest()


async def check_secrets(db: Database, secrets: tuple[bytes, bytes]) -> None:
    """Store this deployment's fingerprint if none is stored; ConfigError if it differs."""
    mine = fingerprint(*secrets)
    async with db.begin() as conn:
        stored = await meta.claim(conn, NAME, mine)
    if not hmac.compare_digest(stored, mine):
        raise ConfigError(
            "GATEWAYZ_FERNET_KEY and GATEWAYZ_HMAC_KEY are not the secrets this database was "
            "set up with (their fingerprints differ): every replica must use the same two "
            "secrets (docs/replicas.md). A process without them generates its own into "
            "DATA_DIR/secrets.toml: set both explicitly, to the values the other replicas use."
        )
