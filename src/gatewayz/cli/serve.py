"""`gatewayz serve`: migrate, make sure an admin exists, and serve."""

from __future__ import annotations

import typer
import uvicorn

from gatewayz.accounts import api_keys
from gatewayz.cli.db import fail, load_settings, run
from gatewayz.observability.log_config import logging_config
from gatewayz.security.fingerprint import check_secrets
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.storage import users
from gatewayz.storage.db import Database, upgrade

ADMIN_EMAIL = "admin@localhost"


def serve(
    host: str = typer.Option(None, help="Interface to bind (default 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default 8000)."),
    workers: int = typer.Option(None, help="Worker processes sharing the database and Redis."),
) -> None:
    """Serve the gateway (migrates the database first)."""
    settings = load_settings()
    # Host, port and workers matter to uvicorn here, not to the workers' own settings.
    host = host or settings.host
    port = port or settings.port
    workers = workers or settings.workers
    if workers < 1:
        fail("--workers must be at least 1")
    run(_prepare(settings, host, port))
    if workers > 1 and settings.metrics:
        settings.share_metrics_directory()
    uvicorn.run(
        "gatewayz.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=settings.event_loop,
        http="gatewayz.api.http_protocol:LimitedHttpToolsProtocol",
        # The configuration load_settings applied here, applied again by uvicorn in each worker.
        log_config=logging_config(settings.log_level, settings.log_format),
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        # The client IP is ours to derive (security/client_ip.py, GATEWAYZ_TRUSTED_PROXIES):
        # uvicorn's default would rewrite the socket peer from X-Forwarded-For for 127.0.0.1.
        proxy_headers=False,
    )


async def _prepare(settings: Settings, host: str, port: int) -> None:
    url = settings.resolved_database_url
    await upgrade(url)
    db = Database(url)
    try:
        await check_secrets(db, settings.secrets)  # replicas must share them: refused if not
        async with db.begin() as conn:
            if await users.count_users(conn) > 0:
                return
            user = await users.create_user(conn, ADMIN_EMAIL, role="admin", plan="enterprise")
            _, key = await api_keys.create_api_key(
                conn, KeyRing(*settings.secrets), user["id"], settings.env, "admin", is_primary=True
            )
    except ValueError:
        # Replicas starting together on an empty database: another one created the admin
        # first (and printed its key); this one starts without.
        async with db.begin() as conn:
            if await users.get_user_by_email(conn, ADMIN_EMAIL) is not None:
                return
        raise
    finally:
        await db.dispose()
    base = f"http://{host}:{port}/v1"
    typer.echo(
        f"""
Gatewayz: first run. Created the admin account {ADMIN_EMAIL}.
Its API key, shown only this once (store it now):

    {key}

Try it with the official OpenAI SDK (pip install openai):

    from openai import OpenAI
    client = OpenAI(base_url="{base}", api_key="{key}")
    r = client.chat.completions.create(
        model="simulated/echo", messages=[{{"role": "user", "content": "Hello!"}}]
    )
    print(r.choices[0].message.content)

`simulated/*` models are answered by a built-in simulator (no real model). Put a provider key
in the environment (e.g. OPENAI_API_KEY) to serve real models; `gatewayz providers list` shows
which are served.
"""
    )
