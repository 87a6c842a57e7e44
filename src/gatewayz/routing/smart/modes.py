"""The router model names (SPEC §4): `router:general:{quality|cost|latency|balanced}` and
`router:code:{auto|price|quality|agentic}`; `router:general` is balanced and `router:code` auto.
Any other `router:` name is a 400 listing the valid ones."""

from __future__ import annotations

from dataclasses import dataclass

from gatewayz.errors import InvalidRequest

PREFIX = "router:"
MODES: dict[str, tuple[str, ...]] = {
    "general": ("quality", "cost", "latency", "balanced"),
    "code": ("auto", "price", "quality", "agentic"),
}
DEFAULT_MODE = {"general": "balanced", "code": "auto"}
WHAT = {
    "general:quality": "the highest benchmark score",
    "general:cost": "the cheapest model at or above the prompt's tier",
    "general:latency": "the lowest live p50 at or above the prompt's tier",
    "general:balanced": "a blend of score, price and speed at or above the prompt's tier",
    "code:auto": "the best SWE-bench score in the task's tier",
    "code:price": "the cheapest code model in the task's tier",
    "code:quality": "the best code model one tier above the task's",
    "code:agentic": "the best code model of the top tier",
}
VALID = tuple(f"{PREFIX}{kind}:{mode}" for kind, modes in MODES.items() for mode in modes)


@dataclass(frozen=True, slots=True)
class RouterName:
    kind: str  # general | code
    mode: str

    def __str__(self) -> str:
        return f"{PREFIX}{self.kind}:{self.mode}"


def is_router(model: str) -> bool:
    return model[:7].lower() == PREFIX


def parse_router(model: str) -> RouterName | None:
    """The router a model name asks for; None for any other model; a 400 for a `router:` name
    that names no router or mode of ours."""
    if not is_router(model):
        return None
    kind, sep, mode = model[len(PREFIX) :].lower().partition(":")
    if kind in MODES and not sep:
        return RouterName(kind, DEFAULT_MODE[kind])
    if mode in MODES.get(kind, ()):
        return RouterName(kind, mode)
    shown = model if len(model) <= 64 else model[:64] + "…"
    raise InvalidRequest(
        f"Unknown router '{shown}'. Valid routers: {', '.join(VALID)} "
        f"(or {PREFIX}general and {PREFIX}code for their default modes).",
        code="invalid_router",
        param="model",
    )
