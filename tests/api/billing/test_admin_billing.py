"""POST /admin/credits and GET/POST/DELETE /admin/pricing through a real gateway: permission
guards (401 / 403 + audit), exact amounts, idempotency, refusals, audit events, and the price
book (`services.meter`) rebuilt after every pricing change; media prices (mode, second,
image_sizes) that make a model no price data knows servable, charged exactly that price."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import openai
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.billing import ledger
from gatewayz.billing.pricing import Price
from gatewayz.money import usd_to_nanos
from gatewayz.storage import price_overrides
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
from tests.api.media.conftest import wav
from tests.e2e.harness import Gateway
from tests.money.conftest import money, usage_rows

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


# ---- media prices (mode, second, image_sizes) ---------------------------------------------

WHISPER_NATIVE = "openai/whisper-large-v3"  # DeepInfra's name; no packaged row prices it
IMAGE_NATIVE = "stabilityai/sdxl-turbo"  # likewise


def _openai(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0)


def _charged(gw: Gateway, user_id: str) -> list[int]:
    return [-int(r["amount_nanos"]) for r in usage_rows(money(gw, user_id))]


def _override(gw: Gateway, key: str, body: dict[str, Any]) -> dict[str, Any]:
    r = call(gw, "POST", "/admin/pricing", key, json=body)
    assert r.status_code == 201, r.text
    row: dict[str, Any] = r.json()
    return row


def test_admin_prices_an_unpriced_transcription_model_and_it_is_served_at_that_price(
    gw: Gateway, admin: tuple[str, str]
) -> None:
    _, key = admin
    user_id, user_key = make_user(gw, "whisper", credits_usd=1)
    model = f"deepinfra/{WHISPER_NATIVE}"  # pins DeepInfra, native id as given
    audio = ("a.wav", wav(2.5), "audio/wav")
    assert _price(gw, key, WHISPER_NATIVE, "deepinfra")["effective"]["is_default"] is True
    # Unpriced, it is a chat model at the default rate: not served for transcription.
    with pytest.raises(openai.BadRequestError) as err:
        _openai(gw, user_key).audio.transcriptions.create(model=model, file=audio)
    assert err.value.code == "model_not_supported"

    body = {"model": WHISPER_NATIVE, "provider": "deepinfra", "mode": "audio", "second": "0.0003"}
    row = _override(gw, key, body)
    assert (row["mode"], row["second"], row["prompt"], row["completion"]) == (
        "audio",
        "0.0003",
        "0",
        "0",
    )
    raw = _openai(gw, user_key).audio.transcriptions.with_raw_response.create(
        model=model, file=audio
    )
    assert raw.parse().text.startswith("Simulated transcript of a.wav")
    assert Decimal(raw.headers["x-gatewayz-cost"]) == Decimal("0.00075")  # 2.5 s × $0.0003
    assert _charged(gw, user_id) == [750_000]
    sent = [q for q in gw.upstream.requests if q.path.endswith("/audio/transcriptions")]
    assert sent and WHISPER_NATIVE.encode() in sent[-1].body
    # What the meter uses is what the database holds (as_row → JSON → list_rows → from_row).
    stored = [r for r in run(gw, price_overrides.list_rows) if r["id"] == row["id"]]
    assert Price.from_row(stored[0]) == Price(
        prompt=Decimal(0), completion=Decimal(0), second=Decimal("0.0003"), mode="audio"
    )
    audited = audit_rows(gw, "price_override_created", lambda x: x["detail"].get("id") == row["id"])
    assert audited and audited[0]["detail"]["mode"] == "audio"
    assert audited[0]["detail"]["second"] == "0.0003"
    call(gw, "DELETE", f"/admin/pricing/{row['id']}", key)


def test_admin_prices_an_unpriced_image_model_by_quality_and_size(
    gw: Gateway, admin: tuple[str, str]
) -> None:
    _, key = admin
    user_id, user_key = make_user(gw, "images", credits_usd=1)
    model = f"deepinfra/{IMAGE_NATIVE}"
    with pytest.raises(openai.BadRequestError):
        _openai(gw, user_key).images.generate(model=model, prompt="a fox", size="1024x1024")
    sizes = {"hd/1024x1024": "0.012", "1024x1024": 0, "standard": "0.0035"}
    body = {"model": IMAGE_NATIVE, "provider": "deepinfra", "mode": "image", "image_sizes": sizes}
    row = _override(gw, key, body)
    shown = {"hd/1024x1024": "0.012", "1024x1024": "0", "standard": "0.0035"}
    assert (row["mode"], row["image_sizes"]) == ("image", shown)
    client = _openai(gw, user_key)
    raw = client.images.with_raw_response.generate(
        model=model, prompt="a fox", n=2, size="1024x1024", quality="hd"
    )
    assert len(raw.parse().data) == 2
    assert Decimal(raw.headers["x-gatewayz-cost"]) == Decimal("0.024")  # 2 × $0.012
    client.images.generate(model=model, prompt="a fox", size="1792x1024", quality="standard")
    assert _charged(gw, user_id) == [24_000_000, 3_500_000]
    # A size and quality it does not price is refused before the provider is called.
    with pytest.raises(openai.BadRequestError) as err:
        client.images.generate(model=model, prompt="a fox", size="1792x1024", quality="hd")
    assert err.value.code == "pricing_unavailable"
    # GET shows the row and the price charged now.
    got = _price(gw, key, IMAGE_NATIVE, "deepinfra")
    [listed] = [o for o in got["data"] if o["id"] == row["id"]]
    assert (listed["mode"], listed["image_sizes"]) == ("image", shown)
    eff = got["effective"]
    assert (eff["source"], eff["mode"], eff["image_sizes"]) == ("override", "image", shown)
    assert "image" not in eff and eff["prompt"] == "0"
    call(gw, "DELETE", f"/admin/pricing/{row['id']}", key)


def test_admin_media_override_without_a_mode_keeps_the_packaged_rows(
    gw: Gateway, admin: tuple[str, str]
) -> None:
    """No mode: the packaged row's mode stays, and the price is checked as one of that mode
    (no token prices needed for audio or images)."""
    _, key = admin
    audio = _override(
        gw, key, {"model": "openai/whisper-1", "provider": "openai", "second": "0.0002"}
    )
    sizes = {"medium/1024x1024": "0.05"}
    image = _override(
        gw, key, {"model": "openai/gpt-image-1", "provider": "openai", "image_sizes": sizes}
    )
    try:
        assert "mode" not in audio and "mode" not in image
        eff = _price(gw, key, "openai/whisper-1", "openai")["effective"]
        assert (eff["source"], eff["mode"], eff["second"]) == ("override", "audio", "0.0002")
        eff = _price(gw, key, "openai/gpt-image-1", "openai")["effective"]
        assert (eff["mode"], eff["image_sizes"]) == ("image", {"medium/1024x1024": "0.05"})
        # An audio price needs `second`; a chat price cannot replace an image row.
        r = call(
            gw, "POST", "/admin/pricing", key, json={"model": "openai/whisper-1", "request": "1"}
        )
        assert_openai_error(r, 400, "second")
        chat = {"model": "openai/gpt-image-1", "mode": "chat", "prompt": "1", "completion": "1"}
        assert_openai_error(call(gw, "POST", "/admin/pricing", key, json=chat), 400, "mode")
    finally:
        for row in (audio, image):
            call(gw, "DELETE", f"/admin/pricing/{row['id']}", key)


@pytest.mark.parametrize(
    ("body", "param", "says"),
    [
        ({"mode": "video", "prompt": "1", "completion": "1"}, "mode", "one of chat, embedding"),
        ({"mode": ["audio"], "second": "1"}, "mode", "one of chat, embedding"),
        ({"mode": "audio"}, "second", "required for mode audio"),
        ({"mode": "audio", "second": 0.001}, "second", "floats"),
        ({"mode": "audio", "second": "-0.1"}, "second", "negative"),
        ({"mode": "audio", "second": "1000001"}, "second", "at most"),
        ({"mode": "audio", "second": "NaN"}, "second", "finite"),
        ({"mode": "audio", "second": "1e-99999999"}, "second", "decimal places"),
        ({"mode": "embedding", "second": "1"}, "prompt", "required for mode embedding"),
        ({"mode": "chat", "prompt": "1"}, "completion", "required for mode chat"),
        ({"prompt": "1", "completion": "1", "second": "0.1"}, "second", "prices audio"),
        ({"mode": "image"}, "image", "needs 'image'"),
        ({"mode": "image", "image_sizes": {}}, "image_sizes", "an object of 1 to 64"),
        ({"mode": "image", "image_sizes": ["1024x1024"]}, "image_sizes", "an object of 1 to"),
        ({"mode": "image", "image_sizes": "1024x1024=1"}, "image_sizes", "an object of 1 to"),
        (
            {"mode": "image", "image_sizes": {f"{64 + i}x64": "1" for i in range(65)}},
            "image_sizes",
            "an object of 1 to 64",
        ),
        ({"mode": "image", "image_sizes": {"ultra/1024x1024": "1"}}, "image_sizes", "key"),
        ({"mode": "image", "image_sizes": {"auto": "1"}}, "image_sizes", "key"),
        ({"mode": "image", "image_sizes": {"HD": "1"}}, "image_sizes", "key"),
        ({"mode": "image", "image_sizes": {"1024x1024\n": "1"}}, "image_sizes", "key"),
        ({"mode": "image", "image_sizes": {"10x10": "1"}}, "image_sizes", "key"),
        ({"mode": "image", "image_sizes": {"hd/1024x1024/x": "1"}}, "image_sizes", "key"),
        ({"mode": "image", "image_sizes": {"1024x1024": "-1"}}, "image_sizes", "negative"),
        ({"mode": "image", "image_sizes": {"1024x1024": 0.5}}, "image_sizes", "floats"),
        ({"mode": "image", "image_sizes": {"1024x1024": "x"}}, "image_sizes", "not a number"),
        ({"mode": "image", "image_sizes": {"hd": "2e6"}}, "image_sizes", "at most"),
        ({"mode": "image", "image_sizes": {"hd": None}}, "image_sizes", "not NoneType"),
        (
            {"mode": "audio", "second": "1", "image_sizes": {"hd": "1"}},
            "image_sizes",
            "prices image",
        ),
    ],
)
def test_admin_media_pricing_bad_requests_are_400(
    gw: Gateway, admin: tuple[str, str], body: dict[str, Any], param: str, says: str
) -> None:
    model = "acme/bad-media-price-model"
    r = call(gw, "POST", "/admin/pricing", admin[1], json={"model": model, **body})
    assert_openai_error(r, 400, param)
    assert says in r.json()["error"]["message"]
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
