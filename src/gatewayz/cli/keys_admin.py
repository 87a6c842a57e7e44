"""`gatewayz keys list|revoke|rotate` (registered by cli/keys.py).

A listing shows what may be shown of a key (id, name, prefix, environment, times), never its
secret or hash. Revoking and rotating run what `DELETE` and `PATCH {"rotate": true}
/user/api-keys/{id}` run (`accounts.api_keys`), then tell every worker to forget the key and the
owner's cached key list, and record `key_revoked` / `key_rotated`, as the API does
(cli/ops.py)."""

from __future__ import annotations

import json
from typing import Any

import typer

from gatewayz.accounts import api_keys
from gatewayz.cli.db import load_settings, run
from gatewayz.cli.ops import MAX_LIST, Operator, find_user, key_id, operating, reading, user_ref
from gatewayz.cli.users_admin import JSON_OPTION, when
from gatewayz.settings import Settings
from gatewayz.storage import key_listing, keys
from gatewayz.storage.db import DbConnection


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["prefix"],
        "environment": row["env"],
        "primary": bool(row["is_primary"]),
        "created_at": when(row["created_at"]),
        "last_used_at": when(row["last_used_at"]),
        "expires_at": when(row["expires_at"]),
        "revoked_at": when(row["revoked_at"]),
    }


# ---- list ------------------------------------------------------------------------------------


async def _list(
    settings: Settings, ref: tuple[str | None, str | None], limit: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    async with reading(settings) as db, db.begin() as conn:
        user = await find_user(conn, ref)
        return user, await key_listing.user_keys(conn, user["id"], limit=limit)


def list_keys(
    email: str = typer.Option(..., "--email", help="The owner's email (or user id, usr_...)."),
    limit: int = typer.Option(100, "--limit", min=1, max=MAX_LIST, help="At most this many."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A user's API keys, revoked ones too, oldest first (never a secret)."""
    ref = user_ref(email)
    user, rows = run(_list(load_settings(), ref, limit))
    data = [_shown(r) for r in rows]
    if as_json:
        typer.echo(json.dumps({"user_id": user["id"], "data": data}))
        return
    typer.echo(
        f"{'id':<38}{'name':<20}{'prefix':<14}{'env':<9}{'created':<21}{'last used':<21}revoked"
    )
    for k in data:
        name = k["name"] if len(k["name"]) < 20 else k["name"][:16] + "..."
        created = (k["created_at"] or "")[:19]
        used = (k["last_used_at"] or "never")[:19]
        revoked = (k["revoked_at"] or "no")[:19]
        typer.echo(
            f"{k['id']:<38}{name:<20}{k['prefix']:<14}{k['environment']:<9}"
            f"{created:<21}{used:<21}{revoked}"
        )
    typer.echo(f"\n{len(data)} keys of {user['email']}.")


# ---- revoke and rotate -----------------------------------------------------------------------


async def _live_key(conn: DbConnection, key: str) -> dict[str, Any]:
    """The key (not revoked, with its hash for invalidation); `ValueError` otherwise."""
    row = await keys.get_key(conn, key)
    if row is not None:
        return row
    shown = await key_listing.key_by_id(conn, key)
    if shown is None:
        raise ValueError(f"no API key with id {key}")
    raise ValueError(f"API key {key} was revoked already ({when(shown['revoked_at'])})")


async def _revoke(settings: Settings, key: str) -> tuple[dict[str, Any], Operator]:
    async with operating(settings) as op:
        async with op.db.begin() as conn:
            row = await _live_key(conn, key)
        await api_keys.revoke_key(op.db, key)
        await op.publish(row["key_hash"], keys_of=row["user_id"])
        op.event("key_revoked", user_id=row["user_id"], api_key_id=key, name=row["name"])
    return row, op


def revoke(
    key: str = typer.Argument(..., help="The key's id (key_...)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
) -> None:
    """Revoke an API key: every worker refuses it from now on (audited as `key_revoked`)."""
    row, op = run(_revoke(load_settings(), key_id(key)))
    if as_json:
        typer.echo(json.dumps({"id": row["id"], "user_id": row["user_id"], "revoked": True}))
    else:
        typer.echo(f"revoked {row['id']} ({row['name']}, {row['prefix']}...)")
    op.finish()


async def _rotate(settings: Settings, key: str) -> tuple[dict[str, Any], str, Operator]:
    async with operating(settings) as op:
        async with op.db.begin() as conn:
            row = await _live_key(conn, key)
        fresh, secret = await api_keys.update_user_key(
            op.db, op.keyring, row["user_id"], key, {}, rotate_env=row["env"]
        )
        if fresh is None or secret is None:  # revoked meanwhile
            raise ValueError(f"API key {key} was revoked meanwhile")
        await op.publish(row["key_hash"], keys_of=row["user_id"])
        op.event("key_rotated", user_id=row["user_id"], api_key_id=key, name=fresh["name"])
    return fresh, secret, op


def rotate(
    key: str = typer.Argument(..., help="The key's id (key_...)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
) -> None:
    """A new secret for an API key (same id, name and settings); the old one stops working.
    The new key is shown only now (audited as `key_rotated`)."""
    fresh, secret, op = run(_rotate(load_settings(), key_id(key)))
    if as_json:
        typer.echo(
            json.dumps({"api_key_id": fresh["id"], "user_id": fresh["user_id"], "api_key": secret})
        )
    else:
        typer.echo(f"api_key_id:  {fresh['id']}")
        typer.echo(f"name:        {fresh['name']}")
        typer.echo(f"api_key:     {secret}")
        typer.echo("Store this key now: it will not be shown again.")
    op.finish()
