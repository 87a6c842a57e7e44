"""Pure, deterministic content generation for the simulator: assistant text, JSON values generated
from a JSON Schema, tool calls, token pieces, logprobs and token counts. No I/O, no clocks: the
same request always produces the same output."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from .schema import schema_value

ECHO_PREFIX = "Hello from the Gatewayz simulator. You said: "
ECHO_MAX_CHARS = 200
TOOL_RESULT_PREFIX = "Tool result received: "
TOOL_RESULT_MAX_CHARS = 100
ARGUMENT_CHUNK_CHARS = 8
LOREM = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt "
    "ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation "
    "ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in "
    "reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur "
    "sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id "
    "est laborum."
)
_PIECE_RE = re.compile(r"\s*\S+\s*")


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str

    def argument_chunks(self) -> list[str]:
        """The arguments split the way a stream delivers them (~8 characters per delta)."""
        args, size = self.arguments, ARGUMENT_CHUNK_CHARS
        return [args[i : i + size] for i in range(0, len(args), size)]


@dataclass(slots=True)
class Completion:
    """One choice's output. ``content`` is None when the model answers with tool calls."""

    content: str | None
    pieces: list[str] = field(default_factory=list)
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str = "stop"

    @property
    def completion_tokens(self) -> int:
        if self.tool_calls:
            return sum(1 + len(call.argument_chunks()) for call in self.tool_calls)
        return len(self.pieces)


