"""CM-8.1: the exact-match store and its key — SHA-256 of the canonical {messages, model,
params}, 20,000 entries, 60 min TTL, LRU — in memory and in real Redis."""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import replace

import orjson
import pytest

from gatewayz.cache.response_key import canonical_json, exact_key
from gatewayz.cache.response_policy import CachePolicy
from gatewayz.cache.response_redis import RedisResponseStore
from gatewayz.cache.response_setup import build_response_cache
from gatewayz.cache.response_store import MemoryResponseStore
from gatewayz.canonical.types import ChatRequest, Message, TextPart, Tool
from gatewayz.settings import Settings
from gatewayz.state import MemoryState, RedisState

from .conftest import Stores


def _request(**changes: object) -> ChatRequest:
    req = ChatRequest(
        model="gpt-4o",
        messages=[
            Message("system", "Be brief."),
            Message("user", [TextPart("What is the capital of France?")]),
        ],
        temperature=0,
        max_tokens=50,
    )
    return replace(req, **changes)


def _defaults() -> Settings:
    return Settings()


# ---------------------------------------------------------------- CM-8.1.3 the key
def test_cm_8_1_3_exact_match_cache_uses_sha256() -> None:
    req = _request()
    key = exact_key(req, "usr_1", "openai/gpt-4o")
    material = canonical_json(req, "usr_1", "openai/gpt-4o")
    assert key == hashlib.sha256(material).hexdigest()
    assert len(key) == 64 and int(key, 16) >= 0
    # The material is the canonical JSON of the messages, the model and the parameters.
    version, scope, model, providers, dialect, messages, params = orjson.loads(material)
    assert (scope, model, providers, dialect) == ("usr_1", "openai/gpt-4o", None, None)
    assert messages[1]["content"] == [{"text": "What is the capital of France?", "extra": None}]
    assert params["temperature"] == 0 and params["max_tokens"] == 50
    assert "stream" not in params and "user" not in params and "metadata" not in params
    assert version == 1


def test_cm_8_1_3_the_key_is_stable_and_ignores_delivery_and_caller_labels() -> None:
    base = exact_key(_request(), "usr_1", "openai/gpt-4o")
    assert exact_key(_request(), "usr_1", "openai/gpt-4o") == base
    same = _request(stream=True, include_usage=True, user="alice", metadata={"run": "7"})
    assert exact_key(same, "usr_1", "openai/gpt-4o") == base
    # 0 and 0.0 are one temperature (the two dialects parse numbers differently).
    assert exact_key(_request(temperature=0.0), "usr_1", "openai/gpt-4o") == base
    # JSON objects compare by content, not key order.
    a = _request(tools=[Tool("f", None, {"type": "object", "properties": {}})])
    b = _request(tools=[Tool("f", None, {"properties": {}, "type": "object"})])
    assert exact_key(a, "u", "m") == exact_key(b, "u", "m")


@pytest.mark.parametrize(
    "changes",
    [
        {"temperature": 0.5},
        {"top_p": 0.9},
        {"max_tokens": 51},
        {"seed": 7},
        {"stop": ["\n"]},
        {"n": 2},
        {"tools": [Tool("f", "a tool", {"type": "object"})]},
        {"tool_choice": "none"},
        {"response_format": {"type": "json_object"}},
        {"logprobs": True},
        {"reasoning_effort": "high"},
        {"extra": {"service_tier": "flex"}},
        {"messages": [Message("user", "What is the capital of Spain?")]},
    ],
)
def test_cm_8_1_2_exact_match_cache_miss_different_params_different_key(
    changes: dict[str, object],
) -> None:
    assert exact_key(_request(**changes), "u", "m") != exact_key(_request(), "u", "m")


def test_cm_8_1_2_model_account_and_provider_restriction_are_part_of_the_key() -> None:
    req = _request()
    base = exact_key(req, "usr_1", "openai/gpt-4o")
    assert exact_key(req, "usr_1", "openai/gpt-4o-mini") != base
    assert exact_key(req, "usr_2", "openai/gpt-4o") != base  # accounts never share entries
    assert exact_key(req, "usr_1", "openai/gpt-4o", (("groq",), None, (), False)) != base


