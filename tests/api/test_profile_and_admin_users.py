"""`GET /user/me` (the caller: role, permissions, plan) and what the web console's admin page
needs of /admin/users: search (`?q=`) and the plan change (`POST /admin/users/{id}/plan`)."""

from __future__ import annotations

import secrets
from decimal import Decimal

from tests.api.conftest import audit_rows, call, make_user
from tests.e2e.harness import Gateway


def _email(tag: str) -> str:
    return f"{tag}{secrets.token_hex(4)}@example.com"


def test_me_says_who_the_key_belongs_to_and_what_it_may_do(gw: Gateway) -> None:
    email = _email("me")
    user_id, key = make_user(gw, email, role="dev")
    r = call(gw, "GET", "/user/me", key)
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["object"] == "user" and me["id"] == user_id and me["email"] == email
    assert me["role"] == "dev" and "keys:write" in me["permissions"]
    assert "admin:access" not in me["permissions"]
    assert me["plan"] == "trial" and me["is_trial"] is True  # make_user: the default plan
    assert me["api_key_id"].startswith("key_")
    _, admin_key = make_user(gw, _email("meadmin"), role="admin")
    assert "admin:access" in call(gw, "GET", "/user/me", admin_key).json()["permissions"]
    assert call(gw, "GET", "/user/me").status_code == 401


def test_admin_searches_users_by_email_or_id(gw: Gateway) -> None:
    tag = secrets.token_hex(4)
    a_id, _ = make_user(gw, f"alice-{tag}@example.com")
    make_user(gw, f"bob-{tag}@example.com")
    make_user(gw, f"a_l%ice{tag}@example.com")  # wildcards in an address are only characters
    _, admin_key = make_user(gw, _email("searcher"), role="admin")

    def emails(q: str) -> list[str]:
        r = call(gw, "GET", f"/admin/users?q={q}", admin_key)
        assert r.status_code == 200, r.text
        page = r.json()
        assert page["total"] == len(page["data"])
        return sorted(u["email"] for u in page["data"])

    assert emails(tag) == sorted(
        [f"alice-{tag}@example.com", f"bob-{tag}@example.com", f"a_l%ice{tag}@example.com"]
    )
    assert emails(f"ALICE-{tag}") == [f"alice-{tag}@example.com"]
    assert emails(f"a_l%25ice{tag}") == [f"a_l%ice{tag}@example.com"]  # % and _ literal
    assert emails(f"a%25{tag}") == []
    assert emails(a_id) == [f"alice-{tag}@example.com"]


def test_admin_changes_a_users_plan_audited(gw: Gateway) -> None:
    user_id, key = make_user(gw, _email("plan"))
    _, admin_key = make_user(gw, _email("planadmin"), role="admin")
    before = call(gw, "GET", "/user/me", key).json()["plan"]
    target = "team" if before != "team" else "dev"
    r = call(gw, "POST", f"/admin/users/{user_id}/plan", admin_key, {"plan": target})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["plan"] == target and out["previous_plan"] == before and out["changed"] is True
    assert Decimal(out["purchased_credits"]) == 100  # purchased credits stay
    assert call(gw, "GET", "/user/me", key).json()["plan"] == target  # at once
    plan = call(gw, "GET", "/user/plan", key).json()
    assert plan["plan"] == target and Decimal(plan["allowance_remaining"]) > 0
    again = call(gw, "POST", f"/admin/users/{user_id}/plan", admin_key, {"plan": target})
    assert again.json()["changed"] is False
    rows = audit_rows(gw, "plan_changed", lambda rs: any(x["user_id"] == user_id for x in rs))
    assert [(r["detail"]["from"], r["detail"]["to"]) for r in rows if r["user_id"] == user_id] == [
        (before, target)
    ]
    bad = call(gw, "POST", f"/admin/users/{user_id}/plan", admin_key, {"plan": "platinum"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "plan"
    gone = call(gw, "POST", "/admin/users/usr_nobody/plan", admin_key, {"plan": "dev"})
    assert gone.status_code == 404
    denied = call(gw, "POST", f"/admin/users/{user_id}/plan", key, {"plan": "enterprise"})
    assert denied.status_code == 403
