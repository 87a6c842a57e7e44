"""Roles and permissions, loaded once from roles.toml (permissions are data, SPEC §1).

Exactly four roles: admin, team, dev, free. A role lists the permissions it adds to the role it
inherits; the loader resolves inheritance and checks the invariants the rest of the gateway
relies on: the roles are exactly `tables.ROLES`, every permission is described, admin holds
every permission, and free holds the fewest (every other role includes free's).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from gatewayz.storage.tables import ROLES

ROLES_FILE = Path(__file__).with_name("roles.toml")


@dataclass(frozen=True, slots=True)
class RoleTable:
    permissions: dict[str, str]  # permission -> description
    roles: dict[str, frozenset[str]]  # role -> every permission it holds (inheritance resolved)

    def of(self, role: str) -> frozenset[str]:
        """The permissions of a role; an unknown role holds none."""
        return self.roles.get(role, frozenset())

    def allows(self, role: str, permission: str) -> bool:
        if permission not in self.permissions:
            raise KeyError(f"unknown permission {permission!r}")
        return permission in self.of(role)


def _resolve(name: str, raw: dict[str, dict[str, object]], seen: tuple[str, ...]) -> set[str]:
    if name in seen:
        raise ValueError(f"roles.toml: inheritance cycle {' -> '.join((*seen, name))}")
    entry = raw.get(name)
    if entry is None:
        raise ValueError(f"roles.toml: unknown role {name!r}")
    perms = set(entry.get("permissions", []))  # type: ignore[call-overload]
    parent = entry.get("inherits")
    if parent is not None:
        perms |= _resolve(str(parent), raw, (*seen, name))
    return perms


def parse_roles(data: dict[str, object]) -> RoleTable:
    """A `RoleTable` from the parsed TOML; `ValueError` if an invariant does not hold."""
    described = dict(data.get("permissions", {}))  # type: ignore[call-overload]
    raw: dict[str, dict[str, object]] = dict(data.get("roles", {}))  # type: ignore[call-overload]
    if set(raw) != set(ROLES):
        raise ValueError(f"roles.toml: roles must be exactly {', '.join(ROLES)}; got {sorted(raw)}")
    roles = {name: frozenset(_resolve(name, raw, ())) for name in ROLES}
    for name, perms in roles.items():
        unknown = perms - described.keys()
        if unknown:
            raise ValueError(f"roles.toml: role {name} has undescribed {sorted(unknown)}")
        if not perms:
            raise ValueError(f"roles.toml: role {name} has no permissions")
    if roles["admin"] != frozenset(described):
        missing = sorted(frozenset(described) - roles["admin"])
        raise ValueError(f"roles.toml: admin must hold every permission; lacks {missing}")
    for name, perms in roles.items():
        if not roles["free"] <= perms:
            raise ValueError(f"roles.toml: role {name} lacks some of free's permissions")
    if len(set(roles.values())) != len(roles):
        raise ValueError("roles.toml: two roles have the same permissions")
    return RoleTable(permissions=described, roles=roles)


@cache
def load_roles(path: Path = ROLES_FILE) -> RoleTable:
    with path.open("rb") as f:
        return parse_roles(tomllib.load(f))
