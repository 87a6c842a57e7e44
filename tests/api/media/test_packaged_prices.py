"""The media endpoints at the packaged prices (billing/prices.toml, converted from the shared
price data), through the `openai` provider (pointed at a simulator), exact to the nano-dollar."""

from __future__ import annotations

import openai
import pytest

from tests.e2e.harness import Gateway, add_user
from tests.money.conftest import money, usage_rows

from .conftest import client, wav


def charged(gateway: Gateway, user: str) -> int:
    [row] = usage_rows(money(gateway, user))
    return -int(row["amount_nanos"])


def test_text_embedding_3_small_costs_2_cents_per_million_tokens(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    r = client(gateway, key).embeddings.create(
        model="openai/text-embedding-3-small", input="x" * 4000
    )
    assert r.usage.prompt_tokens == 1000
    assert charged(gateway, user) == 20_000  # 1000 × $0.02 / 1M = $0.00002


def test_whisper_1_costs_a_hundredth_of_a_cent_per_second(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    client(gateway, key).audio.transcriptions.create(
        model="whisper-1", file=("a.wav", wav(12.5), "audio/wav")
    )
    assert charged(gateway, user) == 1_250_000  # 12.5 s × $0.0001


def test_groq_whisper_large_v3_is_priced_per_second_as_groq_bills(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    raw = client(gateway, key).audio.transcriptions.with_raw_response.create(
        model="groq/whisper-large-v3", file=("a.wav", wav(10.0), "audio/wav")
    )
    assert raw.headers["x-gatewayz-provider"] == "groq"
    assert charged(gateway, user) == 308_300  # 10 s × $0.00003083
    assert gateway.upstream.requests[-1].headers["authorization"] == "Bearer gsk-test"


def test_gpt_image_1_is_priced_by_quality_and_size(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    r = client(gateway, key).images.generate(
        model="gpt-image-1", prompt="a fox", size="1024x1536", quality="medium"
    )
    assert r.data[0].url or r.data[0].b64_json
    assert charged(gateway, user) == 63_000_000  # $0.063 per medium 1024x1536 image
    sent = gateway.upstream.requests[-1].json
    assert "response_format" not in sent  # gpt-image models refuse it


def test_a_chat_request_to_an_embedding_model_names_the_endpoint(gateway: Gateway) -> None:
    _, key = add_user(gateway, credits_usd="1")
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway, key).chat.completions.create(
            model="openai/text-embedding-3-small", messages=[{"role": "user", "content": "a"}]
        )
    assert "POST /v1/embeddings" in err.value.message
