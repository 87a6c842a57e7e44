"""OpenAI tools, both directions: function and custom tools, every `tool_choice` shape
(`allowed_tools` included), and the legacy `functions` / `function_call` / `role: "function"`
form, which is tools canonically (one call at a time, as the legacy API had it; the answer goes
back as `function_call`: `chat.py`).

Canonical `tool_choice`: "auto" | "none" | "required" | `{"name"}` (a function) |
`{"name", "kind": "custom"}` | `{"allowed": [names], "mode": "auto" | "required"}` (an empty
`allowed_tools` list of mode `auto` is "none": no tool may be called).
"""

from __future__ import annotations

from typing import Any

from gatewayz.canonical.types import ChatRequest, Tool, ToolCall
from gatewayz.errors import InvalidRequest
from gatewayz.providers.openai.schema import (
    AllowedToolsChoice,
    ChatCompletionIn,
    CustomToolCallIn,
    CustomToolChoice,
    CustomToolDef,
    MessageIn,
    NamedToolChoice,
    ToolCallIn,
)


# ---------------------------------------------------------------- edge: request in
def tools_in(m: ChatCompletionIn) -> tuple[list[Tool] | None, Any, bool | None, bool]:
    """(tools, tool_choice, parallel_tool_calls, legacy) of a request."""
    if m.functions is not None:
        if m.tools is not None:
            raise InvalidRequest(
                "Use either 'tools' or the legacy 'functions', not both.", param="functions"
            )
        tools = [Tool(f.name, f.description, f.parameters, f.strict) for f in m.functions]
        fc = m.function_call
        choice = fc if fc is None or isinstance(fc, str) else {"name": fc.name}
        return tools, choice, False, True  # the legacy API makes one call at a time
    if m.function_call is not None:
        if m.tools is not None:
            raise InvalidRequest(
                "Use either 'tools' or the legacy 'function_call', not both.",
                param="function_call",
            )
        if not isinstance(m.function_call, str):
            raise InvalidRequest("function_call requires functions.", param="function_call")
        # "none" (the document: the default when no functions are present) or "auto" with no
        # functions: there is nothing to call either way, so the request is one without tools.
        return None, None, None, False
    tools = [_tool_in(t) for t in m.tools] if m.tools else None
    choice = _choice_in(m.tool_choice)
    if isinstance(choice, dict) and "allowed" in choice:
        known = {t.name for t in tools or ()}
        unknown = [n for n in choice["allowed"] if n not in known]
        if unknown:
            raise InvalidRequest(
                f"tool_choice.allowed_tools names '{unknown[0]}', which is not in tools.",
                param="tool_choice.allowed_tools.tools",
            )
    return tools, choice, m.parallel_tool_calls, False


def _tool_in(t: Any) -> Tool:
    if isinstance(t, CustomToolDef):
        c = t.custom
        return Tool(c.name, c.description, kind="custom", format=c.format)
    f = t.function
    return Tool(f.name, f.description, f.parameters, f.strict)


def _choice_in(tc: Any) -> str | dict[str, Any] | None:
    if tc is None or isinstance(tc, str):
        return tc
    if isinstance(tc, NamedToolChoice):
        return {"name": tc.function.name}
    if isinstance(tc, CustomToolChoice):
        return {"name": tc.custom.name, "kind": "custom"}
    assert isinstance(tc, AllowedToolsChoice)
    names = []
    for i, ref in enumerate(tc.allowed_tools.tools):
        kind = ref.get("type")
        named = ref.get(kind) if kind in ("function", "custom") else None
        if not isinstance(named, dict) or not isinstance(named.get("name"), str):
            raise InvalidRequest(
                "Each allowed tool is {'type': 'function', 'function': {'name': ...}} or "
                "{'type': 'custom', 'custom': {'name': ...}}.",
                param=f"tool_choice.allowed_tools.tools[{i}]",
            )
        names.append(named["name"])
    if not names:  # no tool allowed: answer with a message, or nothing can satisfy `required`
        if tc.allowed_tools.mode == "auto":
            return "none"
        raise InvalidRequest(
            "tool_choice.allowed_tools of mode 'required' must allow at least one tool.",
            param="tool_choice.allowed_tools.tools",
        )
    return {"allowed": names, "mode": tc.allowed_tools.mode}


def calls_in(m: MessageIn, index: int) -> list[ToolCall] | None:
    """An assistant message's calls: tool calls, or the legacy `function_call` (its id made up
    from the message's place, for the `role: "function"` answer that follows)."""
    if m.function_call is not None:
        fc = m.function_call
        return [ToolCall(legacy_id(index), fc.name, fc.arguments)]
    if not m.tool_calls:
        return None
    out = []
    for tc in m.tool_calls:
        if isinstance(tc, CustomToolCallIn):
            out.append(ToolCall(tc.id, tc.custom.name, tc.custom.input, kind="custom"))
        else:
            assert isinstance(tc, ToolCallIn)
            out.append(ToolCall(tc.id, tc.function.name, tc.function.arguments))
    return out


def legacy_id(index: int) -> str:
    return f"call_function_{index}"


def function_result_id(messages: list[MessageIn], index: int) -> str:
    """The call a `role: "function"` message answers: the latest legacy call of that name
    before it (else of any name)."""
    name = messages[index].name
    fallback = None
    for j in range(index - 1, -1, -1):
        fc = messages[j].function_call
        if fc is not None:
            if fc.name == name:
                return legacy_id(j)
            fallback = fallback or legacy_id(j)
    return fallback or legacy_id(index)


# ---------------------------------------------------------------- family: request out
def tool_out(t: Tool) -> dict[str, Any]:
    if t.kind == "custom":
        custom: dict[str, Any] = {"name": t.name}
        if t.description is not None:
            custom["description"] = t.description
        if t.format is not None:
            custom["format"] = t.format
        return {"type": "custom", "custom": custom}
    fn: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        fn["description"] = t.description
    if t.parameters is not None:
        fn["parameters"] = t.parameters
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


def choice_out(req: ChatRequest) -> Any:
    tc = req.tool_choice
    if tc is None or isinstance(tc, str):
        return tc
    if "allowed" in tc:
        kinds = {t.name: t.kind for t in req.tools or ()}
        refs = [
            {"type": kinds.get(n, "function"), kinds.get(n, "function"): {"name": n}}
            for n in tc["allowed"]
        ]
        return {"type": "allowed_tools", "allowed_tools": {"mode": tc["mode"], "tools": refs}}
    if tc.get("kind") == "custom":
        return {"type": "custom", "custom": {"name": tc["name"]}}
    return {"type": "function", "function": {"name": tc["name"]}}


def call_out(tc: ToolCall) -> dict[str, Any]:
    if tc.kind == "custom":
        return {"id": tc.id, "type": "custom", "custom": {"name": tc.name, "input": tc.arguments}}
    fn = {"name": tc.name, "arguments": tc.arguments}
    return {"id": tc.id, "type": "function", "function": fn}
