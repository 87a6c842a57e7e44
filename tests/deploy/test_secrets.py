"""The deployment's two secrets: a process whose secrets are not the ones the database was set
up with refuses to start and says why (replicas must share them), and `gatewayz secrets rotate`
re-keys every API key and webhook secret so that nothing is lost."""

from __future__ import annotations

import asyncio
import json
import secrets
import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from gatewayz.security.keys import KeyRing
from gatewayz.simulators import Simulator
from gatewayz.storage.db import Database
from gatewayz.storage.webhook_tables import webhook_endpoints
from tests.deploy.helpers import (
    _spawn,
    clean_env,
    free_port,
    gatewayz_command,
    run_cli,
    serve,
)

MODEL = "test-model"


def _env(tmp: Path, upstream: Simulator, fernet: str, mac: str, data: str) -> dict[str, str]:
    return clean_env(
        GATEWAYZ_DATABASE_URL=f"sqlite+aiosqlite:///{tmp / 'shared.db'}",
        GATEWAYZ_DATA_DIR=str(tmp / data),
        GATEWAYZ_FERNET_KEY=fernet,
        GATEWAYZ_HMAC_KEY=mac,
        GATEWAYZ_PROVIDER_VLLM_BASE_URL=upstream.base_url,
        GATEWAYZ_PROVIDER_VLLM_MODELS=MODEL,
        GATEWAYZ_WEBHOOKS_ALLOW_PRIVATE="true",  # a loopback endpoint (never called here)
    )


def _secrets() -> tuple[str, str]:
    return Fernet.generate_key().decode(), secrets.token_urlsafe(48)


def _chat(base_url: str, key: str) -> int:
    import httpx2

    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    r = httpx2.post(
        f"{base_url}/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        trust_env=False,
        timeout=10,
    )
    return r.status_code


def test_a_replica_with_other_secrets_refuses_to_start(tmp_path: Path, upstream: Simulator) -> None:
    first = _env(tmp_path, upstream, *_secrets(), "a")
    made = run_cli(["users", "create", "--email", "a@example.com", "--json"], first, tmp_path)
    assert made.returncode == 0, made.stderr
    with serve(first, tmp_path, tmp_path / "logs-a"):
        other = _env(tmp_path, upstream, *_secrets(), "b")
        (tmp_path / "logs-b").mkdir()
        server = _spawn(other, tmp_path, tmp_path / "logs-b", free_port(), ())
        assert server.proc.wait(30) == 1
        assert "not the secrets this database was set up with" in server.stderr
        assert "docs/replicas.md" in server.stderr


def test_rotating_the_secrets_keeps_every_key_and_webhook_secret(
    tmp_path: Path, upstream: Simulator
) -> None:
    old, new = _secrets(), _secrets()
    env = _env(tmp_path, upstream, *old, "a")
    made = run_cli(["users", "create", "--email", "r@example.com", "--json"], env, tmp_path)
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)["api_key"]
    with serve(env, tmp_path, tmp_path / "logs-1") as server:
        assert _chat(server.base_url, key) == 200
        import httpx2

        hook = httpx2.post(
            f"{server.root}/user/webhooks",
            json={"url": "http://127.0.0.1:9/gw", "events": ["credits.low"]},
            headers={"authorization": f"Bearer {key}"},
            trust_env=False,
            timeout=10,
        )
        assert hook.status_code == 201, hook.text
        signing = hook.json()["secret"]

    rotate = subprocess.run(
        [*gatewayz_command(), "secrets", "rotate", "--json"],
        input=f"{new[0]}\n{new[1]}\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rotate.returncode == 0, rotate.stderr
    assert json.loads(rotate.stdout) == {"api_keys": 1, "webhook_secrets": 1}

    rotated = _env(tmp_path, upstream, *new, "a2")
    with serve(rotated, tmp_path, tmp_path / "logs-2") as server:
        assert _chat(server.base_url, key) == 200  # the same key, found under the new secrets
    stale = _env(tmp_path, upstream, *old, "a3")
    (tmp_path / "logs-3").mkdir()
    assert _spawn(stale, tmp_path, tmp_path / "logs-3", free_port(), ()).proc.wait(30) == 1

    async def stored_secret() -> str:
        db = Database(env["GATEWAYZ_DATABASE_URL"])
        try:
            async with db.begin() as conn:
                return str(await conn.scalar(select(webhook_endpoints.c.secret_enc)))
        finally:
            await db.dispose()

    ring = KeyRing(new[0].encode(), new[1].encode())
    assert ring.decrypt(asyncio.run(stored_secret())) == signing


@pytest.mark.parametrize(
    ("stdin", "message"),
    [("only-one-line\n", "one per line"), ("not-fernet\n" + "h" * 40 + "\n", "Fernet")],
)
def test_rotate_refuses_bad_secrets(
    tmp_path: Path, upstream: Simulator, stdin: str, message: str
) -> None:
    env = _env(tmp_path, upstream, *_secrets(), "a")
    result = subprocess.run(
        [*gatewayz_command(), "secrets", "rotate"],
        input=stdin,
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1 and message in result.stderr


async def test_the_first_fingerprint_stored_wins_and_others_are_refused(postgres_url: str) -> None:
    """Processes starting together on an empty database (each checks in `Services.start` and
    in `gatewayz serve`): the first fingerprint stored stands, concurrent claims agree on it."""
    from gatewayz.security.fingerprint import check_secrets
    from gatewayz.settings import ConfigError
    from gatewayz.storage.db import upgrade

    await upgrade(postgres_url)
    db = Database(postgres_url)
    try:
        mine = tuple(s.encode() for s in _secrets())
        await asyncio.gather(*(check_secrets(db, mine) for _ in range(4)))  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="fingerprints differ"):
            await check_secrets(db, tuple(s.encode() for s in _secrets()))  # type: ignore[arg-type]
        await check_secrets(db, mine)  # type: ignore[arg-type]
    finally:
        await db.dispose()
