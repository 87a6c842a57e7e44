"""providers.toml + environment → the registry, and the resolver on top of it."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import tomllib
from pathlib import Path
from typing import Any

import pytest

from gatewayz.errors import ModelNotFound
from gatewayz.providers.openai import Adapter as OpenAICompatAdapter
from gatewayz.providers.redacted import RedactedAdapter
from gatewayz.providers.registry import Registry, family_implemented, load_registry
from gatewayz.providers.transport import HttpPool
from gatewayz.routing.resolve import Resolver
from gatewayz.settings import PROVIDERS_FILE, ConfigError, Settings

SIM_URL = "http://127.0.0.1:9/v1"

ROSTER = [
    "openai",
    "openrouter",
    "groq",
    "together",
    "fireworks",
    "deepinfra",
    "cerebras",
    "xai",
    "featherless",
    "chutes",
    "nebius",
    "novita",
    "huggingface",
    "near",
    "alibaba-cloud",
    "cloudflare-workers-ai",
    "mistral",
    "perplexity",
    "vercel-ai-gateway",
    "helicone",
    "aihubmix",
    "anannas",
    "onerouter",
    "zai",
    "deepseek",
    "moonshot",
    "ollama",
    "vllm",
    "lm-studio",
]
FAILOVER_CHAIN = [
    "onerouter",
    "openai",
    "anthropic",
    "google-vertex",
    "openrouter",
    "cerebras",
    "huggingface",
    "featherless",
    "vercel-ai-gateway",
    "aihubmix",
    "anannas",
    "alibaba-cloud",
    "fireworks",
    "together",
]


def _entries() -> dict[str, dict[str, Any]]:
    with PROVIDERS_FILE.open("rb") as f:
        return tomllib.load(f)["providers"]


def _registry(
    tmp_path: Path, provider_env: dict[str, dict[str, str]] | None = None, **kw: Any
) -> Registry:
    settings = Settings(data_dir=tmp_path, provider_env=provider_env or {}, **kw)
    return load_registry(settings, simulated_base_url=SIM_URL)


def _keys(*slugs: str) -> dict[str, dict[str, str]]:
    return {s: {"api_key": f"key-{s}"} for s in slugs}


def _routes(resolver: Resolver, model: str) -> list[tuple[str, str]]:
    return [(r.provider.slug, r.native_id) for r in resolver.resolve(model)]


# ---------------------------------------------------------------- the providers file
def test_providers_file_has_at_least_30_providers() -> None:
    assert len(_entries()) >= 30


@pytest.mark.parametrize("slug", sorted(set(ROSTER) | set(FAILOVER_CHAIN)))
def test_roster_provider_present(slug: str) -> None:
    entry = _entries()[slug]
    assert entry["family"]
    assert entry["name"]


def test_failover_chain_has_14_distinct_known_providers() -> None:
    assert len(FAILOVER_CHAIN) == len(set(FAILOVER_CHAIN)) == 14
    assert set(FAILOVER_CHAIN) <= set(_entries())


def test_every_entry_is_well_formed() -> None:
    families = {"openai", "anthropic", "gemini", "vertex", "bedrock", "cohere", "fal"}
    for slug, e in _entries().items():
        assert e["family"] in families, slug
        assert e.get("auth", "bearer") in {"bearer", "x-api-key", "api-key", "none"}, slug
        url = e.get("base_url", "")
        assert url == "" or url.startswith(("https://", "http://127.0.0.1")), slug
        if not e.get("local"):
            assert e.get("key_env"), f"{slug}: a hosted provider names its key variable"


# ---------------------------------------------------------------- availability
def test_nothing_but_the_simulator_served_without_configuration(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    assert [p.slug for p in reg.enabled] == ["simulated"]
    openai = reg.get("openai")
    assert openai is not None and not openai.enabled and openai.adapter is None
    assert openai.reason == "no key: set OPENAI_API_KEY or GATEWAYZ_PROVIDER_OPENAI_API_KEY"


def test_provider_served_only_when_its_key_is_set(tmp_path: Path) -> None:
    reg = _registry(tmp_path, {"groq": {"api_key": "gsk-1"}})
    groq = reg.get("groq")
    assert groq is not None
    assert (groq.enabled, groq.reason, groq.api_key) == (True, "key configured", "gsk-1")
    assert isinstance(groq.adapter.inner, OpenAICompatAdapter)  # behind RedactedAdapter
    assert isinstance(groq.adapter.pool, HttpPool)
    assert groq.adapter.pool.host == "api.groq.com"
    assert groq.adapter.pool.base_path == "/openai/v1"
    assert {p.slug for p in reg.enabled} == {"simulated", "groq"}


@pytest.mark.parametrize("value", ["sk-1\r", "sk-1\n", "sk\r\nX-Injected: 1", "sk\x00"])
def test_a_key_with_a_control_character_fails_at_startup(tmp_path: Path, value: str) -> None:
    # A stray line ending (an env file written on Windows) would otherwise end a header line.
    with pytest.raises(ConfigError, match=r"OPENAI_API_KEY.*control character"):
        _registry(tmp_path, {"openai": {"var:OPENAI_API_KEY": value}})
    with pytest.raises(ConfigError, match="GATEWAYZ_PROVIDER_GROQ_API_KEY"):
        _registry(tmp_path, {"groq": {"api_key": value}})


def test_conventional_key_variable_enables_the_provider(tmp_path: Path) -> None:
    reg = _registry(tmp_path, {"huggingface": {"var:HF_TOKEN": "hf_x"}})
    hf = reg.get("huggingface")
    assert hf is not None and hf.enabled and hf.api_key == "hf_x"


def test_explicit_key_wins_over_conventional_variable(tmp_path: Path) -> None:
    reg = _registry(tmp_path, {"openai": {"var:OPENAI_API_KEY": "conv", "api_key": "explicit"}})
    openai = reg.get("openai")
    assert openai is not None and openai.api_key == "explicit"


def test_base_url_override_and_settings_reach_the_pool(tmp_path: Path) -> None:
    reg = _registry(
        tmp_path,
        {"openai": {"api_key": "k", "base_url": "http://127.0.0.1:4010/proxy/v1"}},
        upstream_max_connections=7,
        upstream_connect_timeout_s=1.5,
        upstream_read_timeout_s=9.0,
    )
    openai = reg.get("openai")
    assert openai is not None and openai.base_url == "http://127.0.0.1:4010/proxy/v1"
    pool = openai.adapter.pool  # type: ignore[union-attr]
    assert (pool.host, pool.port, pool.base_path) == ("127.0.0.1", 4010, "/proxy/v1")
    assert (pool.connect_timeout, pool.read_timeout) == (1.5, 9.0)
    assert pool._slots._value == 7


def test_auth_headers_follow_the_provider_auth_mode(tmp_path: Path) -> None:
    reg = _registry(tmp_path, _keys("openrouter"))
    adapter = reg.get("openrouter").adapter  # type: ignore[union-attr]
    headers = dict(adapter._headers)  # type: ignore[union-attr]
    assert headers[b"authorization"] == b"Bearer key-openrouter"
    assert headers[b"http-referer"] == b"https://gatewayz.ai"
    assert headers[b"x-title"] == b"Gatewayz"


def test_self_hosted_providers_need_a_base_url(tmp_path: Path) -> None:
    reg = _registry(tmp_path, {"ollama": {"api_key": "irrelevant"}})
    for slug in ("ollama", "vllm", "lm-studio"):
        p = reg.get(slug)
        assert p is not None and p.local and not p.enabled, slug
        assert f"GATEWAYZ_PROVIDER_{slug.upper().replace('-', '_')}_BASE_URL" in p.reason

    reg = _registry(
        tmp_path,
        {
            "vllm": {"base_url": "http://127.0.0.1:8001/v1"},
            "lm-studio": {"base_url": "http://127.0.0.1:1234/v1"},
        },
    )
    vllm, lms = reg.get("vllm"), reg.get("lm-studio")
    assert vllm is not None and vllm.enabled and vllm.reason == "self-hosted"
    assert vllm.api_key is None  # no key needed
    assert lms is not None and lms.enabled


def test_unimplemented_families_listed_but_not_served(tmp_path: Path) -> None:
    # A family without a module is listed with that reason however it is configured.
    missing = {e["family"] for e in _entries().values() if not family_implemented(e["family"])}
    reg = _registry(tmp_path, {slug: {"api_key": "x"} for slug in _entries()})
    for p in reg.providers.values():
        if p.family in missing:
            assert not p.enabled and p.adapter is None, p.slug
            assert p.reason == f"wire format '{p.family}' is not supported in this version"
        else:
            assert p.reason != f"wire format '{p.family}' is not supported in this version"
    fake = load_registry(
        Settings(data_dir=tmp_path, providers_file=_one_provider(tmp_path, "no-such-family"))
    )
    p = fake.get("p")
    assert p is not None and not p.enabled and p.adapter is None
    assert p.reason == "wire format 'no-such-family' is not supported in this version"


def _one_provider(tmp_path: Path, family: str) -> Path:
    f = tmp_path / "providers.toml"
    f.write_text(
        f'[providers.p]\nfamily = "{family}"\nbase_url = "https://x.test/v1"\nkey_env = "P_KEY"\n'
    )
    return f


def test_cloudflare_account_placeholder_filled_from_env(tmp_path: Path) -> None:
    reg = _registry(tmp_path, {"cloudflare-workers-ai": {"api_key": "cf"}})
    cf = reg.get("cloudflare-workers-ai")
    assert cf is not None and not cf.enabled
    assert cf.reason == "base URL needs CLOUDFLARE_ACCOUNT_ID"

    reg = _registry(
        tmp_path,
        {"cloudflare-workers-ai": {"api_key": "cf", "var:CLOUDFLARE_ACCOUNT_ID": "acc123"}},
    )
    cf = reg.get("cloudflare-workers-ai")
    assert cf is not None and cf.enabled
    assert cf.base_url == "https://api.cloudflare.com/client/v4/accounts/acc123/ai/v1"
    assert cf.adapter.pool.base_path == "/client/v4/accounts/acc123/ai/v1"  # type: ignore[union-attr]


def test_simulated_provider(tmp_path: Path) -> None:
    sim = _registry(tmp_path).get("simulated")
    assert sim is not None and sim.enabled and sim.base_url == SIM_URL
    off = _registry(tmp_path, simulated_provider=False).get("simulated")
    assert off is not None and not off.enabled
    assert "GATEWAYZ_SIMULATED_PROVIDER" in off.reason
    not_running = load_registry(Settings(data_dir=tmp_path)).get("simulated")
    assert not_running is not None and not not_running.enabled


def test_configured_model_names_are_parsed(tmp_path: Path) -> None:
    reg = _registry(
        tmp_path, {"vllm": {"base_url": "http://127.0.0.1:8001/v1", "models": " a-model, ,b "}}
    )
    assert reg.get("vllm").models == ("a-model", "b")  # type: ignore[union-attr]


async def test_registry_close_closes_the_pools(tmp_path: Path) -> None:
    reg = _registry(tmp_path, _keys("openai", "groq"))
    await reg.close()
    for slug in ("openai", "groq"):
        assert reg.get(slug).adapter.pool._closed  # type: ignore[union-attr]


# ---------------------------------------------------------------- from_env → registry
def test_from_env_maps_provider_variables(tmp_path: Path) -> None:
    settings = Settings.from_env(
        environ={
            "GATEWAYZ_DATA_DIR": str(tmp_path),
            "GATEWAYZ_PROVIDER_VERCEL_AI_GATEWAY_API_KEY": "vk",
            "GATEWAYZ_PROVIDER_VLLM_BASE_URL": "http://127.0.0.1:8001/v1",
            "GATEWAYZ_PROVIDER_VLLM_MODELS": "my-model,other",
            "GATEWAYZ_PROVIDER_LM_STUDIO_BASE_URL": "http://127.0.0.1:1234/v1",
            "OPENAI_API_KEY": "sk-openai",
            "GROQ_API_KEY": "gsk",
            "CLOUDFLARE_ACCOUNT_ID": "acc",
            "MISTRAL_API_KEY": "",  # empty: not a key
            "PATH": "/usr/bin",
        }
    )
    assert settings.provider_env == {
        "vercel-ai-gateway": {"api_key": "vk"},
        "vllm": {"base_url": "http://127.0.0.1:8001/v1", "models": "my-model,other"},
        "lm-studio": {"base_url": "http://127.0.0.1:1234/v1"},
        "openai": {"var:OPENAI_API_KEY": "sk-openai"},
        "groq": {"var:GROQ_API_KEY": "gsk"},
        "cloudflare-workers-ai": {"var:CLOUDFLARE_ACCOUNT_ID": "acc"},
    }
    reg = load_registry(settings, simulated_base_url=SIM_URL)
    enabled = {p.slug for p in reg.enabled}
    assert enabled == {"simulated", "vercel-ai-gateway", "vllm", "lm-studio", "openai", "groq"}
    assert "mistral" not in enabled


def test_from_env_rejects_a_misspelt_provider_slug() -> None:
    with pytest.raises(ConfigError, match="GATEWAYZ_PROVIDER_OPENAII_API_KEY"):
        Settings.from_env(environ={"GATEWAYZ_PROVIDER_OPENAII_API_KEY": "k"})
    with pytest.raises(ConfigError, match="GATEWAYZ_PROVIDER_VERCEL_AI_GATEWAY_TOKEN"):
        Settings.from_env(environ={"GATEWAYZ_PROVIDER_VERCEL_AI_GATEWAY_TOKEN": "k"})
    with pytest.raises(ConfigError, match="GATEWAYZ_PROVIDER_VERCEL-AI-GATEWAY_API_KEY"):
        Settings.from_env(environ={"GATEWAYZ_PROVIDER_VERCEL-AI-GATEWAY_API_KEY": "k"})


# ---------------------------------------------------------------- resolver
@pytest.fixture
def resolver(tmp_path: Path) -> Resolver:
    env = _keys("openai", "openrouter", "groq", "fireworks", "deepseek", "anthropic", "xai")
    env["vllm"] = {"base_url": "http://127.0.0.1:8001/v1", "models": "house-model,team/tuned"}
    return Resolver(_registry(tmp_path, env))


def test_org_model_goes_to_the_org_provider_then_aggregators(resolver: Resolver) -> None:
    assert _routes(resolver, "openai/gpt-4o") == [
        ("openai", "gpt-4o"),
        ("openrouter", "openai/gpt-4o"),
    ]
    routes = resolver.resolve("openai/gpt-4o")
    assert all(r.model == "openai/gpt-4o" for r in routes)


def test_explicit_provider_prefix_routes_to_that_provider_only(resolver: Resolver) -> None:
    assert _routes(resolver, "groq/llama-3.3-70b-versatile") == [
        ("groq", "llama-3.3-70b-versatile")
    ]
    assert resolver.resolve("groq/llama-3.3-70b-versatile")[0].model == (
        "groq/llama-3.3-70b-versatile"
    )


def test_bare_model_matches_provider_patterns(resolver: Resolver) -> None:
    # bare names no alias covers: the provider whose model_patterns match, with the name as is
    assert _routes(resolver, "gpt-4o-2024-08-06") == [("openai", "gpt-4o-2024-08-06")]
    assert _routes(resolver, "o3-mini-2025-01-31") == [("openai", "o3-mini-2025-01-31")]
    assert _routes(resolver, "grok-4-0709") == [("xai", "grok-4-0709")]
    assert _routes(resolver, "deepseek-chat") == [("deepseek", "deepseek-chat")]
    # shorthand that is an alias: the organisation's provider first, then aggregators
    assert _routes(resolver, "gpt-4o") == [("openai", "gpt-4o"), ("openrouter", "openai/gpt-4o")]
    assert _routes(resolver, "grok-4") == [("xai", "grok-4"), ("openrouter", "x-ai/grok-4")]


def test_configured_model_names_route_to_their_provider(resolver: Resolver) -> None:
    assert _routes(resolver, "house-model") == [("vllm", "house-model")]
    # a configured name with a slash: that provider first, then the aggregators
    assert _routes(resolver, "team/tuned") == [
        ("vllm", "team/tuned"),
        ("openrouter", "team/tuned"),
    ]


def test_fireworks_native_id_mapping(resolver: Resolver) -> None:
    fireworks = resolver.registry.get("fireworks")
    assert fireworks is not None and fireworks.enabled
    assert fireworks.native_id("meta-llama/llama-3.3-70b-instruct") == (
        "accounts/fireworks/models/llama-v3p3-70b-instruct"
    )
    assert fireworks.native_id("some-org/unmapped") == "some-org/unmapped"
    # Fireworks' own id format is a format rule that reaches Fireworks with the id unchanged
    native = "accounts/fireworks/models/llama-v3p3-70b-instruct"
    assert _routes(resolver, native)[0] == ("fireworks", native)
    # other providers' mapping tables and org natives
    groq = resolver.registry.get("groq")
    assert groq is not None
    assert groq.native_id("meta-llama/llama-3.3-70b-instruct") == "llama-3.3-70b-versatile"
    assert _routes(resolver, "deepseek/deepseek-r1")[0] == ("deepseek", "deepseek-reasoner")


def test_canonical_id_reaches_providers_that_map_it(resolver: Resolver) -> None:
    routes = _routes(resolver, "meta-llama/llama-3.3-70b-instruct")
    assert ("fireworks", "accounts/fireworks/models/llama-v3p3-70b-instruct") in routes
    assert ("groq", "llama-3.3-70b-versatile") in routes


def test_simulated_model_keeps_its_full_id(resolver: Resolver) -> None:
    assert _routes(resolver, "simulated/echo") == [("simulated", "simulated/echo")]


def test_unknown_model_is_model_not_found(resolver: Resolver) -> None:
    for model in ("no-such-model", "llama-9.9-999b-versatile"):
        with pytest.raises(ModelNotFound) as exc_info:
            resolver.resolve(model)
        err = exc_info.value
        assert (err.status, err.code, err.param) == (404, "model_not_found", "model")
        assert model in err.message


def test_disabled_providers_are_never_returned(tmp_path: Path) -> None:
    # anthropic, mistral: no key; ollama: no base URL
    env = _keys("openrouter")
    env["ollama"] = {"models": "llama3"}
    resolver = Resolver(_registry(tmp_path, env))
    assert _routes(resolver, "anthropic/claude-sonnet-4") == [
        ("openrouter", "anthropic/claude-sonnet-4")
    ]
    assert _routes(resolver, "mistralai/mistral-large") == [
        ("openrouter", "mistralai/mistral-large")
    ]
    for model in (
        "claude-sonnet-4-20250514",
        "mistral-large-latest",
        "llama3",
        "gpt-4o-2024-08-06",
    ):
        with pytest.raises(ModelNotFound):
            resolver.resolve(model)
    for model in ("anthropic/claude-sonnet-4", "openai/gpt-4o"):
        assert all(r.provider.enabled for r in resolver.resolve(model))
    # A pinned provider that is not served is a clear 404 naming what to configure.
    with pytest.raises(ModelNotFound, match="GATEWAYZ_PROVIDER_OLLAMA_BASE_URL"):
        resolver.resolve("ollama/llama3")

    bare = Resolver(_registry(tmp_path, simulated_provider=False))
    for model in ("simulated/echo", "groq/llama-3.3-70b-versatile", "openai/gpt-4o"):
        with pytest.raises(ModelNotFound):
            bare.resolve(model)


# ---------------------------------------------------------------- CM-18: the provider roster
def _all_configured(tmp_path: Path) -> Registry:
    """Every provider given a key and a loopback base URL (fills Cloudflare's account too)."""
    env = {slug: {"api_key": "k", "base_url": "http://127.0.0.1:9/v1"} for slug in _entries()}
    return _registry(tmp_path, env)


def test_cm_18_1_at_least_30_providers_registered(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    assert len(reg.providers) >= 30
    assert len(reg.providers) == len(_entries())
    assert all(p.family and p.name and p.reason for p in reg.providers.values())
    # ...and with credentials, at least 30 of them are actually served.
    assert len(_all_configured(tmp_path).enabled) >= 30


def test_cm_18_2_each_provider_has_client_module(tmp_path: Path) -> None:
    """Every provider's wire format has its family module, and every configured provider is
    bound to that family's adapter."""
    families = {e["family"] for e in _entries().values()}
    missing = sorted(f for f in families if importlib.util.find_spec(_module(f)) is None)
    assert missing == [], f"families without a module: {missing}"
    reg = _all_configured(tmp_path)
    for p in reg.providers.values():
        assert p.enabled, f"{p.slug}: {p.reason}"
        module = importlib.import_module(_module(p.family))
        assert isinstance(p.adapter, RedactedAdapter), p.slug  # errors leave masked
        assert isinstance(p.adapter.inner, module.Adapter), p.slug


def test_cm_18_3_provider_client_implements_required_interface() -> None:
    families = sorted({e["family"] for e in _entries().values()})
    implemented = [f for f in families if family_implemented(f)]
    assert "openai" in implemented
    for family in implemented:
        adapter = importlib.import_module(_module(family)).Adapter
        assert getattr(adapter, "family", None) == family, family
        for name in ("send", "stream", "list_models"):
            fn = getattr(adapter, name, None)
            assert fn is not None, f"{family}.Adapter.{name}"
            assert inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn), (
                f"{family}.Adapter.{name} is not async"
            )
        for name in ("send", "stream"):
            params = list(inspect.signature(getattr(adapter, name)).parameters)
            assert params[:3] == ["self", "req", "native_model"], f"{family}.Adapter.{name}"


def _module(family: str) -> str:
    return f"gatewayz.providers.{family}"
