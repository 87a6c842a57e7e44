"""Auth-cache invalidation across workers (security/invalidation.py; two Authenticators standing
in for two worker processes), on the memory backend and on real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.errors import Unauthorized
from gatewayz.security.auth import Authenticator
from gatewayz.security.invalidation import AuthSync
from gatewayz.security.keys import KeyRing
from gatewayz.state import MemoryState, StateBackend, build_state
from gatewayz.storage import keys
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.keys import find_key, revoke_api_key
from gatewayz.storage.users import create_user

POLL_S = 0.05


async def _db(url: str) -> Database:
    await upgrade(url)
    return Database(url)


@pytest.fixture(params=["memory", "redis"])
async def states(request: pytest.FixtureRequest) -> AsyncIterator[list[StateBackend]]:
    """Two workers' state backends: shared Redis (two clients), or two private memories."""
    if request.param == "memory":
        made: list[StateBackend] = [MemoryState(prefix="t:"), MemoryState(prefix="t:")]
    else:
        url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("redis_prefix")
        made = [build_state(url, prefix), build_state(url, prefix)]
    yield made
    for s in made:
        await s.close()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    db = await _db(f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}")
    ring = KeyRing(Fernet.generate_key(), b"h" * 32)
    async with db.begin() as conn:
        user = await create_user(conn, "w@example.com")
        row, key = await create_api_key(conn, ring, user["id"], "live")
    yield {"db": db, "ring": ring, "row": row, "key": key, "user": user}
    await db.dispose()


async def test_cm_1_revocation_reaches_every_worker_within_a_second(
    world: dict[str, Any], states: list[StateBackend]
) -> None:
    db, ring, key, row = world["db"], world["ring"], world["key"], world["row"]
    auths = [Authenticator(db, ring, ttl_s=300, negative_ttl_s=5) for _ in states]
    syncs = [AuthSync(a, s, poll_s=POLL_S, workers=2) for a, s in zip(auths, states, strict=True)]
    for sync in syncs:
        sync.start()
    try:
        await asyncio.sleep(POLL_S * 2)  # pollers have read the starting epoch
        for a in auths:
            assert (await a.authenticate(key)).api_key_id == row["id"]
        async with db.begin() as conn:
            await revoke_api_key(conn, row["id"])
        if states[0].name != "memory":
            # Shared state: until a change is published, the cache answers (no spurious clears).
            await asyncio.sleep(POLL_S * 4)
            for a in auths:
                await a.authenticate(key)
            assert [a.db_lookups for a in auths] == [1, 1]
        t0 = time.monotonic()
        await syncs[0].publish(row["key_hash"])
        with pytest.raises(Unauthorized):  # this worker: at once
            await auths[0].authenticate(key)
        while True:  # the other worker: within one second
            try:
                await auths[1].authenticate(key)
            except Unauthorized:
                break
            assert time.monotonic() - t0 < 1.0, "worker 2 still accepts the revoked key"
            await asyncio.sleep(0.01)
    finally:
        for sync in syncs:
            await sync.stop()


async def test_single_worker_memory_invalidation_is_local_and_needs_no_poller(
    world: dict[str, Any],
) -> None:
    auth = Authenticator(world["db"], world["ring"], ttl_s=300, negative_ttl_s=5)
    sync = AuthSync(auth, MemoryState(prefix="t:"), poll_s=POLL_S, workers=1)
    sync.start()
    assert sync._task is None
    await auth.authenticate(world["key"])
    async with world["db"].begin() as conn:
        await revoke_api_key(conn, world["row"]["id"])
    await auth.authenticate(world["key"])  # cached
    await sync.publish(world["row"]["key_hash"])
    with pytest.raises(Unauthorized):
        await auth.authenticate(world["key"])
    await sync.stop()


async def test_lookup_racing_an_invalidation_is_not_cached(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = Authenticator(world["db"], world["ring"], ttl_s=300, negative_ttl_s=5)
    real = find_key

    async def find_then_invalidate(conn: Any, digest: str, **kw: Any) -> Any:
        found = await real(conn, digest, **kw)
        auth.invalidate(digest)  # the key changed while its row was being read
        return found

    monkeypatch.setattr(keys, "find_key", find_then_invalidate)
    await auth.authenticate(world["key"])
    monkeypatch.setattr(keys, "find_key", real)
    await auth.authenticate(world["key"])
    assert auth.db_lookups == 2  # the first (possibly stale) read was not cached
    await auth.authenticate(world["key"])
    assert auth.db_lookups == 2


async def test_degraded_state_clears_the_cache_every_poll(world: dict[str, Any]) -> None:
    auth = Authenticator(world["db"], world["ring"], ttl_s=300, negative_ttl_s=5)
    # Redis that is not there: the resilient backend degrades to its memory fallback.
    state = build_state("redis://127.0.0.1:1/0", "t:", retry_after_s=60, socket_timeout_s=0.1)
    sync = AuthSync(auth, state, poll_s=POLL_S, workers=2)
    sync.start()
    try:
        await auth.authenticate(world["key"])
        await sync.publish(world["row"]["key_hash"])  # lands in the fallback only
        await asyncio.sleep(POLL_S * 4)
        assert sync.clears >= 2
        before = auth.db_lookups
        await auth.authenticate(world["key"])
        assert auth.db_lookups == before + 1
    finally:
        await sync.stop()
        await state.close()
