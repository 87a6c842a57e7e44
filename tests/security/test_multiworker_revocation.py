"""Key changes reach every worker within one second: `gatewayz serve --workers 2` on PostgreSQL
and Redis. Both workers first cache the key (auth cache TTL: minutes); then it is rotated and
revoked through the API, and one second later every worker refuses the old secret (401).
Which worker answered is read from the kernel (see tests/deploy/test_postgres_redis.py)."""

from __future__ import annotations

import json
import secrets
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from cryptography.fernet import Fernet

from gatewayz.simulators import Simulator
from tests.deploy.helpers import Server, clean_env, connection_owner, run_cli, serve

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="worker attribution reads /proc (Linux)"
)

WORKERS = 2
MODEL = "test-model"
PROPAGATION_S = 1.0
MAX_TRIES = 200


@pytest.fixture
def server(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str, upstream: Simulator
) -> Iterator[tuple[Server, str]]:
    env = clean_env(
        GATEWAYZ_DATABASE_URL=postgres_url,
        GATEWAYZ_REDIS_URL=redis_url,
        GATEWAYZ_REDIS_KEY_PREFIX=redis_prefix,
        GATEWAYZ_PROVIDER_VLLM_BASE_URL=upstream.base_url,
        GATEWAYZ_PROVIDER_VLLM_MODELS=MODEL,
        GATEWAYZ_FERNET_KEY=Fernet.generate_key().decode(),
        GATEWAYZ_HMAC_KEY=secrets.token_urlsafe(48),
        GATEWAYZ_DATA_DIR=str(tmp_path / "data"),
    )
    made = run_cli(
        # Team plan (1,000 requests a minute): reaching both workers may take more requests
        # than the trial's 60 a minute, as the kernel hands connections out unevenly.
        [
            *("users", "create", "--email", "owner@example.com", "--credits", "100"),
            *("--plan", "team", "--json"),
        ],
        env,
        tmp_path,
    )
    assert made.returncode == 0, made.stderr
    with serve(env, tmp_path, tmp_path / "logs", workers=WORKERS) as srv:
        assert len(srv.children()) >= WORKERS, srv.output()
        yield srv, json.loads(made.stdout)["api_key"]


def _request(
    srv: Server, method: str, path: str, key: str, body: Any = None
) -> tuple[int, Any, int | None]:
    """One request over a fresh connection: (status, json, PID of the worker that served it)."""
    headers = {"authorization": f"Bearer {key}", "connection": "keep-alive"}
    with httpx2.Client(trust_env=False, timeout=10.0) as client:
        r = client.request(method, f"{srv.root}{path}", headers=headers, json=body)
        port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
        owner = connection_owner(srv.port, port, srv.children())
    return r.status_code, r.json(), owner


def _on_every_worker(srv: Server, key: str, expect: int) -> Counter[int | None]:
    """Chat requests until every worker has answered (bounded); each must be `expect`."""
    workers = srv.children()
    seen: Counter[int | None] = Counter()
    for _ in range(MAX_TRIES):
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
        status, payload, owner = _request(srv, "POST", "/v1/chat/completions", key, body)
        assert status == expect, (owner, payload)
        seen[owner] += 1
        if len(seen.keys() & workers) == WORKERS and sum(seen.values()) >= 6:
            return seen
    raise AssertionError(f"only workers {dict(seen)} of {workers} answered")


def _after(t0: float) -> None:
    time.sleep(max(0.0, t0 + PROPAGATION_S - time.monotonic()))


def test_cm_1_rotation_and_revocation_reach_every_worker_within_a_second(
    server: tuple[Server, str],
) -> None:
    srv, owner_key = server
    status, created, _ = _request(srv, "POST", "/user/api-keys", owner_key, {"name": "mw"})
    assert status == 201, created
    key_id, old = created["id"], created["api_key"]
    _on_every_worker(srv, old, 200)  # cached by both workers now

    status, rotated, _ = _request(
        srv, "PATCH", f"/user/api-keys/{key_id}", owner_key, {"rotate": True}
    )
    t0 = time.monotonic()
    assert status == 200, rotated
    _after(t0)
    _on_every_worker(srv, old, 401)
    new = rotated["api_key"]
    _on_every_worker(srv, new, 200)  # cached again, everywhere

    status, revoked, _ = _request(srv, "DELETE", f"/user/api-keys/{key_id}", owner_key)
    t0 = time.monotonic()
    assert status == 200 and revoked["deleted"] is True
    _after(t0)
    _on_every_worker(srv, new, 401)
    _on_every_worker(srv, owner_key, 200)  # other keys unaffected
