"""`gatewayz db ...`, and the helpers the other command groups share: settings loading and
running async work with operator-facing errors (a message on stderr and exit code 1, never a
traceback)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, NoReturn, TypeVar

import typer

from gatewayz.errors import GatewayError
from gatewayz.observability.log_config import configure_logging
from gatewayz.settings import Settings
from gatewayz.storage.db import upgrade
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
def upgrade_command() -> None:
    """Migrate the database to the latest schema (safe to repeat)."""
    settings = load_settings()
    revision = run(upgrade(settings.resolved_database_url))
    typer.echo(f"database at revision {revision}")
