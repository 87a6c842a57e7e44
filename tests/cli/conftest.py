"""Fixtures of the operator-command tests: a clean environment (no GATEWAYZ_*, no provider key)
and the real command tree run in this process (Typer's runner, stdout and stderr apart)."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from gatewayz.cli.main import app
from gatewayz.settings import Settings
from gatewayz.storage.db import Database
from gatewayz.storage.tables import audit_logs
from tests.deploy.helpers import provider_env_vars

Invoke = Callable[..., Result]


@pytest.fixture
def op_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No GATEWAYZ_* or provider variable; a fresh data dir; env=test."""
    scrub = provider_env_vars()
    for name in list(os.environ):
        if name.startswith("GATEWAYZ_") or name in scrub:
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAYZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAYZ_ENV", "test")
    return monkeypatch


@pytest.fixture
def gz(op_env: pytest.MonkeyPatch) -> Invoke:
    """`gz(*args)`: run `gatewayz args` (exceptions are failures, not exit codes)."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def on_db(op_env: pytest.MonkeyPatch, db_url: str) -> str:
    """The backend under test (SQLite and PostgreSQL) as the commands' database."""
    op_env.setenv("GATEWAYZ_DATABASE_URL", db_url)
    return db_url


def ok_json(result: Result) -> Any:
    """The JSON a successful command printed (one document on stdout)."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def refused(result: Result, message: str) -> None:
    """A clean failure: exit code not 0, the message on stderr, no traceback, nothing on stdout."""
    assert result.exit_code != 0, result.output
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.output
    assert result.stdout == ""


def audit_events(event: str) -> list[dict[str, Any]]:
    """The audit rows of one event, oldest first, in the commands' database."""

    async def read() -> list[dict[str, Any]]:
        db = Database(Settings.from_env().resolved_database_url)
        try:
            async with db.begin() as conn:
                query = select(audit_logs).where(audit_logs.c.event == event)
                rows = await conn.execute(query.order_by(audit_logs.c.id))
                return [dict(r) for r in rows.mappings()]
        finally:
            await db.dispose()

    return asyncio.run(read())
