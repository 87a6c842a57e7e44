"""The deployment files, checked without Docker (none runs here): the Dockerfile's stages and
instructions, compose.yaml's services, health checks and settings, the Vercel entry — and that
every command and setting they name exists."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import yaml

from gatewayz.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions (continuation lines joined, comments dropped)."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_is_multi_stage_slim_non_root_with_a_health_check() -> None:
    ins = instructions()
    froms = [rest for op, rest in ins if op == "FROM"]
    assert len(froms) == 2 and all(f.startswith("python:3.11-slim") for f in froms)
    assert froms[0].endswith(" AS build")
    final = ins[[op for op, _ in ins].index("FROM", 1) :]  # the run stage
    users = [rest for op, rest in final if op == "USER"]
    assert users and users[-1] not in ("root", "0")
    assert any(op == "COPY" and rest.startswith("--from=build") for op, rest in final)
    (health,) = [rest for op, rest in final if op == "HEALTHCHECK"]
    assert "/health" in health and "CMD" in health
    assert ("VOLUME", '["/data"]') in final and ("EXPOSE", "8000") in final
    entry = json.loads(next(rest for op, rest in final if op == "ENTRYPOINT"))
    cmd = json.loads(next(rest for op, rest in final if op == "CMD"))
    assert entry + cmd == ["gatewayz", "serve"]


def test_the_commands_the_files_run_exist(tmp_path: Path) -> None:
    """The image's entry point (`gatewayz serve`) and the health checks' interpreter code."""
    from tests.deploy.helpers import clean_env, run_cli

    result = run_cli(["serve", "--help"], clean_env(GATEWAYZ_DATA_DIR=str(tmp_path)), tmp_path)
    assert result.returncode == 0 and "--workers" in result.stdout, result.stderr
    final = instructions()
    (health,) = [rest for op, rest in final if op == "HEALTHCHECK"]
    code = json.loads(health[health.index("CMD") + 3 :].strip())
    assert code[:2] == ["python", "-c"]
    compile(code[2], "HEALTHCHECK", "exec")  # the command's Python is valid
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    test = compose["services"]["gatewayz"]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    compile(test[3], "compose healthcheck", "exec")


def test_the_dockerfile_copies_what_exists_and_sets_real_settings() -> None:
    ins = instructions()
    for op, rest in ins:
        if op == "COPY" and not rest.startswith("--from"):
            *sources, _dest = shlex.split(rest)
            for source in sources:
                assert (ROOT / source).exists(), source
    env = " ".join(rest for op, rest in ins if op == "ENV")
    names = re.findall(r"GATEWAYZ_([A-Z_]+)=", env)
    assert names and all(n.lower() in Settings.model_fields for n in names), names
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "src" not in ignored and ".venv" in ignored and ".git" in ignored


def test_compose_runs_the_gateway_on_postgres_and_redis_with_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"gatewayz", "postgres", "redis"}
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service.get("restart") == "unless-stopped", name
    gw = services["gatewayz"]
    assert gw["build"] == "."
    assert gw["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    env = gw["environment"]
    assert env["GATEWAYZ_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert "@postgres:5432/" in env["GATEWAYZ_DATABASE_URL"]
    assert env["GATEWAYZ_REDIS_URL"] == "redis://redis:6379/0"
    for name in ("GATEWAYZ_FERNET_KEY", "GATEWAYZ_HMAC_KEY"):  # required: replicas share them
        assert ":?" in env[name]
    settings = {n.removeprefix("GATEWAYZ_").lower() for n in env if n.startswith("GATEWAYZ_")}
    assert settings <= set(Settings.model_fields), settings - set(Settings.model_fields)
    volumes = {v.split(":")[0] for s in services.values() for v in s.get("volumes", [])}
    assert volumes == set(compose["volumes"])
    assert "/data" in " ".join(gw["volumes"])


def test_vercel_routes_every_path_to_the_entry_point() -> None:
    config = json.loads((ROOT / "vercel.json").read_text())
    assert config["rewrites"] == [{"source": "/(.*)", "destination": "/api/index"}]
    assert "api/index.py" in config["functions"] and (ROOT / "api" / "index.py").is_file()
