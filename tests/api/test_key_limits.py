"""Who may set a key's rate limits: a user may only lower a key's requests per minute below its
plan's (or below what an administrator granted the key); raising is an administrator's action,
`PATCH /admin/api-keys/{id}` (guarded, audited, in effect at once)."""

from __future__ import annotations

import secrets

import pytest

from gatewayz.billing.plans import load_plans
from tests.api.conftest import audit_rows, call, chat, key_row, make_user
from tests.e2e.harness import Gateway

TRIAL_RPM = load_plans().tier("trial").rpm  # make_user's users are on the trial plan


def _email(tag: str = "u") -> str:
    return f"{tag}{secrets.token_hex(4)}@example.com"


def _new_key(gw: Gateway, owner: str, **fields: object) -> dict[str, object]:
    r = call(gw, "POST", "/user/api-keys", owner, {"name": "k", **fields})
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


def _limit_header(gw: Gateway, key: str) -> int:
    r = chat(gw, key)
    assert r.status_code == 200, r.text
    return int(r.headers["x-ratelimit-limit"])


@pytest.mark.parametrize("rpm", [TRIAL_RPM + 1, 1_000_000])
def test_a_user_cannot_create_a_key_above_the_plans_rpm(gw: Gateway, rpm: int) -> None:
    _, owner = make_user(gw, _email())
    r = call(gw, "POST", "/user/api-keys", owner, {"name": "k", "rpm_limit": rpm})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "rpm_limit" and err["type"] == "invalid_request_error"
    assert f"{TRIAL_RPM} requests per minute" in err["message"] and "plan" in err["message"]


def test_a_user_cannot_raise_a_keys_rpm_above_the_plan_and_nothing_changes(gw: Gateway) -> None:
    _, owner = make_user(gw, _email())
    key = _new_key(gw, owner, rpm_limit=10)
    path = f"/user/api-keys/{key['id']}"
    r = call(gw, "PATCH", path, owner, {"name": "renamed", "rpm_limit": TRIAL_RPM + 1})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == "rpm_limit"
    assert str(TRIAL_RPM) in r.json()["error"]["message"]
    row = key_row(gw, str(key["id"]))
    assert row["name"] == "k" and row["limits"] == {"user_rpm": 10}


def test_a_user_may_set_the_plans_rpm_or_lower_and_it_applies(gw: Gateway) -> None:
    _, owner = make_user(gw, _email())
    key = _new_key(gw, owner, rpm_limit=TRIAL_RPM)
    assert key["rpm_limit"] == TRIAL_RPM
    secret = str(key["api_key"])
    assert _limit_header(gw, secret) == TRIAL_RPM
    r = call(gw, "PATCH", f"/user/api-keys/{key['id']}", owner, {"rpm_limit": 5})
    assert r.status_code == 200 and r.json()["rpm_limit"] == 5
    assert _limit_header(gw, secret) == 5


def test_an_admin_raises_a_keys_limits_above_the_plan(gw: Gateway) -> None:
    owner_id, owner = make_user(gw, _email())
    admin_id, admin = make_user(gw, _email("admin"), role="admin")
    key = _new_key(gw, owner)
    secret, key_id = str(key["api_key"]), str(key["id"])
    assert _limit_header(gw, secret) == TRIAL_RPM  # cached by the auth cache now
    limits = {"rpm": 5000, "tokens_per_day": 9_000_000, "tokens_per_month": 90_000_000}
    r = call(gw, "PATCH", f"/admin/api-keys/{key_id}", admin, {"limits": limits})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == key_id and body["user_id"] == owner_id
    assert body["limits"] == limits and body["effective_limits"] == limits
    assert key_row(gw, key_id)["limits"] == limits
    assert _limit_header(gw, secret) == 5000  # every worker's cached principal was dropped
    rows = audit_rows(gw, "key_limits_set", lambda rs: any(x["api_key_id"] == key_id for x in rs))
    row = next(x for x in rows if x["api_key_id"] == key_id)
    assert row["user_id"] == owner_id and row["detail"]["by_user"] == admin_id
    assert row["detail"]["to"] == limits and row["detail"]["from"] is None
    # The owner may now choose anything up to the administrator's grant, not beyond it.
    path = f"/user/api-keys/{key_id}"
    r = call(gw, "PATCH", path, owner, {"rpm_limit": 5001})
    assert r.status_code == 400 and "5000 requests per minute" in r.json()["error"]["message"]
    r = call(gw, "PATCH", path, owner, {"rpm_limit": 1000})
    assert r.status_code == 200 and r.json()["rpm_limit"] == 1000
    assert _limit_header(gw, secret) == 1000
    # Clearing one grant (null) leaves the others; the plan applies to it again.
    r = call(gw, "PATCH", f"/admin/api-keys/{key_id}", admin, {"limits": {"rpm": None}})
    assert r.status_code == 200, r.text
    assert r.json()["limits"] == {k: v for k, v in limits.items() if k != "rpm"}
    assert r.json()["effective_limits"]["rpm"] == TRIAL_RPM  # the user's 1000 is capped too
    assert _limit_header(gw, secret) == TRIAL_RPM


@pytest.mark.parametrize("role", ["free", "dev", "team"])
def test_only_admins_may_set_key_limits(gw: Gateway, role: str) -> None:
    user_id, key = make_user(gw, _email(role), role=role)
    own = _new_key(gw, key)
    r = call(gw, "PATCH", f"/admin/api-keys/{own['id']}", key, {"limits": {"rpm": 5000}})
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "insufficient_permissions"
    assert key_row(gw, str(own["id"]))["limits"] is None

    def mine(rows: list[dict[str, object]]) -> list[dict[str, object]]:
        return [x for x in rows if x["user_id"] == user_id]

    refused = mine(audit_rows(gw, "admin_access_denied", mine))
    assert [x["path"] for x in refused] == [f"/admin/api-keys/{own['id']}"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"limits": {"rpm": -1}}, "limits.rpm"),
        ({"limits": {"rpm": 10**7}}, "limits.rpm"),
        ({"limits": {"tokens_per_day": "lots"}}, "limits.tokens_per_day"),
        ({"limits": {"tokens_per_month": 10**13}}, "limits.tokens_per_month"),
        ({"limits": {"burst": 5}}, "limits.burst"),
        ({"limits": {}}, "limits"),
        ({}, "limits"),
    ],
)
def test_admin_key_limits_are_validated(gw: Gateway, body: dict[str, object], param: str) -> None:
    _, owner = make_user(gw, _email())
    _, admin = make_user(gw, _email("admin"), role="admin")
    key = _new_key(gw, owner)
    r = call(gw, "PATCH", f"/admin/api-keys/{key['id']}", admin, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param
    assert key_row(gw, str(key["id"]))["limits"] is None


def test_admin_key_limits_on_an_unknown_key_is_404(gw: Gateway) -> None:
    _, admin = make_user(gw, _email("admin"), role="admin")
    r = call(gw, "PATCH", "/admin/api-keys/key_nope", admin, {"limits": {"rpm": 5}})
    assert r.status_code == 404 and r.json()["error"]["code"] == "api_key_not_found"
