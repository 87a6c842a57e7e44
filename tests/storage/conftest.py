"""A migrated database on each backend, a key ring with fresh secrets, and (for the query cache
behind a real gateway) a simulator upstream per module."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest
from cryptography.fernet import Fernet

from gatewayz.security.keys import KeyRing
from gatewayz.simulators import Simulator
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


@pytest.fixture(scope="module")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()
