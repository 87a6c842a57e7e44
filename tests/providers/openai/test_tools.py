"""OpenAI tool choices read at the edge (providers/openai/tools.py): the legacy `function_call`
without `functions`, and an `allowed_tools` choice that allows no tool."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gatewayz.errors import InvalidRequest
from gatewayz.providers.openai.request import parse_request

HI = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def _parse(**fields: Any) -> Any:
    return parse_request(orjson.dumps({"model": "m", "messages": HI, **fields}))


@pytest.mark.parametrize("value", ["none", "auto"])
def test_function_call_none_or_auto_without_functions_is_a_request_without_tools(
    value: str,
) -> None:
    # The document: "none" is the default when no functions are present; "auto" with nothing
    # to call is the same request.
    req = _parse(function_call=value)
    assert (req.tools, req.tool_choice, req.legacy_functions) == (None, None, False)


def test_function_call_naming_a_function_still_needs_functions() -> None:
    with pytest.raises(InvalidRequest) as e:
        _parse(function_call={"name": "f"})
    assert e.value.param == "function_call"


def test_function_call_with_tools_is_refused_naming_function_call() -> None:
    with pytest.raises(InvalidRequest) as e:
        _parse(tools=[TOOL], function_call="none")
    assert e.value.param == "function_call" and "not both" in e.value.message


def test_function_call_with_functions_is_the_legacy_form() -> None:
    fn = {"name": "f", "parameters": {"type": "object"}}
    req = _parse(functions=[fn], function_call="auto")
    assert req.legacy_functions and req.tool_choice == "auto" and req.tools


def _allowed(mode: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "allowed_tools", "allowed_tools": {"mode": mode, "tools": tools}}


def test_no_allowed_tool_in_auto_mode_means_no_tool_call() -> None:
    req = _parse(tools=[TOOL], tool_choice=_allowed("auto", []))
    assert req.tool_choice == "none"
    assert req.tools is not None and [t.name for t in req.tools] == ["f"]


def test_no_allowed_tool_in_required_mode_is_refused_naming_the_list() -> None:
    with pytest.raises(InvalidRequest) as e:
        _parse(tools=[TOOL], tool_choice=_allowed("required", []))
    assert e.value.param == "tool_choice.allowed_tools.tools"
    assert "at least one tool" in e.value.message


def test_allowed_tools_naming_tools_stay_allowed_tools() -> None:
    ref = {"type": "function", "function": {"name": "f"}}
    req = _parse(tools=[TOOL], tool_choice=_allowed("required", [ref]))
    assert req.tool_choice == {"allowed": ["f"], "mode": "required"}
