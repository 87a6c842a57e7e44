"""A real Gatewayz server (uvicorn on a free loopback port, in a thread with its own event
loop) in front of a provider simulator, for end-to-end tests with the official SDKs."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from cryptography.fernet import Fernet
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.app import create_app
from gatewayz.security.keys import KeyRing
from gatewayz.services import Services
from gatewayz.settings import Settings
from gatewayz.simulators import Simulator
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.tables import request_logs, users
from gatewayz.storage.users import create_user

T = TypeVar("T")

UPSTREAM_KEY = "sk-upstream-test"
HARNESS_CREDITS_USD = 1_000_000

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
        # Background probes would take faults other tests queue on the simulator; the probe
        # tests turn them on explicitly.
        "health_probes": False,
        # The suites run many error cases in a row against one provider: breakers would open
        # and turn later tests' answers into 502s. The failover and breaker tests set 5.
        "breaker_failure_threshold": 1000,
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
            # Plenty of purchased credit: billing is exercised, never the limit (the money tests
            # make their own users with small balances).
            user = await create_user(
                conn, "e2e@example.com", role="dev", plan="dev", credits_usd=HARNESS_CREDITS_USD
            )
            # The suites share this key: no per-minute limit worth the name (CM-2 tests make
            # their own limited keys).
            _, key = await create_api_key(
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
    # Bound here and handed to uvicorn: a port picked first and bound later can be taken in
    # between by any outgoing connection of a parallel test (its ephemeral port).
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
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
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="gateway"
    )
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


def run_db(gateway: Gateway, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run `work(conn)` in one transaction on the gateway's database, from a test thread."""

    async def go() -> T:
        db = Database(gateway.settings.resolved_database_url)
        try:
            async with db.begin() as conn:
                return await work(conn)
        finally:
            await db.dispose()

    return asyncio.run(go())


def add_user(
    gateway: Gateway,
    *,
    credits_usd: Decimal | int | str = 0,
    plan: str = "dev",
    role: str = "dev",
    **values: Any,
) -> tuple[str, str]:
    """A new user with one API key (no per-minute limit worth the name) and `credits_usd` of
    purchased credit; other `users` columns (e.g. trial_ends_at) from `values`. (id, key)"""

    async def work(conn: AsyncConnection) -> tuple[str, str]:
        email = f"u{secrets.token_hex(6)}@example.com"
        user = await create_user(conn, email, role=role, plan=plan, credits_usd=credits_usd)
        if values:
            await conn.execute(update(users).where(users.c.id == user["id"]).values(**values))
        _, key = await create_api_key(
            conn,
            KeyRing(*gateway.settings.secrets),
            user["id"],
            gateway.settings.env,
            "test",
            limits={"rpm": 1_000_000},
        )
        return user["id"], key

    return run_db(gateway, work)


def set_price(gateway: Gateway, model: str, provider: str, **price: Any) -> None:
    """Price `model` on `provider` (USD per 1M tokens, as an admin override effective now) on the
    running gateway, e.g. for test-only model names that no price data knows."""
    meter = gateway.services.meter
    row = {"model": model, "provider": provider, **{k: str(v) for k, v in price.items()}}
    meter.book = meter.book.with_overrides([row])


# ---- two providers serving one model (failover, balancing, health) ------------------------

SimT = TypeVar("SimT", bound=Simulator)
PAIR = ("vllm", "lm-studio")  # self-hosted providers: configured by base URL alone


@contextlib.contextmanager
def simulators(cls: type[SimT], n: int = 2) -> Iterator[tuple[SimT, ...]]:
    """`n` simulators of class `cls`, each on its own loopback port in a thread; stopped on
    exit."""
    sims = tuple(cls() for _ in range(n))
    for sim in sims:
        sim.start_in_thread()
    try:
        yield sims
    finally:
        for sim in sims:
            sim.stop_thread()


def pair_env(sims: tuple[Simulator, ...], models: str) -> dict[str, dict[str, str]]:
    """`provider_env` where `vllm` (sims[0]) and `lm-studio` (sims[1]) both serve `models`."""
    return {
        slug: {"base_url": sim.base_url, "models": models}
        for slug, sim in zip(PAIR, sims[:2], strict=True)
    }


def fresh_pair(gw: Gateway, sims: tuple[SimT, ...], *models: str) -> tuple[str, SimT, str, SimT]:
    """Faults and recorded requests cleared, the pair's breakers (per provider, and per
    provider × each of `models`) reset, the passive-health window emptied (earlier tests'
    failures would demote a provider); then (primary slug, its simulator, secondary slug, its
    simulator) in the gateway's order for `models[0]`."""
    for sim in sims:
        sim.clear()
    for slug in PAIR:
        for model in (None, *models):
            asyncio.run(gw.services.breakers.reset(slug, model))
    gw.services.pipeline.health.clear()
    first, second = (r.provider.slug for r in gw.services.pipeline.chain(models[0])[:2])
    by_slug = dict(zip(PAIR, sims[:2], strict=True))
    return first, by_slug[first], second, by_slug[second]
