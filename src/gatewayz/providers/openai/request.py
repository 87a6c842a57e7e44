"""OpenAI chat-completions requests, both directions: `parse_request` validates a client's
body into the canonical request (the OpenAI dialect); `render_request` turns a canonical request
into the body an OpenAI-compatible provider expects (the OpenAI-compatible family)."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from gatewayz.canonical.bounds import check_model_id, check_output_tokens
from gatewayz.canonical.types import (
    ChatRequest,
    ImagePart,
    Message,
    OtherPart,
    Part,
    TextPart,
    Tool,
    ToolCall,
)
from gatewayz.errors import InvalidRequest
from gatewayz.providers.openai.schema import ChatCompletionIn, MessageIn

_KNOWN = frozenset(ChatCompletionIn.model_fields) | {"stream_options"}


# ---------------------------------------------------------------- edge: request in
def parse_request(body: bytes) -> ChatRequest:
    """Validate a client's JSON body into a canonical request; InvalidRequest on bad input."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"We could not parse the JSON body of your request: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    try:
        m = ChatCompletionIn.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    check_model_id(m.model)
    check_output_tokens(m.max_tokens, "max_tokens")
    check_output_tokens(m.max_completion_tokens, "max_completion_tokens")
    if m.tool_choice not in (None, "none") and not m.tools and m.tool_choice != "auto":
        raise InvalidRequest("tool_choice requires tools to be specified.", param="tool_choice")
    if m.top_logprobs is not None and not m.logprobs:
        raise InvalidRequest("top_logprobs requires logprobs to be true.", param="top_logprobs")
    rf = None
    if m.response_format is not None:
        if m.response_format.type == "json_schema" and m.response_format.json_schema is None:
            raise InvalidRequest(
                "response_format of type json_schema requires a json_schema object.",
                param="response_format.json_schema",
            )
        rf = m.response_format.model_dump(exclude_none=True, by_alias=True)
    tool_choice: str | dict[str, str] | None
    if m.tool_choice is None or isinstance(m.tool_choice, str):
        tool_choice = m.tool_choice
    else:
        tool_choice = {"name": m.tool_choice.function.name}
    stop = [m.stop] if isinstance(m.stop, str) else m.stop
    return ChatRequest(
        model=m.model,
        messages=[_message_in(msg) for msg in m.messages],
        stream=bool(m.stream),
        include_usage=bool(m.stream_options and m.stream_options.include_usage),
        max_tokens=m.max_completion_tokens or m.max_tokens,
        temperature=m.temperature,
        top_p=m.top_p,
        n=m.n or 1,
        stop=stop or None,
        seed=m.seed,
        presence_penalty=m.presence_penalty,
        frequency_penalty=m.frequency_penalty,
        logit_bias=m.logit_bias,
        tools=[
            Tool(t.function.name, t.function.description, t.function.parameters, t.function.strict)
            for t in m.tools
        ]
        if m.tools
        else None,
        tool_choice=tool_choice,
        parallel_tool_calls=m.parallel_tool_calls,
        response_format=rf,
        logprobs=bool(m.logprobs),
        top_logprobs=m.top_logprobs,
        user=m.user,
        metadata=m.metadata,
        reasoning_effort=m.reasoning_effort,
        extra={k: v for k, v in raw.items() if k not in _KNOWN},
    )


def _validation_error(exc: ValidationError) -> InvalidRequest:
    err = exc.errors(include_url=False)[0]
    path: list[str | int] = []
    for p in err["loc"]:
        # Skip pydantic's union-branch labels ("str", "list[...]", "function-after[...]") and
        # the repeated tag of a discriminated union ("image_url", "image_url").
        if isinstance(p, str) and (p in _TYPE_LABELS or "[" in p or p[:1].isupper()):
            continue
        if path and p == path[-1] and isinstance(p, str):
            continue
        path.append(p)
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    if err["type"] == "missing":
        msg = f"Missing required parameter: '{param}'."
    else:
        got = type(err.get("input")).__name__ if "input" in err else "value"
        msg = f"Invalid value for '{param}': {err['msg']} (got {got})."
    return InvalidRequest(msg, param=param or None)


