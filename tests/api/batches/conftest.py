"""Gateways for the Batch API tests, driven with the official `openai` SDK: `test-model` (the
`vllm` provider, a simulator) priced by an admin override in the database (so a gateway started
again on the same database prices it at once), `broken-model` served by a provider nobody
listens for; helpers to write input files, wait for a batch and read the ledger."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import uvicorn
from sqlalchemy import select

from gatewayz.app import create_app
from gatewayz.billing.pricing import Price
from gatewayz.settings import Settings
from gatewayz.simulators import Simulator
from gatewayz.storage import price_overrides
from gatewayz.storage.batch_tables import batch_lines
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.tables import credit_transactions, users
from tests.e2e.harness import Gateway, gateway_settings, run_db, start_gateway

MODEL, BROKEN, EMBED = "test-model", "broken-model", "test-embed"
PROMPT, COMPLETION = Decimal("0.15"), Decimal("0.6")  # USD per 1M tokens
EMBED_PRICE = Decimal("0.02")
ENDED = ("completed", "failed", "expired", "cancelled")


def _dead_port() -> int:
    with socket.socket() as s:  # bound, never listening: a connection is refused
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def batch_settings(data_dir: Path, upstream: Simulator, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "ip_rate_limit_rpm": 100_000,
        "batch_poll_s": 0.05,
        "batch_max_file_bytes": 16 * 1024,
        "price_refresh_s": 3600,
        "webhooks_allow_private": True,
        "webhook_dispatch_s": 0.05,
    }
    settings = gateway_settings(data_dir, upstream, **(values | overrides))
    env = dict(settings.provider_env)
    env["vllm"] = {"base_url": upstream.base_url, "models": f"{MODEL},{EMBED}"}
    env["lm-studio"] = {"base_url": f"http://127.0.0.1:{_dead_port()}/v1", "models": BROKEN}
    return settings.model_copy(update={"provider_env": env})


async def _price(url: str) -> None:
    await upgrade(url)
    db = Database(url)
    try:
        async with db.begin() as conn:
            rows = [
                (MODEL, "vllm", {"prompt": PROMPT, "completion": COMPLETION}),
                (BROKEN, "lm-studio", {"prompt": PROMPT, "completion": COMPLETION}),
                (EMBED, "vllm", {"mode": "embedding", "prompt": EMBED_PRICE}),
            ]
            for model, provider, rates in rows:
                await price_overrides.add(
                    conn,
                    model=model,
                    provider=provider,
                    price=Price.from_row(rates),
                    effective_from=None,
                    created_by=None,
                )
    finally:
        await db.dispose()


def start(settings: Settings, upstream: Simulator) -> Gateway:
    """A gateway with the prices above (in its database before it starts) and a user."""
    asyncio.run(_price(settings.resolved_database_url))
    return start_gateway(settings, upstream)


def serve(settings: Settings, like: Gateway, upstream: Simulator) -> Gateway:
    """Another gateway process on an existing database (a restart, a second worker)."""
    app = create_app(settings)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    config = uvicorn.Config(
        app,
        loop=settings.event_loop,
        http="gatewayz.api.http_protocol:LimitedHttpToolsProtocol",
        lifespan="on",
        access_log=False,
        log_level="warning",
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "gateway did not start"
        time.sleep(0.02)
    return Gateway(
        base_url=f"http://127.0.0.1:{port}/v1",
        api_key=like.api_key,
        user_id=like.user_id,
        upstream=upstream,
        services=app.state.services,
        settings=settings,
        server=server,
        thread=thread,
    )


@pytest.fixture(scope="module")
def gw(upstream: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = start(batch_settings(tmp_path_factory.mktemp("batches"), upstream), upstream)
    yield gateway
    gateway.stop()


@pytest.fixture(autouse=True)
def _clean(upstream: Simulator) -> None:
    upstream.clear()


def sent(sim: Simulator) -> int:
    """Chat requests the simulator received (its model list is read by the catalog too)."""
    return sum(r.path.endswith("/chat/completions") for r in sim.requests)


def client(gateway: Gateway, key: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key or gateway.api_key, max_retries=0)


def chat_line(custom_id: str, text: str, model: str = MODEL, **body: Any) -> dict[str, Any]:
    messages = [{"role": "user", "content": text}]
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": messages, "max_tokens": 50, **body},
    }


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def submit(c: openai.OpenAI, lines: list[dict[str, Any]], **extra: Any) -> Any:
    """Upload the lines and create a batch of them."""
    f = c.files.create(file=("requests.jsonl", jsonl(lines)), purpose="batch")
    endpoint = lines[0]["url"]
    return c.batches.create(input_file_id=f.id, endpoint=endpoint, completion_window="24h", **extra)


def wait_ended(c: openai.OpenAI, batch_id: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        batch = c.batches.retrieve(batch_id)
        if batch.status in ENDED:
            return batch
        assert time.monotonic() < deadline, f"batch still {batch.status}"
        time.sleep(0.05)


def file_lines(c: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [orjson.loads(line) for line in c.files.content(file_id).content.splitlines()]


def line_cost(usage: dict[str, Any], discount: Decimal = Decimal(0)) -> int:
    """What a chat line costs in nano-dollars: exact, rounded half up once."""
    usd = (usage["prompt_tokens"] * PROMPT + usage["completion_tokens"] * COMPLETION) / 10**6
    return int((usd * (1 - discount) * 10**9).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def charges(gateway: Gateway, batch_id: str) -> dict[str, int]:
    """The batch's ledger charges: the line's request id (its hold's id less the hold's own
    suffix) → nano-dollars."""

    async def work(conn: Any) -> dict[str, int]:
        t = credit_transactions.c
        rows = await conn.execute(
            select(t.request_id, t.amount_nanos).where(
                t.type == "usage", t.request_id.startswith(f"{batch_id}-")
            )
        )
        return {r.request_id.rsplit(".", 1)[0]: -int(r.amount_nanos) for r in rows}

    return run_db(gateway, work)


def wait_charges(gateway: Gateway, batch_id: str, n: int, timeout: float = 10.0) -> dict[str, int]:
    """Charges through a credit lease are written in batches: wait for `n` of them."""
    deadline = time.monotonic() + timeout
    while len(found := charges(gateway, batch_id)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def balance(gateway: Gateway, user_id: str) -> int:
    async def work(conn: Any) -> int:
        u = users.c
        row = await conn.execute(select(u.credits_nanos + u.allowance_nanos).where(u.id == user_id))
        return int(row.scalar_one())

    return run_db(gateway, work)


def lines_of(gateway: Gateway, batch_id: str) -> list[dict[str, Any]]:
    async def work(conn: Any) -> list[dict[str, Any]]:
        rows = await conn.execute(
            select(batch_lines)
            .where(batch_lines.c.batch_id == batch_id)
            .order_by(batch_lines.c.line_no)
        )
        return [dict(r._mapping) for r in rows]

    return run_db(gateway, work)
