"""Engines and migrations.

`Database` owns the application's async engine; `upgrade` brings any database to the head
revision with Alembic (configured in code, so it works from an installed package). SQLite runs
in WAL mode with a busy timeout and enforced foreign keys; PostgreSQL uses a pre-pinged pool.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeAlias

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool, StaticPool

# The connection repositories take (`async with db.begin() as conn:`). Code outside storage/
# names it by this alias: nothing there imports SQLAlchemy.
DbConnection: TypeAlias = AsyncConnection

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Serialises concurrent `upgrade` calls on PostgreSQL (SQLite uses BEGIN IMMEDIATE).
_PG_MIGRATION_LOCK = 0x6761_7465_7761_797A  # "gatewayz"


def _sqlite_path(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other backends and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def make_engine(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    foreign_keys: bool = True,
    pooled: bool = True,
    echo: bool = False,
    sqlite_busy_timeout_ms: int = 5000,
) -> AsyncEngine:
    """An async engine for a `sqlite+aiosqlite://` or `postgresql+asyncpg://` URL.
    `sqlite_busy_timeout_ms`: how long a SQLite connection waits for a lock (from its first
    statement: switching a fresh file to WAL needs one)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        path = _sqlite_path(url)
        if path is None:  # in-memory: one shared connection or the data vanishes
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            if pooled:
                kwargs.update(pool_size=pool_size, max_overflow=max_overflow)
            else:
                kwargs["poolclass"] = NullPool
    elif pooled:
        kwargs.update(
            pool_size=pool_size, max_overflow=max_overflow, pool_pre_ping=True, pool_recycle=1800
        )
    else:
        kwargs["poolclass"] = NullPool
    engine = create_async_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _install_sqlite_pragmas(
            engine.sync_engine, foreign_keys=foreign_keys, busy_timeout_ms=sqlite_busy_timeout_ms
        )
    return engine


def dialect_insert(conn: AsyncConnection | Connection, table: Any) -> Any:
    """An INSERT of the connection's dialect (for ON CONFLICT, which each writes its own way)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for PostgreSQL and in-memory databases."""
    return _sqlite_path(url)


# busy_timeout first: switching a fresh database to WAL needs its lock, which a worker migrating
# it holds; without the timeout set yet, that pragma fails at once with "database is locked".
SQLITE_PRAGMAS = (
    "PRAGMA busy_timeout=5000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def _install_sqlite_pragmas(engine: Engine, *, foreign_keys: bool, busy_timeout_ms: int) -> None:
    pragmas = [
        f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
        *SQLITE_PRAGMAS[1:-1],
        f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}",
    ]

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()


class Database:
    """The application's connection pool. `async with db.begin() as conn:` is one transaction."""

    def __init__(
        self, url: str, *, pool_size: int = 10, max_overflow: int = 20, echo: bool = False
    ) -> None:
        self.url = url
        self.engine: AsyncEngine = make_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, echo=echo
        )

    @property
    def dialect(self) -> str:
        """`"sqlite"` or `"postgresql"`."""
        return self.engine.dialect.name

    def begin(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection inside a transaction, committed on success, rolled back on error."""
        return self.engine.begin()

    def connect(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection without an explicit transaction (commit it yourself)."""
        return self.engine.connect()

    async def ping(self) -> None:
        """One round trip to the database (raises when it cannot be reached)."""
        async with self.engine.begin() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def alembic_config(url: str | None = None) -> Config:
    """Alembic configuration pointing at the packaged migrations (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _upgrade_sync(connection: Connection) -> str:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is None:
        raise RuntimeError("migration finished without a revision")
    return revision


def _current_sync(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


_SQLITE_MIGRATION_WAIT_MS = 120_000


async def upgrade(url: str) -> str:
    """Migrate the database at `url` to head and return the revision. Idempotent."""
    # Another worker's migration may take longer than a request would wait for a lock: from
    # the connection's first statement on (switching a fresh SQLite file to WAL needs the lock
    # a migrating worker holds).
    engine = make_engine(
        url, foreign_keys=False, pooled=False, sqlite_busy_timeout_ms=_SQLITE_MIGRATION_WAIT_MS
    )
    try:
        async with engine.begin() as conn:
            # Take the database's write lock before Alembic looks at anything, so concurrent
            # upgrades (workers starting together) run one after the other, not interleaved.
            if conn.dialect.name == "postgresql":
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_MIGRATION_LOCK})")
            else:
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            return await conn.run_sync(_upgrade_sync)
    finally:
        await engine.dispose()


def head_revision() -> str:
    """The newest migration this version of gatewayz ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # the package ships its migrations
    return head


def revision_status(current: str | None, head: str) -> str:
    """`current` (at head), `empty` (never migrated), `behind` (a revision this version knows,
    older than head) or `unknown` (one it does not know: a newer gatewayz migrated it)."""
    if current == head:
        return "current"
    if current is None:
        return "empty"
    try:
        known = ScriptDirectory.from_config(alembic_config()).get_revision(current)
    except CommandError:
        known = None
    return "behind" if known is not None else "unknown"


async def current_revision(url: str) -> str | None:
    """The database's revision, or None if it was never migrated."""
    engine = make_engine(url, pooled=False)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current_sync)
    finally:
        await engine.dispose()
