"""The response cache on the chat path: exact match first (one orjson dump and one SHA-256 per
cacheable request), then, for requests that opted in, the semantic layer (the last user message
embedded off the event loop, compared with the stored prompts of the same bucket).

Requests that are not cacheable (see `response_policy`: not deterministic and not opted in, an
anonymous caller, `no_cache` with `no_store`) cost nothing here beyond reading their policy.

Every failure of a layer (Redis down or slow, the embedding model missing, a corrupt entry) is a
miss, logged at most once a minute per layer: a cache never fails a request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from gatewayz.cache import response_codec
from gatewayz.cache.response_codec import CachedAnswer
from gatewayz.cache.response_key import exact_key, prompt_text, semantic_bucket
from gatewayz.cache.response_policy import CachePolicy, parse_policy, request_policy
from gatewayz.cache.response_store import ResponseStore
from gatewayz.cache.semantic_index import SemanticIndex

if TYPE_CHECKING:
    from collections.abc import Container, Sequence

    import numpy as np

    from gatewayz.canonical.types import ChatRequest, ChatResponse
    from gatewayz.security.auth import Principal

log = logging.getLogger("gatewayz.cache")

DEFAULT_MAX_TTL_S = 86_400.0
WARN_EVERY_S = 60.0


class Embedder(Protocol):
    name: str

    async def embed(self, text: str) -> np.ndarray: ...


@dataclass(slots=True)
class CachePlan:
    """What the cache does for one request."""

    key: str
    ttl_s: float
    lookup: bool
    store: bool
    bucket: str | None = None  # set when the semantic layer applies
    prompt: str | None = None
    vector: np.ndarray | None = None


@dataclass(slots=True)
class CacheHit:
    kind: str  # "hit" (exact) or "semantic"
    answer: CachedAnswer
    similarity: float | None = None


@dataclass(slots=True)
class CacheStats:
    hits: int = 0
    semantic_hits: int = 0
    misses: int = 0
    stores: int = 0
    errors: int = 0


@dataclass(slots=True)
class _Warnings:
    """At most one log line a minute per failing layer."""

    last: dict[str, float] = field(default_factory=dict)
    suppressed: dict[str, int] = field(default_factory=dict)

    def warn(self, layer: str, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self.last.get(layer, -WARN_EVERY_S) < WARN_EVERY_S:
            self.suppressed[layer] = self.suppressed.get(layer, 0) + 1
            return
        self.last[layer] = now
        more = self.suppressed.pop(layer, 0)
        log.warning(
            "response cache: %s failed (%r); treated as a miss%s",
            layer,
            exc,
            f" ({more} more since the last report)" if more else "",
        )


class ResponseCache:
    def __init__(
        self,
        store: ResponseStore | None,
        *,
        ttl_s: float = 3600.0,
        max_ttl_s: float = DEFAULT_MAX_TTL_S,
        max_entry_bytes: int = 1 << 20,
        index: SemanticIndex | None = None,
        embedder: Embedder | None = None,
        threshold: float = 0.95,
        embed_timeout_s: float = 2.0,
    ) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self.max_ttl_s = max_ttl_s
        self.max_entry_bytes = max_entry_bytes
        self.index = index
        self.embedder = embedder
        self.threshold = threshold
        self.embed_timeout_s = embed_timeout_s
        self.stats = CacheStats()
        self._warnings = _Warnings()

    @classmethod
    def off(cls) -> ResponseCache:
        """No cache (the request field is still validated)."""
        return cls(None)

    async def close(self) -> None:
        close = getattr(self.embedder, "close", None)  # a remote embedder's connection pool
        if close is not None:
            await close()

    @property
    def semantic_enabled(self) -> bool:
        return self.store is not None and self.index is not None and self.embedder is not None

    # ------------------------------------------------------------------ per request
    def policy(self, principal: Principal, requested: Any) -> CachePolicy:
        """The request field `cache` over the key's `cache_policy`; a bad value is a 400."""
        return request_policy(principal.record.get("cache_policy"), requested, self.max_ttl_s)

    def check_policy(self, value: Any, name: str) -> CachePolicy:
        return parse_policy(value, self.max_ttl_s, name)

    def plan(
        self,
        principal: Principal,
        req: ChatRequest,
        model: str,
        providers: Sequence[Any] | None,
        requested: Any,
    ) -> CachePlan | None:
        """What to do for this request (None: not cacheable). `model` is the resolved canonical
        id; `providers` the provider restriction the request carries, if any."""
        policy = self.policy(principal, requested)
        if self.store is None or not principal.user_id or not policy.admits(req):
            return None
        plan = CachePlan(
            key=exact_key(req, principal.user_id, model, providers),
            ttl_s=float(policy.ttl_s or self.ttl_s),
            lookup=not policy.no_cache,
            store=not policy.no_store,
        )
        if policy.semantic and self.semantic_enabled:
            plan.prompt = prompt_text(req)
            if plan.prompt is not None:
                plan.bucket = semantic_bucket(req, principal.user_id, model, providers)
        return plan

    async def lookup(self, plan: CachePlan, usable: Container[str]) -> CacheHit | None:
        """A stored answer for the request, from one of the `usable` providers (an answer
        another provider gave, e.g. one no longer served, is a miss)."""
        if not plan.lookup:
            return None
        hit = await self._exact(plan)
        if hit is None and plan.bucket is not None:
            hit = await self._semantic(plan)
        if hit is not None and hit.answer.provider not in usable:
            hit = None
        if hit is None:
            self.stats.misses += 1
        elif hit.kind == "semantic":
            self.stats.semantic_hits += 1
        else:
            self.stats.hits += 1
        return hit

    async def save(
        self, plan: CachePlan, resp: ChatResponse, provider: str, native_model: str
    ) -> None:
        """Store a complete answer (and its prompt vector, for the semantic layer)."""
        if not plan.store or self.store is None or not response_codec.complete(resp):
            return
        data = response_codec.encode(resp, provider, native_model)
        if len(data) > self.max_entry_bytes:
            return
        try:
            await self.store.put(plan.key, data, plan.ttl_s)
        except Exception as exc:
            self._failed(f"{self.store.name} store (put)", exc)
            return
        self.stats.stores += 1
        if plan.bucket is None or self.index is None:
            return
        vector = plan.vector if plan.vector is not None else await self._embed(plan)
        if vector is None:
            return
        try:
            await self.index.add(plan.bucket, plan.key, vector)
        except Exception as exc:
            self._failed("semantic index (add)", exc)

    # ------------------------------------------------------------------ layers
    async def _exact(self, plan: CachePlan) -> CacheHit | None:
        answer = await self._get(plan.key)
        return None if answer is None else CacheHit("hit", answer)

    async def _semantic(self, plan: CachePlan) -> CacheHit | None:
        assert self.index is not None and plan.bucket is not None
        plan.vector = await self._embed(plan)
        if plan.vector is None:
            return None
        try:
            found = await self.index.nearest(plan.bucket, plan.vector, self.threshold)
        except Exception as exc:
            self._failed("semantic index (lookup)", exc)
            return None
        if found is None:
            return None
        key, similarity = found
        answer = await self._get(key)
        return None if answer is None else CacheHit("semantic", answer, similarity)

    async def _get(self, key: str) -> CachedAnswer | None:
        assert self.store is not None
        try:
            data = await self.store.get(key)
        except Exception as exc:
            self._failed(f"{self.store.name} store (get)", exc)
            return None
        if data is None:
            return None
        try:
            return response_codec.decode(data)
        except Exception as exc:
            self._failed("entry decoding", exc)
            return None

    async def _embed(self, plan: CachePlan) -> np.ndarray | None:
        assert self.embedder is not None and plan.prompt is not None
        try:
            async with asyncio.timeout(self.embed_timeout_s):
                return await self.embedder.embed(plan.prompt)
        except Exception as exc:
            self._failed(f"embedder {self.embedder.name}", exc)
            return None

    def _failed(self, layer: str, exc: BaseException) -> None:
        self.stats.errors += 1
        self._warnings.warn(layer, exc)
