"""`gatewayz models sync [--provider P] [--json]` through the real command tree, on both
backends, against providers pointed at the simulator."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatewayz.catalog.offers import load_offers
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import ListFault, lists_of
from gatewayz.storage.db import Database
from tests.catalog.conftest import KEY

runner = CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sim: Simulator) -> str:
    for name in list(os.environ):
        if name.startswith("GATEWAYZ_") or name.endswith("_API_KEY"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAYZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAYZ_ENV", "test")
    monkeypatch.setenv("GATEWAYZ_DATABASE_URL", db_url)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("GATEWAYZ_PROVIDER_OPENAI_BASE_URL", sim.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("GATEWAYZ_PROVIDER_ANTHROPIC_BASE_URL", f"http://127.0.0.1:{sim.port}")
    return db_url


def _invoke(*args: str) -> tuple[int, str]:
    from gatewayz.cli.main import app

    result = runner.invoke(app, ["models", "sync", *args])
    # --json output is stdout alone (log lines go to stderr, with the CLI's error messages).
    out = result.stdout if "--json" in args else result.stdout + result.stderr
    return result.exit_code, out


async def _offers(url: str, provider: str) -> list[str]:
    db = Database(url)
    try:
        async with db.begin() as conn:
            return [o.model_id for o in await load_offers(conn, provider)]
    finally:
        await db.dispose()


def test_models_sync_writes_the_catalog(cli_env: str, sim: Simulator) -> None:
    lists_of(sim).set("openai", ["gpt-4o", "dall-e-3"])
    lists_of(sim).set("anthropic", ["claude-sonnet-4-5"])
    code, out = _invoke("--json")
    assert code == 0, out
    results = {r["provider"]: r for r in json.loads(out)}
    assert results["openai"] == {
        "provider": "openai",
        "status": "ok",
        "models": 1,
        "listed": 2,
        "excluded": {"unpriced": 1},
        "detail": "",
    }
    assert results["anthropic"]["models"] == 1
    assert asyncio.run(_offers(cli_env, "openai")) == ["openai/gpt-4o"]
    code, out = _invoke()
    assert code == 0 and "openai" in out and "1 offers from 2 listed" in out


def test_models_sync_one_provider_and_failures(cli_env: str, sim: Simulator) -> None:
    lists_of(sim).set("openai", ["gpt-4o"])
    code, out = _invoke("--provider", "openai", "--json")
    assert code == 0, out
    assert [r["provider"] for r in json.loads(out)] == ["openai"]
    assert lists_of(sim).calls == {"openai": 1}
    lists_of(sim).fail("openai", ListFault(status=500))
    code, out = _invoke("-p", "openai")
    assert code == 1 and "failed" in out and "HTTP 500" in out
    assert asyncio.run(_offers(cli_env, "openai")) == ["openai/gpt-4o"]  # kept
    code, out = _invoke("--provider", "groq")
    assert code == 1 and "not served" in out
    code, out = _invoke("--provider", "nope")
    assert code == 1 and "unknown provider" in out
