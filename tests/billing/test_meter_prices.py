"""The meter's price book: admin overrides re-read from the database; a slow re-read that
started earlier never overwrites a newer one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gatewayz.billing import meter as meter_module
from gatewayz.billing.meter import Meter
from gatewayz.settings import Settings
from gatewayz.storage.db import Database, upgrade


async def test_an_older_slow_reload_never_overwrites_a_newer_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}"
    await upgrade(url)
    db = Database(url)
    meter = Meter(db, Settings(data_dir=tmp_path))
    first_may_finish = asyncio.Event()
    answers = [
        [{"model": "m/x", "provider": None, "prompt": "1", "completion": "1"}],  # stale
        [{"model": "m/x", "provider": None, "prompt": "9", "completion": "9"}],  # newer
    ]

    async def list_rows(_conn: Any) -> list[dict[str, Any]]:
        rows = answers.pop(0)
        if rows[0]["prompt"] == "1":
            await first_may_finish.wait()
        return rows

    monkeypatch.setattr(meter_module.price_overrides, "list_rows", list_rows)
    try:
        slow = asyncio.create_task(meter.reload_prices())
        await asyncio.sleep(0.01)
        await meter.reload_prices()  # the admin's write, read after it committed
        first_may_finish.set()
        await slow
        assert str(meter.book.lookup("m/x").price.prompt) == "9"
    finally:
        await meter.close()
        await db.dispose()
