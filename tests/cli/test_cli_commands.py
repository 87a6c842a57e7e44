"""`gatewayz db|users|keys` through the real command tree, on both backends."""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import select
from typer.testing import CliRunner

from gatewayz.accounts.provisioning import provision_user, trial_offer
from gatewayz.billing.plans import load_plans
from gatewayz.cli.main import app
from gatewayz.money import usd_to_nanos
from gatewayz.ratelimit.limits import effective_limits
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.storage.db import Database, alembic_config, upgrade
from gatewayz.storage.keys import find_key, list_user_keys
from gatewayz.storage.tables import credit_transactions
from gatewayz.storage.users import get_user_by_email, user_balance_nanos

KEY_RE = re.compile(r"^gw_test_[A-Za-z0-9_-]{43,}$")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str) -> str:
    """A clean GATEWAYZ_* environment: a fresh data dir, env=test, the backend under test."""
    for name in list(os.environ):
        if name.startswith("GATEWAYZ_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAYZ_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GATEWAYZ_ENV", "test")
    monkeypatch.setenv("GATEWAYZ_DATABASE_URL", db_url)
    return db_url


async def _lookup(email: str, key: str) -> tuple[dict | None, dict | None, int]:
    settings = Settings.from_env()
    ring = KeyRing(*settings.secrets)
    db = Database(settings.resolved_database_url)
    try:
        async with db.begin() as conn:
            user = await get_user_by_email(conn, email)
            found = await find_key(conn, ring.hash(key))
            balance = await user_balance_nanos(conn, user["id"]) if user else -1
    finally:
        await db.dispose()
    return user, found, balance


def test_db_upgrade_is_repeatable(runner: CliRunner, cli_env: str) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        assert result.stdout.strip() == f"database at revision {head}"


