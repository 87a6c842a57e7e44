"""A real Gatewayz server (uvicorn on a free loopback port, in a thread with its own event
loop) in front of a provider simulator, for end-to-end tests with the official SDKs."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from cryptography.fernet import Fernet
from sqlalchemy import select

from gatewayz.app import create_app
from gatewayz.security.keys import KeyRing
from gatewayz.services import Services
from gatewayz.settings import Settings
from gatewayz.simulators import Simulator
from gatewayz.storage import repo
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.tables import request_logs

UPSTREAM_KEY = "sk-upstream-test"

# Two tools in OpenAI's shape, for tool-calling tests through every provider family.
WEATHER_TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "parameters": {
                "type": "object",
                "properties": {"tz": {"type": "string"}},
                "required": ["tz"],
            },
        },
    },
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Gateway:
    base_url: str  # ends with /v1
    api_key: str
    user_id: str
    upstream: Simulator
    services: Services
    settings: Settings
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def root(self) -> str:
        return self.base_url[: -len("/v1")]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def gateway_settings(data_dir: Path, upstream: Simulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "fernet_key": Fernet.generate_key().decode(),
        "hmac_key": "test-hmac-key-" + "x" * 32,
        "request_log_flush_s": 0.05,
        "provider_env": {
            # A self-hosted OpenAI-compatible provider serving one named model...
            "vllm": {"base_url": upstream.base_url, "models": "test-model,other-model"},
            # ...and "OpenAI" and "Anthropic" themselves, pointed at the simulator with a key.
            "openai": {"base_url": upstream.base_url, "api_key": UPSTREAM_KEY},
            "anthropic": {"base_url": f"http://127.0.0.1:{upstream.port}", "api_key": UPSTREAM_KEY},
        },
    }
    values.update(overrides)
    return Settings(**values)


async def _provision(settings: Settings) -> tuple[str, str]:
    url = settings.resolved_database_url
    await upgrade(url)
    db = Database(url)
    try:
        async with db.begin() as conn:
            user = await repo.create_user(conn, "e2e@example.com", role="dev")
            # The suites share this key: no per-minute limit worth the name (CM-2 tests make
            # their own limited keys).
            _, key = await repo.create_api_key(
                conn,
                KeyRing(*settings.secrets),
                user["id"],
                settings.env,
                "e2e",
                limits={"rpm": 1_000_000},
            )
    finally:
        await db.dispose()
    return user["id"], key


def start_gateway(settings: Settings, upstream: Simulator) -> Gateway:
    user_id, key = asyncio.run(_provision(settings))
    app = create_app(settings)
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop=settings.event_loop,
        http="gatewayz.api.http_protocol:LimitedHttpToolsProtocol",
        lifespan="on",
        access_log=False,
        log_level="warning",
        proxy_headers=False,  # as `gatewayz serve`: client IPs come from security/client_ip.py
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True, name="gateway")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("gateway did not start")
        time.sleep(0.02)
    return Gateway(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=key,
        user_id=user_id,
        upstream=upstream,
        services=app.state.services,
        settings=settings,
        server=server,
        thread=thread,
    )


def request_log_rows(
    gateway: Gateway, request_id: str, wait_s: float = 5.0
) -> list[dict[str, Any]]:
    """The request-log rows of one request id (written off the request path: waits for them)."""

    async def query() -> list[dict[str, Any]]:
        db = Database(gateway.settings.resolved_database_url)
        try:
            async with db.begin() as conn:
                rows = await conn.execute(
                    select(request_logs).where(request_logs.c.request_id == request_id)
                )
                return [dict(r._mapping) for r in rows]
        finally:
            await db.dispose()

    deadline = time.monotonic() + wait_s
    while True:
        rows = asyncio.run(query())
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)
