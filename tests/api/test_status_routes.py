"""Public status data through a real gateway (CM-11.9): a simulator provider answering 503s
opens an incident that /status and /status/incidents show, and recovering resolves it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from gatewayz.simulators import Fault, Simulator
from gatewayz.storage.db import Database
from tests.e2e.harness import Gateway, gateway_settings, pair_env, start_gateway

MODEL = "status-model"
MSG = [{"role": "user", "content": "hello"}]
# vllm first, lm-studio as the fallback.
ORDER = {"order": ["vllm", "lm-studio"]}
WINDOWS = {"24h", "7d", "30d"}


@pytest.fixture(scope="module")
def gw(
    sims: tuple[Simulator, Simulator], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a = sims[0]
    env = pair_env(sims, MODEL)
    settings = gateway_settings(
        tmp_path_factory.mktemp("status"),
        a,
        provider_env=env,
        incident_check_s=0.2,
        breaker_failure_threshold=5,
    )
    g = start_gateway(settings, a)
    yield g
    g.stop()


def get(gw: Gateway, path: str) -> httpx2.Response:
    # No Authorization header: status data is public.
    return httpx2.get(gw.root + path, trust_env=False, timeout=10)


def chat(gw: Gateway, provider: Any) -> httpx2.Response:
    return httpx2.post(
        f"{gw.base_url}/chat/completions",
        json={"model": MODEL, "messages": MSG, "provider": provider},
        headers={"Authorization": f"Bearer {gw.api_key}"},
        trust_env=False,
        timeout=30,
    )


def wait_for(probe: Callable[[], Any], timeout_s: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def vllm_incidents(gw: Gateway, status: str) -> list[dict[str, Any]]:
    data = get(gw, f"/status/incidents?status={status}").json()["data"]
    return [i for i in data if i["provider"] == "vllm"]


def test_cm_11_9_failing_provider_opens_an_incident_then_recovers(
    gw: Gateway, sims: tuple[Simulator, Simulator]
) -> None:
    primary, _ = sims
    assert get(gw, "/status").json()["status"] == "operational"
    for _ in range(5):
        primary.fault(Fault(status=503))
    for _ in range(5):
        r = chat(gw, ORDER)
        assert r.status_code == 200 and r.headers["x-gatewayz-provider"] == "lm-studio"

    (incident,) = wait_for(lambda: vllm_incidents(gw, "open"))
    assert (incident["severity"], incident["model"], incident["title"]) == (
        "critical",
        None,
        "vllm is down",
    )
    assert incident["details"]["history"][0]["breaker"] == "open"
    time.sleep(0.2)  # the outage lasts long enough to show in the rounded uptime
    page = get(gw, "/status")
    assert page.status_code == 200
    body = page.json()
    assert body["status"] == "degraded"
    assert [i["id"] for i in body["incidents"]] == [incident["id"]]
    providers = {p["provider"]: p for p in body["providers"]}
    assert providers["vllm"]["status"] == "down" and providers["vllm"]["uptime"]["24h"] < 1
    assert providers["lm-studio"] == {
        "provider": "lm-studio",
        "status": "operational",
        "uptime": {"24h": 1.0, "7d": 1.0, "30d": 1.0},
    }
    (event,) = [
        e for e in gw.services.events.recent("model.degraded") if e["data"]["provider"] == "vllm"
    ]
    assert event["data"]["incident_id"] == incident["id"]
    assert event["data"]["severity"] == "critical" and event["data"]["attempts"] == 5

    # Recovery: the breakers are reset and vllm answers again; enough successes dilute the
    # failures below 10 % of this worker's window.
    for model in (None, MODEL):  # the provider's breaker, and its breaker for this model
        asyncio.run(gw.services.breakers.reset("vllm", model))
    for _ in range(60):
        assert chat(gw, "vllm").status_code == 200
    (resolved,) = wait_for(lambda: vllm_incidents(gw, "resolved"))
    assert resolved["id"] == incident["id"] and resolved["details"]["resolution"] == "recovered"
    assert vllm_incidents(gw, "open") == []
    after = get(gw, "/status").json()
    assert after["status"] == "operational" and after["incidents"] == []
    vllm = {p["provider"]: p for p in after["providers"]}["vllm"]
    assert vllm["status"] == "operational" and vllm["uptime"]["24h"] < 1
    recovered = gw.services.events.recent("model.recovered")
    assert [e["data"]["incident_id"] for e in recovered] == [incident["id"]]


def test_cm_11_9_status_incidents_validates_its_query(gw: Gateway) -> None:
    for query in ("status=bogus", "limit=0", "limit=201", "limit=abc"):
        r = get(gw, f"/status/incidents?{query}")
        assert r.status_code == 400, query
        assert r.json()["error"]["type"] == "invalid_request_error"
    r = get(gw, "/status/incidents?status=open&limit=1")
    assert r.status_code == 200 and r.json()["object"] == "list"


def test_cm_11_9_passive_rows_carry_uptime_and_degrade_without_the_database(
    gw: Gateway,
) -> None:
    assert chat(gw, "lm-studio").status_code == 200
    for path in ("/status/providers", "/status/models"):
        body = get(gw, path).json()
        assert body["object"] == "list" and body["window_s"] > 0
        row = next(r for r in body["data"] if r["provider"] == "lm-studio")
        assert {"attempts", "errors", "success_rate", "status", "latency_p50_ms"} <= set(row)
        assert set(row["uptime"]) == WINDOWS
    healthy_db = gw.services.db
    gw.services.db = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    try:
        rows = get(gw, "/status/providers").json()["data"]
        assert rows and all(r["uptime"] is None for r in rows)
        assert get(gw, "/status").status_code == 503
        assert get(gw, "/status/incidents").status_code == 503
    finally:
        gw.services.db = healthy_db
    assert get(gw, "/status").status_code == 200
