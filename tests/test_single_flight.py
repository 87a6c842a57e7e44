"""`gatewayz.single_flight.SingleFlight`: one piece of work per key for concurrent callers."""

from __future__ import annotations

import asyncio
import gc

import pytest

from gatewayz.single_flight import SingleFlight


async def settle() -> None:
    """Let the callers start and their flights begin."""
    for _ in range(3):
        await asyncio.sleep(0)


class Work:
    """Work that counts its runs and waits until released."""

    def __init__(self, result: str = "done", error: Exception | None = None) -> None:
        self.runs = 0
        self.release = asyncio.Event()
        self.result = result
        self.error = error

    async def __call__(self) -> str:
        self.runs += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.result


async def test_concurrent_callers_share_one_run() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    callers = [asyncio.ensure_future(flights.run("k", work)) for _ in range(20)]
    await settle()
    assert work.runs == 1 and "k" in flights and len(flights.pending()) == 1
    work.release.set()
    assert await asyncio.gather(*callers) == ["done"] * 20
    assert "k" not in flights and len(flights) == 0 and flights.pending() == []


async def test_keys_fly_apart() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    a, b = Work("a"), Work("b")
    callers = [
        asyncio.ensure_future(flights.run("a", a)),
        asyncio.ensure_future(flights.run("b", b)),
    ]
    await settle()
    assert len(flights) == 2
    a.release.set()
    b.release.set()
    assert await asyncio.gather(*callers) == ["a", "b"]


async def test_a_call_after_the_flight_ended_starts_afresh() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    work.release.set()
    assert await flights.run("k", work) == "done"
    assert await flights.run("k", work) == "done"
    assert work.runs == 2


async def test_a_caller_going_away_does_not_cancel_the_others() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    first = asyncio.ensure_future(flights.run("k", work))
    others = [asyncio.ensure_future(flights.run("k", work)) for _ in range(5)]
    await settle()
    first.cancel()  # the caller that started the flight disconnects
    await settle()
    assert first.cancelled()
    work.release.set()
    assert await asyncio.gather(*others) == ["done"] * 5
    assert work.runs == 1


async def test_every_caller_gets_the_exception() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work(error=OSError("database unreachable"))
    callers = [asyncio.ensure_future(flights.run("k", work)) for _ in range(3)]
    await settle()
    work.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results) and work.runs == 1
    assert "k" not in flights  # a failure is not remembered: the next call tries again


async def test_an_exception_nobody_waits_for_is_retrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work(error=OSError("nobody listens"))
    task = flights.start("k", work)  # a background refresh: nobody awaits it
    work.release.set()
    await asyncio.wait([task])
    del task
    gc.collect()
    assert "never retrieved" not in caplog.text


async def test_start_does_not_wait_and_pending_lists_the_flight() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    task = flights.start("k", work)
    assert flights.start("k", work) is task and flights.get("k") is task
    assert flights.pending() == [task]
    work.release.set()
    assert await asyncio.gather(*flights.pending()) == ["done"]
    assert flights.get("k") is None


async def test_forget_detaches_the_flight() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    still_current: list[bool] = []
    old, new = Work("old"), Work("new")

    async def watched(work: Work) -> str:
        result = await work()
        still_current.append(flights.current("k"))
        return result

    before = asyncio.ensure_future(flights.run("k", lambda: watched(old)))
    await settle()
    flights.forget("k")  # e.g. a write: what the flight read may predate it
    assert "k" not in flights and flights.pending() == []
    after = asyncio.ensure_future(flights.run("k", lambda: watched(new)))
    await settle()
    assert old.runs == new.runs == 1
    old.release.set()
    assert await before == "old"  # its callers still get its result
    assert "k" in flights  # the old flight ending does not remove the new one
    new.release.set()
    assert await after == "new"
    assert still_current == [False, True]


async def test_clear_detaches_every_flight() -> None:
    flights: SingleFlight[str, str] = SingleFlight()
    work = Work()
    callers = [asyncio.ensure_future(flights.run(k, work)) for k in "abc"]
    await settle()
    flights.clear()
    assert len(flights) == 0
    work.release.set()
    assert await asyncio.gather(*callers) == ["done"] * 3
