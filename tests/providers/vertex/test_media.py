"""Embeddings and Imagen images on Vertex AI (`:predict` at the publisher model path, with the
service account's token): the Vertex adapter against the simulator (answers, reported tokens,
batching, faults, what it refuses before sending), and end to end through a gateway with the
official `openai` SDK."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from gatewayz.canonical.media import EmbeddingRequest, ImageRequest
from gatewayz.errors import InvalidRequest, RateLimited, Unsupported, UpstreamUnavailable
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool
from gatewayz.providers.vertex import adapter as vertex
from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.formats.openai_media import PNG_1X1, vector
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway
from tests.providers.vertex.helpers import PROJECT, write_service_account

KEY = "vertex-media-key"
EMBED, GEMINI_EMBED, IMAGEN = (
    "text-embedding-005",
    "gemini-embedding-001",
    "imagen-4.0-generate-001",
)
PNG = base64.b64encode(PNG_1X1).decode()
MODELS = f"/v1/projects/{PROJECT}/locations/us-central1/publishers/google/models/"


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture
async def vx(sim: Simulator, tmp_path: Path) -> AsyncIterator[vertex.Adapter]:
    sim.clear()
    root = f"http://127.0.0.1:{sim.port}"
    sa = str(write_service_account(tmp_path / "sa.json", sim.port))
    env = {"GOOGLE_CLOUD_LOCATION": "us-central1"}
    p = Provider(
        "google-vertex", "Google Vertex AI", "vertex", root, auth="none", api_key=sa, env=env
    )
    adapter = vertex.Adapter(p, HttpPool(root))
    yield adapter
    await adapter.pool.close()


def _predicts(sim: Simulator) -> list[Any]:
    return [r for r in sim.requests if r.path.endswith(":predict")]


def _tokens(text: str) -> int:
    return max(1, round(len(text) / 4))  # the simulator's count


# ---------------------------------------------------------------- embeddings
async def test_embeddings_vectors_and_reported_tokens(vx: vertex.Adapter, sim: Simulator) -> None:
    texts = ["hello world", "a second input"]
    r = await vx.embed(EmbeddingRequest(model="m", texts=texts), EMBED)
    assert r.vectors == [vector(t, 16) for t in texts]
    assert r.prompt_tokens == sum(_tokens(t) for t in texts)
    [up] = _predicts(sim)
    assert up.path == MODELS + f"{EMBED}:predict"
    assert up.headers["authorization"].startswith("Bearer ya29.sim-")
    assert up.json == {"instances": [{"content": t} for t in texts]}


async def test_dimensions_are_output_dimensionality(vx: vertex.Adapter, sim: Simulator) -> None:
    r = await vx.embed(EmbeddingRequest(model="m", texts=["abc"], dimensions=8), EMBED)
    assert r.vectors == [vector("abc", 8)]
    assert _predicts(sim)[-1].json["parameters"] == {"outputDimensionality": 8}


async def test_inputs_are_batched_within_vertex_limits(vx: vertex.Adapter, sim: Simulator) -> None:
    texts = [f"text {i}" for i in range(300)]
    r = await vx.embed(EmbeddingRequest(model="m", texts=texts), EMBED)
    assert r.vectors == [vector(t, 16) for t in texts]
    assert r.prompt_tokens == sum(_tokens(t) for t in texts)
    assert sorted(len(q.json["instances"]) for q in _predicts(sim)) == [50, 250]
    sim.clear()
    three = ["one", "two", "three"]  # gemini-embedding-* take one instance a call
    r = await vx.embed(EmbeddingRequest(model="m", texts=three), GEMINI_EMBED)
    assert r.vectors == [vector(t, 16) for t in three]
    assert sorted(q.json["instances"][0]["content"] for q in _predicts(sim)) == sorted(three)


@pytest.mark.parametrize(
    "fault", [Fault(omit_usage=True), Fault(usage={"token_count": -3}), Fault(usage={"x": 1})]
)
async def test_missing_or_bad_token_counts_leave_the_estimate(
    vx: vertex.Adapter, sim: Simulator, fault: Fault
) -> None:
    sim.fault(fault)
    r = await vx.embed(EmbeddingRequest(model="m", texts=["hello"]), EMBED)
    assert r.vectors == [vector("hello", 16)]
    expected = None if fault.omit_usage or fault.usage == {"token_count": -3} else 1
    assert r.prompt_tokens == expected


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(status=429), RateLimited),
        (Fault(status=503), UpstreamUnavailable),
        (Fault(status=400), InvalidRequest),
        (Fault(malformed=True), UpstreamUnavailable),
        (Fault(drop_after_chunks=0), UpstreamUnavailable),
        (
            Fault(status=200, body={"predictions": [{"embeddings": {"values": "x"}}]}),
            UpstreamUnavailable,
        ),
        (Fault(status=200, body={"predictions": []}), UpstreamUnavailable),
    ],
)
async def test_embedding_failures(
    vx: vertex.Adapter, sim: Simulator, fault: Fault, error: type[Exception]
) -> None:
    sim.fault(fault)
    with pytest.raises(error) as e:
        await vx.embed(EmbeddingRequest(model="m", texts=["hello"]), EMBED)
    assert e.value.provider == "google-vertex"  # type: ignore[attr-defined]


async def test_a_failing_batch_fails_the_whole_request(vx: vertex.Adapter, sim: Simulator) -> None:
    sim.fault(Fault(status=503))
    with pytest.raises(UpstreamUnavailable):
        await vx.embed(EmbeddingRequest(model="m", texts=["a", "b", "c"]), GEMINI_EMBED)


@pytest.mark.parametrize(
    ("req", "param"),
    [
        (EmbeddingRequest(model="m", token_arrays=[[1, 2, 3]]), "input"),
        (EmbeddingRequest(model="m", texts=["a"], extra={"auto_truncate": False}), "auto_truncate"),
    ],
)
async def test_what_vertex_cannot_embed_is_refused_before_sending(
    vx: vertex.Adapter, sim: Simulator, req: EmbeddingRequest, param: str
) -> None:
    with pytest.raises(Unsupported) as e:
        await vx.embed(req, EMBED)
    assert e.value.param == param and e.value.failover
    assert not _predicts(sim)


# ---------------------------------------------------------------- images
async def test_imagen_on_vertex(vx: vertex.Adapter, sim: Simulator) -> None:
    req = ImageRequest(model="m", prompt="a red fox", n=3, size="1920x1080")
    r = await vx.generate_images(req, IMAGEN)
    assert [i.url for i in r.images] == [f"data:image/png;base64,{PNG}"] * 3
    [up] = _predicts(sim)
    assert up.path == MODELS + f"{IMAGEN}:predict"
    assert up.json == {
        "instances": [{"prompt": "a red fox"}],
        "parameters": {"sampleCount": 3, "aspectRatio": "16:9"},
    }
    sim.fault(Fault(status=429))
    with pytest.raises(RateLimited):
        await vx.generate_images(ImageRequest(model="m", prompt="a fox"), IMAGEN)
    sim.fault(Fault(status=200, body={"predictions": [{"bytesBase64Encoded": 12}]}))
    with pytest.raises(UpstreamUnavailable):
        await vx.generate_images(ImageRequest(model="m", prompt="a fox"), IMAGEN)
    with pytest.raises(Unsupported) as e:
        await vx.generate_images(ImageRequest(model="m", prompt="a fox", quality="hd"), IMAGEN)
    assert e.value.param == "quality"


# ---------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    data_dir: Path = tmp_path_factory.mktemp("vertex-media")
    sa = write_service_account(data_dir / "sa.json", sim.port)
    env = {
        "google-vertex": {
            "base_url": f"http://127.0.0.1:{sim.port}",
            "api_key": str(sa),
            "var:GOOGLE_CLOUD_LOCATION": "us-central1",
        }
    }
    g = start_gateway(gateway_settings(data_dir, sim, provider_env=env), sim)
    set_price(g, f"google/{EMBED}", "google-vertex", mode="embedding", prompt="0.1")
    set_price(g, f"google/{IMAGEN}", "google-vertex", mode="image", image="0.04")
    yield g
    g.stop()


def test_e2e_embeddings_and_images_with_the_openai_sdk(gw: Gateway, sim: Simulator) -> None:
    sim.clear()
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    texts = ["hello world", "second input here"]
    r = client.embeddings.create(model=f"google/{EMBED}", input=texts, encoding_format="float")
    assert [d.embedding for d in r.data] == [vector(t, 16) for t in texts]
    assert r.usage.prompt_tokens == sum(_tokens(t) for t in texts)  # as Vertex reported it
    assert _predicts(sim)[-1].path == MODELS + f"{EMBED}:predict"
    img = client.images.generate(model=f"google/{IMAGEN}", prompt="a fox", size="1024x768")
    assert [d.url for d in img.data or []] == [f"data:image/png;base64,{PNG}"]
    assert _predicts(sim)[-1].json["parameters"] == {"sampleCount": 1, "aspectRatio": "4:3"}
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model=f"google/{EMBED}", input=[[1, 2, 3]])
    assert e.value.param == "input" and e.value.code == "unsupported_by_provider"