_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "literal"})


def _message_in(m: MessageIn) -> Message:
    content: str | list[Part] | None
    if m.content is None or isinstance(m.content, str):
        content = m.content
    else:
        content = []
        for p in m.content:
            if p.type == "text":
                content.append(TextPart(p.text))  # type: ignore[union-attr]
            elif p.type == "image_url":
                content.append(ImagePart(p.image_url.url, p.image_url.detail))  # type: ignore[union-attr]
            else:
                content.append(OtherPart(p.type, p.model_dump()))
    if m.role == "tool" and not m.tool_call_id:
        raise InvalidRequest(
            "Messages with role 'tool' must have a 'tool_call_id'.", param="messages.tool_call_id"
        )
    return Message(
        role=m.role,
        content=content,
        name=m.name,
        tool_calls=[ToolCall(tc.id, tc.function.name, tc.function.arguments) for tc in m.tool_calls]
        if m.tool_calls
        else None,
        tool_call_id=m.tool_call_id,
        reasoning=m.reasoning_content,
        refusal=m.refusal,
    )


# ---------------------------------------------------------------- family: request out
def render_request(
    req: ChatRequest,
    model: str,
    *,
    stream_usage: bool = True,
    max_tokens_param: str = "max_tokens",
) -> bytes:
    """The upstream body for an OpenAI-compatible provider. Streams always ask for usage
    (when the provider supports it) so every request is metered from real counts. OpenAI itself
    wants `max_completion_tokens` (its reasoning models refuse `max_tokens`); most others
    only know `max_tokens`."""
    body: dict[str, Any] = {"model": model, "messages": [_message_out(m) for m in req.messages]}
    if req.stream:
        body["stream"] = True
        if stream_usage:
            body["stream_options"] = {"include_usage": True}
    if req.max_tokens is not None:
        body[max_tokens_param] = req.max_tokens
    for name in (
        "temperature",
        "top_p",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "parallel_tool_calls",
        "response_format",
        "top_logprobs",
        "user",
        "metadata",
        "reasoning_effort",
    ):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if req.n != 1:
        body["n"] = req.n
    if req.stop:
        body["stop"] = req.stop
    if req.logprobs:
        body["logprobs"] = True
    if req.tools:
        body["tools"] = [_tool_out(t) for t in req.tools]
    if req.tool_choice is not None:
        tc = req.tool_choice
        body["tool_choice"] = tc if isinstance(tc, str) else {"type": "function", "function": tc}
    if req.extra_dialect == "openai":  # never another dialect's parameters
        for k, v in req.extra.items():
            body.setdefault(k, v)
    return orjson.dumps(body)


def _tool_out(t: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        fn["description"] = t.description
    if t.parameters is not None:
        fn["parameters"] = t.parameters
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


def _message_out(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if isinstance(m.content, list):
        if all(isinstance(p, TextPart) for p in m.content):
            # Text-only content as one string: every OpenAI-compatible server accepts that,
            # while some refuse arrays (notably for system messages).
            out["content"] = "\n".join(p.text for p in m.content)  # type: ignore[union-attr]
        else:
            out["content"] = [_part_out(p) for p in m.content]
    else:
        out["content"] = m.content
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": tc.id,
                "type": "function",
                "function": {"name": tc.name, "arguments": tc.arguments},
            }
            for tc in m.tool_calls
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.refusal is not None:
        out["refusal"] = m.refusal
    return out


def _part_out(p: Part) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    if isinstance(p, ImagePart):
        image: dict[str, Any] = {"url": p.url}
        if p.detail:
            image["detail"] = p.detail
        return {"type": "image_url", "image_url": image}
    return p.data
