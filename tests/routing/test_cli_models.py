"""`gatewayz models resolve` through the real command tree."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatewayz.cli.main import app
from gatewayz.settings import PROVIDERS_FILE


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    """Zero configuration: no GATEWAYZ_* variable and no provider key in the environment."""
    with PROVIDERS_FILE.open("rb") as f:
        entries = tomllib.load(f)["providers"]
    provider_vars = {
        v for e in entries.values() for v in [e.get("key_env"), *e.get("env_vars", [])]
    }
    for name in list(os.environ):
        if name.startswith("GATEWAYZ_") or name in provider_vars:
            monkeypatch.delenv(name)
    monkeypatch.setenv("GATEWAYZ_DATA_DIR", str(tmp_path / "data"))
    return CliRunner()


def test_resolve_prints_each_step_with_zero_config(runner: CliRunner) -> None:
    res = runner.invoke(app, ["models", "resolve", "r1"])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[:3] == [
        "input      r1",
        "alias      deepseek/deepseek-r1",
        "canonical  deepseek/deepseek-r1",
    ]
    assert "  1. alias 'r1' → 'deepseek/deepseek-r1'" in lines
    first = lines.index("providers, in order") + 1
    assert lines[first].split() == ["1.", "deepseek", "deepseek-reasoner"]
    assert "not served: no key: set DEEPSEEK_API_KEY" in lines[first + 1]
    assert "accounts/fireworks/models/deepseek-r1" in res.output
    assert lines[-1].startswith("result     404 model_not_found: The model 'r1'")


def test_resolve_json_with_a_configured_provider_and_override(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOGETHER_API_KEY", "tk")
    monkeypatch.setenv("GROQ_API_KEY", "gk")
    res = runner.invoke(app, ["models", "resolve", "llama-3.3-70b", "--json"])
    assert res.exit_code == 0, res.output
    d = json.loads(res.output)
    assert (d["model"], d["alias"]) == ("llama-3.3-70b", "meta-llama/llama-3.3-70b-instruct")
    assert d["route"] == ["together", "groq"] and d["error"] is None
    served = {p["provider"]: p["native_id"] for p in d["providers"] if p["served"]}
    assert served == {
        "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "groq": "llama-3.3-70b-versatile",
    }
    res = runner.invoke(app, ["models", "resolve", "llama-3.3-70b", "-p", "groq", "--json"])
    d = json.loads(res.output)
    assert d["route"] == ["groq"] and d["providers"][0]["rule"] == "override"
    assert d["override"] == "request field `provider`: order=['groq'], no fallbacks"
    res = runner.invoke(
        app, ["models", "resolve", "llama-3.3-70b", "--provider", '{"order": ["groq"]}']
    )
    assert res.exit_code == 0
    assert "result     groq with native id 'llama-3.3-70b-versatile'" in res.output


def test_resolve_rejects_a_bad_override(runner: CliRunner) -> None:
    res = runner.invoke(app, ["models", "resolve", "r1", "--provider", "nope"])
    assert res.exit_code == 1
    assert "unknown provider(s): nope" in res.output
    res = runner.invoke(app, ["models", "resolve", "r1", "--provider", "{bad"])
    assert res.exit_code == 1 and "not valid JSON" in res.output
