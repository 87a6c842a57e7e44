"""Cohere v2 chat (`POST /v2/chat`), both directions for the Cohere family: canonical request →
Cohere body, Cohere response → canonical, Cohere error bodies. Stream events are read in
`stream.py`, the `/v1/models` list in `listing.py`.

Mapping decisions: `tool_plan` and `thinking` content are the canonical `reasoning`; usage is
Cohere's `billed_units` (what is charged), falling back to `tokens`; a tool_choice naming one
function becomes REQUIRED with only that function offered (Cohere cannot name one); a finish
reason of ERROR/TIMEOUT is an upstream failure, not an answer.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.bounds import BadUsage, optional_count, token_count
from gatewayz.canonical.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    TextPart,
    ToolCall,
    Usage,
)
from gatewayz.errors import (
    GatewayError,
    InvalidRequest,
    Unsupported,
    UpstreamError,
    UpstreamUnavailable,
)
from gatewayz.providers.upstream_errors import error_message as error_message

FINISH_REASONS = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}
FAILED_REASONS = frozenset({"ERROR", "TIMEOUT"})
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}


# ---------------------------------------------------------------- request out
def render_request(req: ChatRequest, native_model: str, stream: bool) -> bytes:
    if req.n > 1:
        raise Unsupported("cohere does not support n > 1.", param="n")
    documents: list[dict[str, Any]] = []
    body: dict[str, Any] = {
        "model": native_model,
        "messages": [_message(m, documents) for m in req.messages],
        "stream": stream,
    }
    if documents:
        body["documents"] = documents
    tools = req.tools or []
    choice = req.tool_choice
    if isinstance(choice, dict):
        tools = [t for t in tools if t.name == choice.get("name")] or tools
        body["tool_choice"] = "REQUIRED"
    elif choice == "required":
        body["tool_choice"] = "REQUIRED"
    elif choice == "none":
        body["tool_choice"] = "NONE"
    if tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": t.parameters or {"type": "object", "properties": {}},
                },
            }
            for t in tools
        ]
        if any(t.strict for t in tools):
            body["strict_tools"] = True
    for ours, theirs in (
        ("max_tokens", "max_tokens"),
        ("temperature", "temperature"),
        ("top_p", "p"),
        ("top_k", "k"),
        ("seed", "seed"),
        ("presence_penalty", "presence_penalty"),
        ("frequency_penalty", "frequency_penalty"),
    ):
        value = getattr(req, ours)
        if value is not None:
            body[theirs] = value
    if req.stop:
        body["stop_sequences"] = req.stop
    fmt = _response_format(req.response_format)
    if fmt is not None:
        body["response_format"] = fmt
    if req.thinking:
        if req.thinking.get("type") == "enabled":
            thinking: dict[str, Any] = {"type": "enabled"}
            if req.thinking.get("budget_tokens"):
                thinking["token_budget"] = req.thinking["budget_tokens"]
            body["thinking"] = thinking
        elif req.thinking.get("type") == "disabled":
            body["thinking"] = {"type": "disabled"}
    return orjson.dumps(body)


def _response_format(rf: dict[str, Any] | None) -> dict[str, Any] | None:
    if not rf or rf.get("type") == "text":
        return None
    if rf.get("type") == "json_schema":
        spec = rf.get("json_schema") or {}
        schema = spec.get("schema")
        return {"type": "json_object", "json_schema": schema} if schema else {"type": "json_object"}
    return {"type": "json_object"}


def _message(m: Message, documents: list[dict[str, Any]]) -> dict[str, Any]:
    if m.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": m.tool_call_id or "",
            "content": _text_only(m.content, "tool"),
        }
    role = _ROLES.get(m.role)
    if role is None:
        raise InvalidRequest(f"cohere does not accept messages with role '{m.role}'.")
    if role == "system":
        return {"role": "system", "content": _text_only(m.content, "system")}
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant"}
        text = _text_only(m.content, "assistant")
        if text:
            out["content"] = text
        if m.tool_calls:
            out["tool_calls"] = [
                {
                    "id": tc.id,
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments or "{}"},
                }
                for tc in m.tool_calls
            ]
            if m.reasoning:
                out["tool_plan"] = m.reasoning
        return out
    return {"role": "user", "content": _user_content(m.content, documents)}


def _text_only(content: str | list[Any] | None, role: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts = []
    for p in content:
        if not isinstance(p, TextPart):
            raise InvalidRequest(f"cohere accepts only text in {role} messages.")
        texts.append(p.text)
    return "".join(texts)


def _user_content(
    content: str | list[Any] | None, documents: list[dict[str, Any]]
) -> str | list[dict[str, Any]]:
    if content is None or isinstance(content, str):
        return content or ""
    parts: list[dict[str, Any]] = []
    for p in content:
        if isinstance(p, TextPart):
            parts.append({"type": "text", "text": p.text})
        elif isinstance(p, ImagePart):
            url: dict[str, Any] = {"url": p.url}
            if p.detail:
                url["detail"] = p.detail
            parts.append({"type": "image_url", "image_url": url})
        elif isinstance(p, DocumentPart) and p.media_type == "text/plain" and p.data is not None:
            data = {"text": p.data, **({"title": p.title} if p.title else {})}
            documents.append({"id": f"doc_{len(documents)}", "data": data})
        elif isinstance(p, DocumentPart | OtherPart):
            kind = p.media_type if isinstance(p, DocumentPart) else p.type
            raise InvalidRequest(f"cohere does not accept '{kind}' content.")
    return parts


# ---------------------------------------------------------------- response in
def parse_response(body: bytes, provider: str) -> ChatResponse:
    try:
        raw = orjson.loads(body)
        msg = raw["message"]  # a v2 chat response always has its message
        if not isinstance(msg, dict):
            raise TypeError("message is not an object")
        finish = raw.get("finish_reason")
        if finish in FAILED_REASONS:
            raise UpstreamError(
                f"provider {provider} failed to generate ({finish})", provider=provider
            )
        texts, thoughts = [], []
        for item in msg.get("content") or ():
            if item.get("type") == "text":
                texts.append(item["text"])
            elif item.get("type") == "thinking":
                thoughts.append(item["thinking"])
        if msg.get("tool_plan"):
            thoughts.append(msg["tool_plan"])
        calls = [
            ToolCall(
                tc.get("id", ""),
                tc["function"]["name"],
                tc["function"].get("arguments") or "{}",
            )
            for tc in msg.get("tool_calls") or ()
        ]
        message = Message(
            role="assistant",
            content="".join(texts) if texts or not calls else None,
            tool_calls=calls or None,
            reasoning="".join(thoughts) or None,
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise bad_upstream(provider, exc) from None
    return ChatResponse(
        choices=[Choice(0, message, FINISH_REASONS.get(finish, "stop"))],
        usage=parse_usage(raw.get("usage")),
        upstream_id=raw.get("id"),
    )


def parse_usage(u: Any) -> Usage | None:
    if not isinstance(u, dict):
        return None
    counts = u.get("billed_units") or {}
    if not isinstance(counts, dict) or counts.get("input_tokens") is None:
        counts = u.get("tokens") or {}
    if not isinstance(counts, dict) or counts.get("input_tokens") is None:
        return None
    try:
        return Usage(
            prompt_tokens=token_count(counts["input_tokens"]),
            completion_tokens=token_count(counts.get("output_tokens") or 0),
            cached_tokens=optional_count(u.get("cached_tokens")),
        )
    except BadUsage:
        return Usage.unreadable()


def bad_upstream(provider: str, exc: Exception) -> GatewayError:
    return UpstreamUnavailable(
        f"provider {provider} sent a malformed response ({type(exc).__name__})", provider=provider
    )
