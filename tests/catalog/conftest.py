"""Catalog fixtures: one simulator answering every provider's model list API (scripted per
test), and a `Catalog` built the way `Services` builds it, on each database backend, with an
injectable clock."""

from __future__ import annotations

import random
import secrets
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from gatewayz.billing.pricing import PriceBook
from gatewayz.catalog.service import Catalog
from gatewayz.providers.registry import load_registry
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.settings import Settings
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import lists_of
from gatewayz.storage.db import Database, upgrade

KEY = "sk-catalog-test"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(autouse=True)
def _fresh_lists(sim: Simulator) -> Iterator[None]:
    lists_of(sim).reset()
    sim.clear()
    yield
    lists_of(sim).reset()


def provider_env(
    sim: Simulator | Mapping[str, Simulator], *slugs: str
) -> dict[str, dict[str, str]]:
    """Each provider pointed at the simulator (or its own, from a mapping by slug), with a key,
    at the base its family expects."""
    env = {}
    for slug in slugs:
        one = sim[slug] if isinstance(sim, Mapping) else sim
        root = f"http://127.0.0.1:{one.port}"
        bases = {"anthropic": root, "google-ai-studio": root, "cohere": f"{root}/cohere"}
        env[slug] = {"base_url": bases.get(slug, one.base_url), "api_key": KEY}
        if slug == "aws-bedrock":
            env[slug] |= {"var:AWS_SECRET_ACCESS_KEY": "secret", "var:AWS_REGION": "us-east-1"}
    return env


def catalog_settings(
    data_dir: Path,
    db_url: str,
    sim: Simulator | Mapping[str, Simulator],
    *slugs: str,
    **overrides: Any,
) -> Settings:
    values: dict[str, Any] = {
        "env": "test",
        "data_dir": data_dir,
        "database_url": db_url,
        "fernet_key": Fernet.generate_key().decode(),
        "hmac_key": secrets.token_urlsafe(32),
        "simulated_provider": False,
        "health_probes": False,
        "provider_env": provider_env(sim, *slugs),
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def open_catalog(
    settings: Settings,
    *,
    clock: Callable[[], float] | None = None,
    passive: PassiveHealth | None = None,
    rng: random.Random | None = None,
    start: bool = False,
) -> AsyncIterator[Catalog]:
    """A Catalog on a migrated database (started: its startup sync and background checks)."""
    url = settings.resolved_database_url
    await upgrade(url)
    db = Database(url)
    registry = load_registry(settings)
    kwargs: dict[str, Any] = {"rng": rng}
    if clock is not None:
        kwargs["clock"] = clock
    catalog = Catalog(db, settings, registry, PriceBook.load, passive or PassiveHealth(), **kwargs)
    try:
        if start:
            await catalog.start()
        yield catalog
    finally:
        await catalog.stop()
        await registry.close()
        await db.dispose()
