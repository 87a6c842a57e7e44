"""`POST /v1/responses` whole, through the official `openai` SDK, against both families: the
request's input, instructions, images, structured output and limits reach the provider; the
answer is a `response` object as OpenAI's schema describes it."""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest
from openai.types.responses import Response

from tests.api.responses.conftest import ANTHROPIC_MODEL, OPENAI_MODEL, WEATHER, upstream_body
from tests.api.responses.spec import problems
from tests.e2e.harness import Gateway

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
    "+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
LONG = " ".join(f"word{i}" for i in range(60))


def post(gateway: Gateway, body: dict[str, Any]) -> httpx2.Response:
    with httpx2.Client(trust_env=False, timeout=10.0) as c:
        return c.post(
            f"{gateway.base_url}/responses",
            json=body,
            headers={"authorization": f"Bearer {gateway.api_key}"},
        )


def test_string_input_answers_a_response_object(client: openai.OpenAI, model: str) -> None:
    r = client.responses.create(model=model, input="Hello there")
    assert r.id.startswith("resp_") and r.object == "response" and r.status == "completed"
    assert r.model == model and r.error is None and r.incomplete_details is None
    (msg,) = r.output
    assert msg.type == "message" and msg.role == "assistant" and msg.status == "completed"
    assert msg.id.startswith("msg_")
    (part,) = msg.content
    assert part.type == "output_text" and part.annotations == []
    assert "Hello there" in r.output_text
    u = r.usage
    assert u is not None and u.input_tokens > 0 and u.output_tokens > 0
    assert u.total_tokens == u.input_tokens + u.output_tokens
    assert u.input_tokens_details.cached_tokens == 0
    assert u.output_tokens_details.reasoning_tokens == 0
    assert u.model_extra is not None and u.model_extra["cost"] > 0
    assert r.store is True and r.truncation == "disabled" and r.tools == []


def test_the_response_matches_openais_schema(gateway: Gateway, model: str) -> None:
    body = {
        "model": model,
        "input": "What is the weather in Paris?",
        "instructions": "Be brief",
        "tools": [WEATHER],
        "tool_choice": "auto",
        "metadata": {"k": "v"},
        "temperature": 0.5,
        "max_output_tokens": 500,
    }
    r = post(gateway, body)
    assert r.status_code == 200, r.text
    data = r.json()
    assert problems(data, "Response") == []
    Response.model_validate(data)  # the SDK's own types, validated (not just constructed)
    assert data["instructions"] == "Be brief" and data["metadata"] == {"k": "v"}
    assert data["temperature"] == 0.5 and data["max_output_tokens"] == 500
    assert data["tools"] == [{**WEATHER, "strict": None}] and data["tool_choice"] == "auto"
    assert data["text"] == {"format": {"type": "text"}}
    called = post(gateway, {**body, "tool_choice": "required"}).json()
    assert problems(called, "Response") == []
    assert [o["type"] for o in called["output"]] == ["function_call"]


def test_instructions_are_a_leading_system_message(client: openai.OpenAI, gateway: Gateway) -> None:
    client.responses.create(model=OPENAI_MODEL, input="Hi", instructions="Be brief")
    assert upstream_body(gateway)["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Hi"},
    ]
    client.responses.create(model=ANTHROPIC_MODEL, input="Hi", instructions="Be brief")
    sent = upstream_body(gateway)
    assert sent["system"] == [{"type": "text", "text": "Be brief"}]
    assert sent["messages"] == [{"role": "user", "content": "Hi"}]


def test_input_items_keep_their_roles_parts_and_images(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    items: list[Any] = [
        {"role": "developer", "content": "Answer in French"},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "status": "completed",
            "content": [{"type": "output_text", "text": "A pixel.", "annotations": []}],
        },
        {"role": "user", "content": "Sure?"},
    ]
    r = client.responses.create(model=OPENAI_MODEL, input=items)
    assert "Sure?" in r.output_text
    assert upstream_body(gateway)["messages"] == [
        {"role": "developer", "content": "Answer in French"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {"role": "assistant", "content": "A pixel."},
        {"role": "user", "content": "Sure?"},
    ]
    client.responses.create(model=ANTHROPIC_MODEL, input=items)
    sent = upstream_body(gateway)
    assert sent["system"] == [{"type": "text", "text": "Answer in French"}]
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    image = sent["messages"][0]["content"][1]
    assert image["type"] == "image" and image["source"]["data"] == PNG


def test_structured_output_reaches_the_provider_as_its_json_format(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    fmt = {"type": "json_schema", "name": "forecast", "schema": schema, "strict": True}
    r = client.responses.create(model=OPENAI_MODEL, input="Forecast", text={"format": fmt})
    assert upstream_body(gateway)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "forecast", "schema": schema, "strict": True},
    }
    assert set(json.loads(r.output_text)) == {"city", "days"}
    assert r.text is not None and r.text.format.type == "json_schema"
    client.responses.create(model=OPENAI_MODEL, input="x", text={"format": {"type": "json_object"}})
    assert upstream_body(gateway)["response_format"] == {"type": "json_object"}
    client.responses.create(model=ANTHROPIC_MODEL, input="Forecast", text={"format": fmt})
    assert upstream_body(gateway)["output_config"]["format"]["schema"] == schema


