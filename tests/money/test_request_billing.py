"""Money on the request path, end to end with the official SDKs (CM-6.3, CM-6.4, CM-6.5, CM-6.6):
the worst case is held before the provider is called, the actual cost is charged once, and
provider failures are refunded."""

from __future__ import annotations

import socket
import sqlite3
from decimal import Decimal

import anthropic
import openai
import orjson
import pytest

from gatewayz.billing.bounds import TokenBounds
from gatewayz.simulators import Fault
from tests.e2e.harness import Gateway, add_user, request_log_rows

from .conftest import (
    COMPLETION_PRICE,
    MODEL,
    PROMPT_PRICE,
    money,
    set_price,
    usage_rows,
    wait_settled,
)

PROMPT = [{"role": "user", "content": "x" * 400}]  # 100 tokens for the simulator and our estimate
# The hold's prompt bound: 400 bytes + one message's and the request's overhead (bounds.toml).
BOUND = 400 + TokenBounds.load().message + TokenBounds.load().request
WORST = (BOUND * PROMPT_PRICE + 1000 * COMPLETION_PRICE) / 10**6  # max_tokens 1000
ACTUAL = Decimal("0.00106")  # 100 × $10/M + 3 completion tokens × $20/M
NANO = Decimal("1e-9")


def client(gateway: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=key, max_retries=0)


def nanos(usd: Decimal) -> int:
    return int(usd * 10**9)


def test_cm_6_1_1_charge_is_prompt_times_price_plus_completion_times_price(
    gateway: Gateway,
) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(text="one two three"))
    raw = client(gateway, key).chat.completions.with_raw_response.create(
        model=MODEL, messages=PROMPT, max_tokens=1000
    )
    r = raw.parse()
    expected = (
        r.usage.prompt_tokens * PROMPT_PRICE + r.usage.completion_tokens * COMPLETION_PRICE
    ) / 10**6
    assert expected == ACTUAL
    # Reported in the body (usage.cost) and the X-Gatewayz-Cost header...
    assert Decimal(str(r.usage.model_extra["cost"])) == ACTUAL
    assert raw.headers["x-gatewayz-cost"] == "0.00106"
    # ...and charged exactly once, from the ledger.
    state = money(gateway, user)
    assert [r["amount_nanos"] for r in usage_rows(state)] == [-nanos(ACTUAL)]
    assert state["credits_nanos"] == nanos(Decimal(1) - ACTUAL)
    assert state["held_nanos"] == 0
    (row,) = request_log_rows(gateway, raw.headers["x-request-id"])
    assert row["cost_nanos"] == nanos(ACTUAL)


def test_cm_6_3_1_insufficient_balance_is_402_before_any_provider_call(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd=0)
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway, key).chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=10)
    assert caught.value.status_code == 402
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "insufficient_credits"
    assert "available balance is $0.00" in body["message"]
    assert gateway.upstream.requests == []
    assert money(gateway, user)["holds"] == []


def test_cm_6_3_4_no_provider_call_on_failed_preflight_streaming_either(gateway: Gateway) -> None:
    _, key = add_user(gateway, credits_usd="0.000001")
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway, key).chat.completions.create(
            model=MODEL, messages=PROMPT, max_tokens=10, stream=True
        )
    assert caught.value.status_code == 402
    assert gateway.upstream.requests == []


def test_cm_6_3_2_preflight_holds_prompt_plus_max_tokens_at_their_prices(
    gateway: Gateway,
) -> None:
    # One nano-dollar short of the worst case: refused, the provider untouched.
    _, short = add_user(gateway, credits_usd=WORST - NANO)
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway, short).chat.completions.create(
            model=MODEL, messages=PROMPT, max_tokens=1000
        )
    assert caught.value.status_code == 402
    assert f"${WORST}" in str(caught.value.body)
    assert f"at most {BOUND} prompt tokens + 1,000 output tokens" in str(caught.value.body)
    assert gateway.upstream.requests == []


def test_cm_6_3_3_preflight_passes_with_exactly_the_worst_case(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd=WORST)
    gateway.upstream.fault(Fault(text="one two three"))
    r = client(gateway, key).chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=1000)
    assert r.choices[0].message.content == "one two three"
    state = money(gateway, user)
    assert state["credits_nanos"] == nanos(WORST - ACTUAL)  # charged the actual, not the hold
    assert [h["status"] for h in state["holds"]] == ["settled"]


def test_missing_max_tokens_holds_and_sends_the_default_output_limit(gateway: Gateway) -> None:
    # test-model has no known output limit: the default is held, and sent so that it binds.
    default = gateway.settings.billing_default_max_tokens
    worst = (BOUND * PROMPT_PRICE + default * COMPLETION_PRICE) / 10**6
    _, key = add_user(gateway, credits_usd=worst - NANO)
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway, key).chat.completions.create(model=MODEL, messages=PROMPT)
    assert caught.value.status_code == 402
    assert f"{default:,} output tokens (the model's output limit" in str(caught.value.body)
    _, enough = add_user(gateway, credits_usd=worst)
    client(gateway, enough).chat.completions.create(model=MODEL, messages=PROMPT)
    (sent,) = gateway.upstream.requests
    assert orjson.loads(sent.body)["max_tokens"] == default


