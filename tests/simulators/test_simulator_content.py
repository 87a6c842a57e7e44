"""The pure content layer: token pieces, stop, logprobs, JSON Schema values, completion plans."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from gatewayz.simulators.content import (
    LOREM,
    apply_stop,
    plan_choice,
    prompt_tokens,
    split_pieces,
    token_logprobs,
)
from gatewayz.simulators.schema import schema_value


def test_split_pieces_round_trips() -> None:
    assert split_pieces("Hello from  the sim ") == ["Hello ", "from  ", "the ", "sim "]
    assert split_pieces("  lead") == ["  lead"]
    assert split_pieces("") == []
    assert split_pieces("   ") == ["   "]
    assert "".join(split_pieces(LOREM)) == LOREM


def test_apply_stop_earliest_sequence() -> None:
    assert apply_stop("one two three", ["three", "two"]) == ("one ", True)
    assert apply_stop("one two", "zzz") == ("one two", False)
    assert apply_stop("one two", ["", None]) == ("one two", False)


def test_token_logprobs_values() -> None:
    [first, second] = token_logprobs(["é ", "b"], 2)
    assert first["token"] == "é " and first["bytes"] == [0xC3, 0xA9, 0x20]
    assert first["logprob"] == -0.01 and second["logprob"] == -0.02
    assert [t["token"] for t in first["top_logprobs"]] == ["é ", "é~1"]
    assert first["top_logprobs"][1]["logprob"] == -0.51


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ({"type": "string"}, "example value"),
        ({"type": "string", "format": "date-time"}, "2024-01-01T00:00:00Z"),
        ({"type": "string", "minLength": 20}, "example value" + "x" * 7),
        ({"type": "string", "maxLength": 3}, "exa"),
        ({"type": "integer", "minimum": 10}, 10),
        ({"type": "integer", "exclusiveMaximum": 0}, -1),
        ({"type": "integer", "minimum": 5, "multipleOf": 4}, 8),
        ({"type": "number", "maximum": 1}, 1.0),
        ({"type": "boolean"}, True),
        ({"type": "null"}, None),
        ({"enum": ["b", "a"]}, "b"),
        ({"const": 42}, 42),
        ({"anyOf": [{"type": "null"}, {"type": "integer"}]}, 1),
        ({"type": ["null", "boolean"]}, True),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 3}, [1, 1, 1]),
        ({"type": "array", "items": {"type": "integer"}, "maxItems": 0}, []),
        ({"type": "array", "prefixItems": [{"const": "x"}, {"type": "boolean"}]}, ["x", True]),
        (
            {"allOf": [{"properties": {"a": {"const": 1}}}, {"properties": {"b": {"const": 2}}}]},
            {"a": 1, "b": 2},
        ),
    ],
)
def test_schema_values(schema: dict[str, Any], expected: Any) -> None:
    assert schema_value(schema) == expected


def test_schema_refs_and_recursion() -> None:
    schema = {
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["label", "children"],
            }
        },
        "type": "object",
        "properties": {
            "root": {"$ref": "#/$defs/Node"},
            "when": {"type": "string", "format": "date"},
        },
        "required": ["root", "extra"],
    }
    value = schema_value(schema)
    assert value["when"] == "2024-01-01"
    assert value["extra"] == "example extra"
    depth, node = 0, value["root"]
    while node["children"]:
        assert node["label"] == "example label"
        node = node["children"][0]
        depth += 1
    assert 1 <= depth <= 10  # recursion is cut off
    json.dumps(value)


def _req(**extra: Any) -> dict[str, Any]:
    return {"model": "simulated/echo", "messages": [{"role": "user", "content": "a b c"}], **extra}


def test_plan_choice_rules() -> None:
    plain = plan_choice(_req())
    assert plain.content == "Hello from the Gatewayz simulator. You said: a b c"
    assert plain.completion_tokens == 10 and plain.finish_reason == "stop"
    capped = plan_choice(_req(max_tokens=4, max_completion_tokens=None))
    assert (capped.content, capped.finish_reason) == ("Hello from the Gatewayz ", "length")
    empty = plan_choice(_req(), empty=True)
    assert (empty.content, empty.completion_tokens) == ("", 0)
    tools = [{"type": "function", "function": {"name": "f"}}]
    call = plan_choice(_req(model="x/tools", tools=tools))
    assert call.content is None and call.finish_reason == "tool_calls"
    assert call.tool_calls[0].arguments == "{}"
    assert call.completion_tokens == 2  # the name delta plus one argument chunk
    assert plan_choice(_req(model="x/tools", tools=tools), choice=1).tool_calls[0].id != (
        call.tool_calls[0].id
    )
    schema_req = _req(response_format={"type": "json_schema", "json_schema": {"name": "x"}})
    assert plan_choice(schema_req).content == '"example value"'


def test_prompt_tokens_rounding() -> None:
    msgs = [{"role": "system", "content": "abcde"}, {"role": "user", "content": "fgh"}]
    assert prompt_tokens(msgs) == math.ceil(8 / 4)
    assert prompt_tokens([{"role": "user", "content": ""}]) == 1
