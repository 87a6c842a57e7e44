"""Requests against a test gateway, and what the provider simulator saw."""

from __future__ import annotations

import secrets
from typing import Any

import httpx2
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.simulators import RecordedRequest, Simulator
from gatewayz.storage.tables import credit_holds, credit_transactions
from tests.e2e.harness import Gateway, run_db

MODEL = "gpt-4o-mini"  # served by the simulator as "openai", priced from the price data


def unique(text: str = "What is the capital of France?") -> str:
    """A prompt no other test sends (the gateways of a module share one cache)."""
    return f"{text} [{secrets.token_hex(4)}]"


def chat_body(content: str, **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "temperature": 0,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": content}],
    }
    body.update(fields)
    return body


def post(
    gw: Gateway,
    body: dict[str, Any],
    *,
    key: str | None = None,
    path: str = "/chat/completions",
    request_id: str | None = None,
) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {key or gw.api_key}"}
    if request_id is not None:
        headers["X-Request-ID"] = request_id
    return httpx2.post(gw.base_url + path, json=body, headers=headers, trust_env=False, timeout=30)


def chat_calls(upstream: Simulator) -> list[RecordedRequest]:
    """The chat completions that reached the provider."""
    return [r for r in upstream.requests if r.path.endswith("/chat/completions")]


def text_of(r: httpx2.Response) -> str:
    content: str = r.json()["choices"][0]["message"]["content"]
    return content


def sse_text(r: httpx2.Response) -> str:
    """The content an OpenAI-dialect stream carried."""
    import orjson

    out = []
    for line in r.text.splitlines():
        if line.startswith("data: {"):
            for c in orjson.loads(line[6:]).get("choices") or ():
                out.append(c["delta"].get("content") or "")
    return "".join(out)


def money_rows(gw: Gateway, user_id: str) -> tuple[int, int]:
    """(holds, ledger rows) of a user."""

    async def work(conn: AsyncConnection) -> tuple[int, int]:
        holds = await conn.scalar(
            select(func.count()).select_from(credit_holds).where(credit_holds.c.user_id == user_id)
        )
        rows = await conn.scalar(
            select(func.count())
            .select_from(credit_transactions)
            .where(credit_transactions.c.user_id == user_id)
        )
        return int(holds or 0), int(rows or 0)

    return run_db(gw, work)
