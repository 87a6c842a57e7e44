"""Users manage their own keys over HTTP against a real gateway, using them with the openai SDK:
create (secret shown once), list (prefix + last four), update, rotate (old secret 401),
revoke (401); ownership; validation at save time; every change audited."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import openai
import pytest

from tests.api.conftest import MODEL, audit_rows, call, chat, key_row, make_user
from tests.e2e.harness import Gateway


def _sdk(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.base_url,
        api_key=key,
        max_retries=0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


def _ask(gateway: Gateway, key: str) -> str:
    with _sdk(gateway, key) as client:
        out = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hello"}]
        )
    return out.choices[0].message.content or ""


def _email() -> str:
    return f"u{secrets.token_hex(4)}@example.com"


def test_cm_1_key_lifecycle_create_use_rotate_revoke(gw: Gateway) -> None:
    user_id, owner_key = make_user(gw, _email())
    r = call(gw, "POST", "/user/api-keys", owner_key, {"name": "ci", "rpm_limit": 42})
    assert r.status_code == 201, r.text
    created = r.json()
    secret = created["api_key"]
    assert secret.startswith(f"gw_{gw.settings.env}_")
    assert created["name"] == "ci" and created["environment"] == gw.settings.env
    assert secret.startswith(created["prefix"]) and secret.endswith(created["last_four"])
    assert (created["ip_allowlist"], created["domain_allowlist"]) == ([], [])
    assert created["rpm_limit"] == 42 and created["expires_at"] is None
    assert created["created_at"]
    key_id = created["id"]
    assert key_row(gw, key_id)["limits"] == {"user_rpm": 42}

    assert _ask(gw, secret)  # the new key works with the official SDK

    listing = call(gw, "GET", "/user/api-keys", owner_key)
    assert listing.status_code == 200
    assert secret not in listing.text and 'api_key"' not in listing.text
    assert "key_hash" not in listing.text and "encrypted" not in listing.text
    ids = [k["id"] for k in listing.json()["data"]]
    assert key_id in ids and len(ids) == 2
    shown = next(k for k in listing.json()["data"] if k["id"] == key_id)
    assert (shown["prefix"], shown["last_four"]) == (created["prefix"], created["last_four"])

    # Rotation: same id, new secret (returned once); the old secret stops working at once.
    r = call(gw, "PATCH", f"/user/api-keys/{key_id}", owner_key, {"rotate": True})
    assert r.status_code == 200, r.text
    rotated = r.json()
    new_secret = rotated["api_key"]
    assert rotated["id"] == key_id and new_secret != secret
    assert rotated["name"] == "ci" and rotated["rpm_limit"] == 42
    with pytest.raises(openai.AuthenticationError):
        _ask(gw, secret)
    assert _ask(gw, new_secret)

    # Revocation: 401 from then on, and the key leaves the listing.
    r = call(gw, "DELETE", f"/user/api-keys/{key_id}", owner_key)
    assert r.status_code == 200 and r.json() == {"id": key_id, "object": "api_key", "deleted": True}
    with pytest.raises(openai.AuthenticationError):
        _ask(gw, new_secret)
    assert key_id not in [
        k["id"] for k in call(gw, "GET", "/user/api-keys", owner_key).json()["data"]
    ]
    assert call(gw, "DELETE", f"/user/api-keys/{key_id}", owner_key).status_code == 404

    # Every change is in the audit log, without any secret.
    for event in ("key_created", "key_rotated", "key_revoked"):
        rows = audit_rows(gw, event, lambda rs: any(r["api_key_id"] == key_id for r in rs))
        mine = [r for r in rows if r["api_key_id"] == key_id]
        assert len(mine) == 1, event
        assert mine[0]["user_id"] == user_id and mine[0]["ip"] == "127.0.0.1"
        assert secret not in str(mine[0]) and new_secret not in str(mine[0])
    # A bare rotation changes no field: no key_updated event (everything else is flushed).
    assert not [r for r in audit_rows(gw, "key_updated", wait_s=0) if r["api_key_id"] == key_id]


def test_cm_1_patch_fields_and_allowlists_take_effect_immediately(gw: Gateway) -> None:
    _, owner_key = make_user(gw, _email())
    created = call(gw, "POST", "/user/api-keys", owner_key, {"name": "a"}).json()
    key_id, secret = created["id"], created["api_key"]
    assert chat(gw, secret).status_code == 200  # cached in the auth cache now
    expires = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    r = call(
        gw,
        "PATCH",
        f"/user/api-keys/{key_id}",
        owner_key,
        {
            "name": "renamed",
            "ip_allowlist": ["10.0.0.0/8"],
            "rpm_limit": 7,
            "expires_at": expires.isoformat(),
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "api_key" not in body
    assert (body["name"], body["ip_allowlist"], body["rpm_limit"]) == ("renamed", ["10.0.0.0/8"], 7)
    assert datetime.fromisoformat(body["expires_at"]) == expires
    assert chat(gw, secret).status_code == 403  # the cached principal was invalidated
    r = call(
        gw, "PATCH", f"/user/api-keys/{key_id}", owner_key, {"ip_allowlist": [], "rpm_limit": None}
    )
    assert r.status_code == 200 and r.json()["ip_allowlist"] == [] and r.json()["rpm_limit"] is None
    assert key_row(gw, key_id)["limits"] is None
    assert chat(gw, secret).status_code == 200
    updated = audit_rows(
        gw, "key_updated", lambda rs: sum(x["api_key_id"] == key_id for x in rs) >= 2
    )
    fields = [r["detail"]["fields"] for r in updated if r["api_key_id"] == key_id]
    assert fields == [["expires_at", "ip_allowlist", "limits", "name"], ["ip_allowlist", "limits"]]


def test_cm_1_users_only_see_and_modify_their_own_keys(gw: Gateway) -> None:
    _, alice = make_user(gw, _email())
    _, bob = make_user(gw, _email())
    alice_key = call(gw, "POST", "/user/api-keys", alice, {"name": "alice"}).json()
    path = f"/user/api-keys/{alice_key['id']}"
    assert call(gw, "PATCH", path, bob, {"name": "mine"}).status_code == 404
    assert call(gw, "PATCH", path, bob, {"rotate": True}).status_code == 404
    r = call(gw, "DELETE", path, bob)
    assert r.status_code == 404 and r.json()["error"]["code"] == "api_key_not_found"
    assert alice_key["id"] not in call(gw, "GET", "/user/api-keys", bob).text
    assert chat(gw, alice_key["api_key"]).status_code == 200  # untouched
    assert call(gw, "PATCH", "/user/api-keys/key_nope", alice, {"name": "x"}).status_code == 404


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"name": "x", "ip_allowlist": ["10.0.0.1/8"]}, "ip_allowlist"),
        ({"name": "x", "ip_allowlist": ["10.0.0.0/33"]}, "ip_allowlist"),
        ({"name": "x", "ip_allowlist": ["not-an-ip"]}, "ip_allowlist"),
        ({"name": "x", "ip_allowlist": ["2001:db8::/200"]}, "ip_allowlist"),
        ({"name": "x", "domain_allowlist": ["https://example.com/"]}, "domain_allowlist"),
        ({"name": "x", "domain_allowlist": ["bad domain"]}, "domain_allowlist"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "x", "environment": "prod"}, "environment"),
        ({"name": "x", "rpm_limit": 0}, "rpm_limit"),
        ({"name": ""}, "name"),
        ({"name": "x", "unexpected": 1}, "unexpected"),
        ({}, "name"),
    ],
)
def test_cm_1_invalid_key_settings_rejected_at_save_time(
    gw: Gateway, body: dict[str, object], param: str
) -> None:
    r = call(gw, "POST", "/user/api-keys", gw.api_key, body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    assert err["param"] == param, err
    if param == "ip_allowlist":
        assert body["ip_allowlist"][0] in err["message"]  # type: ignore[index]


def test_cm_1_invalid_cidr_rejected_on_update_and_nothing_changes(gw: Gateway) -> None:
    _, owner = make_user(gw, _email())
    created = call(gw, "POST", "/user/api-keys", owner, {"name": "x", "ip_allowlist": ["::1"]})
    assert created.status_code == 201 and created.json()["ip_allowlist"] == ["::1"]
    path = f"/user/api-keys/{created.json()['id']}"
    r = call(gw, "PATCH", path, owner, {"name": "y", "ip_allowlist": ["10.0.0.0/8", "1.2.3.4/40"]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "ip_allowlist"
    assert key_row(gw, created.json()["id"])["name"] == "x"


def test_cm_1_other_environments_need_the_permission(gw: Gateway) -> None:
    other = "live" if gw.settings.env != "live" else "test"
    _, free_key = make_user(gw, _email(), role="free")
    r = call(gw, "POST", "/user/api-keys", free_key, {"name": "x", "environment": other})
    assert r.status_code == 403 and r.json()["error"]["code"] == "insufficient_permissions"
    assert call(gw, "POST", "/user/api-keys", free_key, {"name": "x"}).status_code == 201
    _, dev_key = make_user(gw, _email(), role="dev")
    r = call(gw, "POST", "/user/api-keys", dev_key, {"name": "x", "environment": other})
    assert r.status_code == 201 and r.json()["api_key"].startswith(f"gw_{other}_")


def test_cm_1_key_routes_need_a_valid_key(gw: Gateway) -> None:
    assert call(gw, "GET", "/user/api-keys").status_code == 401
    r = call(gw, "GET", "/user/api-keys", "gw_test_" + "x" * 43)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def test_team_role_reads_its_own_audit_events(gw: Gateway) -> None:
    user_id, team_key = make_user(gw, _email(), role="team")
    created = call(gw, "POST", "/user/api-keys", team_key, {"name": "t"}).json()
    audit_rows(gw, "key_created", lambda rs: any(r["api_key_id"] == created["id"] for r in rs))
    r = call(gw, "GET", "/user/audit-logs", team_key)
    assert r.status_code == 200
    events = r.json()["data"]
    assert events and all(e["user_id"] == user_id for e in events)
    _, dev_key = make_user(gw, _email(), role="dev")
    assert call(gw, "GET", "/user/audit-logs", dev_key).status_code == 403
