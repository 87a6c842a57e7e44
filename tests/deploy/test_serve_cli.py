"""`make run` as a user meets it: `gatewayz serve` as a subprocess, zero configuration.

The environment is scrubbed of every GATEWAYZ_* and provider key variable and the data
directory is fresh, so this is exactly the first run on a new machine: migrate, create the
admin, print its key once, serve the built-in simulated models."""

from __future__ import annotations

import io
import json
import re
import sqlite3
import stat
import subprocess
import sys
import textwrap
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx2
import openai
import pytest

from gatewayz.billing.plans import load_plans
from gatewayz.simulators import DEFAULT_MODELS, Simulator
from gatewayz.simulators.content import ECHO_PREFIX
from tests.deploy.helpers import Server, clean_env, free_port, run_cli, serve

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="process-group handling assumes Linux"
)

KEY_RE = re.compile(r"gw_live_[A-Za-z0-9_-]{43,}")
ANY_KEY_RE = re.compile(r"gw_[a-z]+_[A-Za-z0-9_-]{20,}")
PROMPT = "Say hello to the deploy test."


@dataclass
class FirstRun:
    server: Server
    key: str
    data_dir: Path


def _sdk(server: Server, key: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.base_url,
        api_key=key,
        max_retries=0,
        timeout=10.0,
        http_client=openai.DefaultHttpxClient(trust_env=False),
    )


def _printed_keys(stdout: str) -> set[str]:
    return set(KEY_RE.findall(stdout))


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirstRun]:
    home = tmp_path_factory.mktemp("first-run")
    data_dir = home / "data"
    env = clean_env(GATEWAYZ_DATA_DIR=str(data_dir))
    with serve(env, home, home / "logs") as server:
        keys = _printed_keys(server.stdout)
        assert len(keys) == 1, f"expected exactly one admin key on stdout\n{server.output()}"
        yield FirstRun(server, keys.pop(), data_dir)


# ---- first run ---------------------------------------------------------------------------


def test_first_run_prints_the_admin_key_and_an_openai_sdk_example(first_run: FirstRun) -> None:
    out = first_run.server.stdout
    assert "first run" in out.lower()
    assert "shown only this once" in out
    assert "from openai import OpenAI" in out
    # The example is ready to paste: this server's URL and the key just created.
    assert f'base_url="{first_run.server.base_url}"' in out
    assert f'api_key="{first_run.key}"' in out
    assert '"simulated/echo"' in out


