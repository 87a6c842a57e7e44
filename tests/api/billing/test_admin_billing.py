"""POST /admin/credits and GET/POST/DELETE /admin/pricing through a real gateway: permission
guards (401 / 403 + audit), exact amounts, idempotency, refusals, audit events, and the price
book (`services.meter`) rebuilt after every pricing change."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.billing import ledger
from gatewayz.money import usd_to_nanos
from gatewayz.storage.ledger.money import verify_ledger
from gatewayz.storage.tables import REQUEST_ID_LENGTH
from gatewayz.storage.users import create_user
from tests.api.billing.conftest import (
    assert_openai_error,
    audit_rows,
    call,
    email,
    make_user,
    run,
)
from tests.e2e.harness import Gateway

ADMIN_WRITES = [
    ("POST", "/admin/credits", {"email": "x@example.com", "amount_usd": "1"}),
    ("GET", "/admin/pricing", None),
    ("POST", "/admin/pricing", {"model": "m", "prompt": "1", "completion": "2"}),
    ("DELETE", "/admin/pricing/1", None),
]


@pytest.fixture(scope="module")
def admin(gw: Gateway) -> tuple[str, str]:
    return make_user(gw, "admin", role="admin")


def _verify(gw: Gateway, user_id: str) -> ledger.Balance:
    async def work(conn: AsyncConnection) -> ledger.Balance:
        await verify_ledger(conn, user_id)
        return await ledger.balance(conn, user_id)

    return run(gw, work)


# ---- guards ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "body"), ADMIN_WRITES)
def test_admin_billing_routes_need_a_key(gw: Gateway, method: str, path: str, body: Any) -> None:
    assert_openai_error(call(gw, method, path, json=body), 401)


@pytest.mark.parametrize("role", ["free", "dev", "team"])
def test_non_admins_get_403_and_an_audit_event(gw: Gateway, role: str) -> None:
    """CM-13.8 (tested for /admin/users in tests/api/test_admin_routes.py) holds for the money
    routes too."""
    user_id, key = make_user(gw, role, role=role)
    victim_id, _ = make_user(gw, "victim")
    for method, path, body in ADMIN_WRITES:
        if path == "/admin/credits":
            body = {"user_id": user_id, "amount_usd": "1000"}
        r = call(gw, method, path, key, json=body)
        assert_openai_error(r, 403)
        assert r.json()["error"]["code"] == "insufficient_permissions"
    rows = audit_rows(gw, "admin_access_denied", lambda x: x["user_id"] == user_id, wait_s=5.0)
    assert {r["path"] for r in rows} >= {"/admin/credits", "/admin/pricing"}
    assert all(r["severity"] == "critical" for r in rows)
    # Nothing was granted.
    assert _verify(gw, user_id).purchased == 0 and _verify(gw, victim_id).purchased == 0


# ---- credits --------------------------------------------------------------------------------


def test_admin_grant_by_email_and_id_with_exact_amounts(
    gw: Gateway, admin: tuple[str, str]
) -> None:
    admin_id, admin_key = admin
    address = email("grantee")

    async def work(conn: AsyncConnection) -> str:
        return str((await create_user(conn, address))["id"])

    user_id = run(gw, work)
    r = call(
        gw,
        "POST",
        "/admin/credits",
        admin_key,
        json={"email": address.upper(), "amount_usd": "12.345", "description": "goodwill"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["applied"] is True and body["user_id"] == user_id and body["type"] == "grant"
    assert body["amount"] == "12.345" and body["balance"] == "12.345"
    assert body["purchased_credits"] == "12.345" and body["available"] == "12.345"
    r = call(gw, "POST", "/admin/credits", admin_key, json={"user_id": user_id, "amount_usd": 5})
    assert r.status_code == 200 and r.json()["balance"] == "17.345"
    assert _verify(gw, user_id).purchased == Decimal("17.345")
    # Each grant is an audit event naming the admin.
    rows = audit_rows(
        gw,
        "credits_granted",
        lambda x: x["user_id"] == user_id and x["detail"]["amount_usd"] == "5",
    )
    assert rows and rows[0]["detail"]["by_user"] == admin_id and rows[0]["severity"] == "warning"
    first = audit_rows(
        gw,
        "credits_granted",
        lambda x: x["user_id"] == user_id and x["detail"]["amount_usd"] != "5",
    )
    assert first[0]["detail"]["description"] == "goodwill" and first[0]["detail"]["applied"]


def test_admin_grant_is_idempotent_by_key(gw: Gateway, admin: tuple[str, str]) -> None:
    _, admin_key = admin
    user_id, user_key = make_user(gw, "idem")
    ticket = f"ticket-{user_id}-".ljust(REQUEST_ID_LENGTH, "x")  # the longest key accepted
    body = {"user_id": user_id, "amount_usd": "3", "idempotency_key": ticket}
    first = call(gw, "POST", "/admin/credits", admin_key, json=body)
    again = call(gw, "POST", "/admin/credits", admin_key, json=body)
    assert first.status_code == again.status_code == 200, again.text
    assert first.json()["applied"] is True and again.json()["applied"] is False
    assert again.json()["balance"] == "3"
    ledger_rows = call(gw, "GET", "/user/credit-transactions", user_key).json()["data"]
    assert [(r["type"], r["amount"], r["request_id"]) for r in ledger_rows] == [
        ("grant", "3", ticket)
    ]
    # The same key for another user is a conflict, not a silent no-op.
    other_id, _ = make_user(gw, "idem2")
    r = call(gw, "POST", "/admin/credits", admin_key, json={**body, "user_id": other_id})
    assert_openai_error(r, 409, "idempotency_key")
    assert _verify(gw, other_id).purchased == 0


def test_admin_adjustments_may_be_negative_but_not_below_zero(
    gw: Gateway, admin: tuple[str, str]
) -> None:
    _, admin_key = admin
    user_id, _ = make_user(gw, "adjust", credits_usd="10")
    r = call(
        gw,
        "POST",
        "/admin/credits",
        admin_key,
        json={"user_id": user_id, "amount_usd": "-2.5", "type": "adjustment"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["balance"] == "7.5" and r.json()["applied"] is True
    r = call(
        gw,
        "POST",
        "/admin/credits",
        admin_key,
        json={"user_id": user_id, "amount_usd": "-7.500000001", "type": "adjustment"},
    )
    assert_openai_error(r, 400, "amount_usd")
    assert r.json()["error"]["code"] == "insufficient_credits"
    assert _verify(gw, user_id).purchased == Decimal("7.5")
    rows = audit_rows(gw, "credits_adjusted", lambda x: x["user_id"] == user_id)
    assert len(rows) == 1 and rows[0]["detail"]["amount_usd"] == "-2.5"


@pytest.fixture(scope="module")
def bad_target(gw: Gateway) -> str:
    """The user the refused credit requests name (checked to have received nothing)."""
    return make_user(gw, "bad")[0]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"amount_usd": 1.5}, "amount_usd"),  # a float
        ({"amount_usd": 1.0}, "amount_usd"),
        ({"amount_usd": True}, "amount_usd"),
        ({"amount_usd": "abc"}, "amount_usd"),
        ({"amount_usd": "NaN"}, "amount_usd"),
        ({"amount_usd": "0"}, "amount_usd"),
        ({"amount_usd": "-1"}, "amount_usd"),  # negative grant
        ({"amount_usd": "0.0000000001"}, "amount_usd"),  # finer than a nano-dollar
        ({"amount_usd": "1e12"}, "amount_usd"),
        ({"amount_usd": "1", "type": "purchase"}, "type"),
        ({"amount_usd": "1", "email": "someone@example.com"}, "user_id"),  # both
        ({"amount_usd": "1", "user_id": None}, "user_id"),  # neither
        ({"amount_usd": "1", "extra": 1}, None),
        ({"amount_usd": "1", "idempotency_key": "k" * (REQUEST_ID_LENGTH + 1)}, None),
        ({}, None),
    ],
)
def test_admin_credit_bad_requests_are_400(
    gw: Gateway,
    admin: tuple[str, str],
    bad_target: str,
    body: dict[str, Any],
    param: str | None,
) -> None:
    user_id = bad_target
    payload = {"user_id": user_id, **body} if body else {}
    r = call(gw, "POST", "/admin/credits", admin[1], json=payload)
    assert_openai_error(r, 400, param)
    assert _verify(gw, user_id).purchased == 0


def test_admin_credit_unknown_user_is_404(gw: Gateway, admin: tuple[str, str]) -> None:
    for who in ({"user_id": "usr_nope"}, {"email": "nobody-here@example.com"}):
        r = call(gw, "POST", "/admin/credits", admin[1], json={**who, "amount_usd": "1"})
        assert_openai_error(r, 404)
        assert r.json()["error"]["code"] == "user_not_found"


# ---- pricing --------------------------------------------------------------------------------


def _price(gw: Gateway, key: str, model: str, provider: str | None = None) -> dict[str, Any]:
    params = {"model": model, **({"provider": provider} if provider else {})}
    r = call(gw, "GET", "/admin/pricing", key, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_admin_price_override_lifecycle(gw: Gateway, admin: tuple[str, str]) -> None:
    admin_id, key = admin
    model = "acme/override-model"
    before = _price(gw, key, model)
    assert before["data"] == [] and before["effective"]["is_default"] is True
    r = call(
        gw,
        "POST",
        "/admin/pricing",
        key,
        json={"model": model, "prompt": "0.150", "completion": 3, "cached_read": "0.075"},
    )
    assert r.status_code == 201, r.text
    row = r.json()
    assert row["model"] == model and row["provider"] is None
    assert (row["prompt"], row["completion"], row["cached_read"]) == ("0.15", "3", "0.075")
    assert row["effective_from"] is None and row["in_effect"] and row["created_by"] == admin_id
    after = _price(gw, key, model, provider="vllm")
    assert [o["id"] for o in after["data"]] == [row["id"]]
    eff = after["effective"]
    assert (eff["source"], eff["is_default"], eff["prompt"], eff["completion"]) == (
        "override",
        False,
        "0.15",
        "3",
    )
    # A provider-specific override wins over the any-provider one, for that provider only.
    r = call(
        gw,
        "POST",
        "/admin/pricing",
        key,
        json={"model": model, "provider": "vllm", "prompt": "1", "completion": "2"},
    )
    assert r.status_code == 201, r.text
    specific = r.json()
    assert _price(gw, key, model, "vllm")["effective"]["prompt"] == "1"
    assert _price(gw, key, model, "openai")["effective"]["prompt"] == "0.15"
    listed = call(gw, "GET", "/admin/pricing", key).json()["data"]
    assert {row["id"], specific["id"]} <= {o["id"] for o in listed}
    # Deleting restores the previous price; a second delete is a 404.
    r = call(gw, "DELETE", f"/admin/pricing/{specific['id']}", key)
    assert r.status_code == 200 and r.json()["deleted"] is True
    assert _price(gw, key, model, "vllm")["effective"]["prompt"] == "0.15"
    assert_openai_error(call(gw, "DELETE", f"/admin/pricing/{specific['id']}", key), 404)
    call(gw, "DELETE", f"/admin/pricing/{row['id']}", key)
    assert _price(gw, key, model)["effective"]["is_default"] is True
    created = audit_rows(
        gw, "price_override_created", lambda x: x["detail"].get("model") == model, least=2
    )
    deleted = audit_rows(
        gw,
        "price_override_deleted",
        lambda x: x["detail"].get("id") == row["id"],
    )
    assert len(created) == 2 and deleted and deleted[0]["detail"]["by_user"] == admin_id


def test_admin_future_override_is_stored_but_not_in_effect(
    gw: Gateway, admin: tuple[str, str]
) -> None:
    _, key = admin
    model = "acme/future-model"
    now = call(
        gw, "POST", "/admin/pricing", key, json={"model": model, "prompt": "1", "completion": "1"}
    )
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    later = call(
        gw,
        "POST",
        "/admin/pricing",
        key,
        json={"model": model, "prompt": "9", "completion": "9", "effective_from": tomorrow},
    )
    assert now.status_code == later.status_code == 201, later.text
    assert later.json()["effective_from"] == tomorrow and later.json()["in_effect"] is False
    body = _price(gw, key, model)
    assert {o["id"] for o in body["data"]} == {now.json()["id"], later.json()["id"]}
    assert body["effective"]["prompt"] == "1"  # the future row is ignored by the lookup


def test_admin_pricing_packaged_model_lookup(gw: Gateway, admin: tuple[str, str]) -> None:
    body = _price(gw, admin[1], "openai/gpt-4o", "openai")
    assert body["effective"]["is_default"] is False
    assert body["effective"]["source"] in ("packaged", "model")
    assert Decimal(body["effective"]["prompt"]) > 0


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": 0.5, "completion": "1"}, "prompt"),
        ({"prompt": "1", "completion": 2.0}, "completion"),
        ({"prompt": "-1", "completion": "1"}, "prompt"),
        ({"prompt": "1", "completion": "1", "reasoning": "-0.01"}, "reasoning"),
        ({"prompt": "1", "completion": "1", "image": "Infinity"}, "image"),
        ({"prompt": "x", "completion": "1"}, "prompt"),
        ({"prompt": "1e9", "completion": "1"}, "prompt"),
        ({"completion": "1"}, None),
        ({"prompt": "1", "completion": "1", "effective_from": "tomorrow"}, "effective_from"),
        ({"prompt": "1", "completion": "1", "effective_from": "2030-02-30"}, "effective_from"),
        ({"prompt": "1", "completion": "1", "context": 5}, None),
        ({"prompt": "1", "completion": "1", "model": ""}, None),
        ({"prompt": "1", "completion": "1", "model": "   "}, "model"),
        ({"prompt": "1", "completion": "1", "provider": "p" * 65}, None),
    ],
)
def test_admin_pricing_bad_requests_are_400(
    gw: Gateway, admin: tuple[str, str], body: dict[str, Any], param: str | None
) -> None:
    model = "acme/bad-price-model"
    r = call(gw, "POST", "/admin/pricing", admin[1], json={"model": model, **body})
    assert_openai_error(r, 400, param)
    assert _price(gw, admin[1], model)["data"] == []


@pytest.mark.parametrize("override_id", ["999999", "abc", "-1", "1" * 30])
def test_admin_pricing_delete_unknown_is_404(
    gw: Gateway, admin: tuple[str, str], override_id: str
) -> None:
    assert_openai_error(call(gw, "DELETE", f"/admin/pricing/{override_id}", admin[1]), 404)


def test_admin_grant_does_not_touch_the_allowance(gw: Gateway, admin: tuple[str, str]) -> None:
    user_id, _ = make_user(gw, "allow")

    async def work(conn: AsyncConnection) -> None:
        await ledger.change_plan(conn, user_id, "dev", allowance_nanos=usd_to_nanos(20))

    run(gw, work)
    r = call(gw, "POST", "/admin/credits", admin[1], json={"user_id": user_id, "amount_usd": "1"})
    body = r.json()
    assert (body["subscription_allowance"], body["purchased_credits"], body["balance"]) == (
        "20",
        "1",
        "21",
    )
