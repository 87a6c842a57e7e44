"""The Anthropic format's answers: a Messages request → the deterministic planner's
(`simulators.content`) OpenAI-shaped view of it → the output blocks (thinking, text, tool_use,
with stop sequences and max_tokens applied; JSON following the schema of structured outputs)
→ Anthropic's exact SSE event sequence."""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass, field
from typing import Any

import orjson

from ...content import ToolCall, message_text, plan_choice, prompt_tokens, split_pieces
from ...faults import Fault

THINKING_PREFIX = "Let me think about this: "


def _plan_request(p: dict[str, Any]) -> dict[str, Any]:
    """The OpenAI-shaped request the content planner understands."""
    msgs: list[dict[str, Any]] = []
    system = p.get("system")
    if system:
        msgs.append({"role": "system", "content": system})
    for m in p["messages"]:
        content = m["content"]
        if isinstance(content, str):
            msgs.append({"role": m["role"], "content": content})
            continue
        texts: list[dict[str, Any]] = []
        calls: list[dict[str, Any]] = []
        for b in content:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "tool_result":
                result = b.get("content")
                text = result if isinstance(result, str) else message_text(result)
                msgs.append({"role": "tool", "content": text})
            elif b.get("type") == "tool_use":
                args = orjson.dumps(b.get("input") or {}).decode()
                calls.append({"function": {"name": b.get("name"), "arguments": args}})
            elif b.get("type") in ("text", "thinking"):
                texts.append({"type": "text", "text": b.get("text") or b.get("thinking") or ""})
        if texts or calls or m["role"] == "assistant":
            msg: dict[str, Any] = {"role": m["role"], "content": texts}
            if calls:
                msg["tool_calls"] = calls
            msgs.append(msg)
    tools = [
        {"type": "function", "function": {"name": t["name"], "parameters": t.get("input_schema")}}
        for t in p.get("tools") or ()
        if isinstance(t, dict) and isinstance(t.get("name"), str)
    ]
    plan: dict[str, Any] = {"model": p["model"], "messages": msgs, "tools": tools}
    choice = p.get("tool_choice") if isinstance(p.get("tool_choice"), dict) else {}
    kind = choice.get("type", "auto")
    if kind == "any":
        plan["tool_choice"] = "required"
    elif kind == "tool":
        plan["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    else:
        plan["tool_choice"] = "none" if kind == "none" else "auto"
    plan["parallel_tool_calls"] = choice.get("disable_parallel_tool_use") is not True
    # Structured outputs (`output_config.format`, the beta's `output_format`): JSON that
    # follows the schema, as the OpenAI side answers `response_format` json_schema.
    config = p.get("output_config") if isinstance(p.get("output_config"), dict) else {}
    fmt = config.get("format") or p.get("output_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        plan["response_format"] = {"type": "json_schema", "json_schema": fmt}
    return plan


def input_tokens(p: dict[str, Any]) -> int:
    plan = _plan_request(p)
    tools = p.get("tools")
    extra = math.ceil(len(orjson.dumps(tools)) / 4) if tools else 0
    return prompt_tokens(plan["messages"]) + extra


@dataclass(slots=True)
class Output:
    thinking: list[str] = field(default_factory=list)
    signature: str = ""
    text: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str = "end_turn"
    stop_sequence: str | None = None

    @property
    def output_tokens(self) -> int:
        calls = sum(1 + len(c.argument_chunks()) for c in self.calls)
        return len(self.thinking) + len(self.text) + calls

    def blocks(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        if self.thinking:
            thought = "".join(self.thinking)
            out.append({"type": "thinking", "thinking": thought, "signature": self.signature})
        if self.text:
            out.append({"type": "text", "text": "".join(self.text)})
        for c in self.calls:
            out.append(
                {"type": "tool_use", "id": c.id, "name": c.name, "input": orjson.loads(c.arguments)}
            )
        return out


def _earliest_stop(text: str, stops: Any) -> tuple[str, str | None]:
    best: tuple[int, str] | None = None
    for seq in stops if isinstance(stops, list) else ():
        at = text.find(seq) if isinstance(seq, str) and seq else -1
        if at >= 0 and (best is None or at < best[0]):
            best = (at, seq)
    return (text[: best[0]], best[1]) if best else (text, None)


def plan_output(p: dict[str, Any], fault: Fault) -> Output:
    plan = _plan_request(p)
    out = Output()
    if fault.empty_stream:
        return out
    thinking = p.get("thinking")
    if fault.text is None and isinstance(thinking, dict) and thinking.get("type") == "enabled":
        last = next((m for m in reversed(plan["messages"]) if m["role"] != "assistant"), {})
        thought = THINKING_PREFIX + message_text(last.get("content"))[:80]
        out.thinking = split_pieces(thought)
        out.signature = base64.b64encode(hashlib.sha256(thought.encode()).digest()).decode()
    done = plan_choice(plan, 0, text=fault.text)
    if done.tool_calls:
        out.calls = [
            ToolCall("toolu_" + c.id.removeprefix("call_"), c.name, c.arguments)
            for c in done.tool_calls
        ]
        out.stop_reason = "tool_use"
        return out
    text = done.content or ""
    if fault.text is None:
        text, out.stop_sequence = _earliest_stop(text, p.get("stop_sequences"))
    pieces = split_pieces(text)
    limit = p["max_tokens"] - len(out.thinking)
    if fault.text is None and len(pieces) > limit:
        pieces = pieces[: max(0, limit)]
        out.stop_reason = "max_tokens"
    elif out.stop_sequence is not None:
        out.stop_reason = "stop_sequence"
    out.text = pieces
    return out


def usage_dict(input_toks: int, output_toks: int) -> dict[str, int]:
    return {
        "input_tokens": input_toks,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_toks,
    }


def sse_event(payload: dict[str, Any]) -> bytes:
    """One SSE event, named by the payload's type."""
    name = payload["type"].encode()
    return b"event: " + name + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


def event_sequence(msg: dict[str, Any], out: Output, fault: Fault) -> list[bytes]:
    start = {**msg, "content": [], "stop_reason": None, "stop_sequence": None}
    if not fault.omit_usage:
        start["usage"] = usage_dict(msg["usage"]["input_tokens"], 1)
    events = [sse_event({"type": "message_start", "message": start})]
    if fault.malformed:
        events.append(b"event: content_block_delta\ndata: {not json\n\n")
    events.append(sse_event({"type": "ping"}))

    blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    if out.thinking:
        deltas = [{"type": "thinking_delta", "thinking": t} for t in out.thinking]
        deltas.append({"type": "signature_delta", "signature": out.signature})
        blocks.append(({"type": "thinking", "thinking": "", "signature": ""}, deltas))
    if out.text:
        deltas = [{"type": "text_delta", "text": t} for t in out.text]
        blocks.append(({"type": "text", "text": ""}, deltas))
    for c in out.calls:
        pieces = ["", *c.argument_chunks()]  # Anthropic opens with an empty partial_json
        deltas = [{"type": "input_json_delta", "partial_json": a} for a in pieces]
        blocks.append(({"type": "tool_use", "id": c.id, "name": c.name, "input": {}}, deltas))
    for i, (first, deltas) in enumerate(blocks):
        events.append(
            sse_event(
                {"type": "content_block_start", "index": i, "content_block": first},
            )
        )
        for d in deltas:
            events.append(sse_event({"type": "content_block_delta", "index": i, "delta": d}))
        events.append(sse_event({"type": "content_block_stop", "index": i}))
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": out.stop_reason, "stop_sequence": out.stop_sequence},
    }
    if not fault.omit_usage:
        delta["usage"] = {"output_tokens": out.output_tokens}
    events.append(sse_event(delta))
    events.append(sse_event({"type": "message_stop"}))
    return events
