"""The request as a provider of one family gets it, and its answer as the caller expects it:
what the fidelity table (`fidelity.py`) says the gateway emulates or translates the same way
for every family that lacks it, done here once.

    json_object           a system instruction (Anthropic has no JSON mode, and prefilling the
                          answer with `{` is refused by its newest models), after the caller's
                          own system messages so a cached system prefix stays the same
    allowed_tools         only the allowed tools are sent, tool_choice auto / required
    n                     one choice per request (the caller sends n: `pipeline/emulation.py`)
    parallel_tool_calls   false: the answer keeps its first tool call (`first_call_only`,
                          `FirstCallOnly` for streams)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from gatewayz.canonical.fidelity import EMULATED, TRANSLATED, status
from gatewayz.canonical.types import ChatRequest, ChatResponse, Message, StreamChunk

JSON_INSTRUCTION = (
    "Respond with one valid JSON object and nothing else: no text before or after it and no "
    "Markdown code fences."
)


def prepare(req: ChatRequest, family: str) -> ChatRequest:
    """`req` for a provider of `family` (a copy when anything changes)."""
    changes: dict[str, Any] = {}
    rf = req.response_format
    if rf and rf.get("type") == "json_object" and status(family, "json_object") == EMULATED:
        changes["messages"] = _with_instruction(req.messages, JSON_INSTRUCTION)
    tc = req.tool_choice
    if isinstance(tc, dict) and "allowed" in tc and status(family, "allowed_tools") == TRANSLATED:
        allowed = set(tc["allowed"])
        changes["tools"] = [t for t in req.tools or () if t.name in allowed] or None
        changes["tool_choice"] = "required" if tc["mode"] == "required" else "auto"
    if req.n > 1 and status(family, "n") == EMULATED:
        changes["n"] = 1
    return dataclasses.replace(req, **changes) if changes else req


def _with_instruction(messages: list[Message], text: str) -> list[Message]:
    lead = 0
    while lead < len(messages) and messages[lead].role in ("system", "developer"):
        lead += 1
    return [*messages[:lead], Message("system", text), *messages[lead:]]


def fans_out(req: ChatRequest, family: str) -> bool:
    """Whether `n` choices take n requests to a provider of `family`."""
    return req.n > 1 and status(family, "n") == EMULATED


def keeps_first_call(req: ChatRequest, family: str) -> bool:
    """Whether the answer must be cut to its first tool call (parallel_tool_calls false)."""
    return (
        req.parallel_tool_calls is False
        and bool(req.tools)
        and status(family, "parallel_tool_calls") == EMULATED
    )


def first_call_only(resp: ChatResponse) -> ChatResponse:
    for c in resp.choices:
        calls = c.message.tool_calls
        if calls and len(calls) > 1:
            c.message.tool_calls = calls[:1]
    return resp


def first_call_chunk(chunk: StreamChunk) -> StreamChunk | None:
    """A stream chunk without the deltas of any tool call but the first (None: nothing left)."""
    changed = False
    for d in chunk.choices:
        if d.tool_calls and any(tc.index > 0 for tc in d.tool_calls):
            d.tool_calls = [tc for tc in d.tool_calls if tc.index == 0] or None
            changed = True
    if changed and chunk.usage is None and not any(_has_content(d) for d in chunk.choices):
        return None
    return chunk


def _has_content(d: Any) -> bool:
    return any(
        getattr(d, name) is not None
        for name in (
            "role",
            "content",
            "reasoning",
            "reasoning_signature",
            "refusal",
            "tool_calls",
            "finish_reason",
            "logprobs",
            "stop_sequence",
        )
    )
