"""`gatewayz keys ...`: issue API keys for existing users; list, revoke and rotate them
(cli/keys_admin.py)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from gatewayz.accounts import api_keys
from gatewayz.cli import keys_admin
from gatewayz.cli.db import load_settings, run
from gatewayz.cli.limits import LimitOptions, key_limits
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.storage import users
from gatewayz.storage.db import Database, upgrade

app = typer.Typer(help="API keys.", no_args_is_help=True)


async def _create(
    settings: Settings, email: str, name: str, limits: dict[str, int] | None
) -> tuple[dict[str, Any], str]:
    url = settings.resolved_database_url
    keyring = KeyRing(*settings.secrets)
    await upgrade(url)
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        async with db.begin() as conn:
            user = await users.get_user_by_email(conn, email)
            if user is None:
                raise ValueError(f"no user with email {email.strip().lower()}")
            return await api_keys.create_api_key(
                conn, keyring, user["id"], settings.env, name=name, limits=limits
            )
    finally:
        await db.dispose()


@app.command("create")
def create(
    email: Annotated[str, typer.Option("--email", help="Email of an existing user.")],
    name: Annotated[str, typer.Option("--name", help="A label for the key.")] = "default",
    rpm_limit: LimitOptions.rpm = None,
    tokens_per_day: LimitOptions.tpd = None,
    tokens_per_month: LimitOptions.tpm = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line.")] = False,
) -> None:
    """Create another API key for an existing user. The key is shown only now."""
    limits = key_limits(rpm_limit, tokens_per_day, tokens_per_month)
    settings = load_settings()
    row, key = run(_create(settings, email, name, limits))
    if as_json:
        typer.echo(json.dumps({"user_id": row["user_id"], "api_key_id": row["id"], "api_key": key}))
        return
    typer.echo(f"user_id:     {row['user_id']}")
    typer.echo(f"api_key_id:  {row['id']}")
    typer.echo(f"name:        {row['name']}")
    typer.echo(f"api_key:     {key}")
    typer.echo("Store this key now: it will not be shown again.")


app.command("list")(keys_admin.list_keys)
app.command("revoke")(keys_admin.revoke)
app.command("rotate")(keys_admin.rotate)
