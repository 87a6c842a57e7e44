"""The provider registry: providers.toml + environment → providers with their adapters.

A provider is served when its wire format is implemented and it is configured: a key in the
environment (or, for self-hosted ones, a base URL). One pooled HTTP client per provider.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import tomllib
from typing import Any

from gatewayz.providers.butter import proxy_adapter, routed_slugs
from gatewayz.providers.provider import Adapter, Provider
from gatewayz.providers.redact import Redactor
from gatewayz.providers.redacted import RedactedAdapter
from gatewayz.providers.transport import HttpPool
from gatewayz.settings import ConfigError, Settings, provider_env_var


def family_implemented(family: str) -> bool:
    """A family is implemented when the package `gatewayz.providers.<family>` exists (a
    package: the shared modules beside the families, such as `sse`, are not families)."""
    spec = importlib.util.find_spec(f"gatewayz.providers.{family}")
    return spec is not None and spec.submodule_search_locations is not None


_URL_VAR = re.compile(r"\{([A-Z0-9_]+)\}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what a header value can never carry


class Registry:
    def __init__(self, providers: dict[str, Provider], redact: Redactor) -> None:
        self.providers = providers
        self.enabled = [p for p in providers.values() if p.enabled]
        self.redact = redact  # masks every configured secret (redact.py)

    def get(self, slug: str) -> Provider | None:
        return self.providers.get(slug)

    async def close(self) -> None:
        for p in self.enabled:
            for adapter in (p.adapter, p.proxy):
                pool = getattr(adapter, "pool", None)
                if pool is not None:
                    await pool.close()


def load_registry(settings: Settings, simulated_base_url: str | None = None) -> Registry:
    with settings.providers_file.open("rb") as f:
        entries: dict[str, dict[str, Any]] = tomllib.load(f)["providers"]
    providers = {}
    for slug, e in entries.items():
        env = settings.provider_env.get(slug, {})
        _check_values(slug, env)
        base_url = env.get("base_url") or e.get("base_url", "")
        if slug == "simulated":
            base_url = simulated_base_url or ""
        base_url = _URL_VAR.sub(
            lambda m, env=env: env.get(f"var:{m.group(1)}", m.group(0)), base_url
        )
        key_env = e.get("key_env", "")
        api_key = env.get("api_key") or env.get(f"var:{key_env}") or None
        p = Provider(
            slug=slug,
            name=e.get("name", slug),
            family=e["family"],
            base_url=base_url,
            auth=e.get("auth", "bearer"),
            key_env=key_env,
            api_key=api_key,
            local=e.get("local", False),
            orgs=tuple(e.get("orgs", ())),
            model_patterns=tuple(e.get("model_patterns", ())),
            serves_any=e.get("serves_any", False),
            stream_usage=e.get("stream_usage", True),
            max_tokens_param=e.get("max_tokens_param", "max_tokens"),
            native_ids=dict(e.get("native_ids", {})),
            headers=dict(e.get("headers", {})),
            models=tuple(m.strip() for m in env.get("models", "").split(",") if m.strip()),
            env={var: env[f"var:{var}"] for var in e.get("env_vars", ()) if f"var:{var}" in env},
            secret_vars=tuple(e.get("secret_vars", ())),
        )
        p.enabled, p.reason = _availability(p, settings, "base_url" in env)
        providers[slug] = p
    via_butter = routed_slugs(settings, {slug: p.family for slug, p in providers.items()})
    redact = Redactor.from_config(settings, (s for p in providers.values() for s in p.secrets()))
    for p in providers.values():
        if p.enabled:  # provider text leaves masked, whichever way it came
            p.adapter = RedactedAdapter(_build_adapter(p, settings), redact)
            if p.slug in via_butter:
                p.proxy = RedactedAdapter(proxy_adapter(p, settings), redact)
                p.proxy_name = "butter"
    return Registry(providers, redact)


def _check_values(slug: str, env: dict[str, str]) -> None:
    """Refuse at startup a provider value that would break an upstream request: a key or
    variable with a control character (a stray line ending from an env file written on
    Windows would otherwise end a header line)."""
    for name, value in env.items():
        if _CONTROL.search(value):
            var = name[4:] if name.startswith("var:") else provider_env_var(slug, name.upper())
            raise ConfigError(f"{var} contains a control character (a stray line ending?)")


def _availability(p: Provider, settings: Settings, url_from_env: bool) -> tuple[bool, str]:
    if not family_implemented(p.family):
        return False, f"wire format '{p.family}' is not supported in this version"
    if p.slug == "simulated":
        if not settings.simulated_provider:
            return False, "disabled (GATEWAYZ_SIMULATED_PROVIDER=false)"
        return bool(p.base_url), "built-in simulator" if p.base_url else "simulator not running"
    if _URL_VAR.search(p.base_url):
        return False, f"base URL needs {', '.join(_URL_VAR.findall(p.base_url))}"
    if not p.base_url:
        return False, f"set {_env_name(p.slug, 'BASE_URL')}"
    if p.local:
        if url_from_env:
            return True, "self-hosted"
        return False, f"self-hosted: set {_env_name(p.slug, 'BASE_URL')}"
    if not p.api_key:
        names = " or ".join(filter(None, [p.key_env, _env_name(p.slug, "API_KEY")]))
        return False, f"no key: set {names}"
    return True, "key configured"


def _env_name(slug: str, field_name: str) -> str:
    return provider_env_var(slug, field_name)


def _build_adapter(p: Provider, settings: Settings) -> Adapter:
    pool = HttpPool(
        p.base_url,
        max_connections=settings.upstream_max_connections,
        connect_timeout=settings.upstream_connect_timeout_s,
        read_timeout=settings.upstream_read_timeout_s,
    )
    module = importlib.import_module(f"gatewayz.providers.{p.family}")
    adapter: Adapter = module.Adapter(p, pool)
    return adapter
