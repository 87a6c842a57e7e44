"""LangChain's `ChatAnthropic` pointed at the gateway (`base_url` its root, as for Anthropic's
SDK): invoke, stream, tools bound with `.bind_tools` (their calls parsed, and a tool's result
sent back and answered), structured output with `.with_structured_output` by each method —
against a model of each provider family (the OpenAI one translated from the Messages API)."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage

from tests.clients.conftest import (
    ANSWER,
    FAMILIES,
    FORECAST,
    OPENAI_MODEL,
    PROMPT,
    TOOL_ANSWER,
    TOOL_OUTPUT,
    TOOLS_MODELS,
    WEATHER_ARGS,
    Forecast,
    assert_forecast_schema,
    forced_tool,
    get_weather,
    last_sent,
    optional_properties,
    sent,
    tool_result,
    upstream_schema,
    upstream_tools,
)
from tests.e2e.harness import Gateway


def _llm(gateway: Gateway, model: str, **kwargs: Any) -> ChatAnthropic:
    return ChatAnthropic(
        model=model, base_url=gateway.root, api_key=gateway.api_key, max_retries=0, **kwargs
    )


def test_invoke_answers_with_the_models_text(gateway: Gateway, family: str) -> None:
    reply = _llm(gateway, FAMILIES[family]).invoke(PROMPT)
    assert reply.content == ANSWER
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert reply.response_metadata["stop_reason"] == "end_turn"
    body = last_sent(gateway, family)
    assert body["messages"][-1]["role"] == "user"
    assert PROMPT in str(body["messages"][-1]["content"])


def test_stream_yields_the_whole_answer_in_pieces(gateway: Gateway, family: str) -> None:
    chunks = list(_llm(gateway, FAMILIES[family]).stream(PROMPT))
    texts = [c.text for c in chunks if c.text]
    assert len(texts) > 1 and "".join(texts) == ANSWER
    whole = sum(chunks[1:], chunks[0])
    assert isinstance(whole, AIMessageChunk) and whole.text == ANSWER
    assert whole.usage_metadata is not None and whole.usage_metadata["output_tokens"] > 0
    assert last_sent(gateway, family)["stream"] is True


async def test_ainvoke_answers_as_invoke_does(gateway: Gateway, family: str) -> None:
    reply = await _llm(gateway, FAMILIES[family]).ainvoke(PROMPT)
    assert reply.content == ANSWER


def test_bind_tools_returns_the_tool_call_with_parsed_arguments(
    gateway: Gateway, family: str
) -> None:
    llm = _llm(gateway, FAMILIES[family]).bind_tools([get_weather], tool_choice="any")
    reply = llm.invoke(PROMPT)
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and call["args"] == WEATHER_ARGS and call["id"]
    assert reply.response_metadata["stop_reason"] == "tool_use"
    body = last_sent(gateway, family)
    assert set(upstream_tools(body, family)["get_weather"]["properties"]) == {"city", "days"}
    assert forced_tool(body, family) == "*"


def test_streamed_tool_call_chunks_add_up_to_the_call(gateway: Gateway, family: str) -> None:
    llm = _llm(gateway, FAMILIES[family]).bind_tools([get_weather], tool_choice="get_weather")
    chunks = list(llm.stream(PROMPT))
    assert sum(1 for c in chunks if c.tool_call_chunks) > 1  # arguments arrive in pieces
    whole = sum(chunks[1:], chunks[0])
    assert isinstance(whole, AIMessageChunk)
    (call,) = whole.tool_calls
    assert call["name"] == "get_weather" and call["args"] == WEATHER_ARGS
    assert forced_tool(last_sent(gateway, family), family) == "get_weather"


def test_a_tool_loop_sends_the_result_back_and_gets_the_answer(
    gateway: Gateway, family: str
) -> None:
    """The model calls the tool (tool_choice left at auto), the tool runs, its result goes back
    as a ToolMessage (a tool_result block), the model answers."""
    llm = _llm(gateway, TOOLS_MODELS[family]).bind_tools([get_weather])
    messages: list[Any] = [HumanMessage(PROMPT)]
    first = llm.invoke(messages)
    (call,) = first.tool_calls
    messages += [first, ToolMessage(get_weather(**call["args"]), tool_call_id=call["id"])]
    final = llm.invoke(messages)
    assert not final.tool_calls and final.text == TOOL_ANSWER
    assert len(sent(gateway)) == 2
    assert tool_result(last_sent(gateway, family), family) == (call["id"], TOOL_OUTPUT)


@pytest.mark.parametrize("method", [None, "function_calling", "json_schema"])
def test_with_structured_output_returns_the_validated_model(
    gateway: Gateway, family: str, method: str | None
) -> None:
    """None: ChatAnthropic's default method (function_calling in langchain-anthropic 1.x)."""
    llm = _llm(gateway, FAMILIES[family])
    kwargs = {} if method is None else {"method": method}
    forecast = llm.with_structured_output(Forecast, **kwargs).invoke("A forecast for Paris")
    assert forecast == FORECAST
    body = last_sent(gateway, family)
    if method == "json_schema":  # output_config.format, or OpenAI's response_format
        assert_forecast_schema(upstream_schema(body, family))
        assert "tools" not in body
    else:
        assert forced_tool(body, family) == "Forecast"
        assert_forecast_schema(upstream_tools(body, family)["Forecast"])


def test_an_optional_field_reaches_openai_as_a_schema_strict_mode_accepts(
    gateway: Gateway,
) -> None:
    llm = _llm(gateway, OPENAI_MODEL)
    forecast = llm.with_structured_output(Forecast, method="json_schema").invoke("A forecast")
    assert forecast == FORECAST
    fmt = last_sent(gateway, "openai")["response_format"]["json_schema"]
    assert_forecast_schema(fmt["schema"])
    assert fmt.get("strict") is not True or not optional_properties(fmt["schema"])
