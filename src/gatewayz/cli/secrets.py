"""`gatewayz secrets rotate`: new Fernet and HMAC secrets for the deployment without losing a
key (accounts/secret_rotation.py). The new secrets are read from standard input, two lines
(never from the command line, where other users of the host could read them):

    printf '%s\\n%s\\n' "$NEW_FERNET_KEY" "$NEW_HMAC_KEY" | gatewayz secrets rotate

The command runs with the current secrets in its environment (as the server); afterwards every
replica must be restarted with the new ones (a replica with the old ones refuses to start)."""

from __future__ import annotations

import json
import sys

import typer
from cryptography.fernet import Fernet

from gatewayz.accounts.secret_rotation import Rotated, rotate_secrets
from gatewayz.cli.db import fail, load_settings, run
from gatewayz.security.fingerprint import check_secrets
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.storage.db import Database, upgrade

app = typer.Typer(help="The deployment's Fernet and HMAC secrets.", no_args_is_help=True)
MIN_HMAC_CHARS = 32
MAX_SECRET_CHARS = 512


def _read_new() -> tuple[bytes, bytes]:
    lines = sys.stdin.read(4 * MAX_SECRET_CHARS).split()
    if len(lines) != 2:
        fail("give the new Fernet key and the new HMAC key on standard input, one per line")
    fernet, mac = lines
    if len(fernet) > MAX_SECRET_CHARS or len(mac) > MAX_SECRET_CHARS:
        fail(f"a secret may have at most {MAX_SECRET_CHARS} characters")
    try:
        Fernet(fernet.encode())
    except ValueError:
        fail("the new Fernet key is not one (32 url-safe base64-encoded bytes)")
    if len(mac) < MIN_HMAC_CHARS:
        fail(f"the new HMAC key must have at least {MIN_HMAC_CHARS} characters")
    return fernet.encode(), mac.encode()


async def _rotate(settings: Settings, new: tuple[bytes, bytes]) -> Rotated:
    url = settings.resolved_database_url
    await upgrade(url)
    db = Database(url)
    try:
        await check_secrets(db, settings.secrets)  # the current secrets are this database's
        async with db.begin() as conn:
            return await rotate_secrets(conn, KeyRing(*settings.secrets), KeyRing(*new), new)
    finally:
        await db.dispose()


@app.command("rotate")
def rotate(as_json: bool = typer.Option(False, "--json", help="Print one JSON line.")) -> None:
    """Re-key every API key and webhook secret to new secrets read from standard input."""
    settings = load_settings()
    new = _read_new()
    if new == settings.secrets:
        fail("the new secrets are the current ones")
    done = run(_rotate(settings, new))
    if as_json:
        typer.echo(json.dumps({"api_keys": done.api_keys, "webhook_secrets": done.webhook_secrets}))
        return
    typer.echo(
        f"Re-keyed {done.api_keys} API keys and {done.webhook_secrets} webhook secrets. Restart "
        "every replica now with GATEWAYZ_FERNET_KEY and GATEWAYZ_HMAC_KEY set to the new values."
    )
