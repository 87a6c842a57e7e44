"""The media rows of the fidelity matrix: provider family × endpoint (embeddings, images,
transcription), end to end with the official `openai` SDK against each family's simulator,
charged once at the price set for the model."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway, add_user, gateway_settings, set_price, start_gateway
from tests.fidelity.matrix import FAMILIES, MEDIA, MEDIA_LIMITS, MEDIA_MODELS

PRICES = {
    "embeddings": {"mode": "embedding", "prompt": "0.1"},
    "images": {"mode": "image", "image": "0.04"},
    "transcription": {"mode": "audio", "second": "0.0001"},
}


@pytest.fixture(scope="module")
def media_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    sim = Simulator()
    sim.start_in_thread()
    tmp = tmp_path_factory.mktemp("fidelity-media")
    env = {fam.provider: fam.env(sim.port, tmp) for fam in FAMILIES}
    env["vllm"]["models"] = ",".join(MEDIA_MODELS["openai"].values())
    gw = start_gateway(gateway_settings(tmp, sim, provider_env=env), sim)
    for fam in FAMILIES:
        for op, model in MEDIA_MODELS.get(fam.name, {}).items():
            native = model.split("/", 1)[1] if model.startswith(fam.provider + "/") else model
            set_price(gw, native, fam.provider, **PRICES[op])
    yield gw
    gw.stop()
    sim.stop_thread()


def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\0\0" * 16000)  # 2 s
    return buf.getvalue()


@pytest.mark.parametrize("operation", MEDIA)
@pytest.mark.parametrize("family", [f.name for f in FAMILIES])
def test_media_cell(media_gateway: Gateway, family: str, operation: str) -> None:
    model = MEDIA_MODELS.get(family, {}).get(operation)
    if model is None:
        pytest.skip(MEDIA_LIMITS[(family, operation)])
    provider = next(f.provider for f in FAMILIES if f.name == family)
    _, key = add_user(media_gateway, credits_usd="1")
    client = openai.OpenAI(base_url=media_gateway.base_url, api_key=key, max_retries=0)
    if operation == "embeddings":
        raw = client.embeddings.with_raw_response.create(model=model, input=["one", "two"])
        r = raw.parse()
        assert len(r.data) == 2 and r.data[0].embedding != r.data[1].embedding
    elif operation == "images":
        raw = client.images.with_raw_response.generate(model=model, prompt="a red fox", n=1)
        assert raw.parse().data[0].url
    else:
        raw = client.audio.transcriptions.with_raw_response.create(
            model=model, file=("a.wav", _wav(), "audio/wav")
        )
        assert raw.parse().text
    assert raw.headers["x-gatewayz-provider"] == provider
    assert Decimal(raw.headers["x-gatewayz-cost"]) > 0
