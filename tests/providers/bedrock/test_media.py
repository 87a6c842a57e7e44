"""Bedrock embeddings (Titan Text Embeddings, Cohere embed) and image generation (Titan Image
Generator, Nova Canvas) through InvokeModel: the adapter against the simulator's Bedrock
format, and the `openai` SDK through a gateway whose aws-bedrock provider points at it."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx2 as httpx
import openai
import pytest

from gatewayz.canonical.media import (
    EmbeddingRequest,
    EmbeddingResponse,
    ImageRequest,
    ImageResponse,
)
from gatewayz.errors import RateLimited, Unsupported, UpstreamError, UpstreamUnavailable
from gatewayz.providers.bedrock import Adapter, sigv4
from gatewayz.providers.provider import Provider
from gatewayz.providers.transport import HttpPool
from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.formats.openai_media import DEFAULT_DIMENSIONS, PNG_1X1, vector
from tests.e2e.harness import Gateway, gateway_settings, set_price, start_gateway

ACCESS_KEY = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TITAN = "amazon.titan-embed-text-v2:0"
COHERE_V3 = "cohere.embed-english-v3"
COHERE_V4 = "cohere.embed-v4:0"
CANVAS = "amazon.nova-canvas-v1:0"
PNG_B64 = base64.b64encode(PNG_1X1).decode()


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    s = Simulator(api_key=ACCESS_KEY)
    s.start_in_thread()
    yield s
    s.stop_thread()


@pytest.fixture(autouse=True)
def _clean(sim: Simulator) -> None:
    sim.clear()


def _call(sim: Simulator, method: str, req: Any, model: str) -> Any:
    async def run() -> Any:
        base = f"http://127.0.0.1:{sim.port}"
        provider = Provider(
            "aws-bedrock",
            "AWS Bedrock",
            "bedrock",
            base,
            auth="none",
            api_key=ACCESS_KEY,
            env={"AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1"},
        )
        pool = HttpPool(base)
        try:
            return await getattr(Adapter(provider, pool), method)(req, model)
        finally:
            await pool.close()

    return asyncio.run(run())


def _embed(sim: Simulator, req: EmbeddingRequest, model: str = TITAN) -> EmbeddingResponse:
    out: EmbeddingResponse = _call(sim, "embed", req, model)
    return out


def _images(sim: Simulator, req: ImageRequest, model: str = CANVAS) -> ImageResponse:
    out: ImageResponse = _call(sim, "generate_images", req, model)
    return out


def _sent(sim: Simulator, model: str) -> list[dict[str, Any]]:
    calls = [r for r in sim.requests if r.path == f"/model/{model}/invoke"]
    for r in calls:
        assert r.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/")
        assert "/us-east-1/bedrock/aws4_request" in r.headers["authorization"]
    return [r.json for r in calls]


def _tokens(*texts: str) -> int:
    return sum(max(1, round(len(t) / 4)) for t in texts)


# ---------------------------------------------------------------- Titan embeddings
def test_titan_one_call_per_input_tokens_summed(sim: Simulator) -> None:
    texts = [f"document number {i}" for i in range(7)]
    out = _embed(sim, EmbeddingRequest(model="m", texts=texts, user="u"))
    assert out.vectors == [vector(t, DEFAULT_DIMENSIONS) for t in texts]
    assert out.prompt_tokens == _tokens(*texts)
    sent = _sent(sim, TITAN)
    assert sorted(b["inputText"] for b in sent) == sorted(texts)
    assert all(b == {"inputText": b["inputText"], "normalize": True} for b in sent)


def test_titan_dimensions_signed_like_converse(sim: Simulator) -> None:
    out = _embed(sim, EmbeddingRequest(model="m", texts=["hi"], dimensions=256))
    assert out.vectors == [vector("hi", 256)]
    assert _sent(sim, TITAN) == [{"inputText": "hi", "normalize": True, "dimensions": 256}]
    seen = sim.requests[-1]
    h = seen.headers
    assert h["x-amz-content-sha256"] == hashlib.sha256(seen.body).hexdigest()
    signed = "accept;content-type;host;x-amz-content-sha256;x-amz-date"
    expected = sigv4.authorization(
        sigv4.Credentials(ACCESS_KEY, SECRET),
        "us-east-1",
        "bedrock",
        h["x-amz-date"],
        "POST",
        f"/model/{quote(TITAN, safe='')}/invoke",
        [],
        [(name, h[name]) for name in signed.split(";")],
        h["x-amz-content-sha256"],
    )
    assert h["authorization"] == expected


@pytest.mark.parametrize(
    ("req", "model", "param"),
    [
        (EmbeddingRequest(model="m", texts=["x"], dimensions=300), TITAN, "dimensions"),
        (EmbeddingRequest(model="m", texts=["x"], extra={"input_type": "x"}), TITAN, "input_type"),
        (EmbeddingRequest(model="m", token_arrays=[[1, 2]]), TITAN, "input"),
        (EmbeddingRequest(model="m", texts=["x"]), "meta.llama3-8b-instruct-v1:0", "model"),
        (EmbeddingRequest(model="m", texts=["x"], dimensions=256), COHERE_V3, "dimensions"),
        (
            EmbeddingRequest(model="m", texts=["x"], extra={"truncate": "END"}),
            COHERE_V3,
            "truncate",
        ),
    ],
)
def test_embed_unsupported_is_refused_before_sending(
    sim: Simulator, req: EmbeddingRequest, model: str, param: str
) -> None:
    with pytest.raises(Unsupported) as e:
        _embed(sim, req, model)
    assert e.value.param == param and e.value.failover
    assert sim.requests == []


def test_titan_error_status(sim: Simulator) -> None:
    sim.fault(Fault(status=429))
    with pytest.raises(RateLimited) as e:
        _embed(sim, EmbeddingRequest(model="m", texts=["x"]))
    assert "ThrottlingException" in e.value.message


@pytest.mark.parametrize(
    "fault",
    [
        Fault(malformed=True),
        Fault(drop_after_chunks=0),
        Fault(drop_after_chunks=1),
        Fault(status=200, body={"embedding": [1, "x"], "inputTextTokenCount": 1}),
        Fault(status=200, body={"embedding": True, "inputTextTokenCount": 1}),
        Fault(status=200, body={"embeddings": [[0.1]]}),
    ],
)
def test_titan_malformed_answer(sim: Simulator, fault: Fault) -> None:
    sim.fault(fault)
    with pytest.raises(UpstreamUnavailable):
        _embed(sim, EmbeddingRequest(model="m", texts=["x"]))


def test_titan_delay_and_unreported_usage(sim: Simulator) -> None:
    sim.fault(Fault(delay_s=0.3, omit_usage=True))
    start = time.monotonic()
    out = _embed(sim, EmbeddingRequest(model="m", texts=["x", "y"]))
    assert time.monotonic() - start >= 0.3
    assert out.prompt_tokens is None  # one of the two calls reported none
    sim.fault(Fault(usage={"inputTextTokenCount": "many"}))
    assert _embed(sim, EmbeddingRequest(model="m", texts=["x"])).prompt_tokens is None


# ---------------------------------------------------------------- Cohere embed on Bedrock
def test_cohere_embed_batches_with_header_tokens(sim: Simulator) -> None:
    texts = [f"t{i}" for i in range(97)]
    req = EmbeddingRequest(model="m", texts=texts, extra={"input_type": "search_query"})
    out = _embed(sim, req, COHERE_V3)
    assert out.vectors == [vector(t, DEFAULT_DIMENSIONS) for t in texts]
    assert out.prompt_tokens == _tokens(*texts)
    sent = sorted(_sent(sim, COHERE_V3), key=lambda b: len(b["texts"]))
    assert sent == [
        {"texts": texts[96:], "input_type": "search_query"},
        {"texts": texts[:96], "input_type": "search_query"},
    ]


def test_cohere_v4_dimensions_and_region_prefix(sim: Simulator) -> None:
    model = "us." + COHERE_V4
    out = _embed(sim, EmbeddingRequest(model="m", texts=["a"], dimensions=1024), model)
    assert out.vectors == [vector("a", 1024)]
    assert _sent(sim, model) == [
        {"texts": ["a"], "input_type": "search_document", "output_dimension": 1024}
    ]


def test_cohere_embed_vector_count_is_checked(sim: Simulator) -> None:
    sim.fault(Fault(status=200, body={"embeddings": [[0.5]]}))
    with pytest.raises(UpstreamUnavailable):
        _embed(sim, EmbeddingRequest(model="m", texts=["a", "b"]), COHERE_V3)


# ---------------------------------------------------------------- images
def test_images_as_data_urls(sim: Simulator) -> None:
    req = ImageRequest(model="m", prompt="a lighthouse", n=2, size="512x768", quality="hd")
    out = _images(sim, req)
    assert [i.url for i in out.images] == ["data:image/png;base64," + PNG_B64] * 2
    assert _sent(sim, CANVAS) == [
        {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": "a lighthouse"},
            "imageGenerationConfig": {
                "numberOfImages": 2,
                "quality": "premium",
                "width": 512,
                "height": 768,
            },
        }
    ]


def test_images_as_base64_on_titan(sim: Simulator) -> None:
    model = "amazon.titan-image-generator-v2:0"
    req = ImageRequest(model="m", prompt="p", quality="standard", response_format="b64_json")
    out = _images(sim, req, model)
    assert [(i.b64_json, i.url) for i in out.images] == [(PNG_B64, None)]
    assert _sent(sim, model)[0]["imageGenerationConfig"] == {
        "numberOfImages": 1,
        "quality": "standard",
    }


@pytest.mark.parametrize(
    ("req", "model", "param"),
    [
        (ImageRequest(model="m", prompt="p", quality="high"), CANVAS, "quality"),
        (ImageRequest(model="m", prompt="p", style="vivid"), CANVAS, "style"),
        (ImageRequest(model="m", prompt="p", extra={"seed": 1}), CANVAS, "seed"),
        (ImageRequest(model="m", prompt="p", n=6), CANVAS, "n"),
        (ImageRequest(model="m", prompt="p"), TITAN, "model"),
    ],
)
def test_images_unsupported_is_refused_before_sending(
    sim: Simulator, req: ImageRequest, model: str, param: str
) -> None:
    with pytest.raises(Unsupported) as e:
        _images(sim, req, model)
    assert e.value.param == param
    assert sim.requests == []


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(status=400), "ValidationException"),
        (Fault(malformed=True), UpstreamUnavailable),
        (Fault(status=200, body={"images": ["not base64!"]}), UpstreamUnavailable),
        (Fault(status=200, body={"images": [], "error": "blocked by filter"}), UpstreamError),
    ],
)
def test_images_failures(sim: Simulator, fault: Fault, error: Any) -> None:
    sim.fault(fault)
    with pytest.raises(Exception) as e:
        _images(sim, ImageRequest(model="m", prompt="p"))
    if isinstance(error, str):
        assert e.value.status == 400 and error in e.value.message
    else:
        assert isinstance(e.value, error)


def test_simulator_validates_invoke_bodies(sim: Simulator) -> None:
    def post(model: str, body: dict[str, Any]) -> httpx.Response:
        auth = (
            f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20250101/us-east-1/bedrock/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64
        )
        headers = {"authorization": auth, "x-amz-date": "20250101T000000Z"}
        url = f"http://127.0.0.1:{sim.port}/model/{quote(model, safe='')}/invoke"
        return httpx.post(url, json=body, headers=headers, timeout=5)

    r = post("meta.llama3-8b-instruct-v1:0", {"prompt": "x"})
    assert r.status_code == 400
    assert r.headers["x-amzn-errortype"].startswith("ValidationException:")
    assert post(TITAN, {"inputText": "x", "dimensions": 100}).status_code == 400
    assert post(COHERE_V3, {"texts": ["x"]}).status_code == 400  # input_type is required
    r = post(COHERE_V3, {"texts": ["x"], "input_type": "clustering", "embedding_types": ["float"]})
    assert r.json()["embeddings"] == {"float": [vector("x", DEFAULT_DIMENSIONS)]}
    assert r.headers["x-amzn-bedrock-input-token-count"] == "1"
    assert post(CANVAS, {"taskType": "TEXT_IMAGE", "textToImageParams": {}}).status_code == 400


# ---------------------------------------------------------------- through the gateway
@pytest.fixture(scope="module")
def gw(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    env = {
        "aws-bedrock": {
            "api_key": ACCESS_KEY,
            "base_url": f"http://127.0.0.1:{sim.port}",
            "var:AWS_SECRET_ACCESS_KEY": SECRET,
            "var:AWS_REGION": "us-east-1",
        }
    }
    g = start_gateway(
        gateway_settings(tmp_path_factory.mktemp("bedrock-media"), sim, provider_env=env), sim
    )
    set_price(g, f"aws-bedrock/{TITAN}", "aws-bedrock", mode="embedding", prompt="0.02")
    set_price(g, f"aws-bedrock/{CANVAS}", "aws-bedrock", mode="image", image="0.04")
    yield g
    g.stop()


def test_openai_sdk_through_the_gateway(gw: Gateway, sim: Simulator) -> None:
    client = openai.OpenAI(base_url=gw.base_url, api_key=gw.api_key, max_retries=0)
    r = client.embeddings.create(model=f"aws-bedrock/{TITAN}", input=["one", "two"])
    assert [d.embedding for d in r.data] == [
        pytest.approx(vector(t, DEFAULT_DIMENSIONS)) for t in ("one", "two")
    ]
    assert r.usage.prompt_tokens == _tokens("one", "two")
    assert len(_sent(sim, TITAN)) == 2

    img = client.images.generate(model=f"aws-bedrock/{CANVAS}", prompt="a fox", n=2)
    assert img.data is not None
    assert [d.url for d in img.data] == ["data:image/png;base64," + PNG_B64] * 2
    assert _sent(sim, CANVAS)[0]["imageGenerationConfig"] == {"numberOfImages": 2}