def test_parameters_reach_the_provider(client: openai.OpenAI, gateway: Gateway) -> None:
    client.responses.create(
        model=OPENAI_MODEL,
        input="Hi",
        max_output_tokens=100,
        temperature=0.2,
        top_p=0.9,
        user="u-1",
        metadata={"a": "b"},
        reasoning={"effort": "low"},
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
    )
    sent = upstream_body(gateway)
    assert sent["max_tokens"] == 100 and sent["temperature"] == 0.2 and sent["top_p"] == 0.9
    assert sent["user"] == "u-1" and "metadata" not in sent  # the response's, not the call's
    assert sent["reasoning_effort"] == "low" and sent["parallel_tool_calls"] is False
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["tools"][0]["function"]["name"] == "get_weather"
    assert "store" not in sent and "provider" not in sent


def test_an_answer_cut_by_max_output_tokens_is_incomplete(client: openai.OpenAI) -> None:
    r = client.responses.create(model=OPENAI_MODEL, input=LONG, max_output_tokens=16)
    assert r.status == "incomplete"
    assert r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.output[0].status == "incomplete" and r.usage is not None


@pytest.mark.parametrize(
    ("tool", "kind"),
    [
        ({"type": "web_search"}, "web_search"),
        ({"type": "web_search_preview"}, "web_search_preview"),
        ({"type": "file_search", "vector_store_ids": ["vs_1"]}, "file_search"),
        (
            {
                "type": "computer_use_preview",
                "display_width": 1,
                "display_height": 1,
                "environment": "browser",
            },
            "computer_use_preview",
        ),
        ({"type": "code_interpreter", "container": {"type": "auto"}}, "code_interpreter"),
        ({"type": "image_generation"}, "image_generation"),
        ({"type": "mcp", "server_label": "x", "server_url": "https://x"}, "mcp"),
        ({"type": "local_shell"}, "local_shell"),
    ],
)
def test_a_hosted_tool_is_a_400_naming_its_type(
    client: openai.OpenAI, gateway: Gateway, tool: dict[str, Any], kind: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=OPENAI_MODEL, input="Hi", tools=[WEATHER, tool])  # type: ignore[list-item]
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == "tools[1].type"
    assert repr(kind) in body["message"] and "hosted tool" in body["message"]
    assert gateway.upstream.requests == []


def test_an_unknown_field_is_a_400_naming_it(client: openai.OpenAI, gateway: Gateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=OPENAI_MODEL, input="Hi", extra_body={"frobnicate": 1})
    body = caught.value.body
    assert isinstance(body, dict) and body["param"] == "frobnicate"
    assert "frobnicate" in body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=OPENAI_MODEL, input="Hi", extra_body={"prompt": {"id": "p"}})
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "prompt"
    assert gateway.upstream.requests == []


