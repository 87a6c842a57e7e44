"""How API keys sit in the database (CM-1.4, CM-1.5), on both backends."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import event, select, text

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.security.keys import KeyRing
from gatewayz.storage.db import Database
from gatewayz.storage.keys import find_key
from gatewayz.storage.tables import api_keys
from gatewayz.storage.users import create_user


async def _issue(db: Database, keyring: KeyRing) -> tuple[dict, str]:
    async with db.begin() as conn:
        user = await create_user(conn, "keys@example.com")
        return await create_api_key(conn, keyring, user["id"], "live", is_primary=True)


async def test_cm_1_4_lookup_by_hash_never_decrypts(
    db: Database, keyring: KeyRing, monkeypatch: pytest.MonkeyPatch
) -> None:
    row, key = await _issue(db, keyring)

    def no_decrypt(*_args: object, **_kwargs: object) -> str:
        raise AssertionError("authentication must not decrypt keys")

    monkeypatch.setattr(KeyRing, "decrypt", no_decrypt)
    monkeypatch.setattr(Fernet, "decrypt", no_decrypt)
    statements: list[tuple[str, object]] = []

    def capture(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(db.engine.sync_engine, "before_cursor_execute", capture)
    try:
        async with db.begin() as conn:
            found = await find_key(conn, keyring.hash(key))
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", capture)
    assert found is not None and found["api_key_id"] == row["id"] and found["is_active"]
    [(sql, params)] = [s for s in statements if "api_keys" in s[0]]
    assert "FROM api_keys JOIN users" in sql
    assert "WHERE api_keys.key_hash =" in sql
    assert "encrypted_key" not in sql  # the ciphertext is not even read
    assert keyring.hash(key) in str(params)
    assert key not in str(params)  # the plaintext never reaches the database


async def test_cm_1_5_stored_key_is_not_plaintext(db: Database, keyring: KeyRing) -> None:
    row, key = await _issue(db, keyring)
    secret = key.split("_", 2)[2]
    async with db.begin() as conn:
        # Raw driver SQL: what is actually stored, with no type processing in between.
        raw = (await conn.exec_driver_sql("SELECT * FROM api_keys")).mappings().one()
        stored = (
            await conn.execute(select(api_keys.c.encrypted_key).where(api_keys.c.id == row["id"]))
        ).scalar_one()
        texts = (await conn.execute(text("SELECT * FROM users"))).all()
    assert stored == raw["encrypted_key"]
    assert stored != key
    for column, value in raw.items():
        assert key not in str(value), column
        assert secret not in str(value), column
    for user_row in texts:
        assert all(secret not in str(v) for v in user_row)
    assert raw["key_hash"] == keyring.hash(key)
    assert keyring.decrypt(stored) == key  # the encrypted copy is recoverable by the operator
