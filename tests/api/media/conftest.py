"""A gateway where two self-hosted OpenAI-compatible providers (`vllm`, `lm-studio`: two
simulators) serve one embedding, one image and one transcription model at prices the tests
set, for the media endpoints end to end with the official `openai` SDK."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from decimal import Decimal

import openai
import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import (
    PAIR,
    Gateway,
    gateway_settings,
    pair_env,
    set_price,
    simulators,
    start_gateway,
)

EMBED, IMAGE, WHISPER = "test-embed", "test-image", "test-whisper"
EMBED_PRICE = Decimal("0.02")  # USD per 1M input tokens
IMAGE_SIZES = {"standard/1024x1024": "0.04", "hd/1024x1024": "0.08", "standard/1792x1024": "0.08"}
SECOND_PRICE = Decimal("0.0001")  # USD per second of audio


@pytest.fixture(scope="package")
def sims() -> Iterator[tuple[Simulator, ...]]:
    with simulators(Simulator) as pair:
        yield pair


@pytest.fixture(scope="package")
def gateway(
    sims: tuple[Simulator, ...], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    settings = gateway_settings(
        tmp_path_factory.mktemp("media"),
        sims[0],
        price_refresh_s=3600,  # prices are set on the meter directly
        billing_leases=False,  # each request's hold is a row the tests can read
    )
    env = {**settings.provider_env, **pair_env(sims, f"{EMBED},{IMAGE},{WHISPER},test-model")}
    env["groq"] = {"base_url": sims[0].base_url, "api_key": "gsk-test"}  # packaged prices
    gw = start_gateway(settings.model_copy(update={"provider_env": env}), sims[0])
    for slug in PAIR:
        set_price(gw, EMBED, slug, mode="embedding", prompt=EMBED_PRICE)
        set_price(gw, WHISPER, slug, mode="audio", second=SECOND_PRICE)
    _price_images(gw)
    yield gw
    gw.stop()


def _price_images(gw: Gateway) -> None:
    meter = gw.services.meter
    rows = [
        {"model": IMAGE, "provider": slug, "mode": "image", "image_sizes": IMAGE_SIZES}
        for slug in PAIR
    ]
    meter.book = meter.book.with_overrides(rows)


@pytest.fixture(autouse=True)
def _clean(sims: tuple[Simulator, ...]) -> None:
    for sim in sims:
        sim.clear()


def client(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def wav(seconds: float, rate: int = 8000) -> bytes:
    """A silent mono 16-bit WAV file of `seconds`."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * round(seconds * rate))
    return buf.getvalue()
