"""Money through `/v1/responses`: the same steps as chat (hold before the provider, one charge
after the answer), so a response costs exactly what a chat completion with the same usage costs
— whole or streamed — and reports it in `usage.cost` and `X-Gatewayz-Cost`."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from gatewayz.simulators import Fault
from tests.api.responses.conftest import COMPLETION_PRICE, OPENAI_MODEL, PROMPT_PRICE
from tests.e2e.harness import Gateway, add_user, request_log_rows
from tests.money.conftest import money, usage_rows

PROMPT = "x" * 400  # 100 tokens for the simulator


def test_a_response_is_charged_what_the_same_chat_completion_is(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    gateway.upstream.fault(Fault(text="one two three"))
    chat = client.chat.completions.with_raw_response.create(
        model=OPENAI_MODEL, messages=[{"role": "user", "content": PROMPT}], max_tokens=1000
    )
    gateway.upstream.fault(Fault(text="one two three"))
    resp = client.responses.with_raw_response.create(
        model=OPENAI_MODEL, input=PROMPT, max_output_tokens=1000
    )
    gateway.upstream.fault(Fault(text="one two three"))
    with client.responses.stream(model=OPENAI_MODEL, input=PROMPT, max_output_tokens=1000) as s:
        streamed = s.get_final_response()
    c, r = chat.parse(), resp.parse()
    assert c.usage is not None and r.usage is not None and streamed.usage is not None
    assert (r.usage.input_tokens, r.usage.output_tokens) == (
        c.usage.prompt_tokens,
        c.usage.completion_tokens,
    )
    expected = (
        c.usage.prompt_tokens * PROMPT_PRICE + c.usage.completion_tokens * COMPLETION_PRICE
    ) / 10**6
    assert expected > 0
    for usage in (c.usage, r.usage, streamed.usage):
        assert usage.model_extra is not None
        assert Decimal(str(usage.model_extra["cost"])) == expected
    assert resp.headers["x-gatewayz-cost"] == chat.headers["x-gatewayz-cost"]
    state = money(gateway, user)
    nanos = int(expected * 10**9)
    assert [row["amount_nanos"] for row in usage_rows(state)] == [-nanos] * 3
    assert state["held_nanos"] == 0
    (row,) = request_log_rows(gateway, resp.headers["x-request-id"])
    assert row["endpoint"] == "/v1/responses" and row["cost_nanos"] == nanos


def test_too_little_credit_is_a_402_before_any_provider_call(gateway: Gateway) -> None:
    _, key = add_user(gateway, credits_usd=0)
    client = openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client.responses.create(model=OPENAI_MODEL, input=PROMPT, max_output_tokens=1000)
    assert caught.value.status_code == 402
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "insufficient_credits"
    assert gateway.upstream.requests == []
