"""Cohere embeddings (`POST /v2/embed`): the adapter against the simulator's Cohere format, and
`client.embeddings.create` through a gateway whose Cohere provider points at it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest

from gatewayz.canonical.media import EmbeddingRequest, EmbeddingResponse
from gatewayz.errors import RateLimited, Unsupported, UpstreamUnavailable
from gatewayz.providers.cohere import Adapter
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool
from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.formats.openai_media import DEFAULT_DIMENSIONS, vector
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

KEY = "co-test-key"
NATIVE = "embed-v4.0"
PATH = "/cohere/v2/embed"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> None:
    sim.clear()


def _embed(sim: Simulator, req: EmbeddingRequest, model: str = NATIVE) -> EmbeddingResponse:
    async def run() -> EmbeddingResponse:
        base = f"http://127.0.0.1:{sim.port}/cohere"
        pool = HttpPool(base)
        try:
            provider = Provider("cohere", "Cohere", "cohere", base, api_key=KEY)
            return await Adapter(provider, pool).embed(req, model)
        finally:
            await pool.close()

    return asyncio.run(run())


def _sent(sim: Simulator) -> list[dict[str, Any]]:
    calls = [r for r in sim.requests if r.path == PATH]
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in calls)
    return [r.json for r in calls]


def _tokens(*texts: str) -> int:
    return sum(max(1, round(len(t) / 4)) for t in texts)


def test_embed_texts_in_order_with_billed_tokens(sim: Simulator) -> None:
    texts = ["the quick brown fox", "jumps over the lazy dog"]
    out = _embed(sim, EmbeddingRequest(model="cohere/embed-v4.0", texts=texts, user="u-1"))
    assert out.vectors == [vector(t, DEFAULT_DIMENSIONS) for t in texts]
    assert out.prompt_tokens == _tokens(*texts)
    assert _sent(sim) == [
        {
            "model": NATIVE,
            "texts": texts,
            "input_type": "search_document",
            "embedding_types": ["float"],
        }
    ]


def test_dimensions_become_output_dimension(sim: Simulator) -> None:
    out = _embed(sim, EmbeddingRequest(model="m", texts=["hi"], dimensions=256))
    assert len(out.vectors[0]) == 256 and out.vectors[0] == vector("hi", 256)
    assert _sent(sim)[0]["output_dimension"] == 256


def test_callers_input_type_is_carried(sim: Simulator) -> None:
    _embed(sim, EmbeddingRequest(model="m", texts=["q"], extra={"input_type": "search_query"}))
    assert _sent(sim)[0]["input_type"] == "search_query"


def test_more_than_96_texts_go_in_batches_in_order(sim: Simulator) -> None:
    texts = [f"text number {i}" for i in range(100)]
    out = _embed(sim, EmbeddingRequest(model="m", texts=texts))
    assert out.vectors == [vector(t, DEFAULT_DIMENSIONS) for t in texts]
    assert out.prompt_tokens == _tokens(*texts)
    assert sorted(len(b["texts"]) for b in _sent(sim)) == [4, 96]


@pytest.mark.parametrize(
    ("req", "param"),
    [
        (EmbeddingRequest(model="m", texts=["x"], extra={"truncate": "END"}), "truncate"),
        (EmbeddingRequest(model="m", texts=["x"], extra={"input_type": "passage"}), "input_type"),
        (EmbeddingRequest(model="m", token_arrays=[[1, 2, 3]]), "input"),
    ],
)
def test_unsupported_is_refused_before_sending(
    sim: Simulator, req: EmbeddingRequest, param: str
) -> None:
    with pytest.raises(Unsupported) as e:
        _embed(sim, req)
    assert e.value.param == param and e.value.failover
    assert _sent(sim) == []


def test_error_status(sim: Simulator) -> None:
    sim.fault(Fault(status=429, retry_after="2"))
    with pytest.raises(RateLimited) as e:
        _embed(sim, EmbeddingRequest(model="m", texts=["x"]))
    assert e.value.headers == {"Retry-After": "2"}


@pytest.mark.parametrize(
    "fault",
    [
        Fault(malformed=True),
        Fault(drop_after_chunks=0),
        Fault(status=200, body={"embeddings": {"float": [[0.1]]}}),  # one vector for two
        Fault(status=200, body={"embeddings": {"float": [[0.1], ["x"]]}}),  # not numbers
        Fault(status=200, body={"embeddings": {"float": [[], [0.2]]}}),  # empty vector
        Fault(status=200, body={"embeddings": {"int8": [[1], [2]]}}),  # no floats
    ],
)
def test_malformed_answer_is_the_providers_failure(sim: Simulator, fault: Fault) -> None:
    sim.fault(fault)
    with pytest.raises(UpstreamUnavailable):
        _embed(sim, EmbeddingRequest(model="m", texts=["a", "b"]))


def test_delay(sim: Simulator) -> None:
    sim.fault(Fault(delay_s=0.3))
    start = time.monotonic()
    assert len(_embed(sim, EmbeddingRequest(model="m", texts=["a"])).vectors) == 1
    assert time.monotonic() - start >= 0.3


def test_unreported_or_nonsense_usage_is_none(sim: Simulator) -> None:
    sim.fault(Fault(omit_usage=True))
    assert _embed(sim, EmbeddingRequest(model="m", texts=["a"])).prompt_tokens is None
    sim.fault(Fault(usage={"input_tokens": -5}))
    assert _embed(sim, EmbeddingRequest(model="m", texts=["a"])).prompt_tokens is None


def test_simulator_checks_key_and_body(sim: Simulator) -> None:
    url = f"http://127.0.0.1:{sim.port}/v2/embed"
    body = {"model": NATIVE, "texts": ["a"], "input_type": "search_query"}
    r = httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["message"] == "invalid api token"
    auth = {"Authorization": f"Bearer {KEY}"}
    r = httpx.post(url, json={**body, "input_type": None}, headers=auth)
    assert r.status_code == 400 and "input_type" in r.json()["message"]
    r = httpx.post(url, json={**body, "output_dimension": 100}, headers=auth)
    assert r.status_code == 400 and "output_dimension" in r.json()["message"]
    r = httpx.post(url, json=body, headers=auth)
    assert r.status_code == 200 and r.json()["response_type"] == "embeddings_by_type"


# ---------------------------------------------------------------- through the gateway
@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {"cohere": {"base_url": f"http://127.0.0.1:{sim.port}/cohere", "api_key": KEY}}
    g = start_gateway(gateway_settings(tmp_path_factory.mktemp("gw"), sim, provider_env=env), sim)
    set_price(g, "cohere/embed-v4.0", "cohere", mode="embedding", prompt="0.1")
    yield g
    g.stop()


def test_openai_sdk_embeddings_through_the_gateway(gw: Gateway, sim: Simulator) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    texts = ["first document", "second document"]
    r = client.embeddings.create(
        model="cohere/embed-v4.0",
        input=texts,
        dimensions=512,
        extra_body={"input_type": "clustering"},
    )
    assert len(r.data) == 2 and [d.index for d in r.data] == [0, 1]
    for d, text in zip(r.data, texts, strict=True):
        assert d.embedding == pytest.approx(vector(text, 512))
    assert r.usage.prompt_tokens == _tokens(*texts)
    assert _sent(sim) == [
        {
            "model": NATIVE,
            "texts": texts,
            "input_type": "clustering",
            "embedding_types": ["float"],
            "output_dimension": 512,
        }
    ]
