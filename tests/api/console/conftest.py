"""A gateway of its own for the web console's tests (its own database, so the dashboard's
numbers are only these tests' requests; Privy login configured, with a key pair of the tests'
standing in for Privy's) and one chromium per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser

from gatewayz.simulators import Simulator
from tests.accounts.conftest import privy_settings, public_pem
from tests.api.console.browser import Tab, chromium, chromium_missing_reason, in_thread, new_tab
from tests.e2e.harness import Gateway, gateway_settings, start_gateway

CATALOG_MODELS = ["gpt-4o", "gpt-4o-mini", "o3-mini"]


@pytest.fixture(scope="session")
def console_privy_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def console_gateway(
    tmp_path_factory: pytest.TempPathFactory, console_privy_key: ec.EllipticCurvePrivateKey
) -> Iterator[Gateway]:
    # OpenAI's model list names priced models: the catalog (the Models page) has entries.
    sim = Simulator(models=CATALOG_MODELS)
    sim.start_in_thread()
    data_dir: Path = tmp_path_factory.mktemp("console")
    privy = privy_settings(public_pem(console_privy_key))
    settings = gateway_settings(data_dir, sim, webhooks_allow_private=True, **privy)
    gw = in_thread(start_gateway, settings, sim)
    yield gw
    gw.stop()
    sim.stop_thread()


# Module-scoped: while Playwright's sync API is started, its event loop is the running loop of
# the main thread, where other modules' `asyncio.run` would then fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = chromium_missing_reason()
    if reason is not None:
        pytest.skip(reason)
    with chromium() as b:
        yield b


@pytest.fixture
def tab(browser: Browser, console_gateway: Gateway) -> Iterator[Tab]:
    t = new_tab(browser, console_gateway.root)
    yield t
    t.close()
