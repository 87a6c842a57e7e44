"""`gatewayz models resolve` shows the failover chain a chat request would try — the pipeline's
own (`ChatPipeline.routes.chain_of`, the meter's prices, proxies first) — and what is left out
of it and why, not only the resolver's candidates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gatewayz.routing.failover import load_failover_policy
from tests.cli.conftest import Invoke, ok_json


def _resolve(gz: Invoke, *args: str) -> dict[str, Any]:
    d: dict[str, Any] = ok_json(gz("models", "resolve", *args, "--json"))
    return d


def _reasons(d: dict[str, Any]) -> dict[str, str]:
    return {o["provider"]: o["reason"] for o in d["chain"]["left_out"]}


def test_the_failover_policy_orders_and_filters_the_chain(
    gz: Invoke, op_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("OPENAI_API_KEY", "OPENROUTER_API_KEY", "GROQ_API_KEY", "TOGETHER_API_KEY"):
        op_env.setenv(var, "k")
    d = _resolve(gz, "openai/gpt-oss-120b")
    policy = load_failover_policy()
    assert "openai" in policy.first_party_only and policy.fallback == "openrouter"
    # The resolver finds every served provider of the model ...
    assert {"openai", "openrouter", "groq", "together"} <= set(d["route"])
    # ... an openai/* request tries only the maker, then the fallback aggregator.
    assert [s["key"] for s in d["chain"]["tried"]] == ["openai", "openrouter"]
    reasons = _reasons(d)
    for slug in ("groq", "together"):
        assert reasons[slug].startswith("failover policy: openai/* fails over only to openai")
    assert reasons["cerebras"].startswith("not served: no key: set CEREBRAS_API_KEY")
    first = d["chain"]["tried"][0]
    assert first["native_id"] == "gpt-oss-120b" and first["price_per_1m_usd"]["prompt"]
    assert d["chain"]["error"] is None
    lines = gz("models", "resolve", "openai/gpt-oss-120b").stdout.splitlines()
    chain_at = lines.index("failover chain, as a chat request tries it")
    assert lines[chain_at + 1].split()[:3] == ["1.", "openai", "gpt-oss-120b"]
    assert lines[chain_at + 2].split()[:2] == ["2.", "openrouter"]
    assert lines[-1] == "result     openai with native id 'gpt-oss-120b'"
    assert not (tmp_path / "data" / "gatewayz.db").exists()  # a look-up writes nothing


def test_the_chain_is_the_pipelines(gz: Invoke, op_env: pytest.MonkeyPatch) -> None:
    """The policy's order among the providers of its default chain, whatever the resolver's."""
    for var in ("TOGETHER_API_KEY", "FIREWORKS_API_KEY", "GROQ_API_KEY"):
        op_env.setenv(var, "k")
    d = _resolve(gz, "llama-3.3-70b")
    tried = [s["key"] for s in d["chain"]["tried"]]
    chain = load_failover_policy().chain
    ranked = [slug for slug in tried if slug in chain]
    assert ranked == sorted(ranked, key=chain.index) and set(tried) == set(d["route"])
    pinned = _resolve(gz, "llama-3.3-70b", "--provider", '{"order": ["groq", "together"]}')
    assert [s["key"] for s in pinned["chain"]["tried"]][:2] == ["groq", "together"]


def test_unpriced_candidates_are_left_out(gz: Invoke, op_env: pytest.MonkeyPatch) -> None:
    op_env.setenv("OPENAI_API_KEY", "k")
    d = _resolve(gz, "openai/gpt-4-nonexistent")
    assert d["route"] == ["openai"]  # resolution alone would send it
    assert d["chain"]["tried"] == []
    assert _reasons(d)["openai"].startswith("unpriced: The model 'openai/gpt-4-nonexistent'")
    assert d["chain"]["error"]["code"] == "pricing_unavailable"
    text = gz("models", "resolve", "openai/gpt-4-nonexistent").stdout.splitlines()
    assert text[-1].startswith("result     400 pricing_unavailable:")


def test_proxies_and_non_chat_models(gz: Invoke, op_env: pytest.MonkeyPatch) -> None:
    op_env.setenv("OPENAI_API_KEY", "k")
    op_env.setenv("GATEWAYZ_BUTTER_API_KEY", "b")  # openai through the Butter proxy first
    d = _resolve(gz, "gpt-4o")
    assert [(s["key"], s["via"]) for s in d["chain"]["tried"]] == [
        ("openai@butter", "butter"),
        ("openai", None),
    ]
    embedding = _resolve(gz, "text-embedding-3-small")
    assert embedding["chain"]["tried"] == []
    assert _reasons(embedding)["openai"] == "priced as an embedding model"
    assert embedding["chain"]["error"]["code"] == "model_not_supported"


def test_a_name_nothing_serves(gz: Invoke) -> None:
    d = _resolve(gz, "r1")
    assert d["chain"]["tried"] == [] and d["chain"]["error"]["code"] == "model_not_found"
    assert _reasons(d)["deepseek"] == "not served: " + next(
        p["status"] for p in d["providers"] if p["provider"] == "deepseek"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [(["x" * 600], "1-512 characters"), (["r1", "--provider", "{" * 5000], "at most 4096")],
)
def test_bounded_input(gz: Invoke, args: list[str], message: str) -> None:
    result = gz("models", "resolve", *args)
    assert result.exit_code == 1 and message in result.stderr
