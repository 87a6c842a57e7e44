"""Which providers serve a model name, and under which native id.

Order: `{provider}/{model}` names a served provider explicitly (unless the prefix is also a model
organisation, as `openai/` is) → providers that list the bare name (configured models,
patterns) or serve the `{org}/` natively → aggregators that serve any `{org}/{model}`.
Nobody serving it is a 404 `model_not_found`.
"""

from __future__ import annotations

from dataclasses import dataclass

from gatewayz.errors import ModelNotFound
from gatewayz.providers.registry import Provider, Registry


@dataclass(slots=True, frozen=True)
class Route:
    provider: Provider
    native_id: str
    model: str  # the id reported back to the client


class Resolver:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[str, tuple[Route, ...]] = {}

    def resolve(self, model: str) -> tuple[Route, ...]:
        routes = self._cache.get(model)
        if routes is None:
            routes = self._resolve(model)
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[model] = routes
        if not routes:
            raise ModelNotFound(
                f"The model '{model}' does not exist or no configured provider serves it.",
                param="model",
            )
        return routes

    def _resolve(self, model: str) -> tuple[Route, ...]:
        head, sep, rest = model.partition("/")
        explicit = self.registry.get(head) if sep else None
        if explicit is not None and head not in explicit.orgs:
            # `groq/llama-3.3-70b-versatile`: that provider only, with its own id.
            if not explicit.enabled:
                raise ModelNotFound(
                    f"The model '{model}' names the provider '{head}', which is not served: "
                    f"{explicit.reason}.",
                    param="model",
                )
            native = model if explicit.slug == "simulated" else rest
            return (Route(explicit, native, model),)
        enabled = self.registry.enabled
        # Providers that serve the name or its organisation natively, then providers whose
        # mapping table knows the canonical id, then aggregators.
        native = [p for p in enabled if p.serves_bare(model) or (sep and head in p.orgs)]
        mapped = [p for p in enabled if model in p.native_ids]
        anyone = [p for p in enabled if p.serves_any] if sep else []
        providers = dict.fromkeys([*native, *mapped, *anyone])
        return tuple(Route(p, p.native_id(model), model) for p in providers)