def test_the_printed_example_runs_as_printed(first_run: FirstRun, tmp_path: Path) -> None:
    """Copy the example from the banner into a file and run it, as the banner invites."""
    lines = first_run.server.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "from openai import OpenAI" in line)
    end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith("print("))
    script = tmp_path / "example.py"
    script.write_text(textwrap.dedent("\n".join(lines[start : end + 1])) + "\n")
    result = subprocess.run(
        [sys.executable, str(script)],
        env=clean_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ECHO_PREFIX + "Hello!"


def test_printed_key_works_with_the_openai_sdk(first_run: FirstRun) -> None:
    client = _sdk(first_run.server, first_run.key)
    messages = [{"role": "user", "content": PROMPT}]
    first = client.chat.completions.create(model="simulated/echo", messages=messages)
    second = client.chat.completions.create(model="simulated/echo", messages=messages)
    answer = first.choices[0].message.content
    assert answer, "empty answer"
    assert answer == ECHO_PREFIX + PROMPT
    assert second.choices[0].message.content == answer  # deterministic
    assert first.model == "simulated/echo"
    assert first.choices[0].finish_reason == "stop"
    assert first.usage is not None and first.usage.total_tokens > 0


def test_streaming_with_the_printed_key(first_run: FirstRun) -> None:
    client = _sdk(first_run.server, first_run.key)
    messages = [{"role": "user", "content": PROMPT}]
    chunks = list(
        client.chat.completions.create(model="simulated/echo", messages=messages, stream=True)
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert text == ECHO_PREFIX + PROMPT
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_the_media_endpoints_work_with_the_printed_key_at_no_cost(first_run: FirstRun) -> None:
    client = _sdk(first_run.server, first_run.key)
    raw = client.embeddings.with_raw_response.create(model="simulated/embed", input=["a", "b"])
    assert len(raw.parse().data) == 2 and raw.headers["x-gatewayz-provider"] == "simulated"
    image = client.images.generate(model="simulated/image", prompt="a fox", size="1024x1024")
    assert image.data[0].url
    wav = io.BytesIO()
    with wave.open(wav, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(b"\0\0" * 8000)
    raw_text = client.audio.transcriptions.with_raw_response.create(
        model="simulated/whisper", file=("hi.wav", wav.getvalue(), "audio/wav")
    )
    assert raw_text.parse().text.startswith("Simulated transcript of hi.wav")
    assert raw_text.headers.get("x-gatewayz-cost", "0") in ("0", "0.0", "0.000000000")


def test_models_lists_the_simulated_models(first_run: FirstRun) -> None:
    models = list(_sdk(first_run.server, first_run.key).models.list())
    ids = [m.id for m in models]
    assert set(DEFAULT_MODELS) <= set(ids)
    # Zero configuration: only the simulated provider is served.
    assert all(i.startswith("simulated/") for i in ids), ids
    assert {m.owned_by for m in models} == {"gatewayz-simulated"}


def test_a_wrong_key_is_refused(first_run: FirstRun) -> None:
    bad = "gw_live_" + "A" * 43
    with pytest.raises(openai.AuthenticationError) as info:
        _sdk(first_run.server, bad).chat.completions.create(
            model="simulated/echo", messages=[{"role": "user", "content": "hi"}]
        )
    assert info.value.status_code == 401
    r = httpx2.get(f"{first_run.server.base_url}/models", trust_env=False, timeout=5)
    assert r.status_code == 401


def test_health_reports_sqlite_and_memory_state(first_run: FirstRun) -> None:
    r = httpx2.get(f"{first_run.server.root}/health", trust_env=False, timeout=5)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "operational", body
    assert body["subsystems"]["database"]["status"] == "ok"
    assert body["subsystems"]["state"]["backend"] == "memory"
    assert body["subsystems"]["providers"]["served"] == ["simulated"]


def test_data_dir_holds_private_secrets_and_the_sqlite_database(first_run: FirstRun) -> None:
    secrets_file = first_run.data_dir / "secrets.toml"
    assert secrets_file.is_file()
    assert stat.S_IMODE(secrets_file.stat().st_mode) == 0o600
    text = secrets_file.read_text()
    assert "fernet_key" in text and "hmac_key" in text
    db_file = first_run.data_dir / "gatewayz.db"
    assert db_file.read_bytes()[:16] == b"SQLite format 3\x00"
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as conn:
        users = conn.execute("SELECT email, role FROM users").fetchall()
        revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert users == [("admin@localhost", "admin")]
    assert revision is not None  # migrated
    # The key itself is never stored in the clear.
    assert first_run.key.encode() not in db_file.read_bytes()


# ---- second run --------------------------------------------------------------------------


def test_the_first_run_admin_key_reaches_a_priced_provider(tmp_path: Path) -> None:
    # A newcomer sets a provider key and runs: the admin starts with $0 of credit, yet its
    # requests are served (metered, with their cost), not refused for want of credit.
    sim = Simulator()
    sim.start_in_thread()
    try:
        env = clean_env(
            GATEWAYZ_DATA_DIR=str(tmp_path / "data"),
            OPENAI_API_KEY="sk-test-first-run",
            GATEWAYZ_PROVIDER_OPENAI_BASE_URL=sim.base_url,
        )
        with serve(env, tmp_path, tmp_path / "logs") as server:
            (key,) = _printed_keys(server.stdout)
            raw = _sdk(server, key).chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}], max_tokens=20
            )
            assert raw.headers["x-gatewayz-provider"] == "openai"
            assert Decimal(raw.headers["x-gatewayz-cost"]) > 0
            assert raw.parse().choices[0].message.content
    finally:
        sim.stop_thread()


