"""A real gateway per test module (fresh data directory and database), with the Stripe webhook
secret and API key set and the API pointed at a local fake Stripe server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatewayz.simulators import Simulator
from tests.api.payments.fake_stripe import FakeStripe
from tests.api.payments.helpers import STRIPE_API_KEY, WEBHOOK_SECRET, close_helpers
from tests.e2e.harness import Gateway, gateway_settings, start_gateway


@pytest.fixture(scope="package")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


@pytest.fixture(scope="package")
def fake_stripe() -> Iterator[FakeStripe]:
    fake = FakeStripe(STRIPE_API_KEY).start()
    yield fake
    fake.stop()


def payments_gateway(
    data_dir: Path, upstream: Simulator, fake: FakeStripe | None, **overrides: Any
) -> Gateway:
    values: dict[str, Any] = {
        # Many unauthenticated webhook posts from 127.0.0.1: keep the IP layer out of the way.
        "ip_rate_limit_rpm": 100_000,
        "stripe_webhook_secret": WEBHOOK_SECRET,
    }
    if fake is not None:
        values.update(stripe_api_key=STRIPE_API_KEY, stripe_api_base=fake.base_url)
    values.update(overrides)
    return start_gateway(gateway_settings(data_dir, upstream, **values), upstream)


@pytest.fixture(scope="module")
def gw(
    upstream: Simulator, fake_stripe: FakeStripe, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    g = payments_gateway(tmp_path_factory.mktemp("payments"), upstream, fake_stripe)
    yield g
    close_helpers(g)
    g.stop()
