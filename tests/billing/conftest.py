"""`db`: a migrated database on each backend (SQLite, PostgreSQL), for the ledger's tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gatewayz.storage.db import Database, upgrade


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade(db_url)
    database = Database(db_url, pool_size=4, max_overflow=4)
    yield database
    await database.dispose()