# ------------------------------------------------------------------------------- text helpers
def message_text(content: Any) -> str:
    """Text of a message ``content``: a string, or the concatenated ``text`` of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(t for t in texts if isinstance(t, str))
    return ""


def prompt_tokens(messages: list[Any]) -> int:
    """ceil(characters of all message text / 4), at least 1."""
    chars = 0
    for msg in messages:
        if not isinstance(msg, dict):
            continue
        chars += len(message_text(msg.get("content")))
        calls = msg.get("tool_calls")
        if isinstance(calls, list):
            for call in calls:
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict):
                    chars += len(str(fn.get("name") or "")) + len(str(fn.get("arguments") or ""))
    return max(1, math.ceil(chars / 4))


def split_pieces(text: str) -> list[str]:
    """Words with their trailing whitespace ("Hello ", "from ", ...); they join back to ``text``."""
    pieces: list[str] = _PIECE_RE.findall(text)
    if not pieces:
        return [text] if text else []
    return pieces


def apply_stop(text: str, stop: Any) -> tuple[str, bool]:
    """Cut ``text`` before the earliest occurrence of any stop sequence."""
    seqs = [stop] if isinstance(stop, str) else stop if isinstance(stop, list) else []
    cut = -1
    for seq in seqs:
        if isinstance(seq, str) and seq:
            at = text.find(seq)
            if at >= 0 and (cut < 0 or at < cut):
                cut = at
    return (text[:cut], True) if cut >= 0 else (text, False)


def token_logprobs(pieces: list[str], top_n: int, start: int = 0) -> list[dict[str, Any]]:
    """ChatCompletionTokenLogprob entries; piece i (counting from ``start``) has logprob
    -0.01*(i+1). The chosen token leads its ``top_logprobs`` list, then lower-ranked variants."""
    out: list[dict[str, Any]] = []
    for i, piece in enumerate(pieces, start):
        logprob = round(-0.01 * (i + 1), 4)
        top: list[dict[str, Any]] = []
        for rank in range(top_n):
            alt = piece if rank == 0 else f"{piece.strip() or piece}~{rank}"
            alt_lp = round(logprob - 0.5 * rank, 4)
            top.append({"token": alt, "logprob": alt_lp, "bytes": list(alt.encode())})
        out.append(
            {"token": piece, "logprob": logprob, "bytes": list(piece.encode()), "top_logprobs": top}
        )
    return out


# ------------------------------------------------------------------------- completion plan
def compact_json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _function_tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        return []
    fns = [t.get("function") for t in tools if isinstance(t, dict) and t.get("type") == "function"]
    return [f for f in fns if isinstance(f, dict) and isinstance(f.get("name"), str)]


def _named_choice(tool_choice: Any) -> str | None:
    if isinstance(tool_choice, dict) and tool_choice.get("type") == "function":
        fn = tool_choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return str(fn["name"])
    return None


def _tool_calls(req: dict[str, Any], choice: int) -> list[ToolCall]:
    """The calls the model makes, or [] when it should answer with text."""
    fns = _function_tools(req.get("tools"))
    tool_choice = req.get("tool_choice", "auto")
    messages = req["messages"]
    if not fns or tool_choice == "none":
        return []
    last = messages[-1]
    if isinstance(last, dict) and last.get("role") == "tool":
        return []
    named = _named_choice(tool_choice)
    model = str(req.get("model", ""))
    if not (model.endswith("tools") or tool_choice == "required" or named is not None):
        return []
    if named is not None:
        chosen = [f for f in fns if f["name"] == named][:1] or fns[:1]
    elif req.get("parallel_tool_calls") is not False and len(fns) >= 2:
        chosen = fns[:2]
    else:
        chosen = fns[:1]
    calls = []
    for i, fn in enumerate(chosen):
        params = fn.get("parameters")
        schema = params if isinstance(params, dict) else {"type": "object", "properties": {}}
        args = compact_json(schema_value(schema))
        seed = f"{choice}:{i}:{fn['name']}:{args}:{len(messages)}".encode()
        calls.append(ToolCall("call_" + hashlib.sha1(seed).hexdigest()[:24], fn["name"], args))
    return calls


def _last_user_text(messages: list[Any]) -> str:
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return message_text(msg.get("content"))
    return ""


def _text(req: dict[str, Any]) -> str:
    model = str(req.get("model", ""))
    messages = req["messages"]
    fmt = req.get("response_format")
    fmt_type = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt_type == "json_schema":
        spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return compact_json(schema_value(schema if isinstance(schema, dict) else {}))
    if fmt_type == "json_object" or model.endswith("json"):
        said = _last_user_text(messages)[:ECHO_MAX_CHARS]
        return json.dumps({"message": ECHO_PREFIX + said, "model": model}, ensure_ascii=False)
    last = messages[-1]
    if isinstance(last, dict) and last.get("role") == "tool":
        return TOOL_RESULT_PREFIX + message_text(last.get("content"))[:TOOL_RESULT_MAX_CHARS]
    if model.endswith("lorem"):
        return LOREM
    return ECHO_PREFIX + _last_user_text(messages)[:ECHO_MAX_CHARS]


def plan_choice(
    req: dict[str, Any], choice: int = 0, text: str | None = None, empty: bool = False
) -> Completion:
    """The output for choice ``choice`` of a validated request. ``text`` forces the content
    verbatim (no tools, stop or max_tokens applied); ``empty`` yields an empty answer."""
    if empty:
        return Completion(content="", pieces=[], finish_reason="stop")
    if text is not None:
        return Completion(content=text, pieces=split_pieces(text), finish_reason="stop")
    calls = _tool_calls(req, choice)
    if calls:
        return Completion(content=None, tool_calls=calls, finish_reason="tool_calls")
    content, _ = apply_stop(_text(req), req.get("stop"))
    pieces = split_pieces(content)
    limit = max_tokens(req)
    if limit is not None and len(pieces) > limit:
        pieces = pieces[:limit]
        return Completion(content="".join(pieces), pieces=pieces, finish_reason="length")
    return Completion(content=content, pieces=pieces, finish_reason="stop")


def max_tokens(req: dict[str, Any]) -> int | None:
    """``max_completion_tokens`` (or the older ``max_tokens``) when it is an integer."""
    limit = req.get("max_completion_tokens")
    if limit is None:
        limit = req.get("max_tokens")
    return limit if isinstance(limit, int) and not isinstance(limit, bool) else None
