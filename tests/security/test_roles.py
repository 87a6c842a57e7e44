"""Roles and permissions are data (roles.toml): exactly four roles, admin ⊇ all, free minimal."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from gatewayz.security.roles import ROLES_FILE, RoleTable, load_roles, parse_roles
from gatewayz.storage.tables import ROLES


@pytest.fixture
def table() -> RoleTable:
    return load_roles()


def _raw() -> dict[str, Any]:
    with ROLES_FILE.open("rb") as f:
        return tomllib.load(f)


def test_cm_1_6_rbac_four_tiers_exist(table: RoleTable) -> None:
    assert set(table.roles) == {"admin", "team", "dev", "free"} == set(ROLES)
    # Each role has its own permission set: no two are equal, none is empty.
    sets = list(table.roles.values())
    assert all(sets)
    assert len(set(sets)) == 4
    # The hierarchy is strict: free ⊂ dev ⊂ team ⊂ admin.
    assert table.of("free") < table.of("dev") < table.of("team") < table.of("admin")


def test_cm_1_7_admin_role_has_all_permissions(table: RoleTable) -> None:
    others = table.of("free") | table.of("dev") | table.of("team")
    admin = table.of("admin")
    assert others <= admin
    admin_only = admin - others
    assert {"admin:access", "admin:users:read", "admin:users:write"} <= admin_only
    assert admin == frozenset(table.permissions)  # every described permission


def test_cm_1_8_free_role_has_minimum_permissions(table: RoleTable) -> None:
    free = table.of("free")
    for role in ("dev", "team", "admin"):
        assert free < table.of(role), role
    assert min(table.roles.values(), key=len) == free
    assert not any(p.startswith("admin:") for p in free)
    assert table.allows("free", "chat") and not table.allows("free", "admin:access")
    assert not table.allows("free", "keys:environments")
    assert table.of("nobody") == frozenset()


def test_allows_rejects_unknown_permission(table: RoleTable) -> None:
    with pytest.raises(KeyError):
        table.allows("admin", "admin:typo")


def _flatten_admin(data: dict[str, Any]) -> None:
    """Admin lists every permission itself, so breaking a lower role cannot break admin."""
    data["roles"]["admin"] = {"permissions": list(data["permissions"])}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["roles"].pop("team"), "exactly"),
        (lambda d: d["roles"].__setitem__("owner", {"permissions": ["chat"]}), "exactly"),
        (lambda d: d["roles"]["dev"]["permissions"].append("undescribed"), "undescribed"),
        (lambda d: d["roles"]["admin"]["permissions"].remove("admin:users:write"), "every"),
        (lambda d: _flatten_admin(d) or d["roles"]["dev"].pop("inherits"), "free's"),
        (lambda d: d["roles"]["free"].__setitem__("inherits", "admin"), "cycle"),
        (
            lambda d: _flatten_admin(d) or d["roles"]["team"].__setitem__("permissions", []),
            "same permissions",
        ),
    ],
)
def test_invalid_role_data_is_refused(mutate: Any, message: str) -> None:
    data = _raw()
    parse_roles(data)  # the shipped file is valid
    mutate(data)
    with pytest.raises(ValueError, match=message):
        parse_roles(data)
