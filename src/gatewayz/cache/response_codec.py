"""A stored answer: the canonical response (never a dialect's rendering of it, so one entry
serves both dialects and either delivery), which provider produced it, and when.

`encode` / `decode` turn an entry into bytes and back (a fresh object per hit: the request path
mutates usage). `replay` turns a response into the canonical chunks a stream of it would have
carried; `StreamRecorder` does the reverse, assembling a streamed answer for storing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from gatewayz.canonical.types import (
    ChatResponse,
    Choice,
    ChoiceDelta,
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    Part,
    StreamChunk,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)

ENTRY_VERSION = 1


@dataclass(slots=True)
class CachedAnswer:
    response: ChatResponse
    provider: str  # the slug of the provider that produced it
    native_model: str
    created: float  # unix time


def complete(resp: ChatResponse) -> bool:
    """Worth storing: at least one choice, each finished, and something in it."""
    if not resp.choices:
        return False
    produced = False
    for c in resp.choices:
        if c.finish_reason is None:
            return False
        m = c.message
        if m.content or m.tool_calls or m.reasoning or m.refusal:
            produced = True
    return produced


# ---------------------------------------------------------------- bytes
def encode(resp: ChatResponse, provider: str, native_model: str) -> bytes:
    return orjson.dumps(
        {
            "v": ENTRY_VERSION,
            "provider": provider,
            "native_model": native_model,
            "created": time.time(),
            "choices": [_choice_out(c) for c in resp.choices],
            "usage": None if resp.usage is None else _usage_out(resp.usage),
        }
    )


def decode(data: bytes) -> CachedAnswer:
    """ValueError / KeyError / TypeError for bytes that are not an entry of this version."""
    raw = orjson.loads(data)
    if raw.get("v") != ENTRY_VERSION:
        raise ValueError(f"cache entry version {raw.get('v')!r}")
    usage = raw["usage"]
    return CachedAnswer(
        response=ChatResponse(
            choices=[_choice_in(c) for c in raw["choices"]],
            usage=None if usage is None else Usage(**usage),
        ),
        provider=raw["provider"],
        native_model=raw["native_model"],
        created=raw["created"],
    )


def _usage_out(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "cached_tokens": u.cached_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "estimated": u.estimated,
    }  # never the cost: each hit is priced on its own


def _choice_out(c: Choice) -> dict[str, Any]:
    m = c.message
    return {
        "index": c.index,
        "finish_reason": c.finish_reason,
        "stop_sequence": c.stop_sequence,
        "logprobs": c.logprobs,
        "message": {
            "role": m.role,
            "content": m.content if not isinstance(m.content, list) else _parts_out(m.content),
            "name": m.name,
            "tool_calls": [_call_out(t) for t in m.tool_calls] if m.tool_calls else None,
            "reasoning": m.reasoning,
            "reasoning_signature": m.reasoning_signature,
            "refusal": m.refusal,
        },
    }


def _call_out(t: ToolCall) -> list[str]:
    """[id, name, arguments], and the kind when it is not a function's."""
    return [t.id, t.name, t.arguments] + ([t.kind] if t.kind != "function" else [])


def _choice_in(c: dict[str, Any]) -> Choice:
    m = c["message"]
    content = m["content"]
    calls = m["tool_calls"]
    return Choice(
        index=c["index"],
        finish_reason=c["finish_reason"],
        stop_sequence=c["stop_sequence"],
        logprobs=c["logprobs"],
        message=Message(
            role=m["role"],
            content=_parts_in(content) if isinstance(content, list) else content,
            name=m["name"],
            tool_calls=[ToolCall(*t) for t in calls] if calls else None,
            reasoning=m["reasoning"],
            reasoning_signature=m["reasoning_signature"],
            refusal=m["refusal"],
        ),
    )


