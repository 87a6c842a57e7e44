"""The OpenAI Agents SDK, out of the box, against the gateway: its default model
(`OpenAIResponsesModel`, the Responses API) pointed at `/v1/responses`, an Agent with one
function tool run to its final answer — the model calls the tool, the SDK runs it, sends the
result back and the model answers — whole and streamed, for each family. Tracing off: nothing
leaves the machine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from tests.api.responses.conftest import ANTHROPIC_MODEL, TOOLS_MODEL, upstream_body
from tests.e2e.harness import Gateway

CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    CALLS.append(city)
    return f"sunny in {city}"


@pytest.fixture(autouse=True)
def _no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)
    CALLS.clear()
    yield


def _agent(gateway: Gateway, model: str) -> Agent[Any]:
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
    # The simulated Claude calls tools only when it must; the SDK sets tool_choice back to
    # "auto" once the tool ran (reset_tool_choice), so the run ends with an answer.
    settings = (
        ModelSettings(tool_choice="required") if model == ANTHROPIC_MODEL else ModelSettings()
    )
    return Agent(
        name="weather",
        instructions="Answer with the weather.",
        model=OpenAIResponsesModel(model=model, openai_client=client),
        model_settings=settings,
        tools=[get_weather],
    )


@pytest.mark.parametrize("model", [TOOLS_MODEL, ANTHROPIC_MODEL])
def test_an_agent_runs_a_function_tool_to_its_answer(gateway: Gateway, model: str) -> None:
    result = Runner.run_sync(_agent(gateway, model), "What is the weather in Paris?")
    assert len(CALLS) == 1
    assert "sunny in" in result.final_output
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert len(result.raw_responses) == 2
    assert all(r.response_id and r.response_id.startswith("resp_") for r in result.raw_responses)
    usage = result.context_wrapper.usage
    assert usage.requests == 2 and usage.input_tokens > 0 and usage.output_tokens > 0
    # The second call sent the tool's result back to the provider.
    assert "sunny in" in str(upstream_body(gateway))


@pytest.mark.parametrize("model", [TOOLS_MODEL, ANTHROPIC_MODEL])
async def test_a_streamed_agent_run_reaches_the_same_answer(gateway: Gateway, model: str) -> None:
    run = Runner.run_streamed(_agent(gateway, model), "What is the weather in Paris?")
    kinds = [event.type async for event in run.stream_events()]
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert len(CALLS) == 1
    assert "sunny in" in str(run.final_output)
