"""instructor on the gateway: `instructor.from_openai` and `instructor.from_anthropic` over the
official SDKs, against a model of each provider family — a Pydantic `response_model` in the
default tool mode (`Mode.TOOLS`; the client decides the provider), as OpenAI's JSON schema, and
streamed as partial objects. (instructor 1.17 declares `jiter<0.15`, which the pinned openai's
`jiter>=0.16` excludes; it is installed without its dependencies beside them, as the Makefile
does, and these tests are what shows it works.)"""

from __future__ import annotations

from typing import Any

import anthropic
import instructor
import openai

from tests.clients.conftest import (
    FAMILIES,
    FORECAST,
    PROMPT,
    Forecast,
    assert_forecast_schema,
    last_sent,
)
from tests.e2e.harness import Gateway


def client(gateway: Gateway, family: str, mode: instructor.Mode | None = None) -> Any:
    if family == "anthropic":
        raw = anthropic.Anthropic(base_url=gateway.root, api_key=gateway.api_key, max_retries=0)
        return instructor.from_anthropic(raw, mode=mode or instructor.Mode.TOOLS)
    oai = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
    return instructor.from_openai(oai, mode=mode or instructor.Mode.TOOLS)


def create(c: Any, family: str, **kw: Any) -> Any:
    return c.create(
        model=FAMILIES[family],
        max_tokens=200,
        messages=[{"role": "user", "content": PROMPT}],
        response_model=Forecast,
        max_retries=0,
        **kw,
    )


def same(result: Any) -> bool:
    """instructor hands back its own subclass of the model: compare the values."""
    return isinstance(result, Forecast) and result.model_dump() == FORECAST.model_dump()


def test_a_response_model_through_the_default_tool_mode(gateway: Gateway, family: str) -> None:
    assert same(create(client(gateway, family), family))
    (tool,) = last_sent(gateway, family)["tools"]  # instructor's tool carried the schema
    assert_forecast_schema(
        tool["input_schema"] if family == "anthropic" else tool["function"]["parameters"]
    )


def test_a_response_model_as_a_json_schema_through_the_openai_sdk(
    gateway: Gateway, family: str
) -> None:
    # OpenAI's `response_format` json_schema, to either family (translated for Anthropic).
    oai = openai.OpenAI(base_url=gateway.base_url, api_key=gateway.api_key, max_retries=0)
    assert same(create(instructor.from_openai(oai, mode=instructor.Mode.JSON_SCHEMA), family))
    if family == "openai":
        sent = last_sent(gateway, family)["response_format"]["json_schema"]["schema"]
        assert_forecast_schema(sent)


def test_partial_objects_stream_to_the_whole(gateway: Gateway, family: str) -> None:
    c = client(gateway, family)
    parts = list(
        c.create_partial(
            model=FAMILIES[family],
            max_tokens=200,
            messages=[{"role": "user", "content": PROMPT}],
            response_model=Forecast,
            max_retries=0,
        )
    )
    assert len(parts) > 1 and same(parts[-1])
