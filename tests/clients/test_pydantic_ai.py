"""Pydantic AI's `Agent` on the gateway through each of its model classes — `OpenAIChatModel`
(Chat Completions) and `OpenAIResponsesModel` (the Responses API), both with an `OpenAIProvider`
at `/v1`, and `AnthropicModel` with an `AnthropicProvider` at the root (the Messages API) —
against a model of each provider family: a plain run, a streamed run, a function tool run to its
answer, and structured `output_type`s (the default tool output, and `NativeOutput`, a JSON
schema the provider follows). (`OpenAIModel` is gone from Pydantic AI 2: `OpenAIChatModel` is
the same Chat Completions model.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.messages import ToolCallPart
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from tests.clients.conftest import (
    ANSWER,
    ANTHROPIC_MODEL,
    ANTHROPIC_REFUSED,
    FAMILIES,
    FORECAST,
    PROMPT,
    REVIEW,
    TOOL_ANSWER,
    TOOL_OUTPUT,
    TOOLS_MODELS,
    WEATHER_ARGS,
    Forecast,
    Review,
    assert_forecast_schema,
    forced_tool,
    get_weather,
    keywords,
    last_sent,
    sent,
    tool_result,
    upstream_schema,
    upstream_tools,
)
from tests.e2e.harness import Gateway

KINDS = ["chat", "responses", "anthropic"]


def _openai(gateway: Gateway) -> OpenAIProvider:
    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
    return OpenAIProvider(openai_client=client)


def _anthropic(gateway: Gateway) -> AnthropicProvider:
    client = anthropic.AsyncAnthropic(base_url=gateway.root, api_key=gateway.api_key, max_retries=0)
    return AnthropicProvider(anthropic_client=client)


MAKERS: dict[str, Callable[[Gateway, str], Model]] = {
    "chat": lambda gw, name: OpenAIChatModel(name, provider=_openai(gw)),
    "responses": lambda gw, name: OpenAIResponsesModel(name, provider=_openai(gw)),
    "anthropic": lambda gw, name: AnthropicModel(name, provider=_anthropic(gw)),
}


def _model(gateway: Gateway, kind: str, name: str) -> Model:
    # Claude by its bare name through AnthropicModel, as its users write it (Pydantic AI reads
    # the model's abilities, e.g. native structured output, from the name).
    if kind == "anthropic" and name == ANTHROPIC_MODEL:
        name = name.removeprefix("anthropic/")
    return MAKERS[kind](gateway, name)


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_answers_with_the_models_text(gateway: Gateway, family: str, kind: str) -> None:
    result = Agent(_model(gateway, kind, FAMILIES[family])).run_sync(PROMPT)
    assert result.output == ANSWER
    usage = result.usage
    assert usage.requests == 1 and usage.input_tokens > 0 and usage.output_tokens > 0
    assert PROMPT in str(last_sent(gateway, family)["messages"][-1]["content"])


@pytest.mark.parametrize("kind", KINDS)
async def test_a_streamed_run_yields_the_whole_answer_in_pieces(
    gateway: Gateway, family: str, kind: str
) -> None:
    agent = Agent(_model(gateway, kind, FAMILIES[family]))
    async with agent.run_stream(PROMPT) as run:
        pieces = [p async for p in run.stream_text(delta=True, debounce_by=None)]
    assert len(pieces) > 1 and "".join(pieces) == ANSWER
    assert last_sent(gateway, family)["stream"] is True


@pytest.mark.parametrize("kind", KINDS)
def test_an_agent_runs_its_tool_and_answers(gateway: Gateway, family: str, kind: str) -> None:
    """The model calls the tool (tool_choice left at auto), Pydantic AI runs it and sends its
    result back, the model answers."""
    calls: list[dict[str, Any]] = []

    def weather(city: str, days: int) -> str:
        """The weather in a city for the next days."""
        calls.append({"city": city, "days": days})
        return get_weather(city, days)

    agent = Agent(_model(gateway, kind, TOOLS_MODELS[family]), tools=[weather])
    result = agent.run_sync(PROMPT)
    assert calls == [WEATHER_ARGS]
    assert result.output == TOOL_ANSWER
    assert result.usage.requests == 2
    (call,) = [
        part
        for message in result.all_messages()
        for part in message.parts
        if isinstance(part, ToolCallPart)
    ]
    assert call.tool_name == "weather" and call.args_as_dict() == WEATHER_ARGS
    first, second = sent(gateway)
    assert set(upstream_tools(first[1], family)) == {"weather"}
    assert tool_result(second[1], family) == (call.tool_call_id, TOOL_OUTPUT)


@pytest.mark.parametrize("kind", KINDS)
def test_a_structured_output_type_is_validated(gateway: Gateway, family: str, kind: str) -> None:
    """The default output mode: a `final_result` tool the model must call."""
    agent = Agent(_model(gateway, kind, FAMILIES[family]), output_type=Forecast)
    result = agent.run_sync("A forecast for Paris")
    assert result.output == FORECAST
    body = last_sent(gateway, family)
    assert forced_tool(body, family) == "*"
    assert_forecast_schema(upstream_tools(body, family)["final_result"])


@pytest.mark.parametrize("kind", KINDS)
async def test_a_streamed_structured_output_ends_validated(
    gateway: Gateway, family: str, kind: str
) -> None:
    agent = Agent(_model(gateway, kind, FAMILIES[family]), output_type=Forecast)
    async with agent.run_stream("A forecast for Paris") as run:
        outputs = [o async for o in run.stream_output(debounce_by=None)]
    assert outputs and outputs[-1] == FORECAST


@pytest.mark.parametrize(
    ("kind", "family"),
    [
        ("chat", "openai"),
        ("chat", "anthropic"),
        ("responses", "openai"),
        ("responses", "anthropic"),
        # AnthropicModel asks for a native JSON schema only of models it knows to be Claude
        # (another name: "Native structured output is not supported by this model").
        ("anthropic", "anthropic"),
    ],
)
def test_native_output_follows_the_json_schema(gateway: Gateway, family: str, kind: str) -> None:
    agent = Agent(_model(gateway, kind, FAMILIES[family]), output_type=NativeOutput(Forecast))
    result = agent.run_sync("A forecast for Paris")
    assert result.output == FORECAST
    body = last_sent(gateway, family)
    assert_forecast_schema(upstream_schema(body, family))
    assert not body.get("tools")


@pytest.mark.parametrize("kind", ["chat", "responses"])
def test_a_bounded_field_reaches_claude_as_a_schema_anthropic_accepts(
    gateway: Gateway, kind: str
) -> None:
    agent = Agent(_model(gateway, kind, ANTHROPIC_MODEL), output_type=NativeOutput(Review))
    assert agent.run_sync("Review Paris").output == REVIEW
    schema = upstream_schema(last_sent(gateway, "anthropic"), "anthropic")
    assert set(schema["properties"]) == {"stars", "summary"}
    assert not keywords(schema) & ANTHROPIC_REFUSED
