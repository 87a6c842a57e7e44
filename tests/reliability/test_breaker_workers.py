"""CM-5.3 across processes: `gatewayz serve --workers 2` on PostgreSQL and Redis, with two
simulators as two self-hosted providers of one model (`vllm` first, `lm-studio` as fallback).

The primary's failures are all seen by ONE worker (the requests share one keep-alive
connection); its breaker opens in Redis. Then many requests over fresh connections, until
each worker has served several: every one is answered by the fallback at the first attempt,
the primary receives nothing more, and GET /admin/circuit-breakers from either worker shows
the breaker open. Which worker served a request is read from the kernel (/proc), as in
tests/deploy/test_postgres_redis.py."""

from __future__ import annotations

import inspect
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis

from gatewayz.reliability import CircuitBreakers
from gatewayz.settings import Settings
from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.server import CHAT_PATHS
from tests.deploy.helpers import Server, connection_owner, production_env, run_cli, serve

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="worker attribution reads /proc (Linux)"
)

MODEL = "breaker-model"
PRIMARY, FALLBACK = "vllm", "lm-studio"
WORKERS = 2
THRESHOLD = 5
PER_WORKER = 5  # requests each worker must serve while the breaker is open
MAX_REQUESTS = 200  # bound on the wait for the kernel to hand both workers connections
# Every request pins the order (primary first): load balancing never reorders an explicit
# order, so a skipped primary can only be its breaker's doing.
PIN = {"provider": {"order": [PRIMARY, FALLBACK]}}
# How long a worker may act on its cached view of a breaker before re-reading Redis.
LOCAL_VIEW_S: float = inspect.signature(CircuitBreakers).parameters["local_ttl_s"].default


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[Simulator, Simulator]]:
    primary, fallback = Simulator(), Simulator()
    primary.start_in_thread()
    fallback.start_in_thread()
    yield primary, fallback
    primary.stop_thread()
    fallback.stop_thread()


def chats(sim: Simulator) -> int:
    return len([r for r in sim.requests if r.path in CHAT_PATHS])


def owner_of(server: Server, workers: set[int], r: httpx2.Response) -> int | None:
    """The worker holding the server side of the (still open) connection `r` came over."""
    client_port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
    return connection_owner(server.port, client_port, workers)


def fresh(
    server: Server, workers: set[int], method: str, path: str, key: str, body: Any = None
) -> tuple[httpx2.Response, int | None]:
    """One request over a fresh connection; (response, PID of the worker that served it)."""
    headers = {"authorization": f"Bearer {key}", "connection": "keep-alive"}
    with httpx2.Client(trust_env=False, timeout=10.0) as client:
        r = client.request(method, f"{server.root}{path}", headers=headers, json=body)
        return r, owner_of(server, workers, r)


def chat_body(prompt: str) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt}], **PIN}


def primary_breaker(r: httpx2.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    (entry,) = [e for e in r.json()["data"] if e["provider"] == PRIMARY and e["model"] is None]
    return dict(entry)


def test_failures_seen_by_one_worker_open_the_breaker_for_both(
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    sims: tuple[Simulator, Simulator],
) -> None:
    primary, fallback = sims
    env = production_env(
        postgres_url, redis_url, redis_prefix, primary.base_url, MODEL, tmp_path / "data"
    )
    env["GATEWAYZ_PROVIDER_LM_STUDIO_BASE_URL"] = fallback.base_url
    env["GATEWAYZ_PROVIDER_LM_STUDIO_MODELS"] = MODEL
    env["GATEWAYZ_BREAKER_FAILURE_THRESHOLD"] = str(THRESHOLD)
    env["GATEWAYZ_BREAKER_OPEN_S"] = "300"  # stays open for the whole test
    if "health_probes" in Settings.model_fields:
        # Active probes would send their own requests to the primary.
        env["GATEWAYZ_HEALTH_PROBES"] = "false"
    made = run_cli(
        [
            *("users", "create", "--email", "ops@example.com", "--role", "admin"),
            *("--plan", "dev", "--credits", "100", "--rpm-limit", "100000", "--json"),
        ],
        env,
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]

    with serve(env, tmp_path, tmp_path / "logs", workers=WORKERS) as server:
        workers = server.children()
        assert len(workers) >= WORKERS, server.output()

        # 1. THRESHOLD failures of the primary, all on one connection: one worker sees them.
        headers = {"authorization": f"Bearer {key}"}
        owners: set[int | None] = set()
        with httpx2.Client(trust_env=False, timeout=10.0, headers=headers) as one:
            for i in range(THRESHOLD):
                primary.fault(Fault(status=503))
                r = one.post(f"{server.root}/v1/chat/completions", json=chat_body(f"fail {i}"))
                assert r.status_code == 200, r.text
                assert r.headers["x-gatewayz-provider"] == FALLBACK
                assert r.headers["x-gatewayz-attempts"] == "2"
                owners.add(owner_of(server, workers, r))
        (seen_failures,) = owners
        assert seen_failures in workers, owners
        assert chats(primary) == THRESHOLD and chats(fallback) == THRESHOLD

        # The breaker lives in Redis, under this run's prefix.
        client = redis.Redis.from_url(redis_url)
        try:
            record = client.hgetall(f"{redis_prefix}breaker:{PRIMARY}")
        finally:
            client.close()
        assert record[b"state"] == b"open" and int(record[b"failures"]) == THRESHOLD, record

        # 2. Fresh connections until every worker has served PER_WORKER requests: the primary
        # is skipped by both (after at most one local-cache period).
        time.sleep(LOCAL_VIEW_S + 0.2)
        served: Counter[int | None] = Counter()
        sent = 0
        while len([w for w in workers if served[w] >= PER_WORKER]) < WORKERS:
            assert sent < MAX_REQUESTS, f"workers served {dict(served)} of {workers}"
            r, owner = fresh(
                server, workers, "POST", "/v1/chat/completions", key, chat_body(f"ok {sent}")
            )
            sent += 1
            served[owner] += 1
            assert r.status_code == 200, r.text
            assert r.headers["x-gatewayz-provider"] == FALLBACK, (owner, seen_failures)
            assert r.headers["x-gatewayz-attempts"] == "1", (owner, seen_failures)
        assert None not in served and set(served) <= workers
        assert served[seen_failures] >= PER_WORKER
        assert sum(n for w, n in served.items() if w != seen_failures) >= PER_WORKER
        assert chats(primary) == THRESHOLD  # nothing more reached the primary
        assert chats(fallback) == THRESHOLD + sent

        # 3. GET /admin/circuit-breakers from both workers: open, THRESHOLD failures.
        answered: dict[int, dict[str, Any]] = {}
        tries = 0
        while len(answered) < WORKERS:
            assert tries < MAX_REQUESTS, f"only {set(answered)} of {workers} answered"
            r, owner = fresh(server, workers, "GET", "/admin/circuit-breakers", key)
            tries += 1
            assert owner is not None
            answered[owner] = primary_breaker(r)
        for entry in answered.values():
            assert entry["state"] == "open" and entry["failures"] == THRESHOLD, answered
            assert entry["retry_at"] == pytest.approx(entry["opened_at"] + 300)
        assert len({e["opened_at"] for e in answered.values()}) == 1  # one shared record
