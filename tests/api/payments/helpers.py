"""Helpers for the payment tests: Stripe-style signing, event builders, direct database reads.

Events are signed exactly as Stripe signs them: `Stripe-Signature: t=<unix time>,v1=<hex
HMAC-SHA256 of "{t}.{raw body}" keyed with the endpoint secret>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx2
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.billing import ledger
from gatewayz.money import nanos_to_usd
from gatewayz.security.keys import KeyRing
from gatewayz.storage.db import Database
from gatewayz.storage.ledger import money
from gatewayz.storage.tables import audit_logs, credit_transactions, stripe_events, users
from gatewayz.storage.users import create_user
from tests.e2e.harness import Gateway

WEBHOOK_SECRET = "whsec_test_" + "k" * 32
STRIPE_API_KEY = "sk_test_gatewayz_payments"
WEBHOOK_PATH = "/api/stripe/webhook"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(10)}"


# ---- signing and posting -------------------------------------------------------------------


def sign(payload: bytes, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(type_: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    return {
        "id": event_id or new_id("evt"),
        "object": "event",
        "api_version": "2025-09-30.clover",
        "created": int(time.time()),
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type_,
        "data": {"object": obj},
    }


def body_of(evt: dict[str, Any]) -> bytes:
    return json.dumps(evt, separators=(",", ":")).encode()


_CLIENTS: dict[str, httpx2.Client] = {}


def http(gw: Gateway) -> httpx2.Client:
    """One HTTP client per gateway (building a client costs more than a request)."""
    if gw.root not in _CLIENTS:
        _CLIENTS[gw.root] = httpx2.Client(base_url=gw.root, timeout=10)
    return _CLIENTS[gw.root]


def post_raw(gw: Gateway, body: bytes, headers: dict[str, str]) -> httpx2.Response:
    return http(gw).post(
        WEBHOOK_PATH, content=body, headers={"Content-Type": "application/json", **headers}
    )


def deliver(gw: Gateway, evt: dict[str, Any], **sign_args: Any) -> str:
    """Sign and post one event; assert the 200 and return the reported status."""
    body = body_of(evt)
    r = post_raw(gw, body, {"Stripe-Signature": sign(body, **sign_args)})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["received"] is True
    status: str = data["status"]
    return status


# ---- event objects -------------------------------------------------------------------------


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def credits_session(
    user_id: str,
    amount: str = "25",
    *,
    payment_intent: str | None = None,
    payment_status: str = "paid",
    customer: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id("cs_test"),
        "object": "checkout.session",
        "mode": "payment",
        "status": "complete",
        "payment_status": payment_status,
        "client_reference_id": user_id,
        "customer": customer,
        "metadata": {"user_id": user_id, "kind": "credits", "amount_usd": amount},
        "amount_total": cents(amount),
        "currency": "usd",
        "payment_intent": payment_intent,
        "subscription": None,
    }


def credits_intent(user_id: str, amount: str = "25", pi: str | None = None) -> dict[str, Any]:
    return {
        "id": pi or new_id("pi"),
        "object": "payment_intent",
        "amount": cents(amount),
        "amount_received": cents(amount),
        "currency": "usd",
        "status": "succeeded",
        "customer": None,
        "metadata": {"user_id": user_id, "kind": "credits", "amount_usd": amount},
    }


def subscription_session(user_id: str, plan: str, sub_id: str) -> dict[str, Any]:
    return {
        "id": new_id("cs_test"),
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "payment_status": "paid",
        "client_reference_id": user_id,
        "customer": new_id("cus"),
        "metadata": {"user_id": user_id, "kind": "subscription", "plan": plan},
        "amount_total": 2000,
        "currency": "usd",
        "payment_intent": None,
        "subscription": sub_id,
    }


def subscription(
    user_id: str, plan: str, status: str, sub_id: str, customer: str | None = None
) -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "status": status,
        "customer": customer or new_id("cus"),
        "cancel_at_period_end": False,
        "metadata": {"user_id": user_id, "kind": "subscription", "plan": plan},
    }


def invoice(
    user_id: str,
    plan: str,
    sub_id: str,
    invoice_id: str | None = None,
    billing_reason: str = "subscription_cycle",
) -> dict[str, Any]:
    """An invoice in the current API shape (`parent.subscription_details`)."""
    return {
        "id": invoice_id or new_id("in"),
        "object": "invoice",
        "status": "paid",
        "billing_reason": billing_reason,
        "customer": new_id("cus"),
        "amount_paid": 2000,
        "currency": "usd",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": sub_id,
                "metadata": {"user_id": user_id, "kind": "subscription", "plan": plan},
            },
        },
    }


# ---- the database --------------------------------------------------------------------------


# One event loop and connection pool per gateway database, for the tests' own reads and writes
# (a fresh engine per call would cost more than the requests under test).
_DATABASES: dict[str, tuple[asyncio.Runner, Database]] = {}


def db_run(gw: Gateway, work: Callable[[AsyncConnection], Awaitable[Any]]) -> Any:
    """Run `work` in one transaction on the gateway's database."""
    url = gw.settings.resolved_database_url
    if url not in _DATABASES:
        _DATABASES[url] = (asyncio.Runner(), Database(url, pool_size=2, max_overflow=2))
    runner, db = _DATABASES[url]

    async def go() -> Any:
        async with db.begin() as conn:
            return await work(conn)

    return runner.run(go())


