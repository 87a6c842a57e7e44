"""`gatewayz db ...`, and the helpers the other command groups share: settings loading and
running async work with operator-facing errors (a message on stderr and exit code 1, never a
traceback)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer

from gatewayz import __version__
from gatewayz.errors import GatewayError
from gatewayz.observability.log_config import configure_logging
from gatewayz.settings import Settings
from gatewayz.storage.db import (
    current_revision,
    head_revision,
    revision_status,
    sqlite_file,
    upgrade,
)
from gatewayz.storage.errors import DB_ERRORS, MIGRATION_ERRORS, summary

T = TypeVar("T")

app = typer.Typer(help="Database maintenance.", no_args_is_help=True)


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def load_settings() -> Settings:
    """Settings from the environment, and this process's logging configured from them: every
    command starts here."""
    try:
        settings = Settings.from_env()
    except (ValueError, OSError) as exc:  # ConfigError, ValidationError, unreadable files
        fail(f"configuration: {exc}")
    configure_logging(settings.log_level, settings.log_format)
    return settings


def run(coro: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run` with expected failures turned into a clean exit."""
    try:
        return asyncio.run(coro)
    except GatewayError as exc:  # e.g. an account that already exists (accounts/provisioning.py)
        fail(exc.message)
    except ValueError as exc:
        fail(str(exc))
    except MIGRATION_ERRORS as exc:
        fail(f"migration: {exc}")
    except DB_ERRORS as exc:
        fail(f"database: {summary(exc)}")


@app.command("upgrade")
def upgrade_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
) -> None:
    """Migrate the database to the latest schema (safe to repeat)."""
    settings = load_settings()
    revision = run(upgrade(settings.resolved_database_url))
    if as_json:
        typer.echo(json.dumps({"revision": revision}))
        return
    typer.echo(f"database at revision {revision}")


async def database_revision(url: str) -> str | None:
    """The database's revision; None when it was never migrated or (SQLite) does not exist,
    which is not created by looking."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return None
    return await current_revision(url)


@app.command("current")
def current_command(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
) -> None:
    """The database's migration revision and the newest this gatewayz ships; exit 1 unless
    the database is at it."""
    settings = load_settings()
    current, head = run(database_revision(settings.resolved_database_url)), head_revision()
    status = revision_status(current, head)
    if as_json:
        typer.echo(json.dumps({"current": current, "head": head, "status": status}))
    else:
        typer.echo(f"database  {current or '(none)'}")
        typer.echo(f"head      {head}")
        typer.echo(f"status    {status}")
    if status == "empty":
        fail("the database was never migrated: run `gatewayz db upgrade`")
    if status == "behind":
        fail("the database is behind: run `gatewayz db upgrade`")
    if status == "unknown":
        fail(
            f"revision {current} is unknown to gatewayz {__version__}: a newer version migrated it"
        )
