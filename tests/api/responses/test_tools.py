"""Function tools through `/v1/responses`: a `function_call` item, then its
`function_call_output` sent back — continuing the stored response (`previous_response_id`) or
with the whole conversation as items — reaches the provider as a tool call and its result; a
reasoning item sent back carries the provider's signed thinking."""

from __future__ import annotations

from typing import Any

import openai

from tests.api.responses.conftest import ANTHROPIC_MODEL, OPENAI_MODEL, WEATHER, upstream_body
from tests.e2e.harness import Gateway


def _call(client: openai.OpenAI, model: str, **kwargs: Any) -> Any:
    r = client.responses.create(
        model=model, input="Weather in Paris?", tools=[WEATHER], tool_choice="required", **kwargs
    )
    (call,) = r.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.id.startswith("fc_") and call.call_id and call.status == "completed"
    return r, call


def test_a_function_call_round_trip_with_previous_response_id(
    client: openai.OpenAI, gateway: Gateway, model: str
) -> None:
    first, call = _call(client, model)
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
        tools=[WEATHER],
    )
    assert second.previous_response_id == first.id
    assert "sunny" in second.output_text
    sent = upstream_body(gateway)
    if model == OPENAI_MODEL:
        assert sent["messages"] == [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.call_id,
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": call.arguments},
                    }
                ],
            },
            {"role": "tool", "content": "sunny", "tool_call_id": call.call_id},
        ]
    else:
        assert sent["messages"][0] == {"role": "user", "content": "Weather in Paris?"}
        (use,) = sent["messages"][1]["content"]
        assert use["type"] == "tool_use" and use["id"] == call.call_id
    # ...and the conversation goes on: the third turn has all of it.
    third = client.responses.create(model=model, previous_response_id=second.id, input="Thanks")
    assert third.output_text
    sent = upstream_body(gateway)
    assert sent["messages"][-1] == {"role": "user", "content": "Thanks"}
    assert sent["messages"][0] == {"role": "user", "content": "Weather in Paris?"}


def test_instructions_are_not_inherited_by_a_continuation(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    first = client.responses.create(model=OPENAI_MODEL, input="Hi", instructions="Be brief")
    client.responses.create(
        model=OPENAI_MODEL, previous_response_id=first.id, input="Again", instructions="Be long"
    )
    messages = upstream_body(gateway)["messages"]
    assert messages[0] == {"role": "system", "content": "Be long"}
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "Be brief" not in str(messages)


def test_a_stateless_round_trip_sends_the_items_back(
    client: openai.OpenAI, gateway: Gateway, model: str
) -> None:
    _, call = _call(client, model, store=False)
    items = [
        {"role": "user", "content": "Weather in Paris?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "rainy"},
    ]
    second = client.responses.create(model=model, input=items, tools=[WEATHER], store=False)
    assert "rainy" in second.output_text
    assert call.call_id in gateway.upstream.requests[-1].body.decode()


def test_a_streamed_call_continues_like_a_whole_one(client: openai.OpenAI, model: str) -> None:
    with client.responses.stream(
        model=model, input="Weather in Paris?", tools=[WEATHER], tool_choice="required"
    ) as s:
        first = s.get_final_response()
    (call,) = first.output
    assert call.type == "function_call"
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "windy"}],
    )
    assert "windy" in second.output_text


def test_reasoning_items_carry_the_signed_thinking_back(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    kwargs: dict[str, Any] = {"reasoning": {"effort": "low"}, "max_output_tokens": 3000}
    r = client.responses.create(model=ANTHROPIC_MODEL, input="Hi", **kwargs)
    reasoning, message = r.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_")
    assert reasoning.summary and reasoning.summary[0].text and reasoning.encrypted_content
    assert message.type == "message"
    items = [
        {"role": "user", "content": "Hi"},
        *(o.model_dump(exclude_none=True) for o in r.output),
    ]
    client.responses.create(
        model=ANTHROPIC_MODEL, input=[*items, {"role": "user", "content": "More"}], **kwargs
    )
    turn = upstream_body(gateway)["messages"][1]
    assert turn["role"] == "assistant"
    assert turn["content"][0] == {
        "type": "thinking",
        "thinking": reasoning.summary[0].text,
        "signature": reasoning.encrypted_content,
    }
    # Stored, the same: the continuation sends the signed thinking back.
    client.responses.create(
        model=ANTHROPIC_MODEL, previous_response_id=r.id, input="More", **kwargs
    )
    assert upstream_body(gateway)["messages"][1] == turn
