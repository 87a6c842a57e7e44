"""`gatewayz users list|show|set-role|set-plan` and `gatewayz keys list|revoke|rotate` through the
real command tree, on both backends: their output (`--json` parsed), their refusals, what they
change in the database and the audit events they record."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select, update

from gatewayz.billing.plans import load_plans
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.storage.db import Database
from gatewayz.storage.keys import find_key
from gatewayz.storage.tables import credit_transactions, users
from tests.cli.conftest import Invoke, audit_events, ok_json, refused

pytestmark = pytest.mark.usefixtures("on_db")
LONG = "d" * 1001


def _create(gz: Invoke, email: str, *extra: str) -> dict[str, Any]:
    made: dict[str, Any] = ok_json(gz("users", "create", "--email", email, "--json", *extra))
    return made


async def _db(work: Any) -> Any:
    db = Database(Settings.from_env().resolved_database_url)
    try:
        async with db.begin() as conn:
            return await work(conn)
    finally:
        await db.dispose()


def _key_row(key: str) -> dict[str, Any] | None:
    ring = KeyRing(*Settings.from_env().secrets)

    async def work(conn: Any) -> dict[str, Any] | None:
        return await find_key(conn, ring.hash(key))

    found: dict[str, Any] | None = asyncio.run(_db(work))
    return found


def _user_row(email: str) -> dict[str, Any]:
    async def work(conn: Any) -> dict[str, Any]:
        row = (await conn.execute(select(users).where(users.c.email == email))).mappings().one()
        return dict(row)

    row: dict[str, Any] = asyncio.run(_db(work))
    return row


def test_users_list_and_show(gz: Invoke) -> None:
    refused(gz("users", "list"), "no database yet")  # a look creates nothing
    first = _create(gz, "one@example.com", "--credits", "2.5")
    _create(gz, "two@example.com", "--plan", "team", "--role", "dev")

    listed = ok_json(gz("users", "list", "--json"))
    assert listed["total"] == 2 and [u["email"] for u in listed["data"]] == [
        "one@example.com",
        "two@example.com",
    ]
    assert listed["data"][1] | {"id": "", "created_at": ""} == {
        "id": "",
        "email": "two@example.com",
        "role": "dev",
        "plan": "team",
        "is_active": True,
        "created_at": "",
    }
    page = ok_json(gz("users", "list", "--limit", "1", "--offset", "1", "--json"))
    assert [u["email"] for u in page["data"]] == ["two@example.com"] and page["total"] == 2
    text = gz("users", "list")
    assert (
        text.exit_code == 0 and "one@example.com" in text.stdout and "2 shown of 2" in text.stdout
    )

    shown = ok_json(gz("users", "show", "ONE@example.com", "--json"))
    trial = load_plans().trial
    assert shown["id"] == first["user_id"]
    assert (shown["role"], shown["plan"], shown["tier"]) == ("free", "trial", trial.tier_label)
    assert shown["balance_usd"] == {
        "allowance": "0",
        "purchased": "7.5",  # the trial's $5 and the $2.50 given
        "held": "0",
        "available": "7.5",
        "total": "7.5",
    }
    assert shown["keys"] == {"active": 1, "revoked": 0}
    assert shown["created_at"] and shown["trial_ends_at"]
    assert ok_json(gz("users", "show", first["user_id"], "--json")) == shown
    text = gz("users", "show", first["user_id"])
    assert text.exit_code == 0
    assert "available:   $7.5" in text.stdout and "keys:        1 active" in text.stdout


def test_users_grant_json(gz: Invoke) -> None:
    made = _create(gz, "g@example.com")
    out = ok_json(gz("users", "grant", "--email", "g@example.com", "--usd", "1.25", "--json"))
    assert out == {"user_id": made["user_id"], "balance_usd": "6.25"}  # the trial's $5 too


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["users", "grant", "--email", "u@example.com", "--usd", "1", "--description", LONG],
            "at most 1000 characters",
        ),
        (["users", "show", "ghost@example.com"], "no user with email ghost@example.com"),
        (["users", "show", "usr_0123456789abcdef0123456789abcdef"], "no user with id"),
        (["users", "show", "usr_bad id"], "invalid user id"),
        (["users", "show", "not-an-email"], "neither a user id"),
        (["users", "set-role", "ghost@example.com", "team"], "no user with email"),
        (["users", "set-role", "u@example.com", "root"], "unknown role 'root'"),
        (["users", "set-plan", "u@example.com", "gold"], "unknown plan 'gold'"),
        (["users", "set-plan", "ghost@example.com", "dev"], "no user with email"),
        (["keys", "list", "--email", "ghost@example.com"], "no user with email"),
        (["keys", "revoke", "key_0123456789abcdef0123456789abcdef"], "no API key with id"),
        (["keys", "revoke", "1; drop table api_keys"], "invalid key id"),
        (["keys", "rotate", "key_0123456789abcdef0123456789abcdef"], "no API key with id"),
        (["keys", "rotate", "x" * 5000], "invalid key id"),
    ],
)
def test_bad_input_is_refused(gz: Invoke, args: list[str], message: str) -> None:
    _create(gz, "u@example.com")
    refused(gz(*args), message)


@pytest.mark.parametrize("args", [["--limit", "0"], ["--limit", "100000"], ["--offset", "-1"]])
def test_listing_bounds(gz: Invoke, args: list[str]) -> None:
    result = gz("users", "list", *args)
    assert result.exit_code != 0 and "Invalid value" in result.stderr


def test_set_role_is_audited_like_the_admin_api(gz: Invoke) -> None:
    made = _create(gz, "r@example.com")
    result = gz("users", "set-role", "R@example.com", "team")
    assert result.exit_code == 0, result.output
    assert "r@example.com: role free → team" in result.stdout
    assert _user_row("r@example.com")["role"] == "team"
    [event] = audit_events("role_changed")
    assert event["user_id"] == made["user_id"] and event["severity"] == "warning"
    assert event["detail"]["from"] == "free" and event["detail"]["to"] == "team"
    assert event["detail"]["via"] == "cli"
    assert _key_row(made["api_key"])["role"] == "team"  # what authentication reads
    out = ok_json(gz("users", "set-role", made["user_id"], "admin", "--json"))
    assert out == {"id": made["user_id"], "role": "admin", "previous_role": "team"}
    assert [e["detail"]["to"] for e in audit_events("role_changed")] == ["team", "admin"]


def test_set_plan_starts_the_plans_allowance_and_is_audited(gz: Invoke) -> None:
    made = _create(gz, "p@example.com", "--credits", "1")
    result = gz("users", "set-plan", made["user_id"], "dev")
    assert result.exit_code == 0, result.output
    assert "plan trial → dev" in result.stdout
    shown = ok_json(gz("users", "show", "p@example.com", "--json"))
    dev = load_plans().tier("dev")
    assert shown["plan"] == "dev"
    assert shown["balance_usd"]["allowance"] == str(dev.monthly_allowance_usd)
    assert shown["balance_usd"]["purchased"] == "6"  # purchased credits stay
    [event] = audit_events("plan_changed")
    assert event["user_id"] == made["user_id"]
    assert (event["detail"]["from"], event["detail"]["to"]) == ("trial", "dev")

    async def ledger(conn: Any) -> list[str]:
        rows = await conn.execute(
            select(credit_transactions.c.type).where(
                credit_transactions.c.user_id == made["user_id"]
            )
        )
        return list(rows.scalars())

    assert asyncio.run(_db(ledger))[-1] == "reset"  # the allowance through the ledger
    again = gz("users", "set-plan", "p@example.com", "dev")
    assert again.exit_code == 0 and "already on plan dev" in again.stdout
    same = ok_json(gz("users", "set-plan", "p@example.com", "dev", "--json"))
    assert (same["changed"], same["previous_plan"], same["balance_usd"]) == (False, "dev", None)
    assert len(audit_events("plan_changed")) == 1
    moved = ok_json(gz("users", "set-plan", "p@example.com", "enterprise", "--json"))
    assert (moved["changed"], moved["previous_plan"], moved["plan"]) == (True, "dev", "enterprise")
    assert moved["balance_usd"]["allowance"] == "0" and moved["balance_usd"]["purchased"] == "6"

    async def subscribe(conn: Any) -> None:
        await conn.execute(
            update(users)
            .where(users.c.id == made["user_id"])
            .values(stripe_subscription_id="sub_123")
        )

    asyncio.run(_db(subscribe))
    refused(gz("users", "set-plan", "p@example.com", "team"), "Stripe subscription")


def test_keys_list_revoke_rotate(gz: Invoke) -> None:
    made = _create(gz, "k@example.com")
    issued = ok_json(gz("keys", "create", "--email", "k@example.com", "--name", "ci", "--json"))
    key_id = issued["api_key_id"]

    listed = gz("keys", "list", "--email", "k@example.com", "--json")
    data = ok_json(listed)
    assert data["user_id"] == made["user_id"]
    assert [k["name"] for k in data["data"]] == ["primary", "ci"]
    for k in data["data"]:
        assert set(k) == {
            "id",
            "name",
            "prefix",
            "environment",
            "primary",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
        }
        assert k["revoked_at"] is None and k["environment"] == "test"
    assert data["data"][1]["id"] == key_id and issued["api_key"].startswith(
        data["data"][1]["prefix"]
    )
    for secret in (made["api_key"], issued["api_key"]):  # nor any long part of one
        assert secret not in listed.stdout and secret[-20:] not in listed.stdout
    assert _key_row(issued["api_key"])["key_hash"] not in listed.stdout

    rotated = gz("keys", "rotate", key_id, "--json")
    new = ok_json(rotated)
    assert new["api_key_id"] == key_id and new["api_key"] != issued["api_key"]
    assert _key_row(issued["api_key"]) is None  # the old secret finds nothing
    found = _key_row(new["api_key"])
    assert found is not None and found["api_key_id"] == key_id and found["is_active"]
    [event] = audit_events("key_rotated")
    assert (event["api_key_id"], event["user_id"]) == (key_id, made["user_id"])

    revoked = gz("keys", "revoke", key_id)
    assert revoked.exit_code == 0, revoked.output
    assert f"revoked {key_id}" in revoked.stdout
    found = _key_row(new["api_key"])
    assert found is not None and not found["is_active"]
    [event] = audit_events("key_revoked")
    assert (event["api_key_id"], event["detail"]["name"]) == (key_id, "ci")
    refused(gz("keys", "revoke", key_id), "revoked already")
    refused(gz("keys", "rotate", key_id), "revoked already")

    after = ok_json(gz("keys", "list", "--email", made["user_id"], "--json"))["data"]
    assert [k["revoked_at"] is not None for k in after] == [False, True]
    text = gz("keys", "list", "--email", "k@example.com")
    assert (
        text.exit_code == 0 and key_id in text.stdout and "2 keys of k@example.com" in text.stdout
    )
    shown = ok_json(gz("users", "show", "k@example.com", "--json"))
    assert shown["keys"] == {"active": 1, "revoked": 1}


def test_rotate_prints_the_new_key_once(gz: Invoke) -> None:
    made = _create(gz, "once@example.com")
    key_id = ok_json(gz("keys", "list", "--email", "once@example.com", "--json"))["data"][0]["id"]
    result = gz("keys", "rotate", key_id)
    assert result.exit_code == 0, result.output
    [line] = [x for x in result.stdout.splitlines() if x.startswith("api_key:")]
    key = line.split()[1]
    assert key != made["api_key"] and result.stdout.count(key) == 1
    assert json.dumps(key) not in result.stderr
    found = _key_row(key)
    assert found is not None and found["is_active"]
    out = ok_json(gz("keys", "revoke", key_id, "--json"))
    assert out == {"id": key_id, "user_id": made["user_id"], "revoked": True}
    assert not _key_row(key)["is_active"]
