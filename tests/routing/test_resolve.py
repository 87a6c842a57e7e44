"""Model resolution (SPEC §3, CM-3): aliases, detection priority, native ids per provider."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gatewayz.errors import InvalidRequest, ModelNotFound
from gatewayz.providers.registry import Registry, load_registry
from gatewayz.routing.detect import ALIASES_FILE, load_routing_data, routing_data
from gatewayz.routing.resolve import Resolver
from gatewayz.settings import PROVIDERS_FILE, Settings

SIM_URL = "http://127.0.0.1:9/v1"
CANONICAL = re.compile(r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9._-]*$")
KEYED = (
    "openai",
    "openrouter",
    "groq",
    "fireworks",
    "together",
    "deepseek",
    "deepinfra",
    "cerebras",
    "mistral",
    "xai",
    "nvidia",
)


def _registry(tmp_path: Path, env: dict[str, dict[str, str]] | None = None) -> Registry:
    return load_registry(
        Settings(data_dir=tmp_path, provider_env=env or {}), simulated_base_url=SIM_URL
    )


def _env(*slugs: str) -> dict[str, dict[str, str]]:
    env = {s: {"api_key": f"key-{s}"} for s in slugs}
    env["cloudflare-workers-ai"] = {"api_key": "cf", "var:CLOUDFLARE_ACCOUNT_ID": "acc"}
    return env


@pytest.fixture
def resolver(tmp_path: Path) -> Resolver:
    return Resolver(_registry(tmp_path, _env(*KEYED)))


def _routes(resolver: Resolver, model: str, provider: Any = None) -> list[tuple[str, str]]:
    return [(r.provider.slug, r.native_id) for r in resolver.resolve(model, provider)]


def _natives(resolver: Resolver, model: str) -> dict[str, str]:
    return {c.provider.slug: c.native_id for c in resolver.explain(model).candidates}


def _openai_family_tables() -> dict[str, dict[str, str]]:
    with PROVIDERS_FILE.open("rb") as f:
        entries = tomllib.load(f)["providers"]
    return {s: e.get("native_ids", {}) for s, e in entries.items() if e["family"] == "openai"}


# ---------------------------------------------------------------- aliases
def test_cm_3_1_alias_r1_resolves_to_deepseek(resolver: Resolver) -> None:
    assert load_routing_data().alias("r1") == "deepseek/deepseek-r1"
    exp = resolver.explain("r1")
    assert (exp.alias, exp.canonical) == ("deepseek/deepseek-r1", "deepseek/deepseek-r1")
    assert exp.steps[0] == "alias 'r1' → 'deepseek/deepseek-r1'"
    routes = resolver.resolve("r1")
    assert (routes[0].provider.slug, routes[0].native_id) == ("deepseek", "deepseek-reasoner")
    assert {r.model for r in routes} == {"r1"}  # reported back as the client asked


def test_cm_3_2_alias_gpt4o_resolves_to_openai(resolver: Resolver) -> None:
    assert load_routing_data().alias("gpt-4o") == "openai/gpt-4o"
    assert resolver.explain("gpt-4o").canonical == "openai/gpt-4o"
    assert _routes(resolver, "gpt-4o") == [("openai", "gpt-4o"), ("openrouter", "openai/gpt-4o")]
    assert resolver.resolve("gpt-4o")[0].model == "gpt-4o"
    # case does not matter for shorthand
    assert resolver.explain("GPT-4o").canonical == "openai/gpt-4o"


def test_cm_3_3_at_least_120_aliases_defined() -> None:
    with ALIASES_FILE.open("rb") as f:
        raw = tomllib.load(f)["aliases"]
    data = load_routing_data()
    assert len(raw) == len(data.aliases) >= 120
    for name, target in data.aliases.items():
        assert CANONICAL.match(target), f"{name} → {target} is not {{org}}/{{model}}"
        assert target not in data.aliases, f"{target} is both a canonical id and an alias"
    expected = {
        "r1": "deepseek/deepseek-r1",
        "gpt-4o": "openai/gpt-4o",
        "claude-3.5-sonnet": "anthropic/claude-3-5-sonnet-latest",
        "sonnet": "anthropic/claude-sonnet-4-5",
        "llama-3.3-70b": "meta-llama/llama-3.3-70b-instruct",
        "gemini-2.5-pro": "google/gemini-2.5-pro",
        "mistral-large": "mistralai/mistral-large",
        "qwen3-235b": "qwen/qwen3-235b-a22b",
        "grok-4": "x-ai/grok-4",
        "kimi-k2": "moonshotai/kimi-k2",
        "glm-4.6": "z-ai/glm-4.6",
    }
    assert {k: data.aliases[k] for k in expected} == expected


def test_cm_3_4_canonical_id_passes_through_unchanged(resolver: Resolver) -> None:
    data = load_routing_data()
    for target in set(data.aliases.values()):
        assert data.alias(target) is None, target  # no double resolution
        exp = resolver.explain(target)
        assert (exp.canonical, exp.alias) == (target, None), target
    routes = resolver.resolve("openai/gpt-4o")
    assert [(r.provider.slug, r.native_id, r.model) for r in routes] == [
        ("openai", "gpt-4o", "openai/gpt-4o"),
        ("openrouter", "openai/gpt-4o", "openai/gpt-4o"),
    ]


# ---------------------------------------------------------------- detection priority
def test_cm_3_5_provider_detection_explicit_override_highest_priority(
    resolver: Resolver,
) -> None:
    assert _routes(resolver, "r1")[0] == ("deepseek", "deepseek-reasoner")
    # a slug: that provider only, in its own id format
    assert _routes(resolver, "r1", "together") == [("together", "deepseek-ai/DeepSeek-R1")]
    # even one no detection rule picks: it is tried with its best-guess id
    assert _routes(resolver, "r1", "groq") == [("groq", "deepseek/deepseek-r1")]
    # OpenRouter-style order (then the others), only, ignore
    ordered = _routes(resolver, "r1", {"order": ["fireworks", "together"]})
    assert ordered[:3] == [
        ("fireworks", "accounts/fireworks/models/deepseek-r1"),
        ("together", "deepseek-ai/DeepSeek-R1"),
        ("deepseek", "deepseek-reasoner"),
    ]
    assert len(ordered) == len(_routes(resolver, "r1"))
    no_fallback = {"order": ["fireworks"], "allow_fallbacks": False}
    assert [s for s, _ in _routes(resolver, "r1", no_fallback)] == ["fireworks"]
    assert _routes(resolver, "r1", {"only": ["together", "groq"]}) == [
        ("together", "deepseek-ai/DeepSeek-R1"),
        ("groq", "deepseek/deepseek-r1"),
    ]
    assert "deepseek" not in {s for s, _ in _routes(resolver, "r1", {"ignore": ["deepseek"]})}
    exp = resolver.explain("r1", "together")
    assert exp.candidates[0].rule == "override" and exp.override is not None
    assert exp.steps[-1].startswith("explicit override")
    # a per-model override row applies when the request names none; the request wins over it
    rows = routing_data(
        {
            "aliases": {"r1": "deepseek/deepseek-r1"},
            "overrides": {
                "deepseek/deepseek-r1": {"order": ["together"], "allow_fallbacks": False}
            },
        }
    )
    with_row = Resolver(resolver.registry, rows)
    assert _routes(with_row, "r1") == [("together", "deepseek-ai/DeepSeek-R1")]
    assert _routes(with_row, "r1", "fireworks") == [
        ("fireworks", "accounts/fireworks/models/deepseek-r1")
    ]


def test_cm_3_5_override_errors_are_clear(resolver: Resolver) -> None:
    for bad in ("nope", {"order": ["nope"]}, {"only": "groq"}, 7, "", {"allow_fallbacks": 1}):
        with pytest.raises(InvalidRequest) as e:
            resolver.resolve("r1", bad)
        assert (e.value.status, e.value.param) == (400, "provider")
    with pytest.raises(InvalidRequest, match="unknown provider"):
        resolver.resolve("r1", {"order": ["nope"]})
    # a provider that is known but not configured: 404 naming what to set
    with pytest.raises(ModelNotFound, match="SAMBANOVA_API_KEY"):
        resolver.resolve("r1", "sambanova")
    # a name that fixes its provider cannot be sent elsewhere
    with pytest.raises(InvalidRequest, match="can only be served by 'groq'"):
        resolver.resolve("groq/llama-3.3-70b-versatile", "together")
    assert _routes(resolver, "groq/llama-3.3-70b-versatile", {"order": ["groq"]}) == [
        ("groq", "llama-3.3-70b-versatile")
    ]


def test_cm_3_6_provider_detection_format_based_rules(resolver: Resolver) -> None:
    native = "accounts/fireworks/models/llama-v3p3-70b-instruct"
    assert _routes(resolver, native) == [("fireworks", native)]  # no aggregator, id unchanged
    assert _routes(resolver, "accounts/acme/models/tuned-7b") == [
        ("fireworks", "accounts/acme/models/tuned-7b")
    ]
    cf = "@cf/meta/llama-3.1-8b-instruct"
    assert _routes(resolver, cf) == [("cloudflare-workers-ai", cf)]
    for bedrock in (
        "us.anthropic.claude-sonnet-4-20250514-v1:0",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "meta.llama3-3-70b-instruct-v1:0",
    ):
        exp = resolver.explain(bedrock)
        assert [(c.provider.slug, c.native_id, c.rule) for c in exp.candidates] == [
            ("aws-bedrock", bedrock, "format")
        ]
    assert resolver.explain("gpt-4.1").candidates[0].provider.slug == "openai"
    # rules are data
    custom = routing_data({"format_rules": [{"glob": "tg:*", "provider": "together"}]})
    assert _routes(Resolver(resolver.registry, custom), "tg:x") == [("together", "tg:x")]


def test_cm_3_7_provider_detection_org_prefix_fallback(resolver: Resolver, tmp_path: Path) -> None:
    # no table lists it: the organisation's own provider, then aggregators
    assert _routes(resolver, "mistralai/mistral-next") == [
        ("mistral", "mistral-next"),
        ("openrouter", "mistralai/mistral-next"),
    ]
    exp = resolver.explain("meta-llama/llama-5-400b-instruct")
    assert [(c.provider.slug, c.rule) for c in exp.candidates if c.served] == [
        ("openrouter", "aggregator")
    ]
    assert _routes(resolver, "meta-llama/llama-5-400b-instruct") == [
        ("openrouter", "meta-llama/llama-5-400b-instruct")
    ]
    # mapping tables come before the org fallback; the org's own provider leads its tier
    chain = [s for s, _ in _routes(resolver, "meta-llama/llama-3.3-70b-instruct")]
    assert {"fireworks", "together", "groq", "deepinfra", "cerebras"} <= set(chain[:-1])
    assert chain[-1] == "openrouter"
    assert _routes(resolver, "deepseek/deepseek-r1")[0][0] == "deepseek"
    # an aggregator's native_ids only rename: it stays behind the dedicated providers
    r = Resolver(_registry(tmp_path, _env("huggingface", "together", "deepseek")))
    assert _routes(r, "r1") == [
        ("deepseek", "deepseek-reasoner"),
        ("together", "deepseek-ai/DeepSeek-R1"),
        ("huggingface", "deepseek-ai/DeepSeek-R1"),
    ]


# ---------------------------------------------------------------- native ids
def test_cm_3_8_model_id_transformation_fireworks_format(resolver: Resolver) -> None:
    expected = {
        "llama-3.3-70b": "accounts/fireworks/models/llama-v3p3-70b-instruct",
        "r1": "accounts/fireworks/models/deepseek-r1",
        "deepseek-v3": "accounts/fireworks/models/deepseek-v3",
        "qwen3-235b": "accounts/fireworks/models/qwen3-235b-a22b",
        "llama-3.1-8b": "accounts/fireworks/models/llama-v3p1-8b-instruct",
    }
    for name, native in expected.items():
        assert _routes(resolver, name, "fireworks") == [("fireworks", native)], name
    table = _openai_family_tables()["fireworks"]
    assert len(table) >= 15
    assert all(v.startswith("accounts/fireworks/models/") for v in table.values())


def test_cm_3_9_model_id_transformation_per_provider(resolver: Resolver) -> None:
    llama = _natives(resolver, "llama-3.3-70b")
    assert {s: llama[s] for s in ("fireworks", "groq", "together", "cloudflare-workers-ai")} == {
        "fireworks": "accounts/fireworks/models/llama-v3p3-70b-instruct",
        "groq": "llama-3.3-70b-versatile",
        "together": "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "cloudflare-workers-ai": "@cf/meta/llama-3.3-70b-instruct-fp8-fast",
    }
    assert (llama["cerebras"], llama["deepinfra"], llama["openrouter"]) == (
        "llama-3.3-70b",
        "meta-llama/Llama-3.3-70B-Instruct",
        "meta-llama/llama-3.3-70b-instruct",
    )
    r1 = _natives(resolver, "r1")
    assert (r1["deepseek"], r1["together"], r1["openrouter"]) == (
        "deepseek-reasoner",
        "deepseek-ai/DeepSeek-R1",
        "deepseek/deepseek-r1",
    )
    assert _natives(resolver, "mistral-large")["mistral"] == "mistral-large-latest"
    sonnet = _natives(resolver, "sonnet")
    assert (sonnet["anthropic"], sonnet["openrouter"]) == (
        "claude-sonnet-4-5",
        "anthropic/claude-sonnet-4.5",
    )
    assert "anthropic.claude-sonnet-4-5" in sonnet["aws-bedrock"]  # Bedrock's table
    # OpenRouter's spelling is an alias of the canonical id, and comes back out for OpenRouter
    assert resolver.explain("anthropic/claude-sonnet-4.5").canonical == (
        "anthropic/claude-sonnet-4-5"
    )
    assert _natives(resolver, "anthropic/claude-sonnet-4.5")["openrouter"] == (
        "anthropic/claude-sonnet-4.5"
    )
    assert _natives(resolver, "deepseek-v3")["openrouter"] == "deepseek/deepseek-chat"
    for slug, table in _openai_family_tables().items():
        for canonical in table:
            assert CANONICAL.match(canonical), f"{slug}: {canonical}"
    cf = _openai_family_tables()["cloudflare-workers-ai"]
    assert all(v.startswith("@cf/") for v in cf.values())


def test_cm_3_10_unknown_alias_returns_error_or_passthrough(resolver: Resolver) -> None:
    exp = resolver.explain("no-such-model")
    assert (exp.canonical, exp.alias, exp.routes) == ("no-such-model", None, ())
    with pytest.raises(ModelNotFound) as e:
        resolver.resolve("no-such-model")
    err = e.value
    assert (err.status, err.code, err.param) == (404, "model_not_found", "model")
    assert (
        err.message
        == "The model 'no-such-model' does not exist or no configured provider serves it."
    )
    # an unknown {org}/{model} passes through as is to the aggregators
    assert _routes(resolver, "new-lab/new-model") == [("openrouter", "new-lab/new-model")]


# ---------------------------------------------------------------- the finer rules
def test_configured_names_are_never_aliased(tmp_path: Path) -> None:
    env = _env("openrouter", "deepseek")
    env["vllm"] = {"base_url": "http://127.0.0.1:8001/v1", "models": "r1"}
    r = Resolver(_registry(tmp_path, env))
    assert _routes(r, "r1") == [("vllm", "r1")]
    assert r.explain("r1").alias is None


def test_variant_suffix_carries_over(resolver: Resolver) -> None:
    exp = resolver.explain("r1:free")
    assert exp.canonical == "deepseek/deepseek-r1:free"
    assert _routes(resolver, "r1:free") == [("openrouter", "deepseek/deepseek-r1:free")]


def test_a_providers_native_id_reaches_that_provider(resolver: Resolver) -> None:
    assert _routes(resolver, "llama-3.3-70b-versatile") == [("groq", "llama-3.3-70b-versatile")]


def test_known_org_prefix_is_not_a_provider_pin(resolver: Resolver) -> None:
    # `nvidia/` is both a provider slug and a model organisation: the model wins
    routes = _routes(resolver, "nemotron-70b")
    assert routes[0] == ("nvidia", "nvidia/llama-3.1-nemotron-70b-instruct")
    assert ("openrouter", "nvidia/llama-3.1-nemotron-70b-instruct") in routes


def test_resolution_is_cached(resolver: Resolver) -> None:
    assert resolver.resolve("r1") is resolver.resolve("r1")
    assert resolver.explain("r1") is resolver.explain("r1")


def test_not_served_names_the_known_providers(tmp_path: Path) -> None:
    r = Resolver(_registry(tmp_path))
    with pytest.raises(ModelNotFound) as e:
        r.resolve("r1")
    assert "alias of 'deepseek/deepseek-r1'" in e.value.message
    assert "deepseek" in e.value.message.split("none configured:")[1]
    d = r.explain("r1").to_dict()
    assert d["route"] == [] and d["error"]["code"] == "model_not_found"
    assert d["providers"][0]["provider"] == "deepseek"
    assert d["providers"][0]["status"].startswith("no key: set DEEPSEEK_API_KEY")


def test_format_rules_and_overrides_name_known_providers() -> None:
    with PROVIDERS_FILE.open("rb") as f:
        slugs = set(tomllib.load(f)["providers"])
    data = load_routing_data()
    assert {r.provider for r in data.format_rules} <= slugs
    assert all(o.slugs() <= slugs for o in data.overrides.values())
