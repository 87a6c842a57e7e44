"""OpenAI chat-completions requests, both directions: `parse_request` validates a client's
body into the canonical request (the OpenAI dialect); `render_request` turns a canonical request
into the body an OpenAI-compatible provider expects (the OpenAI-compatible family)."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError

from gatewayz.canonical.bounds import check_model_id, check_output_tokens, json_object
from gatewayz.canonical.types import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    Part,
    TextPart,
)
from gatewayz.errors import InvalidRequest, Unsupported
from gatewayz.providers.openai.schema import ChatCompletionIn, MessageIn
from gatewayz.providers.openai.tools import (
    call_out,
    calls_in,
    choice_out,
    function_result_id,
    tool_out,
    tools_in,
)

_KNOWN = frozenset(ChatCompletionIn.model_fields) | {"stream_options", "top_k"}
# Anthropic's thinking budget → OpenAI's reasoning effort (the budget is at most this).
_EFFORT_OF_BUDGET = ((2048, "low"), (8192, "medium"))


# ---------------------------------------------------------------- edge: request in
def parse_request(body: bytes) -> ChatRequest:
    """Validate a client's JSON body into a canonical request; InvalidRequest on bad input."""
    raw = json_object(body)
    try:
        m = ChatCompletionIn.model_validate(raw)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    check_model_id(m.model)
    check_output_tokens(m.max_tokens, "max_tokens")
    check_output_tokens(m.max_completion_tokens, "max_completion_tokens")
    tools, tool_choice, parallel, legacy = tools_in(m)
    if tool_choice not in (None, "none", "auto") and not tools:
        param = "function_call" if legacy else "tool_choice"
        raise InvalidRequest(f"{param} requires tools to be specified.", param=param)
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
    stop = [m.stop] if isinstance(m.stop, str) else m.stop
    return ChatRequest(
        model=m.model,
        messages=[_message_in(m.messages, i) for i in range(len(m.messages))],
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
        top_k=_top_k(raw.get("top_k")),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        legacy_functions=legacy,
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
    kind = err["type"]
    if kind == "union_tag_not_found":  # a tagged object without its tag: the tag is missing
        path.append(str((err.get("ctx") or {}).get("discriminator", "type")).strip("'"))
        kind = "missing"
    param = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    if kind == "missing":
        msg = f"Missing required parameter: '{param}'."
    else:
        got = type(err.get("input")).__name__ if "input" in err else "value"
        msg = f"Invalid value for '{param}': {err['msg']} (got {got})."
    return InvalidRequest(msg, param=param or None)


_TYPE_LABELS = frozenset({"str", "int", "float", "bool", "dict", "list", "none", "literal"})


def _top_k(value: Any) -> int | None:
    """`top_k`, an extra field many OpenAI-compatible servers take (and Anthropic, Gemini)."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and value < 2**31:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        raise InvalidRequest("Invalid value for 'top_k': expected an integer >= 0.", param="top_k")
    return value


_PDF_DATA = "data:application/pdf;base64,"


def _other_part_in(part: dict[str, Any]) -> Part:
    """A `file` part holding a PDF inline (`file_data`, and a `filename`: nothing else) is a
    document, which every family that reads documents takes (Anthropic: a document block);
    any other part (`input_audio`, a file by `file_id`, ...) travels as it came."""
    f = part.get("file")
    if part.get("type") == "file" and part.keys() == {"type", "file"} and isinstance(f, dict):
        data, name = f.get("file_data"), f.get("filename")
        if (
            f.keys() <= {"file_data", "filename"}
            and isinstance(data, str)
            and data.startswith(_PDF_DATA)
            and isinstance(name, str | None)
        ):
            return DocumentPart("application/pdf", data=data[len(_PDF_DATA) :], title=name)
    return OtherPart(str(part["type"]), part)


def _message_in(messages: list[MessageIn], i: int) -> Message:
    m = messages[i]
    content: str | list[Part] | None
    if m.content is None or isinstance(m.content, str):
        content = m.content
    else:
        content = []
        for p in m.content:
            if p.type == "text":
                content.append(TextPart(p.text, p.model_extra or None))  # type: ignore[union-attr]
            elif p.type == "image_url":
                url = p.image_url  # type: ignore[union-attr]
                content.append(ImagePart(url.url, url.detail, p.model_extra or None))
            else:
                content.append(_other_part_in(p.model_dump()))
    role, tool_call_id = m.role, m.tool_call_id
    if role == "function":  # legacy: the result of the assistant's `function_call`
        if m.name is None:
            raise InvalidRequest(
                "Messages with role 'function' must have a 'name'.", param=f"messages[{i}].name"
            )
        role, tool_call_id = "tool", function_result_id(messages, i)
    elif role == "tool" and tool_call_id is None:
        raise InvalidRequest(
            "Messages with role 'tool' must have a 'tool_call_id'.", param="messages.tool_call_id"
        )
    return Message(
        role=role,
        content=content,
        name=m.name,
        tool_calls=calls_in(m, i),
        tool_call_id=tool_call_id,
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
    own = req.extra_dialect == "openai"
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message_out(m, own) for m in req.messages],
    }
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
        "top_k",
    ):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    effort = _effort_of_thinking(req)
    if effort is not None:
        body.setdefault("reasoning_effort", effort)
    if req.n != 1:
        body["n"] = req.n
    if req.stop:
        body["stop"] = req.stop
    if req.logprobs:
        body["logprobs"] = True
    if req.tools:
        body["tools"] = [tool_out(t) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = choice_out(req)
    if own:  # never another dialect's parameters (canonical/fidelity.py refuses those)
        for k, v in req.extra.items():
            body.setdefault(k, v)
    return orjson.dumps(body)


def _effort_of_thinking(req: ChatRequest) -> str | None:
    """Anthropic's `thinking` (a request of its dialect) as a reasoning effort: enabled with a
    budget → low / medium / high; adaptive or disabled → none said (the model's default)."""
    thinking = req.thinking
    if req.extra_dialect != "anthropic" or not thinking or thinking.get("type") != "enabled":
        return None
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int):
        return None
    return next((effort for most, effort in _EFFORT_OF_BUDGET if budget <= most), "high")


def _message_out(m: Message, own: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if isinstance(m.content, list):
        if all(isinstance(p, TextPart) and not (own and p.extra) for p in m.content):
            # Text-only content as one string: every OpenAI-compatible server accepts that,
            # while some refuse arrays (notably for system messages).
            out["content"] = "\n".join(p.text for p in m.content)  # type: ignore[union-attr]
        else:
            out["content"] = [_part_out(p, own) for p in m.content]
    else:
        out["content"] = m.content
    if m.name is not None and m.role != "tool":
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [call_out(tc) for tc in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    if m.refusal is not None:
        out["refusal"] = m.refusal
    return out


def _part_out(p: Part, own: bool) -> dict[str, Any]:
    if isinstance(p, TextPart):
        text = {"type": "text", "text": p.text}
        return {**text, **p.extra} if own and p.extra else text
    if isinstance(p, ImagePart):
        image: dict[str, Any] = {"url": p.url}
        if p.detail:
            image["detail"] = p.detail
        part = {"type": "image_url", "image_url": image}
        return {**part, **p.extra} if own and p.extra else part
    if isinstance(p, DocumentPart):
        return _document_out(p)
    return p.data


def _document_out(p: DocumentPart) -> dict[str, Any]:
    """A document as OpenAI's `file` part (base64 data), or its text."""
    if p.media_type.startswith("text/") and p.data is not None:
        return {"type": "text", "text": p.data}
    if p.data is None:
        raise Unsupported(
            "OpenAI-compatible providers do not support documents by URL (only inline data).",
            param="messages",
        )
    name = p.title or ("document.pdf" if p.media_type == "application/pdf" else "document")
    data = f"data:{p.media_type};base64,{p.data}"
    return {"type": "file", "file": {"filename": name, "file_data": data}}
