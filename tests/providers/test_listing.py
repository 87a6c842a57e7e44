"""One model-list reader per family: what an adapter's `list_models` answers is what the catalog
sync reads (the same entries, the same filtering), a provider reached through Butter is listed
directly, and every failure of a read — the provider's answer or the family's own credentials —
is a `ListingError`, masked on its way out."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewayz.providers import vertex
from gatewayz.providers.listing import ListingError, list_models
from gatewayz.providers.provider import Provider
from gatewayz.providers.redact import MASK
from gatewayz.providers.registry import Registry, load_registry
from gatewayz.providers.transport import HttpPool
from gatewayz.simulators import Simulator
from gatewayz.simulators.model_lists import lists_of
from tests.catalog.conftest import KEY, catalog_settings

ECHOED_KEY = "key-" + "z3" * 12  # no credential shape: masked because it is configured


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
async def registry(tmp_path: Path, sim: Simulator) -> AsyncIterator[Registry]:
    lists_of(sim).reset()
    slugs = ("openai", "anthropic", "google-ai-studio", "cohere")
    reg = load_registry(catalog_settings(tmp_path, "sqlite+aiosqlite://", sim, *slugs))
    yield reg
    await reg.close()
    lists_of(sim).reset()


LISTS: dict[str, list[Any]] = {
    "openai": ["m-1", {"id": "m-2", "context_length": 4096}],
    "anthropic": [{"id": f"claude-{i}", "name": f"Claude {i}"} for i in range(1200)],
    "gemini": [
        {"id": "gemini-x", "context_length": 1000},
        {"id": "text-embedding-004", "output_modalities": ["embeddings"]},  # not a chat model
    ],
    "cohere": [{"id": "command-a", "tools": True}, "command-r"],
}
SLUGS = {"openai": "openai", "anthropic": "anthropic", "gemini": "google-ai-studio"}


@pytest.mark.parametrize("fmt", sorted(LISTS))
async def test_list_models_answers_the_ids_the_catalog_reads(
    registry: Registry, sim: Simulator, fmt: str
) -> None:
    lists_of(sim).set(fmt, LISTS[fmt])
    provider = registry.providers[SLUGS.get(fmt, fmt)]
    assert provider.adapter is not None
    read = [m.native_id for m in await list_models(provider, timeout_s=5)]
    assert await provider.adapter.list_models() == read
    assert "text-embedding-004" not in read


async def test_a_provider_reached_through_butter_lists_its_models_directly(
    sim: Simulator, tmp_path: Path
) -> None:
    lists_of(sim).set("openai", ["m-1", "m-2"])
    settings = catalog_settings(
        tmp_path,
        "sqlite+aiosqlite://",
        sim,
        "openai",
        butter_api_key="btr-key",
        butter_base_url="http://127.0.0.1:9/v1",  # nothing listens: Butter is never asked
    )
    reg = load_registry(settings)
    try:
        found = await list_models(reg.providers["openai"], timeout_s=5)
    finally:
        await reg.close()
        lists_of(sim).reset()
    assert [m.native_id for m in found] == ["m-1", "m-2"]


async def test_a_vertex_credential_failure_is_a_listing_error(tmp_path: Path) -> None:
    base = "http://127.0.0.1:9"
    p = Provider(
        "vertex",
        "Vertex",
        "vertex",
        base,
        api_key=str(tmp_path / "missing-service-account.json"),
        env={"GOOGLE_CLOUD_PROJECT": "p1"},
    )
    p.adapter = vertex.Adapter(p, HttpPool(base))
    with pytest.raises(ListingError, match="cannot read the service account file"):
        await list_models(p, timeout_s=5)


class _Echo(BaseHTTPRequestHandler):
    """Every GET: 401 with a message that repeats the Authorization header received."""

    def do_GET(self) -> None:
        said = self.headers.get("authorization", "")
        data = orjson.dumps({"error": {"message": f"key not accepted: {said}"}})
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


async def test_a_model_list_error_leaves_the_adapter_masked(echo: str, tmp_path: Path) -> None:
    settings = catalog_settings(
        tmp_path,
        "sqlite+aiosqlite://",
        {},
        provider_env={"openai": {"base_url": echo, "api_key": ECHOED_KEY}},
    )
    reg = load_registry(settings)
    adapter = reg.providers["openai"].adapter
    assert adapter is not None
    try:
        for read in (adapter.list_models(), list_models(reg.providers["openai"], timeout_s=5)):
            with pytest.raises(Exception, match="key not accepted") as caught:
                await read
            assert MASK in str(caught.value) and ECHOED_KEY not in str(caught.value)
    finally:
        await reg.close()