def test_cm_6_4_2_different_requests_are_charged_separately(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    c = client(gateway, key)
    for _ in range(2):
        gateway.upstream.fault(Fault(text="one two three"))
        # The same X-Request-ID twice: a correlation id, not an idempotency key — two
        # requests served are two charges, each settled exactly once.
        c.chat.completions.create(
            model=MODEL, messages=PROMPT, max_tokens=5, extra_headers={"X-Request-ID": "dup-1"}
        )
    state = money(gateway, user)
    assert [r["amount_nanos"] for r in usage_rows(state)] == [-nanos(ACTUAL)] * 2
    assert len({r["request_id"] for r in usage_rows(state)}) == 2
    assert all(r["request_id"].startswith("dup-1.") for r in usage_rows(state))


def test_streamed_request_reports_and_charges_its_cost(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(text="one two three"))
    chunks = list(
        client(gateway, key).chat.completions.create(
            model=MODEL,
            messages=PROMPT,
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert Decimal(str(chunks[-1].usage.model_extra["cost"])) == ACTUAL
    assert [r["amount_nanos"] for r in usage_rows(money(gateway, user))] == [-nanos(ACTUAL)]


@pytest.mark.parametrize("status", [500, 502, 503])
def test_cm_6_5_1_provider_5xx_is_refunded(gateway: Gateway, status: int) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(status=status))
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway, key).chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=10)
    assert caught.value.status_code >= 500
    state = money(gateway, user)
    assert [h["status"] for h in state["holds"]] == ["released"]
    assert state["credits_nanos"] == nanos(Decimal(1)) and state["held_nanos"] == 0
    assert usage_rows(state) == []


def test_cm_6_5_2_provider_timeout_is_refunded(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(delay_s=1.5))  # the gateway's read timeout is 0.5 s
    with pytest.raises(openai.APIStatusError) as caught:
        client(gateway, key).chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=10)
    assert caught.value.status_code == 504
    state = money(gateway, user)
    assert [h["status"] for h in state["holds"]] == ["released"]
    assert state["credits_nanos"] == nanos(Decimal(1)) and usage_rows(state) == []