BAD: list[tuple[dict[str, Any], str | None]] = [
    ({"input": "Hi"}, "model"),
    ({"model": OPENAI_MODEL}, "input"),
    ({"model": OPENAI_MODEL, "input": 5}, "input"),
    ({"model": "bad model", "input": "x"}, "model"),
    ({"model": OPENAI_MODEL, "input": [5]}, "input[0]"),
    ({"model": OPENAI_MODEL, "input": [{"type": "item_reference", "id": "x"}]}, "input[0].type"),
    ({"model": OPENAI_MODEL, "input": [{"type": ["x"]}]}, "input[0].type"),
    ({"model": OPENAI_MODEL, "input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
    (
        {"model": OPENAI_MODEL, "input": [{"role": "user", "content": [{"type": "input_file"}]}]},
        "input[0].content[0]",
    ),
    (
        {
            "model": OPENAI_MODEL,
            "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "file_1"}]}],
        },
        "input.content.image_url",
    ),
    (
        {"model": OPENAI_MODEL, "input": [{"type": "function_call", "name": "f"}]},
        "input[0].call_id",
    ),
    (
        {
            "model": OPENAI_MODEL,
            "input": [{"type": "function_call_output", "call_id": "c" * 300, "output": "x"}],
        },
        "input[0].call_id",
    ),
    ({"model": OPENAI_MODEL, "input": "x", "max_output_tokens": 2**40}, "max_output_tokens"),
    ({"model": OPENAI_MODEL, "input": "x", "max_output_tokens": 8}, "max_output_tokens"),
    ({"model": OPENAI_MODEL, "input": "x", "temperature": "hot"}, "temperature"),
    ({"model": OPENAI_MODEL, "input": "x", "temperature": 3}, "temperature"),
    ({"model": OPENAI_MODEL, "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
    (
        {"model": OPENAI_MODEL, "input": "x", "tools": [{"type": "function", "name": "n" * 65}]},
        "tools[0].name",
    ),
    ({"model": OPENAI_MODEL, "input": "x", "tools": [WEATHER] * 129}, "tools"),
    ({"model": OPENAI_MODEL, "input": "x", "tools": ["x"]}, "tools[0].type"),
    ({"model": OPENAI_MODEL, "input": "x", "tool_choice": "required"}, "tool_choice"),
    (
        {
            "model": OPENAI_MODEL,
            "input": "x",
            "tools": [WEATHER],
            "tool_choice": {"type": "file_search"},
        },
        "tool_choice.type",
    ),
    (
        {
            "model": OPENAI_MODEL,
            "input": "x",
            "tools": [WEATHER],
            "tool_choice": {"type": "function", "name": 5},
        },
        "tool_choice.name",
    ),
    (
        {"model": OPENAI_MODEL, "input": "x", "text": {"format": {"type": "json_schema"}}},
        "text.format.name",
    ),
    ({"model": OPENAI_MODEL, "input": "x", "text": {"format": {"type": "yaml"}}}, "text.format"),
    ({"model": OPENAI_MODEL, "input": "x", "reasoning": {"effort": "huge"}}, "reasoning.effort"),
    (
        {"model": OPENAI_MODEL, "input": "x", "metadata": {str(i): "v" for i in range(17)}},
        "metadata",
    ),
    ({"model": OPENAI_MODEL, "input": "x", "metadata": {"k": "v" * 513}}, "metadata.k"),
    ({"model": OPENAI_MODEL, "input": "x", "background": True}, "background"),
    ({"model": OPENAI_MODEL, "input": "x", "truncation": "auto"}, "truncation"),
    ({"model": OPENAI_MODEL, "input": "x", "conversation": "conv_1"}, "conversation"),
    ({"model": OPENAI_MODEL, "input": "x", "include": ["everything"]}, "include[0]"),
    (
        {"model": OPENAI_MODEL, "input": "x", "previous_response_id": "r" * 300},
        "previous_response_id",
    ),
    ({"model": OPENAI_MODEL, "input": "x", "provider": {"bogus": 1}}, "provider"),
    ({"model": OPENAI_MODEL, "input": "x", "cache": {"ttl": -1}}, "cache"),
]


@pytest.mark.parametrize(("body", "param"), BAD)
def test_bad_requests_are_400s_naming_the_parameter(
    gateway: Gateway, body: dict[str, Any], param: str | None
) -> None:
    r = post(gateway, body)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    assert err["param"] == param or (param and str(err["param"]).startswith(param)), err
    assert gateway.upstream.requests == []


def test_bodies_that_are_not_requests_are_400s(gateway: Gateway) -> None:
    with httpx2.Client(trust_env=False, timeout=10.0) as c:
        for raw in (b"", b"[]", b"null", b"{", b'{"model": "x", "input": "' + b"\xff" + b'"}'):
            r = c.post(
                f"{gateway.base_url}/responses",
                content=raw,
                headers={"authorization": f"Bearer {gateway.api_key}"},
            )
            assert r.status_code == 400, (raw, r.text)


def test_logprobs_come_back_in_output_text_when_included(
    client: openai.OpenAI, gateway: Gateway
) -> None:
    r = client.responses.create(
        model=OPENAI_MODEL, input="Hi", include=["message.output_text.logprobs"], top_logprobs=2
    )
    sent = upstream_body(gateway)
    assert sent["logprobs"] is True and sent["top_logprobs"] == 2
    part = r.output[0].content[0]  # type: ignore[union-attr]
    assert part.type == "output_text" and part.logprobs
    assert "".join(lp.token for lp in part.logprobs) == part.text
    assert len(part.logprobs[0].top_logprobs) == 2
    with client.responses.stream(
        model=OPENAI_MODEL, input="Hi", include=["message.output_text.logprobs"]
    ) as s:
        deltas = [e for e in s if e.type == "response.output_text.delta"]
    assert all(d.logprobs for d in deltas)
    plain = client.responses.create(model=OPENAI_MODEL, input="Hi")
    assert plain.output[0].content[0].logprobs == []  # type: ignore[union-attr]
    assert "logprobs" not in upstream_body(gateway)
