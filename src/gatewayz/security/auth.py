"""API-key authentication: HMAC lookup, with a short-TTL in-process cache before the database.

The cache is keyed by the key's HMAC (never the key itself). Unknown keys are cached briefly too
(bounded), so a flood of bad keys does not become a flood of database queries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from gatewayz.errors import Unauthorized
from gatewayz.lru import LRU
from gatewayz.security.keys import KeyRing, key_env
from gatewayz.storage import keys as repo
from gatewayz.storage.db import Database

_NEGATIVE_MAX = 10_000


@dataclass(slots=True, frozen=True)
class Principal:
    api_key_id: str
    user_id: str
    env: str
    role: str
    plan: str
    expires_at: float | None  # unix time
    record: dict[str, Any]


class Authenticator:
    def __init__(
        self,
        db: Database,
        keyring: KeyRing,
        *,
        ttl_s: float,
        negative_ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._clock = clock  # monotonic seconds, for the cache TTLs; injectable for tests
        self._keyring = keyring
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._cache: dict[str, tuple[float, Principal]] = {}
        # Unknown keys' HMACs → when that verdict expires; the oldest go first past the bound.
        self._negative: LRU[str, float] = LRU(_NEGATIVE_MAX)
        self.db_lookups = 0
        # Bumped by every invalidation: a lookup that started before one must not cache what it
        # read, or a key revoked while its row was being read would stay cached for the TTL.
        self._generation = 0

    async def authenticate(self, key: str | None) -> Principal:
        if not key:
            raise Unauthorized(
                "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'."
            )
        if key_env(key) is None:
            raise Unauthorized("Incorrect API key provided.")
        digest = self._keyring.hash(key)
        now = self._clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            principal = hit[1]
        else:
            neg = self._negative.peek(digest)
            if neg is not None and neg > now:
                raise Unauthorized("Incorrect API key provided.")
            principal = await self._load(key, digest, now)
        if principal.expires_at is not None and principal.expires_at <= time.time():
            raise Unauthorized("This API key has expired.")
        return principal

    async def _load(self, key: str, digest: str, now: float) -> Principal:
        self.db_lookups += 1
        generation = self._generation
        async with self._db.begin() as conn:
            row = await repo.find_key(conn, digest)
        if row is None or not row["is_active"] or not self._keyring.verify(key, row["key_hash"]):
            self._negative.put(digest, now + self._negative_ttl)
            raise Unauthorized("Incorrect API key provided.")
        principal = _principal(row)
        if generation == self._generation:
            self._cache[digest] = (now + self._ttl, principal)
        return principal

    async def principal_of(self, api_key_id: str) -> Principal:
        """The principal of a stored key, by its id, read as `authenticate` reads it (for work
        done later on a key's behalf: a batch's lines); Unauthorized when the key is revoked,
        inactive or expired, or its user is inactive."""
        async with self._db.begin() as conn:
            key = await repo.get_key(conn, api_key_id)
            row = None if key is None else await repo.find_key(conn, key["key_hash"])
        if row is None or not row["is_active"]:
            raise Unauthorized("The API key is no longer active.")
        return _principal(row)

    def invalidate(self, key_hash: str | None = None) -> None:
        """Forget one key (by its HMAC) or, with None, every cached key. Cross-process
        propagation is `security.invalidation.AuthSync`'s job."""
        self._generation += 1
        if key_hash is None:
            self._cache.clear()
        else:
            self._cache.pop(key_hash, None)


def _principal(row: dict[str, Any]) -> Principal:
    return Principal(
        api_key_id=row["api_key_id"],
        user_id=row["user_id"],
        env=row["env"],
        role=row["role"],
        plan=row["plan"],
        expires_at=_timestamp(row.get("expires_at")),
        record=row,
    )


def _timestamp(value: datetime | None) -> float | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()
