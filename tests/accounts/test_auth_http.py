"""POST /auth and POST /auth/register through a real gateway (CM-12.*, CM-7.1, CM-7.2)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2 as httpx
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select

from gatewayz.storage.db import Database
from gatewayz.storage.tables import audit_logs
from gatewayz.storage.users import count_users, get_user, user_balance_nanos
from tests.accounts.conftest import TokenFactory, sign
from tests.e2e.harness import Gateway

KEY_FORMAT = re.compile(r"^gw_test_[A-Za-z0-9_-]{43}$")
CHAT = {"model": "simulated/echo", "messages": [{"role": "user", "content": "hello"}]}


def _post(gw: Gateway, path: str, body: Any = None, **kw: Any) -> httpx.Response:
    return httpx.post(f"{gw.root}{path}", json=body, timeout=10, **kw)


def _db(gw: Gateway, query: Any) -> Any:
    async def run() -> Any:
        db = Database(gw.settings.resolved_database_url)
        try:
            async with db.begin() as conn:
                return await query(conn)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _user(gw: Gateway, user_id: str) -> dict[str, Any]:
    found = _db(gw, lambda conn: get_user(conn, user_id))
    assert found is not None
    return dict(found)


def _chat(gw: Gateway, key: str) -> httpx.Response:
    return httpx.post(
        f"{gw.base_url}/chat/completions",
        json=CHAT,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )


def _assert_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "code", "param"}
    assert err["message"]
    return dict(err)


# ---- Privy login ------------------------------------------------------------------------


def test_cm_12_4_new_user_gets_auto_created_api_key(
    privy_gateway: Gateway, make_token: TokenFactory
) -> None:
    token = make_token(accounts=[{"type": "email", "address": "first@example.com"}])
    r = _post(privy_gateway, "/auth", {"token": token})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["is_new_user"] is True
    assert body["email"] == "first@example.com"
    assert body["auth_method"] == "email"
    assert (body["plan"], body["tier"]) == ("trial", "basic")
    assert r.headers["cache-control"] == "no-store"
    key = body["api_key"]
    assert KEY_FORMAT.match(key)  # CM-12.5 as well
    chat = _chat(privy_gateway, key)
    assert chat.status_code == 200, chat.text
    assert "hello" in chat.json()["choices"][0]["message"]["content"]
    # Logging in again: the same user, and the key is never shown again.
    again = _post(privy_gateway, "/auth", {"token": token})
    assert again.status_code == 200
    assert again.json()["user_id"] == body["user_id"]
    assert again.json()["is_new_user"] is False and again.json()["api_key"] is None


def test_cm_12_5_api_key_format_gw_env_prefix(
    privy_gateway: Gateway, make_token: TokenFactory
) -> None:
    key = _post(privy_gateway, "/auth", {"token": make_token()}).json()["api_key"]
    env = privy_gateway.settings.env
    assert key.startswith(f"gw_{env}_") and KEY_FORMAT.match(key)


def test_login_with_bearer_header_and_new_key_on_request(
    privy_gateway: Gateway, make_token: TokenFactory
) -> None:
    token = make_token()
    first = _post(privy_gateway, "/auth", headers={"Authorization": f"Bearer {token}"})
    assert first.status_code == 200, first.text
    assert first.json()["is_new_user"] and first.json()["api_key"]
    fresh = _post(
        privy_gateway, "/auth", {"new_api_key": True}, headers={"Authorization": f"Bearer {token}"}
    )
    assert fresh.status_code == 200
    new_key = fresh.json()["api_key"]
    assert new_key and new_key != first.json()["api_key"]
    assert _chat(privy_gateway, new_key).status_code == 200


def test_cm_7_1_and_7_2_trial_credit_and_end_over_http(
    privy_gateway: Gateway, make_token: TokenFactory
) -> None:
    before = datetime.now(UTC)
    body = _post(privy_gateway, "/auth", {"token": make_token()}).json()
    after = datetime.now(UTC)
    user_id = body["user_id"]
    assert _db(privy_gateway, lambda c: user_balance_nanos(c, user_id)) == 5_000_000_000
    ends = datetime.fromisoformat(body["trial_ends_at"])
    assert before + timedelta(days=3) <= ends <= after + timedelta(days=3)
    assert _user(privy_gateway, user_id)["trial_ends_at"] == ends


def test_cm_12_6_and_12_7_identity_priority_over_http(
    privy_gateway: Gateway, make_token: TokenFactory
) -> None:
    email = {"type": "email", "address": "prio@example.com"}
    google = {"type": "google_oauth", "email": "prio.google@gmail.com"}
    phone = {"type": "phone", "phone_number": "+44 20 7946 0000"}
    r = _post(privy_gateway, "/auth", {"token": make_token(accounts=[phone, google, email])})
    assert (r.json()["email"], r.json()["auth_method"]) == ("prio@example.com", "email")
    r = _post(privy_gateway, "/auth", {"token": make_token(accounts=[phone, google])})
    assert (r.json()["email"], r.json()["auth_method"]) == ("prio.google@gmail.com", "google_oauth")
    r = _post(privy_gateway, "/auth", {"token": make_token(accounts=[phone])})
    assert r.json()["auth_method"] == "phone"
    assert r.json()["email"].startswith("phone-442079460000@")
    stored = _user(privy_gateway, r.json()["user_id"])
    assert stored["privy_user_id"].startswith("did:privy:")


def test_identity_never_taken_from_body(privy_gateway: Gateway, make_token: TokenFactory) -> None:
    token = make_token(accounts=[{"type": "email", "address": "real@example.com"}])
    r = _post(
        privy_gateway,
        "/auth",
        {"token": token, "email": "admin@example.com", "user_id": "usr_x", "sub": "did:privy:x"},
    )
    assert r.json()["email"] == "real@example.com"


def _forged_tokens(privy_pem: str, make_token: TokenFactory) -> dict[str, str]:
    good = make_token()
    _, payload, _ = good.split(".")

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    hs_header = b64(orjson.dumps({"alg": "HS256", "typ": "JWT"}))
    mac = hmac.new(privy_pem.encode(), f"{hs_header}.{payload}".encode(), hashlib.sha256)
    return {
        "malformed": "not-a-jwt",
        "garbage_segments": "a.b.c",
        "expired": make_token(ttl_s=-60),
        "wrong_key": sign(ec.generate_private_key(ec.SECP256R1())),
        "wrong_audience": make_token(aud="someone-elses-app"),
        "wrong_issuer": make_token(iss="evil.example"),
        "alg_none": f"{b64(orjson.dumps({'alg': 'none', 'typ': 'JWT'}))}.{payload}.",
        "hs256_confusion": f"{hs_header}.{payload}.{b64(mac.digest())}",
        "huge": "x" * 60_000,
    }


def test_bad_tokens_are_401_and_create_nobody(
    privy_gateway: Gateway, make_token: TokenFactory, privy_pem: str
) -> None:
    users_before = _db(privy_gateway, count_users)
    for name, token in _forged_tokens(privy_pem, make_token).items():
        r = _post(privy_gateway, "/auth", {"token": token})
        err = _assert_error(r, 401)
        assert err["type"] == "authentication_error", name
        r = _post(privy_gateway, "/auth", headers={"Authorization": f"Bearer {token}"})
        _assert_error(r, 401)
    assert "expired" in _post(privy_gateway, "/auth", {"token": make_token(ttl_s=-60)}).text
    assert _db(privy_gateway, count_users) == users_before


def test_bad_bodies(privy_gateway: Gateway, make_token: TokenFactory) -> None:
    url = f"{privy_gateway.root}/auth"
    _assert_error(httpx.post(url, content=b"{not json", timeout=10), 400)
    _assert_error(httpx.post(url, content=b"[1, 2]", timeout=10), 400)
    _assert_error(_post(privy_gateway, "/auth", {"token": 123}), 400)
    _assert_error(_post(privy_gateway, "/auth", {"token": make_token(), "new_api_key": "y"}), 400)
    _assert_error(_post(privy_gateway, "/auth", {}), 401)  # no token at all
    _assert_error(httpx.post(url, content=b"", timeout=10), 401)
    big = b'{"token": "' + b"x" * 200_000 + b'"}'
    err = _assert_error(httpx.post(url, content=big, timeout=10), 413)
    assert err["code"] == "request_too_large"


def test_register_disabled_when_privy_configured(privy_gateway: Gateway) -> None:
    err = _assert_error(_post(privy_gateway, "/auth/register", {"email": "a@example.com"}), 403)
    assert err["code"] == "registration_disabled"


def test_privy_sign_up_with_disposable_email_is_400(
    privy_gateway: Gateway, make_token: TokenFactory
) -> None:
    token = make_token(accounts=[{"type": "email", "address": "burner@mailinator.com"}])
    err = _assert_error(_post(privy_gateway, "/auth", {"token": token}), 400)
    assert err["code"] == "disposable_email"


# ---- e-mail registration (no Privy) ------------------------------------------------------


def test_register_creates_trial_user_with_working_key(email_gateway: Gateway) -> None:
    r = _post(email_gateway, "/auth/register", {"email": "Reg@Example.com"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "reg@example.com"
    assert (body["plan"], body["tier"], body["is_new_user"]) == ("trial", "basic", True)
    assert KEY_FORMAT.match(body["api_key"])
    assert _chat(email_gateway, body["api_key"]).status_code == 200
    user_id = body["user_id"]
    assert _db(email_gateway, lambda c: user_balance_nanos(c, user_id)) == 5_000_000_000
    err = _assert_error(_post(email_gateway, "/auth/register", {"email": "reg@EXAMPLE.com"}), 409)
    assert err["code"] == "account_exists"


def test_cm_12_9_referral_code_stored_over_http(email_gateway: Gateway) -> None:
    r = _post(
        email_gateway, "/auth/register", {"email": "ref@example.com", "referral_code": "AB12"}
    )
    assert r.status_code == 201, r.text
    assert _user(email_gateway, r.json()["user_id"])["referred_by_code"] == "AB12"
    bad = {"email": "ref2@example.com", "referral_code": "no spaces!"}
    assert _assert_error(_post(email_gateway, "/auth/register", bad), 400)["param"] == (
        "referral_code"
    )


def test_cm_12_8_partner_code_over_http(email_gateway: Gateway) -> None:
    before = datetime.now(UTC)
    r = _post(
        email_gateway, "/auth/register", {"email": "rb@example.com", "partner_code": "RedBeard"}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["partner_code"] == "REDBEARD"
    ends = datetime.fromisoformat(body["trial_ends_at"])
    assert abs(ends - (before + timedelta(days=14))) < timedelta(minutes=1)
    user_id = body["user_id"]
    assert _db(email_gateway, lambda c: user_balance_nanos(c, user_id)) == 20_000_000_000
    bad = {"email": "rb2@example.com", "partner_code": "NOSUCH"}
    err = _assert_error(_post(email_gateway, "/auth/register", bad), 400)
    assert err["param"] == "partner_code"


def test_cm_12_10_disposable_email_blocked_over_http(email_gateway: Gateway) -> None:
    users_before = _db(email_gateway, count_users)
    for email in ("x@mailinator.com", "y@sub.mailinator.com"):
        err = _assert_error(_post(email_gateway, "/auth/register", {"email": email}), 400)
        assert err["code"] == "disposable_email" and "Disposable" in err["message"]
    _assert_error(_post(email_gateway, "/auth/register", {"email": "nope"}), 400)
    _assert_error(_post(email_gateway, "/auth/register", {}), 400)
    _assert_error(_post(email_gateway, "/auth/register", ["a@example.com"]), 400)
    assert _db(email_gateway, count_users) == users_before


def test_login_without_privy_is_501(email_gateway: Gateway, make_token: TokenFactory) -> None:
    err = _assert_error(_post(email_gateway, "/auth", {"token": make_token()}), 501)
    assert err["code"] == "login_not_configured"


def test_rate_limit_headers_on_auth_answers(email_gateway: Gateway) -> None:
    r = _post(email_gateway, "/auth/register", {"email": f"h{time.time_ns()}@example.com"})
    assert r.status_code == 201
    assert r.headers["x-ratelimit-limit"] == "10000"
    assert int(r.headers["x-ratelimit-remaining"]) < 10000
    assert int(r.headers["x-ratelimit-reset"]) > 0


def _audit_rows(gw: Gateway, **where: Any) -> list[dict[str, Any]]:
    async def query(conn: Any) -> list[dict[str, Any]]:
        stmt = select(audit_logs)
        for column, value in where.items():
            stmt = stmt.where(audit_logs.c[column] == value)
        return [dict(r._mapping) for r in await conn.execute(stmt)]

    deadline = time.monotonic() + 5
    while True:
        rows: list[dict[str, Any]] = _db(gw, query)
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_cm_13_8_auth_events_are_audited(privy_gateway: Gateway, make_token: TokenFactory) -> None:
    bad = make_token(aud="someone-elses-app")
    _assert_error(_post(privy_gateway, "/auth", {"token": bad}), 401)
    failed = _audit_rows(privy_gateway, event="auth_failed", path="/auth")
    assert failed and failed[0]["severity"] == "warning" and failed[0]["ip"] == "127.0.0.1"
    assert all(bad not in str(row) for row in failed)  # no token in the audit trail
    body = _post(privy_gateway, "/auth", {"token": make_token()}).json()
    assert _audit_rows(privy_gateway, event="user_created", user_id=body["user_id"])
    created = _audit_rows(privy_gateway, event="key_created", user_id=body["user_id"])
    assert created and created[0]["api_key_id"].startswith("key_")
    assert all(body["api_key"] not in str(row) for row in created)


def test_cm_12_8_and_12_9_codes_on_privy_sign_up(
    privy_gateway: Gateway, make_token: TokenFactory
) -> None:
    before = datetime.now(UTC)
    token = make_token()
    body = {"token": token, "referral_code": "PAL-7", "partner_code": "redbeard"}
    r = _post(privy_gateway, "/auth", body)
    assert r.status_code == 200, r.text
    user = _user(privy_gateway, r.json()["user_id"])
    assert user["referred_by_code"] == "PAL-7"
    assert abs(user["trial_ends_at"] - (before + timedelta(days=14))) < timedelta(minutes=1)
    user_id = user["id"]
    assert _db(privy_gateway, lambda c: user_balance_nanos(c, user_id)) == 20_000_000_000
    # On a later login the codes change nothing.
    again = _post(privy_gateway, "/auth", {**body, "referral_code": "OTHER"})
    assert again.json()["is_new_user"] is False
    assert _user(privy_gateway, user_id)["referred_by_code"] == "PAL-7"
    # An unknown partner code refuses the sign-up and creates nothing.
    users_before = _db(privy_gateway, count_users)
    bad = _post(privy_gateway, "/auth", {"token": make_token(), "partner_code": "NOPE"})
    assert _assert_error(bad, 400)["param"] == "partner_code"
    assert _db(privy_gateway, count_users) == users_before
