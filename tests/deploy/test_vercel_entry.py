"""CM-17.2: the Vercel entry point (api/index.py) imports the app, and it serves."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx2
from fastapi import FastAPI

from tests.deploy.helpers import LOOPBACK, clean_env, free_port, run_cli

ROOT = Path(__file__).resolve().parents[2]


def test_cm_17_2_vercel_entry_point_imports_app(tmp_path: Path) -> None:
    """Imported in a fresh interpreter the way the platform does (the module's `app`), with a
    serverless-like environment, then served by an ASGI server: /health answers."""
    env = clean_env(GATEWAYZ_DATA_DIR=str(tmp_path / "gatewayz"), PYTHONPATH=str(ROOT))
    check = subprocess.run(
        [sys.executable, "-c", "import api.index as m, fastapi; print(type(m.app).__name__)"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == FastAPI.__name__
    # What a deployment runs before a new version (api/index.py): the schema migrated.
    upgrade = run_cli(["db", "upgrade"], env, tmp_path)
    assert upgrade.returncode == 0, upgrade.stderr
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "api.index:app", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx2.get(f"http://{LOOPBACK}:{port}/health", trust_env=False, timeout=2)
                break
            except httpx2.TransportError:
                assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                assert time.monotonic() < deadline, "the entry point did not serve in 30 s"
                time.sleep(0.1)
        assert r.status_code == 200 and r.json()["status"] in ("operational", "degraded")
        models = httpx2.get(f"http://{LOOPBACK}:{port}/v1/models", trust_env=False, timeout=5)
        assert models.status_code == 401  # the gateway's own answer: auth is on
    finally:
        server.terminate()
        server.wait(10)
