"""CM-8 semantic layer (opt-in): cosine similarity > 0.95 within the same model, parameters and
conversation; the local int8 MiniLM by default, or a provider's /embeddings; embeddings only for
requests that opted in, off the event loop."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from gatewayz.cache import embed_local
from gatewayz.cache.embed_local import EmbedderUnavailable, LocalEmbedder
from gatewayz.cache.response_cache import ResponseCache
from gatewayz.cache.response_store import MemoryResponseStore
from gatewayz.cache.semantic_index import MemorySemanticIndex, best_match
from gatewayz.canonical.types import ChatRequest, ChatResponse, Choice, Message, Usage
from gatewayz.security.auth import Principal
from gatewayz.simulators import Simulator
from tests.e2e.harness import UPSTREAM_KEY, Gateway

from .conftest import start_cached_gateway
from .helpers import chat_calls, post, text_of

PROMPT = "What is the capital of France?"
PARAPHRASE = "What's the capital of France?"
OTHER = "What is the capital of Germany?"


def semantic_body(system: str, prompt: str, **fields: Any) -> dict[str, Any]:
    """A request opted in to the semantic cache; `system` makes its bucket this test's own."""
    return {
        "model": "gpt-4o-mini",
        "max_tokens": 64,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        "cache": {"semantic": True},
        **fields,
    }


class CountingEmbedder:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls: list[str] = []

    async def embed(self, text: str) -> np.ndarray:
        self.calls.append(text)
        vector: np.ndarray = await self.inner.embed(text)
        return vector


# ---------------------------------------------------------------- the local model
def test_cm_8_semantic_local_model_separates_paraphrases_from_other_questions() -> None:
    model = embed_local.shared()
    a, b, c = (model.embed_now(t) for t in (PROMPT, PARAPHRASE, OTHER))
    assert a.shape == (384,) and a.dtype == np.float32
    assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-4
    assert float(a @ b) > 0.95  # the same question
    assert float(a @ c) < 0.95  # another question


async def test_cm_8_semantic_embedding_runs_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[str] = []
    original = embed_local._Model.embed

    def spy(self: Any, text: str) -> np.ndarray:
        seen.append(threading.current_thread().name)
        return original(self, text)

    monkeypatch.setattr(embed_local._Model, "embed", spy)
    vector = await embed_local.shared().embed(PROMPT)
    assert vector.shape == (384,)
    assert seen and seen[0].startswith("gatewayz-embed")
    assert seen[0] != threading.current_thread().name


async def test_cm_8_semantic_a_model_that_cannot_load_is_a_miss_never_an_error(
    tmp_path: Path,
) -> None:
    broken = LocalEmbedder(files=(tmp_path / "missing.onnx", tmp_path / "tokenizer.json"))
    with pytest.raises(EmbedderUnavailable):
        await broken.embed(PROMPT)
    with pytest.raises(EmbedderUnavailable):  # remembered: not reloaded per request
        broken.embed_now(PROMPT)
    cache = ResponseCache(
        MemoryResponseStore(100), index=MemorySemanticIndex(100, 10), embedder=broken
    )
    principal = Principal("key_1", "usr_1", "live", "dev", "dev", None, {})
    req = ChatRequest("m", [Message("user", PROMPT)])
    plan = cache.plan(principal, req, "openai/m", None, {"semantic": True})
    assert plan is not None and plan.bucket is not None
    assert await cache.lookup(plan, {"openai"}) is None
    answer = ChatResponse([Choice(0, Message("assistant", "Paris"), "stop")], Usage(5, 1))
    await cache.save(plan, answer, "openai", "gpt-4o")  # stored for exact hits all the same
    hit = await cache.lookup(plan, {"openai"})
    assert hit is not None and hit.kind == "hit"
    assert cache.stats.errors >= 2


# ---------------------------------------------------------------- end to end
@pytest.fixture
def counted(gateway: Gateway) -> Iterator[CountingEmbedder]:
    cache = gateway.services.response_cache
    spy = CountingEmbedder(cache.embedder)
    cache.embedder = spy
    yield spy
    cache.embedder = spy.inner


def test_cm_8_semantic_similar_prompt_is_answered_from_the_cache(
    gateway: Gateway, upstream: Simulator, counted: CountingEmbedder
) -> None:
    system = f"You answer geography questions. [{secrets.token_hex(4)}]"
    first = post(gateway, semantic_body(system, PROMPT))
    assert first.headers["x-gatewayz-cache"] == "miss"
    similar = post(gateway, semantic_body(system, PARAPHRASE))
    assert similar.status_code == 200, similar.text
    assert similar.headers["x-gatewayz-cache"] == "semantic"
    assert text_of(similar) == text_of(first)
    assert similar.headers["x-gatewayz-cost"] == "0"
    assert len(chat_calls(upstream)) == 1
    other = post(gateway, semantic_body(system, OTHER))
    assert other.headers["x-gatewayz-cache"] == "miss"
    assert len(chat_calls(upstream)) == 2
    exact = post(gateway, semantic_body(system, PROMPT))
    assert exact.headers["x-gatewayz-cache"] == "hit"  # exact match first: no embedding
    assert counted.calls == [PROMPT, PARAPHRASE, OTHER]
    streamed = post(gateway, semantic_body(system, PARAPHRASE, stream=True))
    assert streamed.headers["x-gatewayz-cache"] == "semantic"
    assert "[DONE]" in streamed.text


