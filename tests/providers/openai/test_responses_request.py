"""The Responses request at the edge (providers/openai/responses.py, responses_schema.py):
what OpenAI's schema allows is taken, and a refusal names the parameter as the caller wrote it."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gatewayz.errors import InvalidRequest
from gatewayz.providers.openai.responses import UNSUPPORTED, parse_request


def _parse(**fields: Any) -> Any:
    return parse_request(orjson.dumps({"model": "m", "input": "hi", **fields}))


def _refusal(**fields: Any) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as e:
        _parse(**fields)
    assert e.value.status == 400
    return e.value


@pytest.mark.parametrize("field", sorted(UNSUPPORTED))
def test_an_unserved_feature_set_to_null_is_not_used(field: str) -> None:
    assert _parse(**{field: None}).params.previous_response_id is None


@pytest.mark.parametrize("field", sorted(UNSUPPORTED))
def test_an_unserved_feature_set_is_refused_by_name(field: str) -> None:
    assert _refusal(**{field: {"id": "x"}}).param == field


def test_whole_floats_are_integers() -> None:
    req = _parse(max_output_tokens=16.0, top_logprobs=2.0, max_tool_calls=3.0)
    assert (req.max_tokens, req.params.top_logprobs, req.params.max_tool_calls) == (16, 2, 3)
    assert type(req.max_tokens) is int


@pytest.mark.parametrize(
    ("field", "value"),
    [("max_output_tokens", 16.5), ("top_logprobs", 21.0), ("max_tool_calls", True)],
)
def test_other_numbers_are_still_refused(field: str, value: Any) -> None:
    assert _refusal(**{field: value}).param == field


@pytest.mark.parametrize("field", ["Temperature", "x[0]", ".x", "a.b", "str", "[key]"])
def test_an_unknown_field_is_refused_under_its_own_name(field: str) -> None:
    err = _refusal(**{field: 1})
    assert err.param == field
    assert err.message == f"Unrecognized request argument supplied: {field}"


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"tool_choice": 5}, "tool_choice"),
        ({"input": 5}, "input"),
        ({"metadata": {"k" * 65: "v"}}, "metadata"),
        ({"metadata": {"[key]" * 13: "v"}}, "metadata"),
        ({"metadata": {"K": 1}}, "metadata.K"),
        ({"text": {"format": {"type": "json_schema", "name": ""}}}, "text.format.name"),
        ({"text": {"format": {"type": "json_schema", "name": "n"}}}, "text.format.schema"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "refusal", "refusal": 3}]}]},
            "input[0].content[0].refusal",
        ),
        ({"input": [{"role": "User", "content": "hi"}]}, "input[0].role"),
        ({"tools": [{"type": "function", "name": ""}]}, "tools[0].name"),
    ],
)
def test_a_bad_value_is_named_by_its_place(fields: dict[str, Any], param: str) -> None:
    assert _refusal(**fields).param == param


FUNCTION = {"type": "function", "name": "f", "parameters": {"type": "object"}}


def test_no_allowed_tool_in_auto_mode_means_no_tool_call() -> None:
    choice = {"type": "allowed_tools", "mode": "auto", "tools": []}
    req = _parse(tools=[FUNCTION], tool_choice=choice)
    assert req.tool_choice == "none" and req.params.tool_choice == choice


def test_no_allowed_tool_in_required_mode_is_refused() -> None:
    choice = {"type": "allowed_tools", "mode": "required", "tools": []}
    assert _refusal(tools=[FUNCTION], tool_choice=choice).param == "tool_choice.tools"
