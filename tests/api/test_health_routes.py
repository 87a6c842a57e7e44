"""GET /health and GET /ready through a real gateway (CM-11.5 – CM-11.8), including while the
database and Redis are unreachable."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx2
import pytest

from gatewayz import __version__
from gatewayz.simulators import Simulator
from gatewayz.storage.db import Database
from tests.e2e.harness import Gateway, free_port, gateway_settings, start_gateway


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sim = Simulator()
    sim.start_in_thread()
    # Redis configured but unreachable: the gateway runs on its in-memory fallback.
    settings = gateway_settings(
        tmp_path_factory.mktemp("health"), sim, redis_url=f"redis://127.0.0.1:{free_port()}/0"
    )
    g = start_gateway(settings, sim)
    yield g
    g.stop()
    sim.stop_thread()


def get(gw: Gateway, path: str) -> httpx2.Response:
    return httpx2.get(gw.root + path, trust_env=False, timeout=10)


def test_cm_11_5_health_is_200_even_with_redis_and_the_database_down(gw: Gateway) -> None:
    r = get(gw, "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "degraded" and body["subsystems"]["database"]["status"] == "ok"
    assert body["subsystems"]["state"]["degraded"] is True  # Redis unreachable
    healthy_db = gw.services.db
    gw.services.db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        r = get(gw, "/health")
        assert r.status_code == 200
        assert r.json()["subsystems"]["database"]["status"] == "down"
        ready = get(gw, "/ready")
        assert ready.status_code == 503 and ready.json()["ready"] is False
    finally:
        gw.services.db = healthy_db
    assert get(gw, "/ready").status_code == 200  # a Redis outage alone is not "not ready"


def test_cm_11_6_health_reports_the_version(gw: Gateway) -> None:
    assert get(gw, "/health").json()["version"] == __version__


def test_cm_11_7_health_reports_a_status(gw: Gateway) -> None:
    assert get(gw, "/health").json()["status"] in ("operational", "degraded")


def test_cm_11_8_health_reports_a_current_timestamp(gw: Gateway) -> None:
    stamp = datetime.fromisoformat(get(gw, "/health").json()["timestamp"])
    assert stamp.tzinfo is not None
    assert abs(datetime.now(UTC) - stamp) < timedelta(seconds=30)
