"""The production configuration: `gatewayz serve --workers 2` on PostgreSQL and Redis, with a
self-hosted OpenAI-compatible upstream (`vllm`, here the simulator in this process).

Which worker answered a request is read from the kernel, not from the gateway: each request goes
over its own fresh connection, and while that connection is still open the test looks up (in
/proc) which worker process holds its server side. No debug endpoint is needed."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from gatewayz.simulators import Simulator
from gatewayz.simulators.content import ECHO_PREFIX
from gatewayz.storage.tables import request_logs
from tests.deploy.helpers import Server, connection_owner, production_env, run_cli, serve

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="worker attribution reads /proc (Linux)"
)

WORKERS = 2
REQUESTS_PER_KEY = 20
MAX_REQUESTS_PER_KEY = 200  # bound on the wait for the second worker to take a connection
LOG_WAIT_S = 15.0
MODEL = "test-model"


@dataclass
class Deployment:
    server: Server
    env: dict[str, str]
    cwd: Path
    db_url: str
    upstream: Simulator
    before_user_id: str
    before_key: str

    def workers(self) -> set[int]:
        return self.server.children()

    def cli_json(self, *args: str) -> dict[str, Any]:
        result = run_cli([*args, "--json"], self.env, self.cwd)
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.stdout
        out: dict[str, Any] = json.loads(lines[0])
        return out


@pytest.fixture
def dep(
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    upstream: Simulator,
) -> Iterator[Deployment]:
    upstream.clear()
    env = production_env(
        postgres_url, redis_url, redis_prefix, upstream.base_url, MODEL, tmp_path / "data"
    )
    # A user (and key) created before the gateway starts; the CLI migrates the empty database.
    result = run_cli(
        ["users", "create", "--email", "before@example.com", "--credits", "100", "--json"],
        env,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    before = json.loads(result.stdout)
    with serve(env, tmp_path, tmp_path / "logs", workers=WORKERS) as server:
        workers = server.children()
        assert len(workers) >= WORKERS, server.output()
        yield Deployment(
            server, env, tmp_path, postgres_url, upstream, before["user_id"], before["api_key"]
        )


# ---- helpers -----------------------------------------------------------------------------


def _request(
    server: Server,
    workers: set[int],
    method: str,
    path: str,
    *,
    key: str | None = None,
    body: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> tuple[httpx2.Response, int | None]:
    """One request over a fresh connection; (response, PID of the worker that served it)."""
    headers = {"connection": "keep-alive"}
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    if request_id is not None:
        headers["x-request-id"] = request_id
    with httpx2.Client(trust_env=False, timeout=10.0) as client:
        r = client.request(method, f"{server.root}{path}", headers=headers, json=body)
        # The response is read; the connection is still open, so its server side is findable.
        client_port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
        owner = connection_owner(server.port, client_port, workers)
    return r, owner


def _chat_body(prompt: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}]}


def _spread(
    dep: Deployment, key: str | None, expect_status: int, sent: list[str]
) -> Counter[int | None]:
    """Chat requests over fresh connections: at least REQUESTS_PER_KEY, and until every worker
    has answered at least one (bounded). Request ids of the successful ones go to `sent`."""
    workers = dep.workers()
    seen: Counter[int | None] = Counter()
    n = 0
    while n < REQUESTS_PER_KEY or len(seen.keys() & workers) < WORKERS:
        assert n < MAX_REQUESTS_PER_KEY, f"only workers {dict(seen)} answered of {workers}"
        rid = f"deploy-{uuid.uuid4().hex}"
        prompt = f"request {n} via {rid}"
        r, owner = _request(
            dep.server,
            workers,
            "POST",
            "/v1/chat/completions",
            key=key,
            body=_chat_body(prompt),
            request_id=rid,
        )
        assert r.status_code == expect_status, r.text
        assert r.headers["x-request-id"] == rid
        if expect_status == 200:
            assert r.json()["choices"][0]["message"]["content"] == ECHO_PREFIX + prompt
            assert r.headers["x-gatewayz-provider"] == "vllm"
            sent.append(rid)
        else:
            err = r.json()["error"]
            assert err["type"] and err["message"], err
        assert owner is not None, "no worker holds the connection"
        seen[owner] += 1
        n += 1
    assert None not in seen
    return seen


async def _log_rows(db_url: str) -> list[dict[str, Any]]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(select(request_logs))
            return [dict(row._mapping) for row in result]
    finally:
        await engine.dispose()


def _wait_for_logs(db_url: str, request_ids: set[str]) -> list[dict[str, Any]]:
    """Request-log rows once every id in `request_ids` is there (bounded wait)."""
    deadline = time.monotonic() + LOG_WAIT_S
    while True:
        rows = asyncio.run(_log_rows(db_url))
        if request_ids <= {r["request_id"] for r in rows} or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


# ---- tests -------------------------------------------------------------------------------


def test_keys_from_before_and_after_startup_work_on_every_worker(dep: Deployment) -> None:
    assert "gw_live_" not in dep.server.stdout  # users exist already: no admin key printed
    after = dep.cli_json("users", "create", "--email", "after@example.com", "--credits", "100")
    extra = dep.cli_json("keys", "create", "--email", "before@example.com", "--name", "late")
    assert extra["user_id"] == dep.before_user_id

    workers = dep.workers()
    sent: dict[str, list[str]] = {"before": [], "after": [], "extra": []}
    spread = {
        "before": _spread(dep, dep.before_key, 200, sent["before"]),
        "after": _spread(dep, after["api_key"], 200, sent["after"]),
        "extra": _spread(dep, extra["api_key"], 200, sent["extra"]),
    }
    for name, seen in spread.items():
        assert set(seen) <= workers and len(seen) == WORKERS, (name, seen)
    all_sent = {rid for ids in sent.values() for rid in ids}
    assert len(all_sent) == sum(len(ids) for ids in sent.values()) >= 3 * REQUESTS_PER_KEY

    # Every answer really went upstream.
    upstream_chats = [r for r in dep.upstream.requests if r.path.endswith("/chat/completions")]
    assert len(upstream_chats) == len(all_sent)
    assert all(r.json["model"] == MODEL for r in upstream_chats)

    # Every request, from both workers, is in the request log (flushed in the background).
    rows = _wait_for_logs(dep.db_url, all_sent)
    logged = [r for r in rows if r["request_id"] in all_sent]
    assert len(logged) == len(all_sent), f"{len(logged)} of {len(all_sent)} logged"
    assert len(rows) == len(all_sent)  # and nothing else
    by_id = {r["request_id"]: r for r in rows}
    for name, ids in sent.items():
        for rid in ids:
            row = by_id[rid]
            assert (row["status_code"], row["provider"], row["model"]) == (200, "vllm", MODEL)
            assert row["stream"] is False
            expected_user = after["user_id"] if name == "after" else dep.before_user_id
            assert row["user_id"] == expected_user, (name, row)
            if name == "extra":
                assert row["api_key_id"] == extra["api_key_id"]
    assert len({by_id[rid]["api_key_id"] for rid in sent["before"]}) == 1
    assert by_id[sent["before"][0]]["api_key_id"] != extra["api_key_id"]


def test_a_bad_key_is_refused_by_every_worker(dep: Deployment) -> None:
    for bad in (f"gw_live_{secrets.token_urlsafe(32)}", "not-a-gatewayz-key"):
        seen = _spread(dep, bad, 401, [])
        assert len(seen) == WORKERS
    # No key at all.
    r, _ = _request(dep.server, dep.workers(), "POST", "/v1/chat/completions", body=_chat_body("x"))
    assert r.status_code == 401
    assert dep.upstream.requests == []  # nothing reached the provider


def test_health_on_every_worker_reports_postgres_and_redis(dep: Deployment) -> None:
    workers = dep.workers()
    seen: Counter[int | None] = Counter()
    for n in range(MAX_REQUESTS_PER_KEY):
        if n >= 10 and len(seen.keys() & workers) == WORKERS:
            break
        r, owner = _request(dep.server, workers, "GET", "/health")
        assert r.status_code == 200
        body = r.json()
        sub = body["subsystems"]
        assert sub["database"]["status"] == "ok", body
        state = sub["state"]
        assert (state["status"], state["backend"], state["degraded"]) == (
            "ok",
            "resilient",
            False,
        ), body
        assert "vllm" in sub["providers"]["served"], body
        assert body["status"] == "operational", body
        seen[owner] += 1
    assert set(seen) <= workers and len(seen) == WORKERS, seen


def test_streaming_through_the_production_configuration(dep: Deployment) -> None:
    after = dep.cli_json("users", "create", "--email", "streamer@example.com", "--credits", "100")
    sent: list[str] = []
    for i, key in enumerate([dep.before_key, after["api_key"]] * 4):
        rid = f"stream-{uuid.uuid4().hex}"
        prompt = f"stream {i} please"
        # A new client each time: a fresh connection, so both workers get a share.
        client = openai.OpenAI(
            base_url=dep.server.base_url,
            api_key=key,
            max_retries=0,
            timeout=10.0,
            http_client=openai.DefaultHttpxClient(trust_env=False),
        )
        with client:
            stream = client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": prompt}],
                stream=True,
                stream_options={"include_usage": True},
                extra_headers={"x-request-id": rid},
            )
            chunks = list(stream)
        deltas = [c.choices[0].delta.content for c in chunks if c.choices]
        assert len([d for d in deltas if d]) > 1, "not streamed in pieces"
        assert "".join(d or "" for d in deltas) == ECHO_PREFIX + prompt
        assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        sent.append(rid)

    upstream_chats = [r for r in dep.upstream.requests if r.path.endswith("/chat/completions")]
    assert len(upstream_chats) == len(sent)
    assert all(r.json["stream"] is True for r in upstream_chats)
    rows = _wait_for_logs(dep.db_url, set(sent))
    logged = {r["request_id"]: r for r in rows}
    assert set(sent) <= set(logged), f"{len(set(sent) & set(logged))} of {len(sent)} logged"
    for rid in sent:
        row = logged[rid]
        assert (row["status_code"], row["stream"], row["provider"]) == (200, True, "vllm")
        assert row["completion_tokens"] > 0
