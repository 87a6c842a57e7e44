"""OpenAI Responses-API responses out of canonical answers: the `response` object, its output
items and usage, stream events, and the error of a failed response. The stream's state machine
is the edge's (api/responses_stream.py); requests in are in `responses.py`.

Output items, in order: a `reasoning` item when the answer has reasoning (its text as the
summary, a provider's signature as `encrypted_content`, so that the item sent back continues a
signed turn), a `message` (`output_text`, or `refusal`) unless the answer is only tool calls, then
one `function_call` per tool call. An answer that stopped on its length is `incomplete` with
`incomplete_details.reason` `max_output_tokens` (`content_filter` when the provider filtered it).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from gatewayz.canonical.types import Message, TextPart, ToolCall, Usage
from gatewayz.errors import GatewayError
from gatewayz.ids import unique_hex
from gatewayz.providers.openai.responses import ResponseParams

INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """`resp_`, `msg_`, `fc_`, `rs_` ids: 48 hex digits, as OpenAI's are long."""
    return f"{prefix}_{unique_hex(24)}"


def status_of(finish_reason: str | None) -> tuple[str, dict[str, str] | None]:
    """(the response's status, its incomplete_details) for the answer's finish reason."""
    reason = INCOMPLETE.get(finish_reason or "")
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def usage_object(u: Usage) -> dict[str, Any]:
    """The Responses usage object (every detail present, 0 where the provider did not say), with
    our `cost` (USD charged) as chat has it, and `estimated` when the counts are estimates."""
    out: dict[str, Any] = {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": u.cached_tokens or 0,
            "cache_write_tokens": u.cache_write_tokens or 0,
        },
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens or 0},
        "total_tokens": u.total_tokens,
    }
    if u.estimated:
        out["estimated"] = True
    if u.cost is not None:
        out["cost"] = float(u.cost)
    return out


def response_object(
    p: ResponseParams,
    rid: str,
    created_at: int,
    model: str,
    *,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    incomplete: dict[str, str] | None = None,
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The `response` object: what the schema requires, the request's settings echoed."""
    body = {
        "id": rid,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": p.instructions,
        "max_output_tokens": p.max_output_tokens,
        "max_tool_calls": p.max_tool_calls,
        "model": model,
        "output": output,
        "parallel_tool_calls": p.parallel_tool_calls,
        "previous_response_id": p.previous_response_id,
        "prompt_cache_key": p.prompt_cache_key,
        "reasoning": p.reasoning,
        "safety_identifier": p.safety_identifier,
        "service_tier": "default",
        "store": p.store,
        "temperature": 1.0 if p.temperature is None else p.temperature,
        "text": p.text,
        "tool_choice": p.tool_choice,
        "tools": p.tools,
        "top_logprobs": p.top_logprobs,
        "top_p": 1.0 if p.top_p is None else p.top_p,
        "truncation": "disabled",
        "metadata": p.metadata,
    }
    # Present only with a value: the schema has no null for them.
    if usage is not None:
        body["usage"] = usage_object(usage)
    if p.user is not None:
        body["user"] = p.user
    return body


# ---------------------------------------------------------------- output items
def output_items(
    m: Message, finish_reason: str | None, logprobs: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """A whole answer's output items."""
    items: list[dict[str, Any]] = []
    if m.reasoning or m.reasoning_signature:
        items.append(reasoning_item(new_id("rs"), m.reasoning or "", m.reasoning_signature))
    text = message_text(m.content)
    if text or m.refusal or not m.tool_calls:
        content = []
        if text or not m.refusal:
            content.append(text_part(text, token_logprobs(logprobs)))
        if m.refusal:
            content.append(refusal_part(m.refusal))
        status = "incomplete" if finish_reason in INCOMPLETE else "completed"
        items.append(message_item(new_id("msg"), content, status))
    for tc in m.tool_calls or ():
        tc.id = tc.id or new_id("call")  # the id a function_call_output answers (and stored)
        items.append(function_call_item(new_id("fc"), tc, "completed"))
    return items


def message_text(content: str | list[Any] | None) -> str:
    if isinstance(content, list):
        return "".join(p.text for p in content if isinstance(p, TextPart))
    return content or ""


def token_logprobs(logprobs: dict[str, Any] | None) -> list[Any]:
    """Chat's per-token logprobs (`{"content": [...]}`) as output_text's list: the same
    fields (token, logprob, bytes, top_logprobs)."""
    content = (logprobs or {}).get("content")
    return content if isinstance(content, list) else []


def text_part(text: str, logprobs: list[Any] | None = None) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": logprobs or []}


def refusal_part(refusal: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": refusal}


def message_item(item_id: str, content: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def function_call_item(item_id: str, tc: ToolCall, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": tc.arguments,
        "call_id": tc.id,
        "name": tc.name,
    }


def reasoning_item(item_id: str, text: str, signature: str | None) -> dict[str, Any]:
    summary = [{"type": "summary_text", "text": text}] if text else []
    return {"id": item_id, "type": "reasoning", "summary": summary, "encrypted_content": signature}


# ---------------------------------------------------------------- streams and errors
def sse(kind: str, sequence_number: int, fields: dict[str, Any]) -> bytes:
    """One stream event: `event:` names it, `data:` carries it with its sequence number."""
    data = orjson.dumps({"type": kind, "sequence_number": sequence_number, **fields})
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def failure(err: GatewayError) -> dict[str, str]:
    """A failed response's `error` ({code, message}); the codes are the schema's."""
    if err.status == 429:
        code = "rate_limit_exceeded"
    elif 400 <= err.status < 500:
        code = "invalid_prompt"
    else:
        code = "server_error"
    return {"code": code, "message": err.message}
