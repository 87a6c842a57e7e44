"""POST /v1/images/generations end to end with the official `openai` SDK (CM-15.1, CM-15.2):
priced per image by size and quality, 402 before the provider is called, charged after success
for the images returned, failover, bad input."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from gatewayz.simulators import Fault
from tests.e2e.harness import Gateway, add_user, fresh_pair
from tests.money.conftest import money, usage_rows

from .conftest import IMAGE, client


def test_cm_15_1_image_generation_deducts_credits(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    raw = client(gateway, key).images.with_raw_response.generate(
        model=IMAGE, prompt="a red fox", n=2, size="1024x1024", quality="hd"
    )
    r = raw.parse()
    assert len(r.data) == 2 and all(d.url for d in r.data)
    assert Decimal(raw.headers["x-gatewayz-cost"]) == Decimal("0.16")  # 2 × $0.08 (hd)
    state = money(gateway, user)
    [row] = usage_rows(state)
    assert -row["amount_nanos"] == 160_000_000
    assert state["credits_nanos"] + state["allowance_nanos"] == 840_000_000


def test_cm_15_2_image_generation_insufficient_credits_402(gateway: Gateway, sims: tuple) -> None:
    _, key = add_user(gateway, credits_usd="0")
    with pytest.raises(openai.APIStatusError) as err:
        client(gateway, key).images.generate(model=IMAGE, prompt="a fox", size="1024x1024")
    assert err.value.status_code == 402
    assert not [q for s in sims for q in s.requests if "images" in q.path]


def test_only_the_images_returned_are_charged(gateway: Gateway, sims: tuple) -> None:
    user, key = add_user(gateway, credits_usd="1")
    _, first_sim, _, _ = fresh_pair(gateway, sims, IMAGE)
    one = {"created": 1, "data": [{"url": "https://images.example/1.png"}]}
    first_sim.fault(Fault(status=200, body=one))  # asked for 3, the provider made 1
    raw = client(gateway, key).images.with_raw_response.generate(
        model=IMAGE, prompt="a fox", n=3, size="1024x1024", quality="standard"
    )
    assert len(raw.parse().data) == 1
    assert Decimal(raw.headers["x-gatewayz-cost"]) == Decimal("0.04")
    [row] = usage_rows(money(gateway, user))
    assert -row["amount_nanos"] == 40_000_000


def test_a_request_without_size_or_quality_pays_the_dearest_variant(gateway: Gateway) -> None:
    _, key = add_user(gateway, credits_usd="1")
    raw = client(gateway, key).images.with_raw_response.generate(model=IMAGE, prompt="a fox")
    assert Decimal(raw.headers["x-gatewayz-cost"]) == Decimal("0.08")


def test_b64_json_and_options_reach_the_provider(gateway: Gateway, sims: tuple) -> None:
    _, key = add_user(gateway, credits_usd="1")
    _, first_sim, _, _ = fresh_pair(gateway, sims, IMAGE)
    r = client(gateway, key).images.generate(
        model=IMAGE,
        prompt="a fox",
        size="1792x1024",
        quality="standard",
        style="vivid",
        response_format="b64_json",
    )
    assert r.data[0].b64_json
    [sent] = [q.json for q in first_sim.requests if "images" in q.path]
    assert sent["size"] == "1792x1024" and sent["style"] == "vivid" and sent["n"] == 1


def test_a_failing_provider_fails_over_and_is_not_charged(gateway: Gateway, sims: tuple) -> None:
    user, key = add_user(gateway, credits_usd="1")
    _, first_sim, second, _ = fresh_pair(gateway, sims, IMAGE)
    first_sim.fault(Fault(status=500))
    raw = client(gateway, key).images.with_raw_response.generate(
        model=IMAGE, prompt="a fox", size="1024x1024", quality="standard"
    )
    assert raw.headers["x-gatewayz-provider"] == second
    [row] = usage_rows(money(gateway, user))
    assert -row["amount_nanos"] == 40_000_000


def test_a_size_the_price_book_does_not_know_is_a_400_before_any_call(
    gateway: Gateway, sims: tuple
) -> None:
    _, key = add_user(gateway, credits_usd="1")
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway, key).images.generate(model=IMAGE, prompt="a fox", size="512x512")
    assert err.value.body["param"] == "size"  # type: ignore[index]
    assert not [q for s in sims for q in s.requests if "images" in q.path]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": IMAGE}, "prompt"),
        ({"model": IMAGE, "prompt": "x", "n": 0}, "n"),
        ({"model": IMAGE, "prompt": "x", "n": 11}, "n"),
        ({"model": IMAGE, "prompt": "x", "size": "big"}, "size"),
        ({"model": IMAGE, "prompt": "x", "quality": "ultra"}, "quality"),
        ({"model": IMAGE, "prompt": "x", "response_format": "png"}, "response_format"),
        ({"model": IMAGE, "prompt": "x" * 32_001}, "prompt"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(gateway: Gateway, body: dict, param: str) -> None:
    _, key = add_user(gateway, credits_usd="1")
    with pytest.raises(openai.BadRequestError) as err:
        client(gateway, key).post("/images/generations", body=body, cast_to=object)
    assert err.value.body["param"] == param  # type: ignore[index]
