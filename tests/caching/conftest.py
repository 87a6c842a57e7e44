from __future__ import annotations

from collections.abc import Iterator

import pytest

from gatewayz.simulators import Simulator


@pytest.fixture(scope="module")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()
