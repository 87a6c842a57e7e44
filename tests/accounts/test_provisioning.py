"""Provisioning new users and Privy logins against SQLite and PostgreSQL (CM-7.1, CM-7.2,
CM-12.3, CM-12.5, CM-12.8, CM-12.9)."""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import func, select

from gatewayz.accounts.privy import Identity, LinkedAccount
from gatewayz.accounts.provisioning import (
    AccountConflict,
    login_or_sign_up,
    provision_user,
    trial_offer,
)
from gatewayz.errors import GatewayError, InvalidRequest, PermissionDenied
from gatewayz.security.keys import KeyRing
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.keys import find_key
from gatewayz.storage.tables import api_keys, credit_transactions, users
from gatewayz.storage.users import count_users, create_user, get_user, user_balance_nanos

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY_FORMAT = re.compile(r"^gw_(live|test|staging|dev)_[A-Za-z0-9_-]{43}$")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    await upgrade(db_url)
    database = Database(db_url, pool_size=2, max_overflow=0)
    yield database
    await database.dispose()


@pytest.fixture
def keyring() -> KeyRing:
    return KeyRing(Fernet.generate_key(), secrets.token_bytes(32))


async def _signup(
    db: Database, keyring: KeyRing, email: str = "new@example.com", **kw: Any
) -> tuple[dict[str, Any], str]:
    partner = kw.pop("partner_code", None)
    async with db.begin() as conn:
        offer = await trial_offer(conn, partner)
        result = await provision_user(
            conn, keyring, email=email, env=kw.pop("env", "live"), offer=offer, now=NOW, **kw
        )
    assert result.is_new_user and result.api_key and result.api_key_id
    return result.user, result.api_key


def _identity(sub: str, *accounts: LinkedAccount) -> Identity:
    return Identity(sub, accounts[0], accounts)


def _email(address: str) -> LinkedAccount:
    return LinkedAccount("email", address, address)


async def test_cm_12_3_new_user_provisioned_with_basic_tier(db: Database, keyring: KeyRing) -> None:
    user, _ = await _signup(db, keyring)
    async with db.begin() as conn:
        stored = await get_user(conn, user["id"])
    assert stored is not None
    assert stored["tier"] == "basic"
    assert stored["plan"] == "trial"
    assert stored["role"] == "free"


async def test_cm_7_1_new_user_gets_5_dollar_credits(db: Database, keyring: KeyRing) -> None:
    user, _ = await _signup(db, keyring)
    async with db.begin() as conn:
        assert await user_balance_nanos(conn, user["id"]) == 5_000_000_000
        grants = (
            (
                await conn.execute(
                    select(credit_transactions).where(credit_transactions.c.user_id == user["id"])
                )
            )
            .mappings()
            .all()
        )
    assert [(g["type"], g["amount_nanos"]) for g in grants] == [("grant", 5_000_000_000)]


async def test_cm_7_2_new_user_gets_3_day_trial(db: Database, keyring: KeyRing) -> None:
    user, _ = await _signup(db, keyring)
    async with db.begin() as conn:
        stored = await get_user(conn, user["id"])
    assert stored is not None
    assert stored["trial_ends_at"] == NOW + timedelta(days=3)


async def test_cm_12_4_and_12_5_primary_key_created_with_gw_env_format(
    db: Database, keyring: KeyRing
) -> None:
    for env in ("live", "test", "staging", "dev"):
        user, key = await _signup(db, keyring, f"{env}@example.com", env=env)
        assert KEY_FORMAT.match(key) and key.startswith(f"gw_{env}_")
        async with db.begin() as conn:
            found = await find_key(conn, keyring.hash(key))
            rows = (
                (await conn.execute(select(api_keys).where(api_keys.c.user_id == user["id"])))
                .mappings()
                .all()
            )
        assert found is not None and found["is_active"] and found["user_id"] == user["id"]
        assert len(rows) == 1 and rows[0]["is_primary"] and rows[0]["env"] == env
        assert key not in str(dict(rows[0]))  # no plaintext at rest


async def test_cm_12_8_partner_code_triggers_extended_trial(db: Database, keyring: KeyRing) -> None:
    user, _ = await _signup(db, keyring, partner_code="redbeard")  # case-insensitive
    async with db.begin() as conn:
        stored = await get_user(conn, user["id"])
        balance = await user_balance_nanos(conn, user["id"])
    assert stored is not None
    assert stored["trial_ends_at"] == NOW + timedelta(days=14)
    assert balance == 20_000_000_000
    assert stored["tier"] == "basic" and stored["plan"] == "trial"


