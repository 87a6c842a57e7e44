"""OpenAI chat-completions responses, stream chunks and errors, both directions.

The OpenAI dialect (our `/v1/chat/completions`) uses `render_response`, `render_chunk` and
`render_error`; the OpenAI-compatible provider family uses `parse_response` and `parse_chunk`.
Requests are in `request.py`, streams coming in in `stream.py`. Everything in between is canonical
(`gatewayz.canonical.types`).
"""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.bounds import BadUsage, optional_count, token_count
from gatewayz.canonical.types import (
    ChatResponse,
    Choice,
    ChoiceDelta,
    Message,
    StreamChunk,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gatewayz.errors import GatewayError, UpstreamUnavailable
from gatewayz.providers.openai.tools import call_out
from gatewayz.providers.upstream_errors import error_message

upstream_error_message = error_message  # one implementation for every format


# ---------------------------------------------------------------- family: response in
def parse_response(body: bytes, provider: str) -> ChatResponse:
    try:
        raw = orjson.loads(body)
        choices = [
            Choice(
                index=c.get("index", i),
                message=_message_from(c.get("message") or {}),
                finish_reason=c.get("finish_reason"),
                logprobs=c.get("logprobs"),
            )
            for i, c in enumerate(raw["choices"])
        ]
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise bad_upstream(provider, exc) from None
    return ChatResponse(
        choices=choices,
        usage=parse_usage(raw.get("usage")),
        upstream_id=raw.get("id"),
        upstream_model=raw.get("model"),
    )


def bad_upstream(provider: str, exc: Exception) -> GatewayError:
    return UpstreamUnavailable(
        f"provider {provider} sent a malformed response ({type(exc).__name__})", provider=provider
    )


def content_text(value: Any) -> str | None:
    """A message's (or a stream delta's) content: a string or null, or a list of text parts
    (as some compatible providers answer), joined. Anything else — a JSON object — is not an
    answer to pass on: TypeError (a malformed response)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            text = part.get("text") if isinstance(part, dict) else None
            if not isinstance(text, str):
                raise TypeError("a content part without text")
            texts.append(text)
        return "".join(texts)
    raise TypeError(f"content is a {type(value).__name__}")


def _call_from(tc: dict[str, Any]) -> ToolCall:
    if tc.get("type") == "custom":  # a custom tool's call: free-form input
        c = tc["custom"]
        return ToolCall(tc.get("id", ""), c["name"], c.get("input") or "", kind="custom")
    fn = tc["function"]
    return ToolCall(tc.get("id", ""), fn["name"], fn.get("arguments") or "")


def _message_from(d: dict[str, Any]) -> Message:
    calls = d.get("tool_calls")
    return Message(
        role="assistant",
        content=content_text(d.get("content")),
        tool_calls=[_call_from(tc) for tc in calls] if calls else None,
        reasoning=d.get("reasoning_content") or d.get("reasoning"),
        refusal=d.get("refusal"),
    )


def parse_usage(u: dict[str, Any] | None) -> Usage | None:
    if not u or not isinstance(u, dict) or u.get("prompt_tokens") is None:
        return None
    ptd, ctd = u.get("prompt_tokens_details"), u.get("completion_tokens_details")
    try:
        return Usage(
            prompt_tokens=token_count(u["prompt_tokens"]),
            completion_tokens=token_count(u.get("completion_tokens") or 0),
            cached_tokens=optional_count(_detail(ptd, "cached_tokens")),
            reasoning_tokens=optional_count(_detail(ctd, "reasoning_tokens")),
        )
    except BadUsage:
        return Usage.unreadable()


def _detail(details: Any, name: str) -> Any:
    return details.get(name) if isinstance(details, dict) else None


def parse_chunk(raw: dict[str, Any]) -> StreamChunk:
    """One upstream SSE `data:` object to a canonical chunk (KeyError/TypeError if malformed)."""
    deltas = []
    for c in raw.get("choices") or ():
        d = c.get("delta") or {}
        calls = d.get("tool_calls")
        deltas.append(
            ChoiceDelta(
                index=c.get("index", 0),
                role=d.get("role"),
                content=content_text(d.get("content")),
                reasoning=d.get("reasoning_content") or d.get("reasoning"),
                refusal=d.get("refusal"),
                tool_calls=[_call_delta_from(tc) for tc in calls] if calls else None,
                finish_reason=c.get("finish_reason"),
                logprobs=c.get("logprobs"),
            )
        )
    return StreamChunk(deltas, parse_usage(raw.get("usage")))


def _call_delta_from(tc: dict[str, Any]) -> ToolCallDelta:
    if tc.get("type") == "custom" or "custom" in tc:
        c = tc.get("custom") or {}
        return ToolCallDelta(
            tc.get("index", 0), tc.get("id"), c.get("name"), c.get("input"), kind="custom"
        )
    fn = tc.get("function") or {}
    return ToolCallDelta(tc.get("index", 0), tc.get("id"), fn.get("name"), fn.get("arguments"))


# ---------------------------------------------------------------- edge: response out
def render_usage(u: Usage) -> dict[str, Any]:
    """OpenAI's usage object; the detail objects are always present (as OpenAI sends them),
    with 0 where the provider did not say, so responses have one shape whoever served them."""
    out: dict[str, Any] = {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens or 0},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens or 0},
    }
    if u.estimated:
        out["estimated"] = True
    if u.cost is not None:
        out["cost"] = float(u.cost)  # USD, as OpenRouter reports it
    return out


def render_response(
    resp: ChatResponse, rid: str, created: int, model: str, legacy: bool = False
) -> bytes:
    """The chat.completion object; `legacy`: the request used `functions`, so a call is
    answered as the message's `function_call` (finish_reason `function_call`)."""
    choices = []
    for c in resp.choices:
        m = c.message
        msg: dict[str, Any] = {"role": "assistant", "content": m.content, "refusal": m.refusal}
        finish = c.finish_reason
        if m.tool_calls and legacy:
            first = m.tool_calls[0]  # legacy requests ask for one call at a time
            msg["function_call"] = {"name": first.name, "arguments": first.arguments}
            finish = "function_call" if finish == "tool_calls" else finish
        elif m.tool_calls:
            msg["tool_calls"] = [call_out(tc) for tc in m.tool_calls]
        if m.reasoning:
            msg["reasoning_content"] = m.reasoning
        choices.append(
            {"index": c.index, "message": msg, "logprobs": c.logprobs, "finish_reason": finish}
        )
    body: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if resp.usage is not None:
        body["usage"] = render_usage(resp.usage)
    return orjson.dumps(body)


def render_chunk(
    chunk: StreamChunk,
    rid: str,
    created: int,
    model: str,
    include_usage: bool,
    legacy: bool = False,
) -> bytes:
    """One `data: {...}\\n\\n` SSE event (`legacy`: calls as `function_call` deltas)."""
    choices = []
    for d in chunk.choices:
        delta: dict[str, Any] = {}
        if d.role is not None:
            delta["role"] = d.role
        if d.content is not None:
            delta["content"] = d.content
        if d.reasoning is not None:
            delta["reasoning_content"] = d.reasoning
        if d.refusal is not None:
            delta["refusal"] = d.refusal
        finish = d.finish_reason
        if d.tool_calls and legacy:
            first = [tc for tc in d.tool_calls if tc.index == 0]
            fn = _fn_delta(first[0]) if first else {}
            if fn:
                delta["function_call"] = fn
        elif d.tool_calls:
            delta["tool_calls"] = [_call_delta(tc) for tc in d.tool_calls]
        if legacy and finish == "tool_calls":
            finish = "function_call"
        choices.append(
            {"index": d.index, "delta": delta, "logprobs": d.logprobs, "finish_reason": finish}
        )
    body: dict[str, Any] = {
        "id": rid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": choices,
    }
    if include_usage:
        body["usage"] = render_usage(chunk.usage) if chunk.usage is not None else None
    return b"data: " + orjson.dumps(body) + b"\n\n"


def _fn_delta(tc: ToolCallDelta) -> dict[str, str]:
    fn: dict[str, str] = {}
    if tc.name is not None:
        fn["name"] = tc.name
    if tc.arguments is not None:
        fn["arguments"] = tc.arguments
    return fn


def _call_delta(tc: ToolCallDelta) -> dict[str, Any]:
    call: dict[str, Any] = {"index": tc.index}
    kind = tc.kind or "function"
    if tc.id is not None:
        call["id"] = tc.id
        call["type"] = kind
    fn = _fn_delta(tc)
    if kind == "custom" and "arguments" in fn:
        fn["input"] = fn.pop("arguments")
    if fn:
        call[kind] = fn
    return call


DONE = b"data: [DONE]\n\n"


def render_error(err: GatewayError) -> bytes:
    return orjson.dumps(
        {
            "error": {
                "message": err.message,
                "type": err.type,
                "param": err.param,
                "code": err.code,
                **err.fields(),
            }
        }
    )