def test_second_start_prints_no_new_key_and_the_old_key_still_works(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = clean_env(GATEWAYZ_DATA_DIR=str(data_dir))
    with serve(env, tmp_path, tmp_path / "run1") as first:
        keys = _printed_keys(first.stdout)
        assert len(keys) == 1, first.output()
        key = keys.pop()
    assert first.proc.returncode == 0, first.output()  # Ctrl+C is a clean shutdown
    secrets_before = (data_dir / "secrets.toml").read_bytes()

    with serve(env, tmp_path, tmp_path / "run2") as second:
        assert not ANY_KEY_RE.search(second.stdout), second.output()
        assert "first run" not in second.stdout.lower()
        r = _sdk(second, key).chat.completions.create(
            model="simulated/echo", messages=[{"role": "user", "content": PROMPT}]
        )
        assert r.choices[0].message.content == ECHO_PREFIX + PROMPT
    assert (data_dir / "secrets.toml").read_bytes() == secrets_before
    with sqlite3.connect(f"file:{data_dir / 'gatewayz.db'}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)


# ---- providers list ----------------------------------------------------------------------


def _table(stdout: str) -> dict[str, tuple[str, str]]:
    """`providers list` rows: slug -> (served, status)."""
    rows: dict[str, tuple[str, str]] = {}
    for line in stdout.splitlines()[1:]:
        parts = line.split(None, 3)
        if len(parts) == 4 and parts[2] in ("yes", "no"):
            rows[parts[0]] = (parts[2], parts[3])
    return rows


def test_providers_list_zero_config(tmp_path: Path) -> None:
    env = clean_env(GATEWAYZ_DATA_DIR=str(tmp_path / "data"))
    result = run_cli(["providers", "list"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = _table(result.stdout)
    assert rows["simulated"][0] == "yes"
    served, status = rows["openai"]
    assert served == "no"
    assert "OPENAI_API_KEY" in status
    assert [slug for slug, (s, _) in rows.items() if s == "yes"] == ["simulated"]
    assert f"{len(rows)} providers known, 1 served." in result.stdout


def test_providers_list_with_an_openai_key(tmp_path: Path) -> None:
    env = clean_env(GATEWAYZ_DATA_DIR=str(tmp_path / "data"), OPENAI_API_KEY="sk-x")
    result = run_cli(["providers", "list"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = _table(result.stdout)
    assert rows["openai"][0] == "yes"
    assert rows["simulated"][0] == "yes"
    assert "sk-x" not in result.stdout  # the key itself is never shown
    assert f"{len(rows)} providers known, 2 served." in result.stdout


@pytest.mark.parametrize("openai_key", [None, "sk-x"])
def test_providers_list_json(tmp_path: Path, openai_key: str | None) -> None:
    extra = {"OPENAI_API_KEY": openai_key} if openai_key else {}
    env = clean_env(GATEWAYZ_DATA_DIR=str(tmp_path / "data"), **extra)
    result = run_cli(["providers", "list", "--json"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_slug = {r["slug"]: r for r in rows}
    assert len(by_slug) == len(rows)
    assert all(set(r) == {"slug", "name", "family", "served", "status", "base_url"} for r in rows)
    assert by_slug["simulated"]["served"] is True
    assert by_slug["openai"]["served"] is bool(openai_key)
    if openai_key:
        assert "sk-x" not in result.stdout
        assert [r["slug"] for r in rows if r["served"]] == ["simulated", "openai"]
    else:
        assert "OPENAI_API_KEY" in by_slug["openai"]["status"]
        assert [r["slug"] for r in rows if r["served"]] == ["simulated"]


# ---- misconfiguration --------------------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "providers list"])
def test_an_unknown_gatewayz_variable_fails_fast_and_names_it(tmp_path: Path, command: str) -> None:
    args = command.split()
    if command == "serve":
        args += ["--port", str(free_port())]
    env = clean_env(GATEWAYZ_DATA_DIR=str(tmp_path / "data"), GATEWAYZ_BOGUS="1")
    # run_cli's timeout turns a hang (a server that started anyway) into a failure.
    try:
        result = run_cli(args, env, tmp_path, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`gatewayz {' '.join(args)}` with GATEWAYZ_BOGUS=1 did not exit")
    assert result.returncode != 0
    assert "GATEWAYZ_BOGUS" in result.stderr
    # An operator-facing message, like every other CLI error: no traceback.
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().startswith("error:"), result.stderr
    # It failed before touching anything.
    assert not (tmp_path / "data").exists()


# ---- the CLI beside a running server ------------------------------------------------------


def test_the_cli_run_from_elsewhere_provisions_a_trial_user_the_server_serves(
    tmp_path: Path,
) -> None:
    """`gatewayz users create` from another working directory, with the server's
    GATEWAYZ_DATA_DIR, writes to the server's database with its secrets, and gives the trial a
    sign-up gets: its credit, its end."""
    data_dir, server_dir, elsewhere = tmp_path / "data", tmp_path / "srv", tmp_path / "elsewhere"
    server_dir.mkdir()
    elsewhere.mkdir()
    env = clean_env(GATEWAYZ_DATA_DIR=str(data_dir))
    terms = load_plans().trial
    with serve(env, server_dir, tmp_path / "logs") as server:
        made = run_cli(["users", "create", "--email", "cli@example.com", "--json"], env, elsewhere)
        assert made.returncode == 0, made.stderr
        key = json.loads(made.stdout)["api_key"]
        headers = {"authorization": f"Bearer {key}"}
        r = httpx2.get(f"{server.root}/trial/status", headers=headers, trust_env=False, timeout=5)
        assert r.status_code == 200, r.text
        status = r.json()
        assert status["is_trial"] and status["active"], status
        assert Decimal(status["remaining"]["credits_usd"]) == terms.credits_usd
        ends = datetime.fromisoformat(status["trial_ends_at"])
        assert abs(ends - datetime.now(UTC) - timedelta(days=terms.days)) < timedelta(minutes=5)
        answer = _sdk(server, key).chat.completions.create(
            model="simulated/echo", messages=[{"role": "user", "content": PROMPT}]
        )
        assert answer.choices[0].message.content == ECHO_PREFIX + PROMPT
    # The CLI made no database of its own in its working directory.
    assert not (elsewhere / ".gatewayz").exists()
    assert not (server_dir / ".gatewayz").exists()