async def test_unknown_partner_code_is_400_and_creates_nothing(
    db: Database, keyring: KeyRing
) -> None:
    for code in ("NOPE", "x" * 40, "bad code!", 7):
        with pytest.raises(InvalidRequest) as info:
            await _signup(db, keyring, partner_code=code)
        assert info.value.param == "partner_code"
    async with db.begin() as conn:
        assert await count_users(conn) == 0


async def test_cm_12_9_referral_code_stored_on_new_user(db: Database, keyring: KeyRing) -> None:
    user, _ = await _signup(db, keyring, referred_by_code="FRIEND-42")
    async with db.begin() as conn:
        stored = await get_user(conn, user["id"])
    assert stored is not None and stored["referred_by_code"] == "FRIEND-42"


async def test_provisioning_is_one_transaction(db: Database, keyring: KeyRing) -> None:
    with pytest.raises(ValueError):  # the key step fails after the user row was inserted
        await _signup(db, keyring, env="prod")
    async with db.begin() as conn:
        assert await count_users(conn) == 0
        assert (
            await conn.execute(select(func.count()).select_from(credit_transactions))
        ).scalar_one() == 0


async def test_duplicate_email_is_409(db: Database, keyring: KeyRing) -> None:
    await _signup(db, keyring, "dup@example.com")
    with pytest.raises(AccountConflict) as info:
        await _signup(db, keyring, "DUP@example.com")
    assert info.value.status == 409


async def test_privy_sign_up_then_login_by_subject(db: Database, keyring: KeyRing) -> None:
    calls: list[int] = []

    async def before() -> None:
        calls.append(1)

    ident = _identity("did:privy:one", _email("one@example.com"))
    first = await login_or_sign_up(db, keyring, ident, env="test", before_sign_up=before)
    assert first.is_new_user and first.api_key and first.api_key.startswith("gw_test_")
    again = await login_or_sign_up(db, keyring, ident, env="test", before_sign_up=before)
    assert not again.is_new_user and again.api_key is None
    assert again.user["id"] == first.user["id"]
    assert calls == [1]  # the sign-up hook (register limit) ran for the sign-up only
    fresh = await login_or_sign_up(db, keyring, ident, env="test", new_api_key=True)
    assert fresh.api_key and fresh.api_key != first.api_key
    async with db.begin() as conn:
        assert (await find_key(conn, keyring.hash(fresh.api_key)))["user_id"] == first.user["id"]
        assert first.user["privy_user_id"] == "did:privy:one"
        stored = await get_user(conn, first.user["id"])
    assert stored is not None and stored["tier"] == "basic"


async def test_privy_login_links_existing_email_user(db: Database, keyring: KeyRing) -> None:
    async with db.begin() as conn:
        existing = await create_user(conn, "ops@example.com", role="dev", plan="team")
    ident = _identity("did:privy:ops", _email("ops@example.com"))
    result = await login_or_sign_up(db, keyring, ident, env="test")
    assert not result.is_new_user and result.user["id"] == existing["id"]
    async with db.begin() as conn:
        row = (await conn.execute(select(users).where(users.c.id == existing["id"]))).first()
    assert row is not None and row._mapping["privy_user_id"] == "did:privy:ops"
    # The same e-mail presented by a different Privy user is not handed over.
    with pytest.raises(AccountConflict):
        await login_or_sign_up(
            db, keyring, _identity("did:privy:other", _email("ops@example.com")), env="test"
        )


async def test_disabled_user_cannot_log_in(db: Database, keyring: KeyRing) -> None:
    ident = _identity("did:privy:gone", _email("gone@example.com"))
    first = await login_or_sign_up(db, keyring, ident, env="test")
    async with db.begin() as conn:
        await conn.execute(
            users.update().where(users.c.id == first.user["id"]).values(is_active=False)
        )
    with pytest.raises(PermissionDenied):
        await login_or_sign_up(db, keyring, ident, env="test")


async def test_privy_sign_up_refuses_disposable_email(db: Database, keyring: KeyRing) -> None:
    ident = _identity("did:privy:tmp", _email("tmp@mailinator.com"))
    with pytest.raises(GatewayError) as info:
        await login_or_sign_up(db, keyring, ident, env="test")
    assert info.value.status == 400 and info.value.code == "disposable_email"
    async with db.begin() as conn:
        assert await count_users(conn) == 0
