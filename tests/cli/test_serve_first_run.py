"""`gatewayz serve`'s first run on a database shared by replicas that start together: one of
them creates the admin account, the others start without failing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from gatewayz.cli.serve import ADMIN_EMAIL, _prepare
from gatewayz.settings import Settings
from gatewayz.storage.db import Database
from gatewayz.storage.tables import users


async def test_replicas_preparing_one_empty_database_together_make_one_admin(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(data_dir=tmp_path, database_url=postgres_url, fernet_key=None)
    await asyncio.gather(*(_prepare(settings, "127.0.0.1", 8000) for _ in range(4)))
    db = Database(postgres_url)
    try:
        async with db.begin() as conn:
            count = await conn.scalar(
                select(func.count()).select_from(users).where(users.c.email == ADMIN_EMAIL)
            )
    finally:
        await db.dispose()
    assert count == 1
