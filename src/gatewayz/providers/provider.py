"""A provider as data (one entry of `providers.toml` with what the environment configures), the
interface every wire-format family's adapter implements, and a model as a provider's list
describes it (`Listed`). The registry (`registry.py`) builds
them; families, Butter and the listing read them."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Protocol

from gatewayz.canonical.types import ChatRequest, ChatResponse


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of a provider's model list and what the list says about it (None: unsaid)."""

    native_id: str
    name: str | None = None
    context_length: int | None = None
    modality: str | None = None
    tools: bool | None = None
    vision: bool | None = None
    huggingface_id: str | None = None


class Adapter(Protocol):
    """What every wire-format family implements (CM-18.3). The model list is read by the
    family's one reader (`models`, see `listing.ModelListing`); `list_models` is its ids."""

    family: str
    no_model_list: str | None

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse: ...

    async def stream(self, req: ChatRequest, native_model: str) -> Any: ...

    async def models(self, timeout_s: float | None = None) -> list[Listed]: ...

    async def list_models(self) -> list[str]: ...


@dataclass(slots=True, eq=False)
class Provider:
    slug: str
    name: str
    family: str
    base_url: str
    auth: str = "bearer"
    key_env: str = ""
    api_key: str | None = None
    local: bool = False
    orgs: tuple[str, ...] = ()
    model_patterns: tuple[str, ...] = ()
    serves_any: bool = False
    stream_usage: bool = True
    max_tokens_param: str = "max_tokens"
    native_ids: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    models: tuple[str, ...] = ()  # explicitly configured model names (GATEWAYZ_PROVIDER_X_MODELS)
    # Values of the variables the providers file names in `env_vars` (account ids, regions,
    # secondary credentials), for families that need more than one key.
    env: dict[str, str] = field(default_factory=dict)
    secret_vars: tuple[str, ...] = ()  # the variables of `env` that hold credentials
    enabled: bool = False
    reason: str = ""
    adapter: Adapter | None = None
    # Another way to reach the provider, tried first (a caching proxy: providers/butter.py).
    proxy: Adapter | None = None
    proxy_name: str = ""

    def serves_bare(self, model: str) -> bool:
        return model in self.models or any(
            fnmatch.fnmatchcase(model, p) for p in self.model_patterns
        )

    def secrets(self) -> list[str]:
        """The credentials configured for this provider: its key and secret variables."""
        return [s for s in (self.api_key, *map(self.env.get, self.secret_vars)) if s]

    def native_id(self, canonical: str) -> str:
        """The provider's own id for a canonical `{org}/{model}` id."""
        if canonical in self.native_ids:
            return self.native_ids[canonical]
        org, sep, rest = canonical.partition("/")
        if sep and org in self.orgs:
            return rest
        return canonical
