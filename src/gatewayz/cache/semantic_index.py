"""Prompt vectors of stored answers, by bucket (one bucket per account × model × parameters ×
conversation so far: `response_key.semantic_bucket`), for the semantic cache.

`nearest` finds the stored prompt most similar to a new one (cosine similarity of unit vectors,
a dot product) and returns its entry key when the similarity is above the threshold; the answer
itself lives in the response store under that key. Vectors are float32 and L2-normalised.

`MemorySemanticIndex` keeps them in numpy arrays (at most `max_vectors` in all, the least
recently used buckets giving way first); `RedisSemanticIndex` in one Redis list per bucket
(newest first, `bucket_entries` at most), shared by every worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from gatewayz.cache.response_redis import RedisBackoff
from gatewayz.lru import LRU
from gatewayz.state.redis import RedisState

KEY_BYTES = 64  # a hex SHA-256 entry key


class SemanticIndex(Protocol):
    async def nearest(
        self, bucket: str, vector: np.ndarray, threshold: float
    ) -> tuple[str, float] | None: ...

    async def add(self, bucket: str, key: str, vector: np.ndarray) -> None: ...


def best_match(
    keys: list[str], matrix: np.ndarray, vector: np.ndarray, threshold: float
) -> tuple[str, float] | None:
    """The key whose row is most similar to `vector`, when strictly above `threshold`."""
    if not keys:
        return None
    sims = matrix @ vector
    best = int(np.argmax(sims))
    score = float(sims[best])
    return (keys[best], score) if score > threshold else None


class _Bucket:
    __slots__ = ("keys", "matrix")

    def __init__(self, dim: int) -> None:
        self.keys: list[str] = []
        self.matrix = np.empty((0, dim), dtype=np.float32)

    def remove(self, key: str) -> None:
        if key in self.keys:
            i = self.keys.index(key)
            del self.keys[i]
            self.matrix = np.delete(self.matrix, i, axis=0)

    def drop_oldest(self) -> None:
        del self.keys[0]
        self.matrix = self.matrix[1:]


class MemorySemanticIndex:
    name = "memory"

    def __init__(self, max_vectors: int, bucket_entries: int) -> None:
        self.max_vectors = max_vectors
        self.bucket_entries = bucket_entries
        self._buckets: LRU[str, _Bucket] = LRU()  # bounded here, by `max_vectors` in all
        self._count = 0

    def __len__(self) -> int:
        return self._count

    async def nearest(
        self, bucket: str, vector: np.ndarray, threshold: float
    ) -> tuple[str, float] | None:
        b = self._buckets.get(bucket)
        if b is None:
            return None
        return best_match(b.keys, b.matrix, vector, threshold)

    async def add(self, bucket: str, key: str, vector: np.ndarray) -> None:
        b = self._buckets.get(bucket)
        if b is None:
            b = _Bucket(vector.shape[0])
            self._buckets.put(bucket, b)
        self._count -= len(b.keys)
        b.remove(key)
        b.keys.append(key)
        b.matrix = np.vstack([b.matrix, vector.astype(np.float32)[None, :]])
        if len(b.keys) > self.bucket_entries:
            b.drop_oldest()
        self._count += len(b.keys)
        while self._count > self.max_vectors:
            oldest_name, oldest = next(iter(self._buckets.items()))
            oldest.drop_oldest()
            self._count -= 1
            if not oldest.keys:
                self._buckets.pop(oldest_name)


class RedisSemanticIndex:
    name = "redis"

    def __init__(
        self,
        redis: RedisState,
        bucket_entries: int,
        max_ttl_s: float,
        *,
        retry_after_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = redis.client
        self._prefix = redis.prefix
        self.bucket_entries = bucket_entries
        self.max_ttl_ms = max(1, round(max_ttl_s * 1000))
        self._backoff = RedisBackoff("semantic cache", retry_after_s, clock)

    def bucket_key(self, bucket: str) -> str:
        return f"{self._prefix}rs:{bucket}"

    async def nearest(
        self, bucket: str, vector: np.ndarray, threshold: float
    ) -> tuple[str, float] | None:
        with self._backoff:
            items: list[bytes] = await self._client.lrange(self.bucket_key(bucket), 0, -1)
        keys = [i[:KEY_BYTES].decode() for i in items]
        if not keys:
            return None
        matrix = np.frombuffer(b"".join(i[KEY_BYTES:] for i in items), dtype=np.float32)
        return best_match(keys, matrix.reshape(len(keys), -1), vector, threshold)

    async def add(self, bucket: str, key: str, vector: np.ndarray) -> None:
        name = self.bucket_key(bucket)
        item = key.encode() + vector.astype(np.float32).tobytes()
        with self._backoff:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.lrem(name, 0, item)
                pipe.lpush(name, item)
                pipe.ltrim(name, 0, self.bucket_entries - 1)
                pipe.pexpire(name, self.max_ttl_ms)
                await pipe.execute()
