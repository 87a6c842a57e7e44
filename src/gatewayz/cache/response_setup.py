"""Builds the response cache from the settings: its store and semantic index in Redis when the
shared state is in Redis (one pool, the state's fail-fast timeouts), in memory otherwise; the
embedder the settings name."""

from __future__ import annotations

import logging

from gatewayz.cache.embed_local import shared
from gatewayz.cache.embed_remote import RemoteEmbedder
from gatewayz.cache.response_cache import Embedder, ResponseCache
from gatewayz.cache.response_redis import RedisResponseStore
from gatewayz.cache.response_store import MemoryResponseStore, ResponseStore
from gatewayz.cache.semantic_index import MemorySemanticIndex, RedisSemanticIndex, SemanticIndex
from gatewayz.providers.registry import Registry
from gatewayz.settings import ConfigError, Settings
from gatewayz.state import RedisState, ResilientState, StateBackend

log = logging.getLogger("gatewayz.cache")
EMBEDDING_FAMILIES = frozenset({"openai", "gemini", "vertex", "bedrock", "cohere"})


def redis_of(state: StateBackend) -> RedisState | None:
    """The Redis behind the shared state, if it is in Redis."""
    if isinstance(state, RedisState):
        return state
    if isinstance(state, ResilientState) and isinstance(state.primary, RedisState):
        return state.primary
    return None


def build_response_cache(
    settings: Settings, state: StateBackend, registry: Registry
) -> ResponseCache:
    s = settings
    if not s.response_cache:
        return ResponseCache.off()
    redis = redis_of(state)
    store: ResponseStore
    index: SemanticIndex
    if redis is not None:
        store = RedisResponseStore(
            redis,
            s.response_cache_max_entries,
            s.response_cache_max_ttl_s,
            retry_after_s=s.state_fallback_retry_s,
        )
        index = RedisSemanticIndex(
            redis,
            s.semantic_cache_bucket_entries,
            s.response_cache_max_ttl_s,
            retry_after_s=s.state_fallback_retry_s,
        )
    else:
        store = MemoryResponseStore(s.response_cache_max_entries)
        index = MemorySemanticIndex(s.response_cache_max_entries, s.semantic_cache_bucket_entries)
    return ResponseCache(
        store,
        ttl_s=s.response_cache_ttl_s,
        max_ttl_s=s.response_cache_max_ttl_s,
        max_entry_bytes=s.response_cache_max_entry_bytes,
        index=index,
        embedder=build_embedder(s, registry),
        threshold=s.semantic_cache_threshold,
        embed_timeout_s=s.semantic_cache_timeout_s,
    )


def build_embedder(settings: Settings, registry: Registry) -> Embedder | None:
    """`local`, or `<provider slug>/<model>` of a provider whose family serves embeddings (a
    provider that is not served leaves the semantic cache off, logged; an unknown one, or one
    whose family has no embeddings, is a startup error)."""
    name = settings.semantic_cache_embedder
    if name == "local":
        return shared()
    slug, _, model = name.partition("/")
    provider = registry.get(slug)
    if provider is None or not model or provider.family not in EMBEDDING_FAMILIES:
        raise ConfigError(
            "GATEWAYZ_SEMANTIC_CACHE_EMBEDDER must be 'local' or '<provider>/<model>' of a "
            f"provider whose family serves embeddings ({', '.join(sorted(EMBEDDING_FAMILIES))})"
            f"; got {name!r}"
        )
    if not provider.enabled or provider.adapter is None:
        reason = provider.reason
        log.error("semantic cache off: embedding provider %s is not served: %s", slug, reason)
        return None
    return RemoteEmbedder(provider, model)
