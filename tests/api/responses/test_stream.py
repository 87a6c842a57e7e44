"""`POST /v1/responses` with `stream: true`, through `client.responses.stream(...)`: the event
sequence OpenAI sends (each with its sequence number), the same text and output as the whole
answer, usage and cost in `response.completed`, `response.incomplete` on a cut answer and
`response.failed` when the provider fails mid-stream."""

from __future__ import annotations

import json
from typing import Any

import openai
from openai.types.responses import Response

from gatewayz.simulators import Fault
from tests.api.responses.conftest import ANTHROPIC_MODEL, OPENAI_MODEL, WEATHER
from tests.api.responses.spec import problems
from tests.api.responses.test_create import LONG
from tests.e2e.harness import Gateway

TEXT_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
CALL_EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]


def _squeeze(kinds: list[str]) -> list[str]:
    """The kinds with runs of one kind (the deltas) folded into one."""
    return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]


def _events(client: openai.OpenAI, **kwargs: Any) -> tuple[list[Any], Response]:
    with client.responses.stream(**kwargs) as stream:
        events = list(stream)
        final = stream.get_final_response()
    return events, final


def test_a_stream_has_openais_event_sequence_and_the_whole_answers_text(
    client: openai.OpenAI, model: str
) -> None:
    whole = client.responses.create(model=model, input="Tell me about streams")
    events, final = _events(client, model=model, input="Tell me about streams")
    kinds = [e.type for e in events]
    assert _squeeze(kinds) == TEXT_EVENTS
    assert kinds.count("response.output_text.delta") > 2
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == final.output_text == whole.output_text
    done = next(e for e in events if e.type == "response.output_text.done")
    assert done.text == deltas
    item_ids = {e.item_id for e in events if hasattr(e, "item_id")}
    assert item_ids == {final.output[0].id}
    assert final.id == events[0].response.id and final.status == "completed"
    u = final.usage
    assert u is not None and u.output_tokens > 0 and u.input_tokens > 0
    assert u.model_extra is not None and u.model_extra["cost"] > 0
    assert whole.usage is not None and u.output_tokens == whole.usage.output_tokens


def test_every_event_matches_openais_schema(gateway: Gateway, client: openai.OpenAI) -> None:
    cases: list[tuple[str, dict[str, Any], Fault | None]] = [
        (OPENAI_MODEL, {"input": "Hi"}, None),
        (OPENAI_MODEL, {"input": "Hi", "tools": [WEATHER], "tool_choice": "required"}, None),
        (OPENAI_MODEL, {"input": LONG, "max_output_tokens": 16}, None),
        (OPENAI_MODEL, {"input": "Hi"}, Fault(status=500, drop_after_chunks=3)),
        (ANTHROPIC_MODEL, {"input": "Hi", "reasoning": {"effort": "low"}}, None),
    ]
    seen = set()
    for model, kwargs, fault in cases:
        if fault is not None:
            gateway.upstream.fault(fault)
        with client.responses.with_streaming_response.create(
            model=model, stream=True, **kwargs
        ) as raw:
            lines = [line for line in raw.iter_lines() if line.startswith("data: ")]
        for line in lines:
            event = json.loads(line[len("data: ") :])
            seen.add(event["type"])
            assert problems(event, "ResponseStreamEvent") == [], event["type"]
    assert {"response.failed", "response.incomplete"} <= seen
    assert "response.reasoning_summary_text.delta" in seen


def test_streamed_tool_calls_are_function_call_items(client: openai.OpenAI, model: str) -> None:
    whole = client.responses.create(
        model=model, input="Weather in Paris?", tools=[WEATHER], tool_choice="required"
    )
    events, final = _events(
        client, model=model, input="Weather in Paris?", tools=[WEATHER], tool_choice="required"
    )
    assert _squeeze([e.type for e in events]) == CALL_EVENTS
    (call,) = final.output
    assert call.type == "function_call" and call.name == "get_weather" and call.call_id
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert args == call.arguments == whole.output[0].arguments  # type: ignore[union-attr]
    added = next(e for e in events if e.type == "response.output_item.added")
    assert added.item.call_id == call.call_id and added.item.id == call.id


def test_a_cut_stream_ends_with_response_incomplete(client: openai.OpenAI) -> None:
    with client.responses.stream(model=OPENAI_MODEL, input=LONG, max_output_tokens=16) as s:
        events = list(s)
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.status == "incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"
    assert last.response.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert last.response.usage is not None


def test_a_provider_failing_mid_stream_ends_it_with_response_failed(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    gateway.upstream.fault(Fault(status=500, drop_after_chunks=3))
    with client.responses.stream(model=OPENAI_MODEL, input="Tell me about streams") as s:
        events = list(s)
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.failed"
    assert "response.completed" not in kinds
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None
    assert failed.error.code == "server_error" and failed.error.message
    assert [e.sequence_number for e in events] == list(range(len(events)))
