"""CM-14: token estimation fallback (unit level; the end-to-end cases are in tests/e2e)."""

from gatewayz.canonical.types import ChatRequest, Message, ToolCall, Usage
from gatewayz.pipeline.tokens import estimate_tokens, estimate_usage, final_usage


def test_cm_14_1_token_estimation_fallback_1_per_4_chars() -> None:
    assert estimate_tokens(400) == 100
    assert estimate_tokens(4) == 1
    assert estimate_tokens(1) == 1  # any text is at least one token
    assert estimate_tokens(0) == 0
    assert estimate_tokens(400, chars_per_token=2) == 200


def test_estimate_counts_every_kind_of_message_text() -> None:
    req = ChatRequest(
        model="m",
        messages=[
            Message("user", "a" * 40),
            Message("assistant", None, tool_calls=[ToolCall("c1", "fn", "b" * 38)]),
        ],
    )
    u = estimate_usage(req, completion_chars=80)
    assert (u.prompt_tokens, u.completion_tokens, u.estimated) == (20, 20, True)


def test_cm_14_2_estimation_used_when_usage_missing_unit() -> None:
    req = ChatRequest(model="m", messages=[Message("user", "x" * 400)])
    u = final_usage(None, req, completion_chars=200)
    assert u.estimated and u.prompt_tokens == 100 and u.completion_tokens == 50


def test_cm_14_3_real_usage_preferred_unit() -> None:
    req = ChatRequest(model="m", messages=[Message("user", "x" * 400)])
    real = Usage(prompt_tokens=7, completion_tokens=3)
    assert final_usage(real, req, completion_chars=10_000) is real
    assert not real.estimated
