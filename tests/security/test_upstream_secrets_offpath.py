"""Provider text that reaches operators rather than callers — the catalog's model-list sync (its
recorded detail and log line) and the semantic cache's remote embedder (its error, logged) —
is masked too: a provider answering 401 with the credentials it received leaks nothing."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest

from gatewayz.cache.embed_local import EmbedderUnavailable
from gatewayz.cache.response_setup import build_embedder
from gatewayz.providers.redact import MASK
from gatewayz.providers.registry import load_registry
from gatewayz.settings import Settings
from tests.catalog.conftest import catalog_settings, open_catalog

KEY = "key-" + "q7" * 12  # no credential shape: masked because it is configured


class _Echo(BaseHTTPRequestHandler):
    """Every request: 401 with a message that repeats the Authorization header received."""

    def _answer(self) -> None:
        said = self.headers.get("authorization", "")
        data = orjson.dumps({"error": {"message": f"key not accepted: {said}"}})
        self.send_response(401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self._answer()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def echo() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


async def test_a_failed_catalog_sync_records_and_logs_the_providers_message_masked(
    echo: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = catalog_settings(
        tmp_path,
        f"sqlite+aiosqlite:///{tmp_path / 'gw.db'}",
        {},
        provider_env={"openai": {"base_url": echo, "api_key": KEY}},
    )
    caplog.set_level(logging.WARNING, logger="gatewayz.catalog")
    async with open_catalog(settings) as catalog:
        (result,) = await catalog.sync(catalog.registry.enabled, force=True)
    assert result.status == "failed"
    assert "key not accepted" in result.detail and MASK in result.detail
    assert KEY not in result.detail
    assert "key not accepted" in caplog.text and KEY not in caplog.text


async def test_a_remote_embedders_error_is_masked(echo: str, tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        semantic_cache_embedder="openai/text-embedding-3-small",
        provider_env={"openai": {"base_url": echo, "api_key": KEY}},
    )
    registry = load_registry(settings)
    embedder = build_embedder(settings, registry)
    assert embedder is not None
    try:
        with pytest.raises(EmbedderUnavailable) as exc:
            await embedder.embed("hello")
    finally:
        await embedder.close()
        await registry.close()
    assert "key not accepted" in str(exc.value) and KEY not in str(exc.value)