def test_cm_6_5_3_empty_stream_is_refunded(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(empty_stream=True))
    chunks = list(
        client(gateway, key).chat.completions.create(
            model=MODEL,
            messages=PROMPT,
            max_tokens=10,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[-1].usage.model_extra["cost"] == 0
    state = money(gateway, user)
    assert [h["status"] for h in state["holds"]] == ["released"]
    assert state["credits_nanos"] == nanos(Decimal(1)) and usage_rows(state) == []


def test_empty_answer_is_refunded_when_not_streamed_too(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(empty_stream=True, omit_usage=True))  # empty content, no usage
    raw = client(gateway, key).chat.completions.with_raw_response.create(
        model=MODEL, messages=PROMPT, max_tokens=10
    )
    r = raw.parse()
    assert not r.choices[0].message.content
    assert r.usage is not None and r.usage.model_extra["cost"] == 0
    assert raw.headers["x-gatewayz-cost"] == "0"
    state = money(gateway, user)
    assert [h["status"] for h in state["holds"]] == ["released"]
    assert state["credits_nanos"] == nanos(Decimal(1)) and usage_rows(state) == []


def test_cm_6_5_4_user_4xx_is_not_refunded(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(status=400))
    with pytest.raises(openai.BadRequestError):
        client(gateway, key).chat.completions.create(model=MODEL, messages=PROMPT, max_tokens=10)
    state = money(gateway, user)
    # The hold is settled at what the provider produced (nothing, for a rejected request), not
    # released as a refund the way a provider failure is.
    assert [h["status"] for h in state["holds"]] == ["settled"]
    assert state["held_nanos"] == 0 and usage_rows(state) == []


def test_upstream_death_mid_stream_is_refunded(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(text="a b c d e f g h", drop_after_chunks=3))
    with pytest.raises(openai.APIError):
        list(
            client(gateway, key).chat.completions.create(
                model=MODEL, messages=PROMPT, max_tokens=50, stream=True
            )
        )
    state = money(gateway, user)
    assert [h["status"] for h in state["holds"]] == ["released"]
    assert state["credits_nanos"] == nanos(Decimal(1)) and usage_rows(state) == []


def test_client_disconnect_mid_stream_is_charged_for_what_was_produced(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    words = " ".join(f"w{i:03d}" for i in range(40))
    gateway.upstream.fault(Fault(text=words, chunk_delay_s=0.05))
    body = orjson.dumps({"model": MODEL, "messages": PROMPT, "max_tokens": 100, "stream": True})
    host, port = gateway.root.removeprefix("http://").split(":")
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nX-Request-ID: leaves-early\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as s:
        s.sendall(head + body)
        seen = b""
        while b"w004" not in seen:  # the client goes away after a few words
            data = s.recv(4096)
            assert data, "stream ended early"
            seen += data
    wait_settled(gateway, user)
    state = money(gateway, user)
    (row,) = request_log_rows(gateway, "leaves-early")
    assert row["status_code"] == 499 and row["usage_estimated"]
    (charge,) = usage_rows(state)
    assert [h["status"] for h in state["holds"]] == ["settled"]
    # Billed for the prompt and the (estimated) completion produced, well under the full answer.
    produced = Decimal(row["completion_tokens"])
    assert 0 < produced < 40
    expected = (100 * PROMPT_PRICE + produced * COMPLETION_PRICE) / 10**6
    assert -charge["amount_nanos"] == nanos(expected) == row["cost_nanos"]
    assert state["held_nanos"] == 0


def test_cm_6_6_1_premium_model_at_default_price_is_refused_unsent(gateway: Gateway) -> None:
    _, key = add_user(gateway, credits_usd="1")
    # The bare name reaches OpenAI by its model pattern (`gpt-*`); `openai/…` would be a 404:
    # the synced catalog knows OpenAI does not list it (routing/resolve.py).
    with pytest.raises(openai.BadRequestError) as caught:
        client(gateway, key).chat.completions.create(
            model="gpt-5-nonexistent-preview", messages=PROMPT, max_tokens=10
        )
    assert caught.value.code == "pricing_unavailable"
    assert gateway.upstream.requests == []


def test_cm_6_6_2_premium_model_with_a_price_is_served(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd="1")
    set_price(gateway, "openai/gpt-5-nonexistent-preview", "openai", prompt="1", completion="2")
    client(gateway, key).chat.completions.create(
        model="openai/gpt-5-nonexistent-preview", messages=PROMPT, max_tokens=10
    )
    assert len(usage_rows(money(gateway, user))) == 1


def test_cm_6_6_3_open_model_at_default_price_is_served_and_counted(gateway: Gateway) -> None:
    from gatewayz.billing.pricing import METRICS

    _, key = add_user(gateway, credits_usd="1")
    before = METRICS.default_priced["other-model"]
    client(gateway, key).chat.completions.create(
        model="vllm/other-model", messages=PROMPT, max_tokens=10
    )
    assert (
        METRICS.default_priced["vllm/other-model"] + METRICS.default_priced["other-model"] > before
    )


def test_free_model_needs_no_credit_and_leaves_no_ledger_row(gateway: Gateway) -> None:
    user, key = add_user(gateway, credits_usd=0)
    raw = client(gateway, key).chat.completions.with_raw_response.create(
        model="test-model:free", messages=PROMPT
    )
    assert raw.parse().usage.model_extra["cost"] == 0 and raw.headers["x-gatewayz-cost"] == "0"
    state = money(gateway, user)
    assert state["ledger"] == [] and state["holds"] == []


def test_anthropic_dialect_402_is_a_billing_error_and_reports_cost(gateway: Gateway) -> None:
    _, broke = add_user(gateway, credits_usd=0)
    sdk = anthropic.Anthropic(base_url=gateway.root, api_key=broke, max_retries=0)
    with pytest.raises(anthropic.APIStatusError) as caught:
        sdk.messages.create(model=MODEL, max_tokens=10, messages=PROMPT)
    assert caught.value.status_code == 402
    assert caught.value.body["error"]["type"] == "billing_error"
    _, key = add_user(gateway, credits_usd="1")
    gateway.upstream.fault(Fault(text="one two three"))
    sdk = anthropic.Anthropic(base_url=gateway.root, api_key=key, max_retries=0)
    raw = sdk.messages.with_raw_response.create(model=MODEL, max_tokens=10, messages=PROMPT)
    assert Decimal(raw.headers["x-gatewayz-cost"]) == ACTUAL
    assert Decimal(str(raw.parse().usage.model_extra["cost"])) == ACTUAL


def test_database_down_at_hold_time_is_503_and_nothing_is_sent(gateway: Gateway) -> None:
    _, key = add_user(gateway, credits_usd="1")
    meter = gateway.services.meter

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    meter.ledger.run = broken  # type: ignore[method-assign]
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            client(gateway, key).chat.completions.create(
                model=MODEL, messages=PROMPT, max_tokens=10
            )
    finally:
        del meter.ledger.run  # back to the class's method
    assert caught.value.status_code == 503
    assert "Billing is temporarily unavailable" in str(caught.value.body)
    assert gateway.upstream.requests == []
