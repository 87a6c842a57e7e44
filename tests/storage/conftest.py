"""A migrated database on each backend, and a key ring with fresh secrets."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from cryptography.fernet import Fernet

from gatewayz.security.keys import KeyRing
from gatewayz.storage.db import Database, upgrade


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade(db_url)
    database = Database(db_url, pool_size=2, max_overflow=0)
    yield database
    await database.dispose()


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing(Fernet.generate_key(), secrets.token_bytes(32))
