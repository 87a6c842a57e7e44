"""Repository queries on both backends: users, keys, credits, request logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.security.keys import KeyRing
from gatewayz.storage import logs
from gatewayz.storage.db import Database
from gatewayz.storage.keys import find_key
from gatewayz.storage.tables import api_keys, credit_transactions, request_logs, users
from gatewayz.storage.users import (
    count_users,
    create_user,
    get_user,
    get_user_by_email,
    user_balance_nanos,
)


async def _user_with_key(db: Database, keyring: KeyRing, **user: Any) -> tuple[dict, dict, str]:
    async with db.begin() as conn:
        row = await create_user(conn, user.pop("email", "ada@example.com"), **user)
        key_row, key = await create_api_key(conn, keyring, row["id"], "live", is_primary=True)
    return row, key_row, key


async def test_create_user_and_key_then_find_key(db: Database, keyring: KeyRing) -> None:
    user, key_row, key = await _user_with_key(
        db, keyring, email="  Ada@Example.COM ", role="team", plan="pro"
    )
    assert user["id"].startswith("usr_") and len(user["id"]) <= 40
    assert user["email"] == "ada@example.com"
    assert key_row["id"].startswith("key_")
    assert "encrypted_key" not in key_row
    assert key_row["prefix"] == key[: len("gw_live_") + 4]
    assert key_row["last_four"] == key[-4:]
    assert key_row["key_hash"] == keyring.hash(key)
    async with db.begin() as conn:
        found = await find_key(conn, keyring.hash(key))
        assert await count_users(conn) == 1
        by_email = await get_user_by_email(conn, "ADA@example.com")
        by_id = await get_user(conn, user["id"])
    assert found == {
        "api_key_id": key_row["id"],
        "user_id": user["id"],
        "env": "live",
        "is_active": True,
        "role": "team",
        "plan": "pro",
        "key_hash": keyring.hash(key),
        "scopes": None,
        "ip_allowlist": None,
        "domain_allowlist": None,
        "limits": None,
        "provider_preferences": None,
        "cache_policy": None,
        "expires_at": None,
    }
    assert by_email is not None and by_email["id"] == user["id"]
    assert by_id == by_email
    created = by_email["created_at"]
    assert created.tzinfo is not None and created.utcoffset() == timedelta(0)
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=1)


async def test_find_key_unknown_hash(db: Database, keyring: KeyRing) -> None:
    await _user_with_key(db, keyring)
    async with db.begin() as conn:
        assert await find_key(conn, keyring.hash(keyring.generate("live"))) is None


async def test_key_restrictions_roundtrip(db: Database, keyring: KeyRing) -> None:
    expires = datetime(2999, 1, 1, 12, 0, tzinfo=UTC)
    async with db.begin() as conn:
        user = await create_user(conn, "r@example.com")
        _, key = await create_api_key(
            conn,
            keyring,
            user["id"],
            "dev",
            name="ci",
            scopes=["chat", "models"],
            ip_allowlist=["10.0.0.0/8"],
            domain_allowlist=["example.com"],
            limits={"rpm": 60, "tpm": 1000},
            expires_at=expires,
        )
        found = await find_key(conn, keyring.hash(key))
    assert found is not None
    assert found["is_active"] and found["env"] == "dev"
    assert found["scopes"] == ["chat", "models"]
    assert found["ip_allowlist"] == ["10.0.0.0/8"]
    assert found["domain_allowlist"] == ["example.com"]
    assert found["limits"] == {"rpm": 60, "tpm": 1000}
    assert found["expires_at"] == expires


@pytest.mark.parametrize("case", ["key_inactive", "user_inactive", "revoked", "expired"])
async def test_unusable_keys_report_inactive(db: Database, keyring: KeyRing, case: str) -> None:
    user, key_row, key = await _user_with_key(db, keyring)
    past = datetime.now(UTC) - timedelta(seconds=1)
    async with db.begin() as conn:
        if case == "user_inactive":
            await conn.execute(
                update(users).where(users.c.id == user["id"]).values(is_active=False)
            )
        else:
            values = {
                "key_inactive": {"is_active": False},
                "revoked": {"revoked_at": past},
                "expired": {"expires_at": past},
            }[case]
            await conn.execute(
                update(api_keys).where(api_keys.c.id == key_row["id"]).values(values)
            )
    async with db.begin() as conn:
        found = await find_key(conn, keyring.hash(key))
    assert found is not None and found["is_active"] is False


async def test_expiry_is_checked_against_now(db: Database, keyring: KeyRing) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    async with db.begin() as conn:
        user = await create_user(conn, "e@example.com")
        _, key = await create_api_key(conn, keyring, user["id"], "live", expires_at=expires)
        digest = keyring.hash(key)
        assert (await find_key(conn, digest))["is_active"] is True  # type: ignore[index]
        later = await find_key(conn, digest, now=expires + timedelta(seconds=1))
    assert later is not None and later["is_active"] is False


async def test_new_primary_key_demotes_the_old_one(db: Database, keyring: KeyRing) -> None:
    user, first, _ = await _user_with_key(db, keyring)
    async with db.begin() as conn:
        second, _ = await create_api_key(conn, keyring, user["id"], "live", is_primary=True)
        third, _ = await create_api_key(conn, keyring, user["id"], "live", name="extra")
        rows = (await conn.execute(select(api_keys.c.id, api_keys.c.is_primary))).all()
    assert dict(rows) == {first["id"]: False, second["id"]: True, third["id"]: False}


async def test_duplicate_email_is_a_clear_error(db: Database) -> None:
    async with db.begin() as conn:
        await create_user(conn, "dup@example.com")
    with pytest.raises(ValueError, match="already exists"):
        async with db.begin() as conn:
            await create_user(conn, "DUP@example.com ")
    async with db.begin() as conn:
        assert await count_users(conn) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"email": "x@example.com", "role": "root"}, "unknown role"),
        ({"email": "not-an-email"}, "invalid email"),
        ({"email": "a b@example.com"}, "invalid email"),
        ({"email": "x@example.com", "credits_usd": Decimal("-1")}, "negative"),
        ({"email": "x@example.com", "credits_usd": Decimal("0.0000000001")}, "nano"),
    ],
)
async def test_create_user_validation(db: Database, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        async with db.begin() as conn:
            await create_user(conn, **kwargs)


async def test_create_api_key_validation(db: Database, keyring: KeyRing) -> None:
    async with db.begin() as conn:
        user = await create_user(conn, "v@example.com")
        with pytest.raises(ValueError, match="unknown key environment"):
            await create_api_key(conn, keyring, user["id"], "prod")
        with pytest.raises(ValueError, match="unknown user"):
            await create_api_key(conn, keyring, "usr_missing", "live")
        with pytest.raises(ValueError, match="name"):
            await create_api_key(conn, keyring, user["id"], "live", name="")


async def test_starting_credits_grant_row_and_balance(db: Database) -> None:
    async with db.begin() as conn:
        rich = await create_user(conn, "rich@example.com", credits_usd=Decimal("25.123456789"))
        poor = await create_user(conn, "poor@example.com")
    async with db.begin() as conn:
        assert await user_balance_nanos(conn, rich["id"]) == 25_123_456_789
        assert await user_balance_nanos(conn, poor["id"]) == 0
        with pytest.raises(ValueError, match="unknown user"):
            await user_balance_nanos(conn, "usr_missing")
        rows = (await conn.execute(select(credit_transactions))).mappings().all()
    assert len(rows) == 1  # no row for zero credits
    grant = rows[0]
    assert grant["user_id"] == rich["id"]
    assert grant["type"] == "grant"
    assert grant["amount_nanos"] == grant["balance_after_nanos"] == 25_123_456_789
    assert grant["request_id"] is None


async def test_credit_transactions_unique_per_request_and_type(db: Database) -> None:
    async with db.begin() as conn:
        user = await create_user(conn, "c@example.com", credits_usd=Decimal(5))
        await create_user(conn, "d@example.com", credits_usd=Decimal(5))  # 2nd NULL grant
    base = {"user_id": user["id"], "amount_nanos": -10, "balance_after_nanos": 4_999_999_990}
    async with db.begin() as conn:
        await conn.execute(
            insert(credit_transactions), {**base, "type": "usage", "request_id": "r1"}
        )
        await conn.execute(
            insert(credit_transactions),
            {**base, "type": "refund", "request_id": "r1", "amount_nanos": 10},
        )
    with pytest.raises(IntegrityError):
        async with db.begin() as conn:
            await conn.execute(
                insert(credit_transactions), {**base, "type": "usage", "request_id": "r1"}
            )
    async with db.begin() as conn:
        count = (await conn.execute(select(func.count()).select_from(credit_transactions))).scalar()
    assert count == 4


async def test_insert_request_logs(db: Database) -> None:
    full = {
        "request_id": "req_1",
        "user_id": "usr_1",
        "api_key_id": "key_1",
        "endpoint": "/v1/chat/completions",
        "model": "openai/gpt-4o-mini",
        "provider": "openai",
        "native_model": "gpt-4o-mini",
        "stream": True,
        "status_code": 200,
        "prompt_tokens": 12,
        "completion_tokens": 30,
        "total_tokens": 42,
        "usage_estimated": True,
        "latency_ms": 812.5,
        "upstream_ms": 800.25,
        "overhead_ms": 12.25,
        "ttft_ms": 95.0,
    }
    minimal = {"request_id": "req_2", "endpoint": "/v1/models", "model": "-", "status_code": 401}
    batch = [full, minimal, *({**minimal, "request_id": f"req_{i}"} for i in range(3, 103))]
    async with db.begin() as conn:
        await logs.insert_request_logs(conn, batch)
        await logs.insert_request_logs(conn, [])
    async with db.begin() as conn:
        rows = (
            (await conn.execute(select(request_logs).order_by(request_logs.c.id))).mappings().all()
        )
    assert len(rows) == 102
    first, second = dict(rows[0]), dict(rows[1])
    assert {k: first[k] for k in full} == full
    assert first["created_at"].tzinfo is not None
    assert second["user_id"] is None and second["provider"] is None
    assert second["stream"] is False and second["usage_estimated"] is False
    assert (second["prompt_tokens"], second["total_tokens"], second["ttft_ms"]) == (0, 0, None)
    assert second["status_code"] == 401


async def test_insert_request_logs_rejects_bad_rows(db: Database) -> None:
    async with db.begin() as conn:
        with pytest.raises(ValueError, match="unknown request_logs columns: modle"):
            await logs.insert_request_logs(
                conn, [{"request_id": "r", "endpoint": "/", "modle": "m", "status_code": 200}]
            )
        with pytest.raises(ValueError, match="lacks: model"):
            await logs.insert_request_logs(
                conn, [{"request_id": "r", "endpoint": "/", "status_code": 200}]
            )
