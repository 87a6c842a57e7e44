"""The plain SQL the request path's ledger operations run (`holds.py`, `leases.py`): written
once for SQLite and PostgreSQL, executed on a SQLAlchemy connection or, in the SQLite ledger
thread (`runner.py`), directly on the stdlib sqlite3 connection."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.engine import Connection

from gatewayz.storage.tables import UTCDateTime

Conn = Connection | sqlite3.Connection
MOMENTS = (bindparam("moment", type_=UTCDateTime()), bindparam("expires", type_=UTCDateTime()))


def sql(statement: str, *typed: Any) -> Any:
    return text(statement).bindparams(*typed)


def first(conn: Conn, statement: Any, params: dict[str, Any]) -> Any:
    """Execute; the first row or None. On a raw sqlite3 connection the same SQL runs directly
    (sqlite3 takes `:name` parameters), timestamps stored the way SQLAlchemy stores them."""
    if isinstance(conn, sqlite3.Connection):
        return conn.execute(statement.text, {k: _sqlite(v) for k, v in params.items()}).fetchone()
    return conn.execute(statement, params).first()


def fetch_all(conn: Conn, statement: Any, params: dict[str, Any]) -> list[Any]:
    """Execute; every row."""
    if isinstance(conn, sqlite3.Connection):
        return conn.execute(statement.text, {k: _sqlite(v) for k, v in params.items()}).fetchall()
    return list(conn.execute(statement, params))


def execute(conn: Conn, statement: Any, params: dict[str, Any]) -> None:
    """Execute a statement that returns no rows."""
    if isinstance(conn, sqlite3.Connection):
        conn.execute(statement.text, {k: _sqlite(v) for k, v in params.items()})
    else:
        conn.execute(statement, params)


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):  # UTCDateTime on SQLite: naive UTC, microseconds
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    return value


def day_of(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()
