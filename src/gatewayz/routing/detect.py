"""The data behind model resolution (routing/aliases.toml) and the request's provider override.

`RoutingData` holds the alias table, the format rules and the per-model override rows;
`parse_override` turns the request field `provider` (a slug, or OpenRouter's
`{"order": [...], "only": [...], "ignore": [...], "allow_fallbacks": bool}`) into an `Override`.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gatewayz.errors import InvalidRequest

ALIASES_FILE = Path(__file__).with_name("aliases.toml")


@dataclass(slots=True, frozen=True)
class FormatRule:
    """A model id whose form names its provider."""

    provider: str
    pattern: str  # as written in the data file, for explanations
    regex: re.Pattern[str]

    def matches(self, model: str) -> bool:
        return self.regex.match(model) is not None


@dataclass(slots=True, frozen=True)
class Override:
    """Which providers a request may use, and in which order (explicit override)."""

    order: tuple[str, ...] = ()
    only: tuple[str, ...] | None = None
    ignore: tuple[str, ...] = ()
    allow_fallbacks: bool = True
    source: str = "request field `provider`"
    # How to order the allowed providers (routing/balance.py), not which ones.
    sort: str | None = None
    max_latency_ms: float | None = None

    def slugs(self) -> set[str]:
        return {*self.order, *(self.only or ()), *self.ignore}

    @property
    def restricts(self) -> bool:
        """Whether it changes which providers are tried or in which order (beyond sorting)."""
        return bool(self.order or self.only is not None or self.ignore or not self.allow_fallbacks)

    def describe(self) -> str:
        parts = []
        if self.order:
            parts.append(f"order={list(self.order)}")
        if self.only is not None:
            parts.append(f"only={list(self.only)}")
        if self.ignore:
            parts.append(f"ignore={list(self.ignore)}")
        if not self.allow_fallbacks:
            parts.append("no fallbacks")
        if self.sort:
            parts.append(f"sort={self.sort}")
        if self.max_latency_ms is not None:
            parts.append(f"max_latency_ms={self.max_latency_ms:g}")
        return f"{self.source}: {', '.join(parts) or 'no constraint'}"


@dataclass(slots=True)
class RoutingData:
    aliases: dict[str, str] = field(default_factory=dict)
    format_rules: list[FormatRule] = field(default_factory=list)
    overrides: dict[str, Override] = field(default_factory=dict)
    _lower: dict[str, str] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._lower = {k.lower(): v for k, v in self.aliases.items()}

    def alias(self, name: str) -> str | None:
        """The canonical id `name` is a shorthand for; a `:variant` suffix carries over."""
        hit = self.aliases.get(name) or self._lower.get(name.lower())
        if hit is not None:
            return hit
        base, sep, variant = name.rpartition(":")
        if sep and base and "/" not in variant:
            hit = self.aliases.get(base) or self._lower.get(base.lower())
            if hit is not None:
                return f"{hit}:{variant}"
        return None

    def format_rule(self, model: str) -> FormatRule | None:
        return next((r for r in self.format_rules if r.matches(model)), None)


def load_routing_data(path: Path = ALIASES_FILE) -> RoutingData:
    with path.open("rb") as f:
        raw = tomllib.load(f)
    return routing_data(raw)


def routing_data(raw: Mapping[str, Any]) -> RoutingData:
    rules = []
    for r in raw.get("format_rules", ()):
        if "glob" in r:
            pattern, rx = r["glob"], re.compile(fnmatch.translate(r["glob"]))
        else:
            pattern, rx = r["regex"], re.compile(r["regex"])
        rules.append(FormatRule(r["provider"], pattern, rx))
    overrides = {
        model: parse_override(spec, source=f"override row for '{model}'")
        for model, spec in raw.get("overrides", {}).items()
    }
    return RoutingData(dict(raw.get("aliases", {})), rules, overrides)


SORTS = ("price", "latency", "throughput")
PREFERENCE_FIELDS = frozenset(
    {"order", "only", "ignore", "allow_fallbacks", "sort", "max_latency_ms"}
)


def parse_override(value: Any, source: str = "request field `provider`") -> Override | None:
    """The request's `provider` field → an Override (None when absent). A bad value is a 400."""
    if value is None:
        return None
    if isinstance(value, str):
        if not value:
            raise _bad("must not be empty")
        return Override(order=(value,), allow_fallbacks=False, source=source)
    if not isinstance(value, dict):
        raise _bad("must be a provider slug or an object with `order` / `only` / `ignore`")
    unknown = sorted(set(value) - PREFERENCE_FIELDS)
    if unknown:
        raise _bad(
            f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: "
            + ", ".join(sorted(PREFERENCE_FIELDS))
        )
    sort = value.get("sort")
    if sort is not None and sort not in SORTS:
        raise _bad(f"`sort` must be one of {', '.join(SORTS)}")
    max_latency = value.get("max_latency_ms")
    if max_latency is not None and (
        isinstance(max_latency, bool)
        or not isinstance(max_latency, int | float)
        or max_latency <= 0
    ):
        raise _bad("`max_latency_ms` must be a positive number")
    fallbacks = value.get("allow_fallbacks", True)
    if fallbacks is None:
        fallbacks = True
    if not isinstance(fallbacks, bool):
        raise _bad("`allow_fallbacks` must be a boolean")
    only = value.get("only")
    return Override(
        order=_slugs(value.get("order"), "order"),
        only=None if only is None else _slugs(only, "only"),
        ignore=_slugs(value.get("ignore"), "ignore"),
        allow_fallbacks=fallbacks,
        source=source,
        sort=sort,
        max_latency_ms=None if max_latency is None else float(max_latency),
    )


def check_slugs(override: Override, known: Iterable[str]) -> None:
    unknown = sorted(override.slugs() - set(known))
    if unknown:
        raise _bad(f"unknown provider(s): {', '.join(unknown)}")


def _slugs(value: Any, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise _bad(f"`{name}` must be a list of provider slugs")
    return tuple(dict.fromkeys(value))


def _bad(msg: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid 'provider': {msg}.", param="provider")