def close_helpers(gw: Gateway) -> None:
    """Close this gateway's test client and database pool."""
    client = _CLIENTS.pop(gw.root, None)
    if client is not None:
        client.close()
    entry = _DATABASES.pop(gw.settings.resolved_database_url, None)
    if entry is not None:
        runner, db = entry
        runner.run(db.dispose())
        runner.close()


@dataclass
class User:
    id: str
    key: str | None = None


def make_user(
    gw: Gateway,
    *,
    plan: str = "dev",
    credits_usd: str = "0",
    referred_by_code: str | None = None,
    referral_code: str | None = None,
    with_key: bool = False,
) -> User:
    async def work(conn: AsyncConnection) -> User:
        row = await create_user(
            conn, f"{new_id('u')}@example.com", role="dev", plan=plan, credits_usd=credits_usd
        )
        await conn.execute(
            update(users)
            .where(users.c.id == row["id"])
            .values(referred_by_code=referred_by_code, referral_code=referral_code)
        )
        key = None
        if with_key:
            _, key = await create_api_key(
                conn, KeyRing(*gw.settings.secrets), row["id"], gw.settings.env
            )
        return User(row["id"], key)

    user: User = db_run(gw, work)
    return user


def user_row(gw: Gateway, user_id: str) -> dict[str, Any]:
    async def work(conn: AsyncConnection) -> dict[str, Any]:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).mappings().one()
        return dict(row)

    row: dict[str, Any] = db_run(gw, work)
    return row


def purchased(gw: Gateway, user_id: str) -> Decimal:
    return nanos_to_usd(int(user_row(gw, user_id)["credits_nanos"]))


def allowance(gw: Gateway, user_id: str) -> Decimal:
    return nanos_to_usd(int(user_row(gw, user_id)["allowance_nanos"]))


def ledger_rows(gw: Gateway, user_id: str, type_: str | None = None) -> list[dict[str, Any]]:
    async def work(conn: AsyncConnection) -> list[dict[str, Any]]:
        q = select(credit_transactions).where(credit_transactions.c.user_id == user_id)
        if type_ is not None:
            q = q.where(credit_transactions.c.type == type_)
        rows = await conn.execute(q.order_by(credit_transactions.c.id))
        return [dict(r) for r in rows.mappings()]

    rows: list[dict[str, Any]] = db_run(gw, work)
    return rows


def verify_ledger(gw: Gateway, *user_ids: str) -> None:
    """`money.verify_ledger` for each user (raises `LedgerInconsistent`)."""

    async def work(conn: AsyncConnection) -> None:
        for uid in user_ids:
            await money.verify_ledger(conn, uid)

    db_run(gw, work)


def charge(gw: Gateway, user_id: str, usd: str) -> None:
    """Spend `usd` (allowance first) as a request would."""

    async def work(conn: AsyncConnection) -> None:
        assert await ledger.charge(conn, user_id, new_id("req"), int(Decimal(usd) * 10**9))

    db_run(gw, work)


def stripe_event_row(gw: Gateway, event_id: str) -> dict[str, Any] | None:
    async def work(conn: AsyncConnection) -> dict[str, Any] | None:
        row = (
            (await conn.execute(select(stripe_events).where(stripe_events.c.id == event_id)))
            .mappings()
            .first()
        )
        return dict(row) if row is not None else None

    row: dict[str, Any] | None = db_run(gw, work)
    return row


def audit_rows(
    gw: Gateway, event_name: str, *, user_id: str | None = None, wait_s: float = 5.0
) -> list[dict[str, Any]]:
    """Audit rows of one event (written off the request path: waits for at least one)."""

    async def work(conn: AsyncConnection) -> list[dict[str, Any]]:
        q = select(audit_logs).where(audit_logs.c.event == event_name)
        if user_id is not None:
            q = q.where(audit_logs.c.user_id == user_id)
        return [dict(r) for r in (await conn.execute(q)).mappings()]

    deadline = time.monotonic() + wait_s
    while True:
        rows: list[dict[str, Any]] = db_run(gw, work)
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)
