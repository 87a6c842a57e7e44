"""The Gemini format's answers: a `generateContent` body → the OpenAI-shaped view the shared
planner (`content.plan_choice`) reads, its completions → candidates, usage metadata and the
stream's events (AI Studio and Vertex answer alike)."""

from __future__ import annotations

import base64
from typing import Any

import orjson

from ...content import Completion, compact_json
from .checks import json_schema


def planned(body: dict[str, Any], model: str) -> dict[str, Any]:
    """An OpenAI-shaped view of the request for `content.plan_choice`."""
    messages: list[dict[str, Any]] = []
    system = "".join(
        p.get("text", "") for p in (body.get("systemInstruction") or {}).get("parts", ())
    )
    if system:
        messages.append({"role": "system", "content": system})
    for c in body["contents"]:
        parts = c["parts"]
        text = "".join(p["text"] for p in parts if "text" in p and not p.get("thought"))
        for p in parts:
            if "functionResponse" in p:
                messages.append(
                    {"role": "tool", "content": compact_json(p["functionResponse"]["response"])}
                )
        if c.get("role") == "model":
            calls = [
                {
                    "function": {
                        "name": p["functionCall"]["name"],
                        "arguments": compact_json(p["functionCall"].get("args", {})),
                    }
                }
                for p in parts
                if "functionCall" in p
            ]
            messages.append({"role": "assistant", "content": text, "tool_calls": calls})
        elif text or not any("functionResponse" in p for p in parts):
            messages.append({"role": "user", "content": text})
    fns = [d for t in body.get("tools") or () for d in (t.get("functionDeclarations") or ())]
    fcc = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    gen = body.get("generationConfig") or {}
    planned: dict[str, Any] = {"model": model, "messages": messages}
    if fns:
        planned["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": d["name"],
                    "parameters": json_schema(
                        d.get("parameters") or {"type": "object", "properties": {}}
                    ),
                },
            }
            for d in fns
        ]
        allowed = fcc.get("allowedFunctionNames") or []
        mode = fcc.get("mode", "AUTO")
        if mode == "ANY" and len(allowed) == 1:
            planned["tool_choice"] = {"type": "function", "function": {"name": allowed[0]}}
        else:
            planned["tool_choice"] = {"ANY": "required", "NONE": "none"}.get(mode, "auto")
    if "responseSchema" in gen:
        planned["response_format"] = {
            "type": "json_schema",
            "json_schema": {"schema": json_schema(gen["responseSchema"])},
        }
    elif gen.get("responseMimeType") == "application/json":
        planned["response_format"] = {"type": "json_object"}
    for src, dst in (("stopSequences", "stop"), ("maxOutputTokens", "max_tokens")):
        if src in gen:
            planned[dst] = gen[src]
    return planned


def candidate(c: Completion, index: int, thought: str | None, model: str) -> dict[str, Any]:
    """One candidate of the answer (with a thought part first when `thought` is given)."""
    parts: list[dict[str, Any]] = [{"text": thought, "thought": True}] if thought else []
    if c.tool_calls:
        parts += [
            {"functionCall": {"name": tc.name, "args": orjson.loads(tc.arguments)}}
            for tc in c.tool_calls
        ]
        if thought:
            sig = base64.b64encode(f"sim-signature:{model}:{index}".encode()).decode()
            parts[1]["thoughtSignature"] = sig
    else:
        parts.append({"text": c.content or ""})
    reason = "MAX_TOKENS" if c.finish_reason == "length" else "STOP"
    return {"content": {"role": "model", "parts": parts}, "finishReason": reason, "index": index}


def usage_metadata(ptoks: int, choices: list[Completion], thought: str | None) -> dict[str, Any]:
    out_toks = sum(c.completion_tokens for c in choices)
    think = len(thought.split()) * len(choices) if thought else 0
    usage = {
        "promptTokenCount": ptoks,
        "candidatesTokenCount": out_toks,
        "totalTokenCount": ptoks + out_toks + think,
    }
    if think:
        usage["thoughtsTokenCount"] = think
    return usage


def stream_events(
    cands: list[dict[str, Any]],
    choices: list[Completion],
    base: dict[str, Any],
    usage: dict[str, Any] | None,
) -> list[dict[str, Any]]:
    """Stream events: a thought, then the text piece by piece (or all function calls at once);
    the last event of a candidate carries its finishReason, the very last the full usage."""
    events = []
    for cand, c in zip(cands, choices, strict=True):
        parts = cand["content"]["parts"]
        pieces = [[p] for p in parts if p.get("thought")]
        calls = [p for p in parts if "functionCall" in p]
        pieces += [calls] if calls else [[{"text": t}] for t in (c.pieces or [c.content or ""])]
        for k, group in enumerate(pieces):
            ev: dict[str, Any] = {
                "content": {"role": "model", "parts": group},
                "index": cand["index"],
            }
            if k == len(pieces) - 1:
                ev["finishReason"] = cand["finishReason"]
            events.append({"candidates": [ev], **base})
    if usage is not None:
        for ev in events:
            ev["usageMetadata"] = {
                "promptTokenCount": usage["promptTokenCount"],
                "totalTokenCount": usage["promptTokenCount"],
            }
        if events:
            events[-1]["usageMetadata"] = usage
        else:
            events.append({"usageMetadata": usage, **base})
    return events
