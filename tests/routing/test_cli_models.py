"""`gatewayz models resolve` through the real command tree."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gatewayz.cli.main import app
from gatewayz.settings import PROVIDERS_FILE
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import lists_of


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


def test_resolve_prints_each_step_with_zero_config(runner: CliRunner, tmp_path: Path) -> None:
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
    assert "catalog    none: resolved without it (no database yet)" in lines
    assert not (tmp_path / "data" / "gatewayz.db").exists()  # a look-up writes nothing


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


@pytest.fixture
def router() -> Iterator[Simulator]:
    s = Simulator()
    s.start_in_thread()
    lists_of(s).set("openai", [{"id": "microsoft/phi-4", "context_length": 16384}])
    yield s
    lists_of(s).reset()
    s.stop_thread()


def test_resolve_applies_the_synced_catalog_as_requests_do(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, router: Simulator
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "k-openrouter")
    monkeypatch.setenv("GATEWAYZ_PROVIDER_OPENROUTER_BASE_URL", router.base_url)
    before = runner.invoke(app, ["models", "resolve", "microsoft/phi-4o", "--json"])
    assert before.exit_code == 0, before.output
    assert json.loads(before.output)["route"] == ["openrouter"]  # no catalog: as before
    synced = runner.invoke(app, ["models", "sync"])
    assert synced.exit_code == 0, synced.output
    after = runner.invoke(app, ["models", "resolve", "microsoft/phi-4o", "--json"])
    d = json.loads(after.output)
    assert d["route"] == [] and d["error"]["code"] == "model_not_found"
    assert d["suggestions"] == ["microsoft/phi-4"]
    assert d["error"]["message"].endswith("Did you mean: microsoft/phi-4?")
    text = runner.invoke(app, ["models", "resolve", "microsoft/phi-4o"]).output.splitlines()
    assert "catalog    synced: org and aggregator routes need a listing or a price" in text
    assert text[-1].startswith("result     404 model_not_found: The model 'microsoft/phi-4o'")
    listed = runner.invoke(app, ["models", "resolve", "microsoft/phi-4", "--json"])
    assert json.loads(listed.output)["route"] == ["openrouter"]