# ---------------------------------------------------------------- CM-8.1.4 20,000 entries
async def test_cm_8_1_4_exact_match_cache_max_20k_entries(stores: Stores) -> None:
    settings = _defaults()
    assert settings.response_cache_max_entries == 20_000
    if stores.redis is None:
        cache = build_response_cache(settings, MemoryState(), registry=None)  # type: ignore[arg-type]
        store = cache.store
        assert isinstance(store, MemoryResponseStore)
        store._clock = stores.clock  # type: ignore[attr-defined]
    else:
        store = RedisResponseStore(stores.redis, settings.response_cache_max_entries, 86_400)
    ttl = settings.response_cache_ttl_s
    for i in range(20_000):
        await store.put(f"k{i}", b"v", ttl)
        if i == 0:
            stores.clock.advance(0.001)
            await asyncio.sleep(0.002)  # Redis orders by milliseconds: k0 is clearly oldest
    await store.put("k20000", b"v", ttl)
    assert await store.get("k0") is None  # the 20,001st entry evicted the oldest
    assert await store.get("k1") == b"v"
    assert await store.get("k20000") == b"v"
    if isinstance(store, MemoryResponseStore):
        assert len(store) == 20_000
    else:
        assert await store.size() == 20_000


# ---------------------------------------------------------------- CM-8.1.5 60 min TTL
async def test_cm_8_1_5_exact_match_cache_60min_ttl_memory_with_time_mock() -> None:
    settings = _defaults()
    assert settings.response_cache_ttl_s == 3600
    clock = [0.0]
    store = MemoryResponseStore(10, clock=lambda: clock[0])
    await store.put("k", b"answer", settings.response_cache_ttl_s)
    clock[0] = 3599.9
    assert "k" in store
    clock[0] = 3600.0
    assert await store.get("k") is None  # expired after 60 minutes
    assert len(store) == 0


async def test_cm_8_1_5_exact_match_cache_60min_ttl_redis(
    redis_url: str, redis_prefix: str
) -> None:
    redis = RedisState(redis_url, prefix=redis_prefix)
    try:
        store = RedisResponseStore(redis, 10, 86_400)
        await store.put("k", b"answer", _defaults().response_cache_ttl_s)
        pttl = await redis.client.pttl(store.entry_key("k"))
        assert 3_590_000 < pttl <= 3_600_000  # Redis drops it after 60 minutes
        await store.put("short", b"answer", 0.05)
        assert await store.get("short") == b"answer"
        await asyncio.sleep(0.15)
        assert await store.get("short") is None
    finally:
        await redis.close()


def test_cm_8_1_5_the_default_ttl_applies_unless_the_request_sets_one() -> None:
    cache = build_response_cache(_defaults(), MemoryState(), registry=None)  # type: ignore[arg-type]
    assert cache.ttl_s == 3600
    assert CachePolicy().ttl_s is None


# ---------------------------------------------------------------- CM-8.1.6 LRU
async def test_cm_8_1_6_exact_match_cache_lru_eviction(stores: Stores) -> None:
    store = stores.make(3)
    for key in ("a", "b", "c"):
        await store.put(key, key.encode(), 3600)
        stores.clock.advance(1)
        await asyncio.sleep(0.002)
    assert await store.get("a") == b"a"  # a is now the most recently used
    stores.clock.advance(1)
    await asyncio.sleep(0.002)
    await store.put("d", b"d", 3600)
    assert await store.get("b") is None  # the least recently used went
    assert [await store.get(k) for k in ("a", "c", "d")] == [b"a", b"c", b"d"]


async def test_cm_8_1_6_a_refreshed_entry_is_not_duplicated(stores: Stores) -> None:
    store = stores.make(2)
    await store.put("a", b"1", 3600)
    await store.put("a", b"2", 3600)
    await store.put("b", b"b", 3600)
    assert await store.get("a") == b"2"
    assert await store.get("b") == b"b"
