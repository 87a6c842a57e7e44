"""The storage boundary: SQL lives in `storage/` alone, and `storage/` depends on nothing above it.

Read from the source (every import statement, those inside functions and `TYPE_CHECKING`
blocks included), so a module that reaches for SQLAlchemy, or a repository that reaches up into
the domain, fails here with its name and line.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import gatewayz

PACKAGE = Path(gatewayz.__file__).parent
STORAGE = PACKAGE / "storage"
# The database libraries: only the storage layer talks to them.
DATABASE_LIBRARIES = ("sqlalchemy", "alembic")
# What the storage layer may not import (the layers above it: edge, application, domain).
ABOVE_STORAGE = (
    "api",
    "pipeline",
    "routing",
    "billing",
    "security",
    "cache",
    "catalog",
    "reliability",
    "accounts",
    "ratelimit",
    "observability",
    "services",
    "app",
    "cli",
)


def imported_modules(path: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            if node.module == "gatewayz":  # `from gatewayz import billing`
                for alias in node.names:
                    yield node.lineno, f"{node.module}.{alias.name}"


def top(name: str) -> str:
    return name.split(".", 1)[0]


def test_only_storage_imports_the_database_libraries() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if STORAGE not in path.parents
        for line, name in imported_modules(path)
        if top(name) in DATABASE_LIBRARIES
    ]
    assert not offenders, "\n".join(offenders)


def test_storage_imports_nothing_above_it() -> None:
    forbidden = tuple(f"gatewayz.{layer}" for layer in ABOVE_STORAGE)
    offenders = [
        f"{path.relative_to(PACKAGE)}:{line} imports {name}"
        for path in sorted(STORAGE.rglob("*.py"))
        for line, name in imported_modules(path)
        if name in forbidden or name.startswith(tuple(f"{f}." for f in forbidden))
    ]
    assert not offenders, "\n".join(offenders)
