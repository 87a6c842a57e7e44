"""Nonsense usage from a provider (issue 11, item 8): negative, absurd or mistyped token counts
are never a 5xx nor a stuck hold — the gateway charges its own estimate and flags the row."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from gatewayz.canonical.bounds import MAX_REPORTED_TOKENS, BadUsage, token_count
from gatewayz.simulators import Fault
from tests.e2e.harness import Gateway, add_user, request_log_rows

from .conftest import COMPLETION_PRICE, MODEL, PROMPT_PRICE, money, usage_rows, wait_settled

PROMPT = [{"role": "user", "content": "x" * 400}]  # the estimate: 100 prompt tokens
NONSENSE: list[Any] = [-12, 10**12, 1e30, "12", True, 3.5, {"n": 1}]


@pytest.mark.parametrize("value", NONSENSE, ids=repr)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_nonsense_prompt_tokens_fall_back_to_the_estimate(
    gateway: Gateway, value: Any, stream: bool
) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(text="one two three", usage={"prompt_tokens": value}))
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    if stream:
        chunks = list(
            sdk.chat.completions.create(
                model=MODEL,
                messages=PROMPT,
                max_tokens=50,
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        usage, rid = chunks[-1].usage, None
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    else:
        raw = sdk.chat.completions.with_raw_response.create(
            model=MODEL, messages=PROMPT, max_tokens=50
        )
        usage, rid = raw.parse().usage, raw.headers["x-request-id"]
    assert usage is not None
    # The estimate: 400 characters / 4 in, "one two three" (13 characters) / 4 out.
    assert (usage.prompt_tokens, usage.completion_tokens) == (100, 3)
    wait_settled(gateway, user)
    state = money(gateway, user)
    assert [h["status"] for h in state["holds"]] == ["settled"]
    cost = (100 * PROMPT_PRICE + 3 * COMPLETION_PRICE) / 10**6
    assert [r["amount_nanos"] for r in usage_rows(state)] == [-int(cost * 10**9)]
    if rid is not None:
        (row,) = request_log_rows(gateway, rid)
        assert row["status_code"] == 200 and row["usage_estimated"]
        assert row["error_code"] == "upstream_usage_invalid"


def test_nonsense_completion_tokens_are_not_trusted_either(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(text="one two three", usage={"completion_tokens": -3}))
    sdk = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    r = sdk.chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=50)
    assert r.usage is not None and r.usage.completion_tokens == 3
    assert money(gateway, user)["held_nanos"] == 0


def test_token_count_accepts_integers_in_range_only() -> None:
    assert token_count(0) == 0
    assert token_count(12.0) == 12
    assert token_count(MAX_REPORTED_TOKENS) == MAX_REPORTED_TOKENS
    for bad in [-1, MAX_REPORTED_TOKENS + 1, 1e30, float("nan"), "7", False, None, 2.5]:
        with pytest.raises(BadUsage):
            token_count(bad)
