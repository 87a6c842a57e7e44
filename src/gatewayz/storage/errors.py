"""What the database layer raises, named for the code above it (which imports no SQLAlchemy).

`DB_ERRORS` are the failures of the database itself — unreachable, refusing, a driver error —
as opposed to a bug of ours: callers that can carry on without the database (serve stale data,
spool a settle, answer 503) catch exactly these. `is_outage` tells the two kinds of failed write
apart for the off-path writers: the database cannot take any write now, or it rejected these
rows. `DuplicateValue` is a unique column refusing a value another row holds.
"""

from __future__ import annotations

import sqlite3

from alembic.util import CommandError
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

# What a database operation raises when the database fails (not a bug of ours). sqlite3's own
# errors come from the ledger runner's raw connection (`storage.ledger.runner`).
DB_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, sqlite3.Error)
# What a migration raises when Alembic cannot run it (a revision it does not know, ...).
MIGRATION_ERRORS: tuple[type[Exception], ...] = (CommandError,)

# PostgreSQL SQLSTATE classes that say the database cannot take the write now, whatever the
# rows: 08 connection exception, 40 transaction rollback (deadlock, serialization), 42 syntax or
# access rule (the table or a privilege is missing: no row can fix that), 53 insufficient
# resources, 55 object not in prerequisite state (lock not available, database not accepting
# connections), 57 operator intervention (shutdown, cannot connect now), 58 system error (I/O).
# Class 22 (data exception) and 23 (integrity constraint violation) are about the rows.
_OUTAGE_SQLSTATE_CLASSES = frozenset({"08", "40", "42", "53", "55", "57", "58"})


class DuplicateValue(ValueError):
    """A unique column already holds the value (another row has it, or a concurrent insert of
    the same value won)."""


def is_outage(exc: BaseException) -> bool:
    """True when `exc` says the database cannot take writes now (keep the rows and retry);
    False when it rejected what was written (isolate the rows to blame)."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate:
            return sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES
        # SQLite: database locked, disk I/O error, no such table, cannot open the file.
        return isinstance(exc, OperationalError)
    return isinstance(exc, (OSError, PoolTimeout, DisconnectionError))


def describe(exc: BaseException) -> str:
    """The driver's error in one line (`DataError` from SQLAlchemy carries the whole statement
    and every parameter of the batch: not for a log line)."""
    error: BaseException = exc
    orig = getattr(exc, "orig", None)
    if isinstance(orig, BaseException):
        # asyncpg errors reach SQLAlchemy translated; the original names the condition.
        error = orig.__cause__ if isinstance(orig.__cause__, Exception) else orig
    lines = str(error).strip().splitlines()
    name = type(error).__name__
    return f"{name}: {lines[0]}" if lines else name


def summary(exc: BaseException) -> str:
    """A failed database operation for an operator, in one line: an OS error as it reads, any
    other as its class and the first line of its message (SQLAlchemy appends the statement)."""
    if isinstance(exc, OSError):
        return str(exc)
    lines = str(exc).splitlines()
    return f"{exc.__class__.__name__}: {lines[0]}" if lines else exc.__class__.__name__
