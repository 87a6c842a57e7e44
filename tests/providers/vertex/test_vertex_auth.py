"""Vertex AI: service-account tokens (cached, refreshed before expiry, refreshed in a worker
thread, one refresh for concurrent callers), endpoints per location, project discovery, and
both families' model lists — at the adapter level, against the Gemini simulator."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatewayz.canonical.types import ChatRequest, Message
from gatewayz.errors import UpstreamError
from gatewayz.providers import gemini
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool
from gatewayz.providers.vertex import adapter as vertex
from gatewayz.simulators import Simulator
from gatewayz.simulators.formats import gemini as gemini_sim
from tests.providers.vertex.helpers import PROJECT, write_service_account

KEY = "vertex-unit-key"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
def sa(sim: Simulator, tmp_path: Path) -> str:
    return str(write_service_account(tmp_path / "sa.json", sim.port))


def _vertex(sim: Simulator, key: str, **env: str) -> vertex.Adapter:
    root = f"http://127.0.0.1:{sim.port}"
    p = Provider("google-vertex", "Vertex", "vertex", root, auth="none", api_key=key, env=env)
    return vertex.Adapter(p, HttpPool(root))


@pytest.mark.parametrize(
    ("base", "location", "expected"),
    [
        (vertex.DEFAULT_HOST, "global", "https://aiplatform.googleapis.com"),
        (vertex.DEFAULT_HOST, "us-central1", "https://us-central1-aiplatform.googleapis.com"),
        (
            vertex.DEFAULT_HOST + "/",
            "europe-west4",
            "https://europe-west4-aiplatform.googleapis.com",
        ),
        (vertex.DEFAULT_HOST, "eu", "https://aiplatform.eu.rep.googleapis.com"),
        ("http://127.0.0.1:9999", "us-central1", "http://127.0.0.1:9999"),
    ],
)
def test_regional_base_url(base: str, location: str, expected: str) -> None:
    assert vertex.regional_base_url(base, location) == expected


def test_default_provider_uses_regional_pool_and_path(sa: str) -> None:
    p = Provider(
        "google-vertex",
        "Vertex",
        "vertex",
        vertex.DEFAULT_HOST,
        api_key=sa,
        env={"GOOGLE_CLOUD_LOCATION": "asia-northeast1"},
    )
    a = vertex.Adapter(p, HttpPool(vertex.DEFAULT_HOST))
    host = "asia-northeast1-aiplatform.googleapis.com"
    assert (a.pool.host, a.pool.port, a.pool.tls) == (host, 443, True)
    assert a.model_url("gemini-2.5-pro") == (
        f"/v1/projects/{PROJECT}/locations/asia-northeast1/publishers/google/models/gemini-2.5-pro"
    )


async def test_token_cached_and_refreshed_in_a_thread(sim: Simulator, sa: str) -> None:
    st = gemini_sim.state(sim)
    tok = vertex.ServiceAccountToken(sa, "google-vertex")
    threads: list[threading.Thread] = []
    real = tok._refresh

    def spy() -> str:
        threads.append(threading.current_thread())
        return real()

    tok._refresh = spy  # type: ignore[method-assign]
    before = st.token_calls
    tokens = await asyncio.gather(*(tok.get() for _ in range(5)))
    assert len(set(tokens)) == 1 and tokens[0].startswith("ya29.sim-")
    assert st.token_calls == before + 1 and tok.refreshes == 1
    assert await tok.get() == tokens[0] and st.token_calls == before + 1
    assert threads and all(t is not threading.main_thread() for t in threads)


async def test_token_near_expiry_is_refreshed(sim: Simulator, sa: str) -> None:
    st = gemini_sim.state(sim)
    st.expires_in = int(vertex.REFRESH_MARGIN_S) - 10  # already inside the refresh margin
    try:
        tok = vertex.ServiceAccountToken(sa, "google-vertex")
        first = await tok.get()
        second = await tok.get()
    finally:
        st.expires_in = 3600
    assert first != second and tok.refreshes == 2
    third = vertex.ServiceAccountToken(sa, "google-vertex")
    t = await third.get()
    assert await third.get() == t and third.refreshes == 1


async def test_token_errors_are_upstream_errors(tmp_path: Path) -> None:
    missing = vertex.ServiceAccountToken(str(tmp_path / "nope.json"), "google-vertex")
    with pytest.raises(UpstreamError, match="service account file") as e:
        await missing.get()
    assert e.value.failover and e.value.status == 502
    dead = write_service_account(tmp_path / "dead.json", 1)  # nothing listens on port 1
    with pytest.raises(UpstreamError, match="access token"):
        await vertex.ServiceAccountToken(str(dead), "google-vertex").get()


async def test_project_from_file_and_missing_project(
    sim: Simulator, sa: str, tmp_path: Path
) -> None:
    a = _vertex(sim, sa)  # no GOOGLE_CLOUD_PROJECT: the file's project_id, location global
    req = ChatRequest(model="google/gemini-2.5-flash", messages=[Message("user", "Say hello")])
    r = await a.send(req, "gemini-2.5-flash")
    assert r.choices[0].message.content == "Hello from the Gatewayz simulator. You said: Say hello"
    assert sim.requests[-1].path == (
        f"/v1/projects/{PROJECT}/locations/global/publishers/google/models/"
        "gemini-2.5-flash:generateContent"
    )
    await a.pool.close()
    bare = write_service_account(tmp_path / "bare.json", sim.port, project=None)
    b = _vertex(sim, str(bare))
    with pytest.raises(UpstreamError, match="GOOGLE_CLOUD_PROJECT"):
        await b.send(req, "gemini-2.5-flash")
    await b.pool.close()


async def test_list_models_both_families(sim: Simulator, sa: str) -> None:
    root = f"http://127.0.0.1:{sim.port}"
    p = Provider("google-ai-studio", "AI Studio", "gemini", root, api_key=KEY)
    studio = gemini.Adapter(p, HttpPool(root))
    assert await studio.list_models() == list(gemini_sim.MODELS)
    await studio.pool.close()
    v = _vertex(sim, sa, GOOGLE_CLOUD_PROJECT="p1")
    assert await v.list_models() == list(gemini_sim.MODELS)
    await v.pool.close()
