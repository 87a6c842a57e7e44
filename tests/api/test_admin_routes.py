"""/admin/* routes: guarded by the admin permission; a refusal is a 403 in OpenAI's error shape
and an `admin_access_denied` audit event (CM-13.8); role changes are audited and take effect at
once."""

from __future__ import annotations

import secrets

import pytest

from tests.api.conftest import audit_rows, call, make_user
from tests.e2e.harness import Gateway


def _email(tag: str) -> str:
    return f"{tag}{secrets.token_hex(4)}@example.com"


@pytest.mark.parametrize("role", ["free", "dev", "team"])
def test_cm_13_8_audit_log_on_security_violation(gw: Gateway, role: str) -> None:
    user_id, key = make_user(gw, _email(role), role=role)
    for method, path, body in (
        ("GET", "/admin/users", None),
        ("POST", f"/admin/users/{user_id}/role", {"role": "admin"}),
    ):
        r = call(gw, method, path, key, body)
        assert r.status_code == 403, r.text
        err = r.json()["error"]
        assert err["type"] == "permission_error" and err["code"] == "insufficient_permissions"
        assert err["message"] and "param" in err  # OpenAI's error object
    rows = audit_rows(
        gw, "admin_access_denied", lambda rs: sum(x["user_id"] == user_id for x in rs) >= 2
    )
    mine = [r for r in rows if r["user_id"] == user_id]
    assert [r["path"] for r in mine] == ["/admin/users", f"/admin/users/{user_id}/role"]
    for row in mine:
        assert row["severity"] == "critical" and row["ip"] == "127.0.0.1"
        assert row["detail"]["role"] == role and row["detail"]["permission"] == "admin:access"
        assert key not in str(row)
    # The attempted self-promotion did nothing.
    _, admin_key = make_user(gw, _email("admin"), role="admin")
    users = call(gw, "GET", "/admin/users?limit=200", admin_key).json()["data"]
    assert next(u for u in users if u["id"] == user_id)["role"] == role


def test_admin_routes_without_a_key_are_401_and_audited(gw: Gateway) -> None:
    r = call(gw, "GET", "/admin/users", headers={"x-forwarded-for": "192.0.2.99"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    rows = audit_rows(gw, "auth_failed", lambda rs: any(x["ip"] == "192.0.2.99" for x in rs))
    row = next(x for x in rows if x["ip"] == "192.0.2.99")
    assert row["path"] == "/admin/users" and row["detail"]["key_presented"] is False


def test_admin_lists_users_paginated(gw: Gateway) -> None:
    _, admin_key = make_user(gw, _email("admin"), role="admin")
    for i in range(3):
        make_user(gw, _email(f"page{i}"))
    first = call(gw, "GET", "/admin/users?limit=2&offset=0", admin_key)
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["data"]) == 2 and page["total"] >= 5 and page["has_more"] is True
    rest = call(gw, "GET", "/admin/users?limit=200&offset=2", admin_key).json()
    ids = [u["id"] for u in page["data"]] + [u["id"] for u in rest["data"]]
    assert len(ids) == len(set(ids)) == page["total"] and rest["has_more"] is False
    assert set(page["data"][0]) == {
        "id",
        "email",
        "role",
        "plan",
        "tier",
        "is_active",
        "created_at",
    }
    assert call(gw, "GET", "/admin/users?limit=0", admin_key).status_code == 400
    assert call(gw, "GET", "/admin/users?limit=100000", admin_key).status_code == 400


def test_admin_role_change_is_audited_and_immediate(gw: Gateway) -> None:
    admin_id, admin_key = make_user(gw, _email("admin"), role="admin")
    user_id, user_key = make_user(gw, _email("promoted"), role="dev")
    assert call(gw, "GET", "/admin/users", user_key).status_code == 403  # cached as dev now
    r = call(gw, "POST", f"/admin/users/{user_id}/role", admin_key, {"role": "admin"})
    assert r.status_code == 200 and r.json() == {
        "id": user_id,
        "role": "admin",
        "previous_role": "dev",
    }
    assert call(gw, "GET", "/admin/users", user_key).status_code == 200  # no stale cache
    rows = audit_rows(gw, "role_changed", lambda rs: any(x["user_id"] == user_id for x in rs))
    row = next(x for x in rows if x["user_id"] == user_id)
    assert row["detail"] == {"by_user": admin_id, "from": "dev", "to": "admin"}
    # Demote again; bad input is a clear 4xx.
    r = call(gw, "POST", f"/admin/users/{user_id}/role", admin_key, {"role": "free"})
    assert r.status_code == 200 and call(gw, "GET", "/admin/users", user_key).status_code == 403
    r = call(gw, "POST", f"/admin/users/{user_id}/role", admin_key, {"role": "owner"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "role"
    r = call(gw, "POST", "/admin/users/usr_nope/role", admin_key, {"role": "dev"})
    assert r.status_code == 404


def test_admin_reads_the_audit_log(gw: Gateway) -> None:
    _, admin_key = make_user(gw, _email("admin"), role="admin")
    user_id, key = make_user(gw, _email("snoop"), role="free")
    call(gw, "GET", "/admin/users", key)
    audit_rows(gw, "admin_access_denied", lambda rs: any(x["user_id"] == user_id for x in rs))
    r = call(gw, "GET", f"/admin/audit-logs?event=admin_access_denied&user_id={user_id}", admin_key)
    assert r.status_code == 200
    (event,) = r.json()["data"]
    assert event["event"] == "admin_access_denied" and event["path"] == "/admin/users"
