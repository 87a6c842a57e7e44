"""Changes made with the CLI reach a running `gatewayz serve --workers 2` (PostgreSQL and Redis)
as the API's own do: each worker has cached the key (auth cache TTL: minutes), then `gatewayz
keys rotate|revoke` or `users set-role` runs in another process, and one second later every
worker answers accordingly. Which worker answered is read from the kernel
(tests/deploy/helpers.py `connection_owner`)."""

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

from tests.deploy.helpers import Server, clean_env, connection_owner, run_cli, serve

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="worker attribution reads /proc (Linux)"
)

WORKERS = 2
PROPAGATION_S = 1.0
MAX_TRIES = 200


@pytest.fixture
def deployment(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> Iterator[tuple[Server, dict[str, str], Path]]:
    env = clean_env(
        GATEWAYZ_DATABASE_URL=postgres_url,
        GATEWAYZ_REDIS_URL=redis_url,
        GATEWAYZ_REDIS_KEY_PREFIX=redis_prefix,
        GATEWAYZ_FERNET_KEY=Fernet.generate_key().decode(),
        GATEWAYZ_HMAC_KEY=secrets.token_urlsafe(48),
        GATEWAYZ_DATA_DIR=str(tmp_path / "data"),
    )
    with serve(env, tmp_path, tmp_path / "logs", workers=WORKERS) as srv:
        assert len(srv.children()) >= WORKERS, srv.output()
        yield srv, env, tmp_path


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    result = run_cli(list(args), env, cwd)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def _status(srv: Server, path: str, key: str) -> tuple[int, int | None]:
    """One GET over a fresh connection: (status, PID of the worker that answered)."""
    with httpx2.Client(trust_env=False, timeout=10.0) as client:
        r = client.get(f"{srv.root}{path}", headers={"authorization": f"Bearer {key}"})
        port = r.extensions["network_stream"].get_extra_info("client_addr")[1]
        return r.status_code, connection_owner(srv.port, port, srv.children())


def _on_every_worker(srv: Server, path: str, key: str, expect: int) -> None:
    """Requests until every worker has answered (bounded); each must be `expect`."""
    workers = srv.children()
    seen: Counter[int | None] = Counter()
    for _ in range(MAX_TRIES):
        status, owner = _status(srv, path, key)
        assert status == expect, (owner, status, path)
        seen[owner] += 1
        if len(seen.keys() & workers) == WORKERS and sum(seen.values()) >= 4:
            return
    raise AssertionError(f"only workers {dict(seen)} of {workers} answered")


def _after(t0: float) -> None:
    time.sleep(max(0.0, t0 + PROPAGATION_S - time.monotonic()))


def test_rotate_revoke_and_set_role_reach_every_worker(
    deployment: tuple[Server, dict[str, str], Path],
) -> None:
    srv, env, cwd = deployment
    made: dict[str, Any] = json.loads(
        _cli(env, cwd, "users", "create", "--email", "ops@example.com", "--plan", "team", "--json")
    )
    owner = made["api_key"]
    issued = json.loads(_cli(env, cwd, "keys", "create", "--email", "ops@example.com", "--json"))
    key_id, old = issued["api_key_id"], issued["api_key"]
    _on_every_worker(srv, "/user/api-keys", old, 200)  # cached by both workers now
    _on_every_worker(srv, "/admin/users", owner, 403)  # role free: no admin routes

    new = json.loads(_cli(env, cwd, "keys", "rotate", key_id, "--json"))["api_key"]
    t0 = time.monotonic()
    _after(t0)
    _on_every_worker(srv, "/user/api-keys", old, 401)
    _on_every_worker(srv, "/user/api-keys", new, 200)  # cached again, everywhere

    _cli(env, cwd, "keys", "revoke", key_id)
    t0 = time.monotonic()
    _after(t0)
    _on_every_worker(srv, "/user/api-keys", new, 401)
    _on_every_worker(srv, "/user/api-keys", owner, 200)  # the user's other key is unaffected

    _cli(env, cwd, "users", "set-role", "ops@example.com", "admin")
    t0 = time.monotonic()
    _after(t0)
    _on_every_worker(srv, "/admin/users", owner, 200)  # the cached role is re-read everywhere
