"""A fresh simulator (and an SDK client on it) per test, so queued faults never leak."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest

from gatewayz.simulators import Simulator


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator()
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="x", max_retries=0) as c:
        yield c