def _parts_out(parts: list[Part]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for p in parts:
        if isinstance(p, TextPart):
            out.append({"t": "text", "text": p.text})
        elif isinstance(p, ImagePart):
            out.append({"t": "image", "url": p.url, "detail": p.detail})
        elif isinstance(p, DocumentPart):
            out.append(
                {
                    "t": "doc",
                    "media_type": p.media_type,
                    "data": p.data,
                    "url": p.url,
                    "title": p.title,
                }
            )
        else:
            out.append({"t": "other", "type": p.type, "data": p.data})
    return out


def _parts_in(raw: list[dict[str, Any]]) -> list[Part]:
    out: list[Part] = []
    for p in raw:
        kind = p["t"]
        if kind == "text":
            out.append(TextPart(p["text"]))
        elif kind == "image":
            out.append(ImagePart(p["url"], p["detail"]))
        elif kind == "doc":
            out.append(DocumentPart(p["media_type"], p["data"], p["url"], p["title"]))
        else:
            out.append(OtherPart(p["type"], p["data"]))
    return out


# ---------------------------------------------------------------- streams
def replay(resp: ChatResponse) -> list[StreamChunk]:
    """The chunks of a stream carrying `resp`, choice after choice: the role with any
    reasoning, its signature, the text (with its logprobs), a refusal, the tool calls, then the
    finish. Usage is not among them (the pipeline ends every stream with its own usage chunk)."""
    out: list[StreamChunk] = []
    for c in resp.choices:
        m, i = c.message, c.index
        out.append(StreamChunk([ChoiceDelta(i, role="assistant", reasoning=m.reasoning)]))
        if m.reasoning_signature:
            out.append(StreamChunk([ChoiceDelta(i, reasoning_signature=m.reasoning_signature)]))
        text = _text(m.content)
        if text or c.logprobs:
            out.append(StreamChunk([ChoiceDelta(i, content=text, logprobs=c.logprobs)]))
        if m.refusal:
            out.append(StreamChunk([ChoiceDelta(i, refusal=m.refusal)]))
        for n, tc in enumerate(m.tool_calls or ()):
            kind = tc.kind if tc.kind != "function" else None
            delta = ToolCallDelta(n, id=tc.id, name=tc.name, arguments=tc.arguments, kind=kind)
            out.append(StreamChunk([ChoiceDelta(i, tool_calls=[delta])]))
        finish = ChoiceDelta(i, finish_reason=c.finish_reason, stop_sequence=c.stop_sequence)
        out.append(StreamChunk([finish]))
    return out


def _text(content: str | list[Part] | None) -> str | None:
    if isinstance(content, list):
        return "".join(p.text for p in content if isinstance(p, TextPart)) or None
    return content


class _Building:
    __slots__ = ("calls", "finish", "logprobs", "reasoning", "refusal", "signature", "stop", "text")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.signature: str | None = None
        self.refusal: list[str] = []
        self.calls: dict[int, list[str]] = {}  # index → [id, name, arguments, kind]
        self.logprobs: dict[str, Any] | None = None
        self.finish: str | None = None
        self.stop: str | None = None


class StreamRecorder:
    """Assembles the canonical chunks of a stream, as they pass, into the response they
    amount to."""

    def __init__(self) -> None:
        self._choices: dict[int, _Building] = {}

    def add(self, chunk: StreamChunk) -> None:
        for d in chunk.choices:
            b = self._choices.get(d.index)
            if b is None:
                b = self._choices[d.index] = _Building()
            if d.content:
                b.text.append(d.content)
            if d.reasoning:
                b.reasoning.append(d.reasoning)
            if d.reasoning_signature:
                b.signature = (b.signature or "") + d.reasoning_signature
            if d.refusal:
                b.refusal.append(d.refusal)
            for tc in d.tool_calls or ():
                call = b.calls.setdefault(tc.index, ["", "", "", "function"])
                call[0] = tc.id or call[0]
                call[1] = tc.name or call[1]
                call[2] += tc.arguments or ""
                call[3] = tc.kind or call[3]
            if d.logprobs:
                b.logprobs = _merge_logprobs(b.logprobs, d.logprobs)
            if d.finish_reason is not None:
                b.finish = d.finish_reason
            if d.stop_sequence is not None:
                b.stop = d.stop_sequence

    def response(self, usage: Usage | None) -> ChatResponse:
        choices = []
        for index in sorted(self._choices):
            b = self._choices[index]
            calls = [ToolCall(*b.calls[n]) for n in sorted(b.calls)]
            message = Message(
                role="assistant",
                content="".join(b.text) or None,
                tool_calls=calls or None,
                reasoning="".join(b.reasoning) or None,
                reasoning_signature=b.signature,
                refusal="".join(b.refusal) or None,
            )
            choices.append(Choice(index, message, b.finish, b.logprobs, b.stop))
        return ChatResponse(choices=choices, usage=usage)


def _merge_logprobs(acc: dict[str, Any] | None, more: dict[str, Any]) -> dict[str, Any]:
    """OpenAI's streamed logprobs are `{"content": [...], "refusal": [...]}` per chunk."""
    out = dict(acc or {})
    for k, v in more.items():
        if isinstance(v, list):
            out[k] = [*(out.get(k) or []), *v]
        elif k not in out or out[k] is None:
            out[k] = v
    return out
