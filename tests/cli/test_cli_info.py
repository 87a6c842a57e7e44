"""`gatewayz --version`, `gatewayz plans list` and `gatewayz db current`."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from gatewayz import __version__
from gatewayz.billing.plans import load_plans
from gatewayz.settings import Settings
from gatewayz.storage.db import Database, alembic_config
from tests.cli.conftest import Invoke, ok_json, refused
from tests.deploy.helpers import clean_env, run_cli


def test_version(gz: Invoke, tmp_path: Path) -> None:
    result = gz("--version")
    assert result.exit_code == 0 and result.stdout == f"gatewayz {__version__}\n"
    installed = run_cli(["--version"], clean_env(), tmp_path)  # the `gatewayz` script
    assert installed.returncode == 0 and installed.stdout == f"gatewayz {__version__}\n"


def test_plans_list(gz: Invoke) -> None:
    plans = load_plans()
    rows = ok_json(gz("plans", "list", "--json"))
    assert [r["plan"] for r in rows] == list(plans.tiers)
    dev = next(r for r in rows if r["plan"] == "dev")
    tier = plans.tier("dev")
    assert (dev["rpm"], dev["tokens_per_day"], dev["tokens_per_month"]) == (
        tier.rpm,
        tier.tokens_per_day,
        tier.tokens_per_month,
    )
    assert dev["monthly_allowance_usd"] == str(tier.monthly_allowance_usd)
    assert dev["self_serve"] is True and dev["trial"] is None
    trial = next(r for r in rows if r["plan"] == plans.trial.plan)
    assert trial["trial"]["days"] == plans.trial.days
    text_out = gz("plans", "list")
    assert text_out.exit_code == 0
    for slug in plans.tiers:
        assert f"\n{slug} " in text_out.stdout


def _set_revision(revision: str) -> None:
    async def work() -> None:
        db = Database(Settings.from_env().resolved_database_url)
        try:
            async with db.begin() as conn:
                await conn.execute(
                    text("UPDATE alembic_version SET version_num = :r"), {"r": revision}
                )
        finally:
            await db.dispose()

    asyncio.run(work())


@pytest.mark.usefixtures("on_db")
def test_db_current(gz: Invoke, db_url: str, tmp_path: Path) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_current_head()
    assert head is not None
    empty = gz("db", "current", "--json")
    assert empty.exit_code == 1 and "never migrated" in empty.stderr
    assert json.loads(empty.stdout) == {"current": None, "head": head, "status": "empty"}
    assert not (tmp_path / "data" / "gatewayz.db").exists()  # looking creates nothing

    assert ok_json(gz("db", "upgrade", "--json")) == {"revision": head}
    assert ok_json(gz("db", "current", "--json")) == {
        "current": head,
        "head": head,
        "status": "current",
    }
    human = gz("db", "current")
    assert human.exit_code == 0 and f"head      {head}" in human.stdout

    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str)
    _set_revision(previous)
    behind = gz("db", "current", "--json")
    assert behind.exit_code == 1 and "behind" in behind.stderr
    assert json.loads(behind.stdout)["status"] == "behind"
    refused(gz("users", "list"), "not " + head)  # reads refuse a database not at head

    _set_revision("ffff_from_the_future")
    future = gz("db", "current")
    assert future.exit_code == 1 and "unknown to gatewayz" in future.stderr
