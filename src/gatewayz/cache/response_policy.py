"""What a request may do with the response cache: the request field `cache` over its key's
`cache_policy` (the defaults, field by field).

    {"ttl": 600,                  seconds an answer stored now stays (1 .. the configured max)
     "no_store": true,            do not store this answer
     "no_cache": true,            do not answer from the cache (a fresh answer is still stored)
     "nondeterministic": true,    also cache requests that are not deterministic
     "semantic": true}            also answer from a similar prompt (implies nondeterministic)

A request is deterministic when its temperature is 0 or it carries a seed; only those are cached
unless the request or its key opts in. The field is ours: it is never forwarded upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gatewayz.canonical.types import ChatRequest
from gatewayz.errors import InvalidRequest

FIELDS = ("ttl", "no_store", "no_cache", "nondeterministic", "semantic")
FLAGS = FIELDS[1:]
MIN_TTL_S = 1


@dataclass(slots=True, frozen=True)
class CachePolicy:
    ttl_s: int | None = None  # None: the configured default
    no_store: bool = False
    no_cache: bool = False
    nondeterministic: bool = False
    semantic: bool = False

    def admits(self, req: ChatRequest) -> bool:
        """Whether the cache may serve or keep this request's answer at all."""
        if self.no_store and self.no_cache:
            return False
        return self.nondeterministic or self.semantic or deterministic(req)


DEFAULT = CachePolicy()


def deterministic(req: ChatRequest) -> bool:
    """Temperature 0, or a seed (an unset temperature is the provider's default, above 0)."""
    return req.temperature == 0 or req.seed is not None


def parse_policy(value: Any, max_ttl_s: float, name: str = "cache") -> CachePolicy:
    """The request field (or a key's `cache_policy`) → a CachePolicy; a bad value is a 400
    naming `name`. None or {} → the defaults."""
    if value is None:
        return DEFAULT
    if not isinstance(value, Mapping):
        raise _bad(name, f"must be an object with {_allowed()}")
    unknown = sorted(set(value) - set(FIELDS))
    if unknown:
        raise _bad(name, f"unknown field(s) {', '.join(map(repr, unknown))}; allowed: {_allowed()}")
    ttl = value.get("ttl")
    if ttl is not None and (
        isinstance(ttl, bool) or not isinstance(ttl, int) or not MIN_TTL_S <= ttl <= max_ttl_s
    ):
        raise _bad(name, f"`ttl` must be a whole number of seconds from 1 to {max_ttl_s:g}")
    flags: dict[str, bool] = {}
    for flag in FLAGS:
        v = value.get(flag)
        if v is not None and not isinstance(v, bool):
            raise _bad(name, f"`{flag}` must be a boolean")
        flags[flag] = bool(v)
    return CachePolicy(ttl_s=ttl, **flags)


def request_policy(
    key_defaults: Mapping[str, Any] | None, requested: Any, max_ttl_s: float
) -> CachePolicy:
    """The request's field over its key's defaults, field by field."""
    if requested is None and not key_defaults:
        return DEFAULT
    if key_defaults and isinstance(requested, Mapping):
        requested = {**key_defaults, **requested}
    elif requested is None:
        requested = key_defaults
    return parse_policy(requested, max_ttl_s)


def _allowed() -> str:
    return ", ".join(f"`{f}`" for f in FIELDS)


def _bad(name: str, msg: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid '{name}': {msg}.", param=name)
