"""POST /v1/embeddings end to end with the official `openai` SDK: shapes, billing per input
token exact to the nano-dollar, 402 before the provider is called, failover, bad input."""

from __future__ import annotations

import base64
from decimal import Decimal

import numpy as np
import openai
import pytest

from gatewayz.simulators import Fault
from tests.e2e.harness import Gateway, add_user, fresh_pair, request_log_rows
from tests.money.conftest import money, usage_rows

from .conftest import EMBED, EMBED_PRICE, client


def test_embeddings_return_one_vector_per_input_and_charge_reported_tokens(
    gateway: Gateway,
) -> None:
    user, key = add_user(gateway, credits_usd="1")
    raw = client(gateway, key).embeddings.with_raw_response.create(
        model=EMBED, input=["hello world", "second input"]
    )
    r = raw.parse()
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[0].embedding) == 16 and r.data[0].embedding != r.data[1].embedding
    assert r.model == EMBED
    tokens = r.usage.prompt_tokens
    assert tokens == 3 + 3  # the simulator's count: round(len / 4) per input
    cost = Decimal(tokens) * EMBED_PRICE / 10**6
    assert Decimal(raw.headers["x-gatewayz-cost"]) == cost
    state = money(gateway, user)
    [row] = usage_rows(state)
    assert -row["amount_nanos"] == int(cost * 10**9)
    assert [h["status"] for h in state["holds"]] == ["settled"]
    [log] = request_log_rows(gateway, raw.headers["x-request-id"])
    assert log["endpoint"] == "/v1/embeddings" and log["prompt_tokens"] == tokens


def test_base64_encoding_is_little_endian_float32_of_the_same_vector(gateway: Gateway) -> None:
    _, key = add_user(gateway, credits_usd="1")
    c = client(gateway, key)
    floats = c.embeddings.create(model=EMBED, input="same text", encoding_format="float")
    # The SDK decodes base64 itself when it asked for it: compare the raw body instead.
    raw = c.embeddings.with_raw_response.create(
        model=EMBED, input="same text", encoding_format="base64"
    )
    encoded = raw.http_response.json()["data"][0]["embedding"]
    decoded = np.frombuffer(base64.b64decode(encoded), dtype="<f4")
    assert np.allclose(decoded, floats.data[0].embedding, atol=1e-6)


def test_dimensions_and_token_arrays_reach_the_provider(gateway: Gateway) -> None:
    _, key = add_user(gateway, credits_usd="1")
    r = client(gateway, key).embeddings.create(model=EMBED, input=[[1, 2, 3]], dimensions=8)
    assert len(r.data[0].embedding) == 8
    sent = [
        q.json for s in (gateway.upstream,) for q in s.requests if q.path.endswith("embeddings")
    ]
    assert sent and sent[-1]["input"] == [[1, 2, 3]] and sent[-1]["dimensions"] == 8


def test_no_credits_is_402_and_the_provider_is_never_called(gateway: Gateway, sims: tuple) -> None:
    _, key = add_user(gateway, credits_usd="0")
    with pytest.raises(openai.APIStatusError) as err:
        client(gateway, key).embeddings.create(model=EMBED, input="hello")
    assert err.value.status_code == 402
    assert not [q for s in sims for q in s.requests if q.path.endswith("embeddings")]


def test_a_failing_provider_fails_over_and_only_the_answer_is_charged(
    gateway: Gateway, sims: tuple
) -> None:
    user, key = add_user(gateway, credits_usd="1")
    _, first_sim, second, _ = fresh_pair(gateway, sims, EMBED)
    first_sim.fault(Fault(status=503))
    raw = client(gateway, key).embeddings.with_raw_response.create(model=EMBED, input="abcd")
    assert raw.headers["x-gatewayz-attempts"] == "2"
    assert raw.headers["x-gatewayz-provider"] == second
    [row] = usage_rows(money(gateway, user))
    assert -row["amount_nanos"] == 20  # 1 token at $0.02/M, from the provider that answered


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": EMBED}, "input"),
        ({"model": EMBED, "input": []}, "input"),
        ({"model": EMBED, "input": [""]}, "input"),
        ({"model": EMBED, "input": ["a", [1]]}, "input"),
        ({"model": EMBED, "input": [[-1]]}, "input"),
        ({"model": EMBED, "input": "a", "dimensions": 0}, "dimensions"),
        ({"model": EMBED, "input": "a", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "a"}, "model"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(gateway: Gateway, body: dict, param: str) -> None:
    _, key = add_user(gateway, credits_usd="1")
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway, key).post("/embeddings", body=body, cast_to=object)
    assert err.value.body["param"] == param  # type: ignore[index]


def test_a_chat_model_is_refused_for_embeddings_and_an_embedding_model_for_chat(
    gateway: Gateway,
) -> None:
    _, key = add_user(gateway, credits_usd="1")
    c = client(gateway, key)
    with pytest.raises(openai.BadRequestError) as err:
        c.embeddings.create(model="test-model", input="a")
    assert "embeddings" in err.value.message
    with pytest.raises(openai.BadRequestError) as err:
        c.chat.completions.create(model=EMBED, messages=[{"role": "user", "content": "a"}])
    assert "/v1/embeddings" in err.value.message


def test_a_provider_error_repeating_its_key_is_masked(gateway: Gateway) -> None:
    from tests.e2e.harness import UPSTREAM_KEY

    _, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(status=400, echo_credentials=True))
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway, key).embeddings.create(model="openai/text-embedding-3-small", input="a")
    assert "Credentials received" in err.value.message
    assert UPSTREAM_KEY not in err.value.message
