"""Embeddings (`:batchEmbedContents`) and Imagen images (`:predict`) on Google AI Studio: the
Gemini adapter against the simulator (answers, batching, faults, what it refuses before
sending), and end to end through a gateway with the official `openai` SDK."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gatewayz.canonical.media import EmbeddingRequest, ImageRequest
from gatewayz.errors import (
    InvalidRequest,
    ModelNotFound,
    RateLimited,
    Unsupported,
    UpstreamUnavailable,
)
from gatewayz.providers import gemini
from gatewayz.providers.gemini import media
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool
from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.formats.openai_media import PNG_1X1, vector
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

KEY = "gemini-media-key"
EMBED, IMAGEN = "gemini-embedding-001", "imagen-4.0-generate-001"
PNG = base64.b64encode(PNG_1X1).decode()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
async def studio(sim: Simulator) -> AsyncIterator[gemini.Adapter]:
    sim.clear()
    root = f"http://127.0.0.1:{sim.port}"
    p = Provider("google-ai-studio", "Google AI Studio", "gemini", root, auth="none", api_key=KEY)
    adapter = gemini.Adapter(p, HttpPool(root))
    yield adapter
    await adapter.pool.close()


def _sent(sim: Simulator, method: str) -> list[Any]:
    return [r for r in sim.requests if r.path.endswith(":" + method)]


# ---------------------------------------------------------------- embeddings
async def test_embeddings_one_vector_per_input_in_order(
    studio: gemini.Adapter, sim: Simulator
) -> None:
    r = await studio.embed(EmbeddingRequest(model="m", texts=["hello", "world"]), EMBED)
    assert r.vectors == [vector("hello", 16), vector("world", 16)]
    assert r.prompt_tokens is None  # Gemini reports no usage: the gateway charges its estimate
    [up] = _sent(sim, "batchEmbedContents")
    assert up.path == f"/v1beta/models/{EMBED}:batchEmbedContents"
    assert up.headers["x-goog-api-key"] == KEY
    assert up.json == {
        "requests": [
            {"model": f"models/{EMBED}", "content": {"parts": [{"text": "hello"}]}},
            {"model": f"models/{EMBED}", "content": {"parts": [{"text": "world"}]}},
        ]
    }


async def test_dimensions_are_output_dimensionality(studio: gemini.Adapter, sim: Simulator) -> None:
    req = EmbeddingRequest(model="m", texts=["abc"], dimensions=8, user="end-user-1")
    r = await studio.embed(req, EMBED)
    assert r.vectors == [vector("abc", 8)]
    [up] = _sent(sim, "batchEmbedContents")
    assert up.json["requests"][0]["outputDimensionality"] == 8
    assert b"end-user-1" not in up.body  # no field for it in Google's API


async def test_more_than_100_inputs_go_in_several_calls(
    studio: gemini.Adapter, sim: Simulator
) -> None:
    texts = [f"text {i}" for i in range(230)]
    r = await studio.embed(EmbeddingRequest(model="m", texts=texts), EMBED)
    assert r.vectors == [vector(t, 16) for t in texts]
    sizes = sorted(len(q.json["requests"]) for q in _sent(sim, "batchEmbedContents"))
    assert sizes == [30, 100, 100]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(status=429), RateLimited),
        (Fault(status=503), UpstreamUnavailable),
        (Fault(status=400), InvalidRequest),
        (Fault(malformed=True), UpstreamUnavailable),
        (Fault(drop_after_chunks=0), UpstreamUnavailable),
        (Fault(status=200, body={"embeddings": [{"values": [1.0, "x"]}]}), UpstreamUnavailable),
        (Fault(status=200, body={"embeddings": []}), UpstreamUnavailable),  # a vector missing
    ],
)
async def test_embedding_failures(
    studio: gemini.Adapter, sim: Simulator, fault: Fault, error: type[Exception]
) -> None:
    sim.fault(fault)
    with pytest.raises(error) as e:
        await studio.embed(EmbeddingRequest(model="m", texts=["hello"]), EMBED)
    assert e.value.provider == "google-ai-studio"  # type: ignore[attr-defined]


async def test_vectors_of_other_dimensions_than_asked_are_refused(
    studio: gemini.Adapter, sim: Simulator
) -> None:
    sim.fault(Fault(status=200, body={"embeddings": [{"values": [0.5] * 16}]}))
    with pytest.raises(UpstreamUnavailable):
        await studio.embed(EmbeddingRequest(model="m", texts=["a"], dimensions=8), EMBED)


@pytest.mark.parametrize(
    ("req", "param"),
    [
        (EmbeddingRequest(model="m", token_arrays=[[1, 2, 3]]), "input"),
        (EmbeddingRequest(model="m", texts=["a"], extra={"task_type": "x"}), "task_type"),
    ],
)
async def test_what_gemini_cannot_embed_is_refused_before_sending(
    studio: gemini.Adapter, sim: Simulator, req: EmbeddingRequest, param: str
) -> None:
    with pytest.raises(Unsupported) as e:
        await studio.embed(req, EMBED)
    assert e.value.param == param and e.value.failover
    assert not sim.requests


async def test_a_model_that_does_not_embed_is_not_found(studio: gemini.Adapter) -> None:
    with pytest.raises(ModelNotFound) as e:
        await studio.embed(EmbeddingRequest(model="m", texts=["a"]), "gemini-2.5-flash")
    assert e.value.failover


# ---------------------------------------------------------------- images
async def test_imagen_b64_json_and_data_urls(studio: gemini.Adapter, sim: Simulator) -> None:
    req = ImageRequest(model="m", prompt="a red fox", n=2, size="1024x1024")
    req.response_format = "b64_json"
    r = await studio.generate_images(req, IMAGEN)
    assert [i.b64_json for i in r.images] == [PNG, PNG] and r.images[0].url is None
    [up] = _sent(sim, "predict")
    assert up.path == f"/v1beta/models/{IMAGEN}:predict"
    assert up.json == {
        "instances": [{"prompt": "a red fox"}],
        "parameters": {"sampleCount": 2, "aspectRatio": "1:1"},
    }
    r = await studio.generate_images(ImageRequest(model="m", prompt="a fox"), IMAGEN)
    assert [i.url for i in r.images] == [f"data:image/png;base64,{PNG}"]
    assert "aspectRatio" not in _sent(sim, "predict")[-1].json["parameters"]


@pytest.mark.parametrize(
    ("size", "ratio"),
    [("1080x1920", "9:16"), ("1920x1080", "16:9"), ("768x1024", "3:4"), ("1024x768", "4:3")],
)
def test_exact_sizes_map_to_aspect_ratios(size: str, ratio: str) -> None:
    assert media.aspect_ratio(size) == ratio


@pytest.mark.parametrize(
    ("changes", "model", "param"),
    [
        ({"size": "1792x1024"}, IMAGEN, "size"),  # 7:4 is no Imagen ratio
        ({"quality": "hd"}, IMAGEN, "quality"),
        ({"style": "vivid"}, IMAGEN, "style"),
        ({"n": 5}, IMAGEN, "n"),
        ({"extra": {"background": "transparent"}}, IMAGEN, "background"),
        ({}, "gemini-2.5-flash-image", "model"),  # generateContent image models: not here
    ],
)
async def test_what_imagen_cannot_honour_is_refused_before_sending(
    studio: gemini.Adapter, sim: Simulator, changes: dict[str, Any], model: str, param: str
) -> None:
    req = ImageRequest(model="m", prompt="a fox")
    for name, value in changes.items():
        setattr(req, name, value)
    with pytest.raises(Unsupported) as e:
        await studio.generate_images(req, model)
    assert e.value.param == param
    assert not sim.requests


async def test_imagen_failures_and_filtered_images(studio: gemini.Adapter, sim: Simulator) -> None:
    sim.fault(Fault(status=503))
    with pytest.raises(UpstreamUnavailable):
        await studio.generate_images(ImageRequest(model="m", prompt="a fox"), IMAGEN)
    sim.fault(Fault(malformed=True))
    with pytest.raises(UpstreamUnavailable):
        await studio.generate_images(ImageRequest(model="m", prompt="a fox"), IMAGEN)
    filtered = {"raiFilteredReason": "filtered"}
    kept = {"bytesBase64Encoded": PNG, "mimeType": "image/jpeg"}
    sim.fault(Fault(status=200, body={"predictions": [filtered, kept, kept, kept]}))
    r = await studio.generate_images(ImageRequest(model="m", prompt="a fox", n=2), IMAGEN)
    assert [i.url for i in r.images] == [f"data:image/jpeg;base64,{PNG}"] * 2  # at most n
    sim.fault(Fault(status=200, body={}))  # every image filtered out
    r = await studio.generate_images(ImageRequest(model="m", prompt="a fox"), IMAGEN)
    assert r.images == []


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("studio-media")
    env = {"google-ai-studio": {"base_url": f"http://127.0.0.1:{sim.port}", "api_key": KEY}}
    g = start_gateway(gateway_settings(data_dir, sim, provider_env=env), sim)
    set_price(g, f"google/{EMBED}", "google-ai-studio", mode="embedding", prompt="0.15")
    set_price(g, f"google/{IMAGEN}", "google-ai-studio", mode="image", image="0.04")
    yield g
    g.stop()


def test_e2e_embeddings_and_images_with_the_openai_sdk(gw: Gateway, sim: Simulator) -> None:
    sim.clear()
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    r = client.embeddings.create(model=f"google/{EMBED}", input=["hello", "world"], dimensions=4)
    expected = [vector("hello", 4), vector("world", 4)]  # as float32: the SDK asks for base64
    assert [d.embedding for d in r.data] == [pytest.approx(v, abs=1e-6) for v in expected]
    assert r.model == f"google/{EMBED}" and r.usage.prompt_tokens > 0  # the gateway's estimate
    assert _sent(sim, "batchEmbedContents")[-1].json["requests"][0]["outputDimensionality"] == 4
    img = client.images.generate(
        model=f"google/{IMAGEN}", prompt="a fox", n=2, size="1024x1024", response_format="b64_json"
    )
    assert [d.b64_json for d in img.data or []] == [PNG, PNG]
    assert _sent(sim, "predict")[-1].json["parameters"] == {"sampleCount": 2, "aspectRatio": "1:1"}
    with pytest.raises(openai.BadRequestError) as e:
        client.images.generate(model=f"google/{IMAGEN}", prompt="a fox", size="1792x1024")
    assert e.value.param == "size" and e.value.code == "unsupported_by_provider"
