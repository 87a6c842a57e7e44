"""Which row prices a route: the provider's own price, whether it is filed under the canonical
id or under the provider's native id; another provider's row only when it has none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from gatewayz.billing.meter import Meter
from gatewayz.billing.pricing import Price, PriceBook
from gatewayz.providers.provider import Provider
from gatewayz.routing.resolve import Route
from gatewayz.settings import Settings
from gatewayz.storage.db import Database


def P(prompt: str, completion: str) -> Price:
    return Price(prompt=Decimal(prompt), completion=Decimal(completion))


@pytest.fixture
async def meter(tmp_path: Path) -> AsyncIterator[Meter]:
    settings = Settings(data_dir=tmp_path, env="test")
    m = Meter(Database(settings.resolved_database_url), settings)
    m.book = PriceBook(
        models={"org/m": {"dear": P("9", "9"), "cheap": P("1", "1")}},
        native={"own": {"m-own": P("0.5", "0.5")}},
        overrides={("org/everywhere", None): P("3", "3")},
    )
    yield m
    await m.close()


def route(slug: str, native: str, model: str = "org/m") -> Route:
    return Route(cast(Provider, SimpleNamespace(slug=slug)), native, model)


def test_a_provider_is_charged_its_own_row_under_its_native_id(meter: Meter) -> None:
    found = meter.lookup(route("own", "m-own"))
    assert found.price == P("0.5", "0.5") and found.priced_provider == "own"


def test_its_row_under_the_canonical_id_wins(meter: Meter) -> None:
    assert meter.lookup(route("cheap", "m-cheap")).price == P("1", "1")


def test_without_a_row_of_its_own_the_dearest_known_row_applies(meter: Meter) -> None:
    found = meter.lookup(route("other", "m-other"))
    assert found.price == P("9", "9") and found.priced_provider == "dear"  # never undercharge


def test_an_admin_override_for_every_provider_is_not_bypassed(meter: Meter) -> None:
    meter.book = PriceBook(
        models={},
        native={"own": {"e-own": P("0.5", "0.5")}},
        overrides={("org/everywhere", None): P("3", "3")},
    )
    assert meter.lookup(route("own", "e-own", "org/everywhere")).price == P("3", "3")