def test_cm_8_semantic_needs_the_same_model_params_and_conversation(
    gateway: Gateway, upstream: Simulator
) -> None:
    system = f"Be brief. [{secrets.token_hex(4)}]"
    assert post(gateway, semantic_body(system, PROMPT)).headers["x-gatewayz-cache"] == "miss"
    variants = [
        semantic_body(system, PARAPHRASE, model="openai/gpt-4o"),
        semantic_body(system, PARAPHRASE, max_tokens=65),
        semantic_body(system + " Answer in French.", PARAPHRASE),
    ]
    for body in variants:
        assert post(gateway, body).headers["x-gatewayz-cache"] == "miss"
    assert len(chat_calls(upstream)) == 4


def test_cm_8_semantic_requests_that_did_not_opt_in_never_embed(
    gateway: Gateway, upstream: Simulator, counted: CountingEmbedder
) -> None:
    system = f"Be brief. [{secrets.token_hex(4)}]"
    plain = semantic_body(system, PROMPT, temperature=0)
    del plain["cache"]
    for _ in range(2):
        assert post(gateway, plain).status_code == 200
    paraphrase = semantic_body(system, PARAPHRASE, temperature=0)
    del paraphrase["cache"]
    assert post(gateway, paraphrase).headers["x-gatewayz-cache"] == "miss"  # no semantic layer
    assert counted.calls == []


# ---------------------------------------------------------------- a provider's /embeddings
class _Embeddings(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = orjson.loads(self.rfile.read(int(self.headers["content-length"])))
        _Embeddings.seen.append({"path": self.path, **body})
        # Every text on the same axis: any two prompts are "similar".
        data = orjson.dumps({"data": [{"embedding": [3.0, 4.0, 0.0], "index": 0}]})
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


def test_cm_8_semantic_a_providers_embeddings_endpoint_when_configured(
    upstream: Simulator, tmp_path: Path
) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Embeddings.seen.clear()
    base = f"http://127.0.0.1:{server.server_address[1]}/v1"
    gw = start_cached_gateway(
        tmp_path,
        upstream,
        semantic_cache_embedder="ollama/nomic-embed-text",
        provider_env={
            "openai": {"base_url": upstream.base_url, "api_key": UPSTREAM_KEY},
            "ollama": {"base_url": base},
        },
    )
    try:
        first = post(gw, semantic_body("x", PROMPT))
        assert first.headers["x-gatewayz-cache"] == "miss"
        second = post(gw, semantic_body("x", "Something else entirely"))
        assert second.headers["x-gatewayz-cache"] == "semantic"
        assert [s["path"] for s in _Embeddings.seen] == ["/v1/embeddings"] * 2
        assert _Embeddings.seen[0]["model"] == "nomic-embed-text"
        assert _Embeddings.seen[0]["input"] == [
            PROMPT
        ]  # one input, as the embeddings endpoint sends it
    finally:
        gw.stop()
        server.shutdown()
    server.server_close()
    # The provider gone: every semantic lookup misses, every request still succeeds.
    gw = start_cached_gateway(
        tmp_path / "down",
        upstream,
        semantic_cache_embedder="ollama/nomic-embed-text",
        provider_env={
            "openai": {"base_url": upstream.base_url, "api_key": UPSTREAM_KEY},
            "ollama": {"base_url": base},
        },
    )
    try:
        for prompt in (PROMPT, PARAPHRASE):
            r = post(gw, semantic_body("x", prompt))
            assert r.status_code == 200 and r.headers["x-gatewayz-cache"] == "miss"
        assert gw.services.response_cache.stats.errors >= 2
    finally:
        gw.stop()


def test_cm_8_semantic_embedder_setting_is_checked_at_startup() -> None:
    from gatewayz.cache.response_setup import build_embedder
    from gatewayz.providers.registry import load_registry
    from gatewayz.settings import ConfigError, Settings

    settings = Settings(semantic_cache_embedder="no-such-provider/model")
    with pytest.raises(ConfigError):
        build_embedder(settings, load_registry(settings))
    settings = Settings(semantic_cache_embedder="ollama/nomic-embed-text")  # not served here
    assert build_embedder(settings, load_registry(settings)) is None


def test_cm_8_semantic_similarity_must_exceed_the_threshold() -> None:
    unit = np.array([1.0, 0.0], dtype=np.float32)
    matrix = np.array([[0.95, np.sqrt(1 - 0.95**2)]], dtype=np.float32)
    assert best_match(["k"], matrix, unit, 0.95) is None  # cosine 0.95 is not above 0.95
    assert best_match(["k"], matrix, unit, 0.94) == ("k", pytest.approx(0.95))


async def test_cm_8_semantic_embedder_of_any_family_that_serves_embeddings(
    tmp_path: Path,
) -> None:
    """The remote embedder goes through the provider family's `embed` (the same code as
    POST /v1/embeddings): a Cohere provider works as well as an OpenAI-compatible one."""
    from gatewayz.cache.response_setup import build_embedder
    from gatewayz.providers.registry import load_registry
    from gatewayz.settings import Settings
    from gatewayz.simulators import Simulator

    async with Simulator() as sim:
        base = f"http://127.0.0.1:{sim.port}/cohere"
        settings = Settings(
            data_dir=tmp_path,
            semantic_cache_embedder="cohere/embed-english-v3.0",
            provider_env={"cohere": {"base_url": base, "api_key": "k"}},
        )
        registry = load_registry(settings)
        try:
            embedder = build_embedder(settings, registry)
            assert embedder is not None
            vector = await embedder.embed("hello")
            again = await embedder.embed("hello")
        finally:
            await registry.close()
        assert abs(float((vector**2).sum()) - 1.0) < 1e-5 and (vector == again).all()
        assert [r.path for r in sim.requests] == ["/cohere/v2/embed"] * 2