def test_users_create_json_then_keys_create(runner: CliRunner, cli_env: str) -> None:
    result = runner.invoke(
        app,
        ["users", "create", "--email", "Ops@Example.com", "--role", "admin", "--credits", "12.5"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") > 1  # human output on a fresh database (no upgrade first)
    result = runner.invoke(
        app, ["users", "create", "--email", "dev@example.com", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    created = json.loads(lines[0])
    assert set(created) == {"user_id", "api_key"}
    assert created["user_id"].startswith("usr_")
    assert KEY_RE.match(created["api_key"])

    user, found, balance = asyncio.run(_lookup("dev@example.com", created["api_key"]))
    assert user is not None and user["id"] == created["user_id"] and user["role"] == "free"
    assert found is not None and found["user_id"] == created["user_id"] and found["is_active"]
    trial_nanos = usd_to_nanos(load_plans().trial.credits_usd)  # both are on the trial plan
    assert balance == trial_nanos
    admin, _, admin_balance = asyncio.run(_lookup("ops@example.com", created["api_key"]))
    assert admin is not None and admin["role"] == "admin"
    assert admin_balance == trial_nanos + 12_500_000_000

    result = runner.invoke(
        app, ["keys", "create", "--email", "DEV@example.com", "--name", "ci", "--json"]
    )
    assert result.exit_code == 0, result.output
    [line] = result.stdout.splitlines()
    issued = json.loads(line)
    assert set(issued) == {"user_id", "api_key_id", "api_key"}
    assert issued["user_id"] == created["user_id"]
    assert issued["api_key_id"].startswith("key_")
    assert KEY_RE.match(issued["api_key"]) and issued["api_key"] != created["api_key"]
    _, found, _ = asyncio.run(_lookup("dev@example.com", issued["api_key"]))
    assert found is not None and found["api_key_id"] == issued["api_key_id"]


def test_human_output_shows_the_key_once(runner: CliRunner, cli_env: str) -> None:
    result = runner.invoke(app, ["users", "create", "--email", "h@example.com", "--credits", "3"])
    assert result.exit_code == 0, result.output
    assert re.search(r"api_key:\s+gw_test_\S{43,}", result.stdout)
    assert "$8.00" in result.stdout  # the trial's $5 and the $3 given
    result = runner.invoke(app, ["keys", "create", "--email", "h@example.com"])
    assert result.exit_code == 0, result.output
    assert re.search(r"api_key:\s+gw_test_\S{43,}", result.stdout)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "create", "--email", "x@example.com", "--role", "root"], "unknown role"),
        (["users", "create", "--email", "x@example.com", "--credits", "abc"], "USD amount"),
        (["users", "create", "--email", "x@example.com", "--credits", "-5"], "non-negative"),
        (["users", "create", "--email", "nope"], "invalid email"),
        (["keys", "create", "--email", "ghost@example.com"], "no user"),
    ],
)
def test_errors_exit_1_without_traceback(
    runner: CliRunner, cli_env: str, args: list[str], message: str
) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_duplicate_email_exits_1(runner: CliRunner, cli_env: str) -> None:
    first = runner.invoke(app, ["users", "create", "--email", "twice@example.com", "--json"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(app, ["users", "create", "--email", "TWICE@example.com", "--json"])
    assert again.exit_code == 1
    assert again.stdout == ""
    assert "already exists" in again.stderr
    assert "Traceback" not in again.output


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_unknown_setting_is_a_clean_error(
    runner: CliRunner, cli_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GATEWAYZ_DATABSE_URL", "typo")
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "GATEWAYZ_DATABSE_URL" in result.stderr
    assert "Traceback" not in result.output


def test_users_grant_adds_and_adjusts_credits_through_the_ledger(
    runner: CliRunner, cli_env: str
) -> None:
    made = runner.invoke(app, ["users", "create", "--email", "g@example.com", "--credits", "1"])
    assert made.exit_code == 0, made.output  # $1 on top of the trial's $5
    added = runner.invoke(app, ["users", "grant", "--email", "g@example.com", "--usd", "2.50"])
    assert added.exit_code == 0, added.output
    assert "balance $8.50" in added.stdout
    removed = runner.invoke(
        app, ["users", "grant", "--email", "g@example.com", "--usd", "-0.5", "--type", "adjustment"]
    )
    assert removed.exit_code == 0, removed.output
    assert "balance $8.00" in removed.stdout
    for args, message in [
        (["--usd", "-1"], "only --type adjustment"),
        (["--usd", "0"], "must not be zero"),
        (["--usd", "-100", "--type", "adjustment"], "cannot apply"),
        (["--usd", "1", "--type", "refund"], "--type must be"),
    ]:
        result = runner.invoke(app, ["users", "grant", "--email", "g@example.com", *args])
        assert result.exit_code == 1 and message in result.stderr, (args, result.output)
    ghost = runner.invoke(app, ["users", "grant", "--email", "ghost@example.com", "--usd", "1"])
    assert ghost.exit_code == 1 and "no user" in ghost.stderr


def test_cli_keys_may_have_limits_above_the_plan(runner: CliRunner, cli_env: str) -> None:
    """The CLI is an operator's tool: its limits are an administrator's grant (`limits.rpm`,
    ...), which the plan does not cap (a user's own `rpm_limit` only lowers)."""
    trial = load_plans().tier("trial")
    rpm, tpd = trial.rpm * 10, trial.tokens_per_day * 10
    made = runner.invoke(
        app,
        ["users", "create", "--email", "big@example.com", "--rpm-limit", str(rpm), "--json"],
    )
    assert made.exit_code == 0, made.output
    more = runner.invoke(
        app,
        ["keys", "create", "--email", "big@example.com", "--tokens-per-day", str(tpd), "--json"],
    )
    assert more.exit_code == 0, more.output
    for created, stored in ((made, {"rpm": rpm}), (more, {"tokens_per_day": tpd})):
        user, found, _ = asyncio.run(
            _lookup("big@example.com", json.loads(created.stdout)["api_key"])
        )
        assert user is not None and user["plan"] == "trial"
        assert found is not None and found["limits"] == stored
        effective = effective_limits(load_plans(), user["plan"], found["limits"])
        assert (effective.rpm, effective.tokens_per_day) == (
            stored.get("rpm", trial.rpm),
            stored.get("tokens_per_day", trial.tokens_per_day),
        )


async def _account(email: str) -> tuple[dict[str, Any], list[tuple[str, int]], list[str]]:
    """(user row, its ledger rows as (type, amount in nanos), its keys' names)."""
    db = Database(Settings.from_env().resolved_database_url)
    try:
        async with db.begin() as conn:
            user = await get_user_by_email(conn, email)
            assert user is not None
            rows = await conn.execute(
                select(credit_transactions.c.type, credit_transactions.c.amount_nanos)
                .where(credit_transactions.c.user_id == user["id"])
                .order_by(credit_transactions.c.id)
            )
            keys = await list_user_keys(conn, user["id"])
    finally:
        await db.dispose()
    return user, [(r.type, r.amount_nanos) for r in rows], [k["name"] for k in keys]


def test_users_create_provisions_the_same_trial_as_registration(
    runner: CliRunner, cli_env: str
) -> None:
    """`users create` (trial by default) gives what `POST /auth/register` gives: the trial's
    credit as a ledger row, its end, its tier, a primary key; `--credits` adds on top."""
    terms = load_plans().trial
    trial_nanos = usd_to_nanos(terms.credits_usd)

    async def register(email: str) -> None:  # what POST /auth/register runs
        settings = Settings.from_env()
        await upgrade(settings.resolved_database_url)
        db = Database(settings.resolved_database_url)
        try:
            async with db.begin() as conn:
                offer = await trial_offer(conn)
                await provision_user(
                    conn, KeyRing(*settings.secrets), email=email, env="test", offer=offer
                )
        finally:
            await db.dispose()

    asyncio.run(register("web@example.com"))
    made = runner.invoke(app, ["users", "create", "--email", "cli@example.com"])
    assert made.exit_code == 0, made.output
    topped = runner.invoke(
        app, ["users", "create", "--email", "top@example.com", "--credits", "2.5"]
    )
    assert topped.exit_code == 0, topped.output
    assert "$7.50" in topped.stdout and "trial ends" in topped.stdout

    web, web_ledger, web_keys = asyncio.run(_account("web@example.com"))
    for email, extra in (("cli@example.com", []), ("top@example.com", [("grant", 2_500_000_000)])):
        user, ledger_rows, keys = asyncio.run(_account(email))
        for field in ("plan", "tier", "role"):
            assert user[field] == web[field], (email, field)
        assert user["credits_nanos"] == web["credits_nanos"] + sum(n for _, n in extra)
        assert user["plan"] == terms.plan and user["tier"] == terms.tier_label
        assert user["trial_ends_at"] - user["created_at"] == timedelta(days=terms.days)
        assert web["trial_ends_at"] - web["created_at"] == timedelta(days=terms.days)
        assert web_ledger == [("grant", trial_nanos)]
        assert ledger_rows == [*web_ledger, *extra]
        assert keys == web_keys == ["primary"]
