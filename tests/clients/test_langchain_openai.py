"""LangChain's `ChatOpenAI` pointed at the gateway (`base_url=.../v1`): invoke, stream, tools
bound with `.bind_tools` (their calls parsed, and a tool's result sent back and answered),
structured output with `.with_structured_output` by each method, and the same over the Responses
API (`use_responses_api=True`) — against a model of each provider family."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

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


def _llm(gateway: Gateway, model: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model=model, base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0, **kwargs
    )


def test_invoke_answers_with_the_models_text(gateway: Gateway, family: str) -> None:
    reply = _llm(gateway, FAMILIES[family]).invoke(PROMPT)
    assert reply.content == ANSWER
    usage = reply.usage_metadata
    assert usage is not None and usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert reply.response_metadata["finish_reason"] == "stop"
    body = last_sent(gateway, family)
    assert body["messages"][-1] == {"role": "user", "content": PROMPT}


def test_stream_yields_the_whole_answer_in_pieces(gateway: Gateway, family: str) -> None:
    chunks = list(_llm(gateway, FAMILIES[family], stream_usage=True).stream(PROMPT))
    texts = [c.content for c in chunks if c.content]
    assert len(texts) > 1 and "".join(texts) == ANSWER
    whole = sum(chunks[1:], chunks[0])
    assert isinstance(whole, AIMessageChunk) and whole.content == ANSWER
    # stream_usage: the usage chunk the gateway sends last was asked for and arrived.
    assert whole.usage_metadata is not None and whole.usage_metadata["output_tokens"] > 0
    assert last_sent(gateway, family)["stream"] is True


async def test_ainvoke_answers_as_invoke_does(gateway: Gateway, family: str) -> None:
    reply = await _llm(gateway, FAMILIES[family]).ainvoke(PROMPT)
    assert reply.content == ANSWER


def test_bind_tools_returns_the_tool_call_with_parsed_arguments(
    gateway: Gateway, family: str
) -> None:
    llm = _llm(gateway, FAMILIES[family]).bind_tools([get_weather], tool_choice="required")
    reply = llm.invoke(PROMPT)
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and call["args"] == WEATHER_ARGS and call["id"]
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


@pytest.mark.parametrize("responses_api", [False, True], ids=["chat", "responses"])
def test_a_tool_loop_sends_the_result_back_and_gets_the_answer(
    gateway: Gateway, family: str, responses_api: bool
) -> None:
    """The agent loop LangChain users write: the model calls the tool (tool_choice left at
    auto), the tool runs, its result goes back as a ToolMessage, the model answers."""
    llm = _llm(gateway, TOOLS_MODELS[family], use_responses_api=responses_api)
    llm = llm.bind_tools([get_weather])
    messages: list[Any] = [HumanMessage(PROMPT)]
    first = llm.invoke(messages)
    (call,) = first.tool_calls
    output = get_weather(**call["args"])
    messages += [first, ToolMessage(output, tool_call_id=call["id"])]
    final = llm.invoke(messages)
    assert not final.tool_calls and final.text == TOOL_ANSWER
    assert len(sent(gateway)) == 2
    assert tool_result(last_sent(gateway, family), family) == (call["id"], TOOL_OUTPUT)


@pytest.mark.parametrize("method", [None, "json_schema", "function_calling"])
def test_with_structured_output_returns_the_validated_model(
    gateway: Gateway, family: str, method: str | None
) -> None:
    """None: ChatOpenAI's default method (json_schema in langchain-openai 1.x)."""
    llm = _llm(gateway, FAMILIES[family])
    kwargs = {} if method is None else {"method": method}
    forecast = llm.with_structured_output(Forecast, **kwargs).invoke("A forecast for Paris")
    assert forecast == FORECAST
    body = last_sent(gateway, family)
    if method == "function_calling":
        assert forced_tool(body, family) == "Forecast"
        assert_forecast_schema(upstream_tools(body, family)["Forecast"])
    else:  # a JSON schema the provider follows: response_format, or Anthropic's output_config
        assert_forecast_schema(upstream_schema(body, family))
        assert "tools" not in body


# ---- the Responses API: use_responses_api=True sends everything to /v1/responses ----------


def test_responses_api_invoke_and_stream(gateway: Gateway, family: str) -> None:
    llm = _llm(gateway, FAMILIES[family], use_responses_api=True)
    reply = llm.invoke(PROMPT)
    assert reply.text == ANSWER
    assert reply.response_metadata["id"].startswith("resp_")  # answered by /v1/responses
    assert reply.usage_metadata is not None and reply.usage_metadata["output_tokens"] > 0
    chunks = list(llm.stream(PROMPT))
    texts = [c.text for c in chunks if c.text]
    assert len(texts) > 1 and "".join(texts) == ANSWER
    assert last_sent(gateway, family)["messages"][-1]["content"] == PROMPT


def test_responses_api_tool_calls_and_structured_output(gateway: Gateway, family: str) -> None:
    llm = _llm(gateway, FAMILIES[family], use_responses_api=True)
    reply = llm.bind_tools([get_weather], tool_choice="required").invoke(PROMPT)
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and call["args"] == WEATHER_ARGS
    assert forced_tool(last_sent(gateway, family), family) == "*"
    forecast = llm.with_structured_output(Forecast).invoke("A forecast for Paris")
    assert forecast == FORECAST
    assert_forecast_schema(upstream_schema(last_sent(gateway, family), family))


@pytest.mark.parametrize("responses_api", [False, True], ids=["chat", "responses"])
def test_a_bounded_field_reaches_claude_as_a_schema_anthropic_accepts(
    gateway: Gateway, responses_api: bool
) -> None:
    llm = _llm(gateway, ANTHROPIC_MODEL, use_responses_api=responses_api)
    assert llm.with_structured_output(Review).invoke("Review Paris") == REVIEW
    schema = upstream_schema(last_sent(gateway, "anthropic"), "anthropic")
    assert set(schema["properties"]) == {"stars", "summary"}
    assert not keywords(schema) & ANTHROPIC_REFUSED
