"""RedisState's own behaviour beyond the shared contract: concurrent counter increments share
script calls (one round trip per batch), each caller getting its own counters back."""

from __future__ import annotations

import asyncio
from typing import Any

from gatewayz.state import RedisState


async def test_concurrent_increments_share_round_trips_and_stay_exact(
    redis_url: str, redis_prefix: str
) -> None:
    state = RedisState(redis_url, prefix=redis_prefix)
    calls = 0
    script = state._incr_script

    async def counted(**kw: Any) -> Any:
        nonlocal calls
        calls += 1
        return await script(**kw)

    state._incr_script = counted  # type: ignore[assignment]
    try:
        results = await asyncio.gather(
            *(
                state.incr_many([("shared", 1, 60), (f"own:{i}", i, None), ("shared2", 2, 60)])
                for i in range(60)
            )
        )
        # Every caller saw its own counters: `own:i` is i, and the shared ones were counted once
        # per caller, each caller seeing a distinct value.
        assert [r[1] for r in results] == list(range(60))
        assert sorted(r[0] for r in results) == list(range(1, 61))
        assert sorted(r[2] for r in results) == list(range(2, 122, 2))
        assert calls < 60 / 4  # coalesced: far fewer round trips than callers
        assert await state.incr("shared", 0) == 60
    finally:
        await state.close()


async def test_a_failed_batch_fails_each_caller_and_the_next_batch_runs(
    redis_url: str, redis_prefix: str
) -> None:
    state = RedisState(redis_url, prefix=redis_prefix)
    try:
        await state.set("text", b"not a number")
        bad = state.incr_many([("text", 1, None)])
        good = state.incr_many([("fine", 1, None)])
        outcomes = await asyncio.gather(bad, good, return_exceptions=True)
        assert all(isinstance(o, ValueError) for o in outcomes)  # one script call: both failed
        assert await state.incr_many([("after", 1, None)]) == [1]  # the next batch runs
    finally:
        await state.close()
