"""OpenAI Responses-API requests (`POST /v1/responses`, the third inbound dialect) into the
canonical request; what the response must echo travels beside it (`ResponseParams`).

The mapping:

- `input`: a string (one user message) or items. Message items keep their role (`developer`
  and `system` as they are); `input_text` / `output_text` parts are text, `input_image` an image
  (by URL or data: URL), `refusal` the assistant's refusal. `function_call` items become the tool
  calls of an assistant message, `function_call_output` items tool messages. Consecutive
  assistant-side items (reasoning, assistant messages, function calls) make one assistant turn,
  as in chat (`responses_items.py`).
- `reasoning` items are carried, not dropped: their text (the `content`, else the summary) and
  `encrypted_content` become the turn's reasoning and signature. That is what a provider that
  signs its thinking (Anthropic) needs back to continue a turn that used tools; families that do
  not take reasoning back leave it out as they do for the other dialects.
- Accepted and not acted on, as they concern OpenAI's own serving: `service_tier`,
  `prompt_cache_key`, `prompt_cache_retention`, `prompt_cache_options`, `stream_options`,
  `max_tool_calls` (it limits hosted tools only) and `include` values other than
  `message.output_text.logprobs` (reasoning signatures are always returned).
- `instructions` → a leading system message; `text.format` → `response_format` in chat's shape;
  `reasoning.effort` → `reasoning_effort`; `max_output_tokens` → `max_tokens`; `text.verbosity` is
  forwarded to OpenAI-compatible providers only (chat's `verbosity`).
- `metadata` belongs to the response object (echoed, stored with it), not to the model call: it
  is not sent to any provider.
- Only `function` tools: a hosted tool (web search, file search, computer use, code
  interpreter, image generation, MCP, shells) is a 400 naming its type. Unknown top-level fields
  are a 400 naming the field; fields OpenAI documents whose feature is not here (`conversation`,
  `prompt`, `context_management`, `moderation`, `background: true`, `truncation: "auto"`) too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from gatewayz.canonical.bounds import check_model_id, check_output_tokens, json_object
from gatewayz.canonical.types import ChatRequest, Message, Tool
from gatewayz.errors import InvalidRequest
from gatewayz.providers.openai import responses_schema as schema
from gatewayz.providers.openai.responses_items import items_to_messages, parse_item
from gatewayz.providers.openai.responses_schema import validation_error

# Documented fields whose feature this gateway does not have: a 400 naming them.
UNSUPPORTED = {
    "conversation": "the Conversations API is not available here: continue a conversation with "
    "previous_response_id",
    "prompt": "stored prompt templates are not available here: send instructions and input",
    "context_management": "server-side context compaction is not available here",
    "moderation": "moderation of responses is not available here",
}
HOSTED = (
    "web_search",
    "file_search",
    "computer",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
)


@dataclass(slots=True)
class ResponseParams:
    """What the Responses request said that the response object echoes, and what the edge needs
    to continue or store the conversation."""

    instructions: str | None = None
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: str | dict[str, Any] = "auto"
    parallel_tool_calls: bool = True
    text: dict[str, Any] = field(default_factory=lambda: {"format": {"type": "text"}})
    reasoning: dict[str, Any] = field(default_factory=lambda: {"effort": None, "summary": None})
    max_output_tokens: int | None = None
    max_tool_calls: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_logprobs: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    service_tier: str | None = None
    store: bool = True
    previous_response_id: str | None = None
    # Where the conversation to store begins in the canonical messages (after the instructions,
    # which a later response does not inherit).
    conversation_start: int = 0


@dataclass(slots=True)
class ResponsesRequest(ChatRequest):
    """A canonical request that came in as a Responses request (the steps see a ChatRequest)."""

    params: ResponseParams = field(default_factory=ResponseParams)


def parse_request(body: bytes) -> ResponsesRequest:
    """Validate a client's JSON body into a canonical request; InvalidRequest on bad input."""
    raw = json_object(body)
    for name, why in UNSUPPORTED.items():
        if raw.get(name) is not None:
            raise InvalidRequest(f"'{name}' is not supported by this gateway: {why}.", param=name)
    try:
        m = schema.CreateResponseIn.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, raw) from None
    check_model_id(m.model)
    check_output_tokens(m.max_output_tokens, "max_output_tokens")
    if m.background:
        raise InvalidRequest(
            "Background responses are not supported by this gateway: send the request with "
            "stream or wait for it.",
            param="background",
        )
    if m.truncation == "auto":
        raise InvalidRequest(
            "truncation 'auto' is not supported by this gateway: nothing is dropped from a "
            "conversation; one longer than the model's context is refused (400).",
            param="truncation",
        )
    p = ResponseParams(
        instructions=m.instructions,
        parallel_tool_calls=m.parallel_tool_calls is not False,
        max_output_tokens=m.max_output_tokens,
        max_tool_calls=m.max_tool_calls,
        temperature=m.temperature,
        top_p=m.top_p,
        top_logprobs=m.top_logprobs,
        metadata=dict(m.metadata or {}),
        user=m.user,
        safety_identifier=m.safety_identifier,
        prompt_cache_key=m.prompt_cache_key,
        service_tier=m.service_tier,
        store=m.store is not False,
        previous_response_id=m.previous_response_id,
    )
    tools = _tools(m.tools or [])
    p.tools = [_tool_echo(t) for t in tools]
    tools, tool_choice = _tool_choice(m.tool_choice, tools, p)
    messages: list[Message] = []
    if m.instructions is not None:
        messages.append(Message("system", m.instructions))
        p.conversation_start = 1
    if isinstance(m.input, str):
        messages.append(Message("user", m.input))
    elif m.input:
        messages += items_to_messages(
            [parse_item(raw_item, i) for i, raw_item in enumerate(m.input)]
        )
    if len(messages) == p.conversation_start and m.previous_response_id is None:
        raise InvalidRequest("Missing required parameter: 'input'.", param="input")
    extra: dict[str, Any] = {k: raw[k] for k in ("provider", "cache") if k in raw}
    response_format = None
    if m.text is not None:
        fmt = m.text.format
        if fmt is not None:
            p.text["format"] = fmt.model_dump(exclude_none=True, by_alias=True)
            response_format = _response_format(fmt)
        if m.text.verbosity is not None:
            p.text["verbosity"] = m.text.verbosity
            extra["verbosity"] = m.text.verbosity  # chat's parameter (OpenAI-compatible only)
    effort = None
    if m.reasoning is not None:
        effort = m.reasoning.effort
        p.reasoning = {"effort": effort, "summary": m.reasoning.summary}
    logprobs = "message.output_text.logprobs" in (m.include or ()) or m.top_logprobs is not None
    return ResponsesRequest(
        model=m.model,
        messages=messages,
        stream=bool(m.stream),
        max_tokens=m.max_output_tokens,
        temperature=m.temperature,
        top_p=m.top_p,
        tools=tools or None,
        tool_choice=tool_choice,
        parallel_tool_calls=m.parallel_tool_calls,
        response_format=response_format,
        logprobs=logprobs,
        top_logprobs=m.top_logprobs,
        user=m.user or m.safety_identifier,
        reasoning_effort=effort,
        extra=extra,
        params=p,
    )


# ---------------------------------------------------------------- tools and formats
def _tools(raw: list[Any]) -> list[Tool]:
    out: list[Tool] = []
    for i, t in enumerate(raw):
        where = f"tools[{i}]"
        kind = t.get("type") if isinstance(t, dict) else None
        if kind != "function":
            shown = repr(kind)[:80]
            hosted = isinstance(kind, str) and kind.startswith(HOSTED)
            what = "The hosted tool" if hosted else "Tool"
            raise InvalidRequest(
                f"{what} type {shown} is not supported by this gateway: only 'function' tools "
                "are (the model calls them, your code runs them).",
                param=f"{where}.type",
            )
        try:
            f = schema.FunctionTool.model_validate(t)
        except ValidationError as exc:
            raise validation_error(exc, t, where) from None
        out.append(Tool(f.name, f.description, f.parameters, f.strict))
    return out


def _tool_echo(t: Tool) -> dict[str, Any]:
    return {
        "type": "function",
        "name": t.name,
        "description": t.description,
        "parameters": t.parameters,
        "strict": t.strict,
    }


def _tool_choice(
    choice: str | dict[str, Any] | None, tools: list[Tool], p: ResponseParams
) -> tuple[list[Tool], str | dict[str, str] | None]:
    """(the tools offered, the canonical tool_choice); the echo goes on `p`."""
    if choice is None:
        return tools, None
    p.tool_choice = choice
    if choice not in ("none", "auto") and not tools:
        raise InvalidRequest("tool_choice requires tools to be specified.", param="tool_choice")
    if isinstance(choice, str):
        return tools, choice
    kind = choice.get("type")
    if kind == "function":
        return tools, {"name": _function_name(choice.get("name"), "tool_choice.name")}
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise InvalidRequest(
                "Invalid value for 'tool_choice.mode': 'auto' or 'required'.",
                param="tool_choice.mode",
            )
        allowed = choice.get("tools")
        if not isinstance(allowed, list) or len(allowed) > schema.MAX_TOOLS:
            raise InvalidRequest(
                f"'tool_choice.tools' must list up to {schema.MAX_TOOLS} tools.",
                param="tool_choice.tools",
            )
        if not allowed:  # no tool allowed: answer with a message (as in chat: tools.py)
            if mode == "auto":
                return tools, "none"
            raise InvalidRequest(
                "tool_choice.tools of mode 'required' must allow at least one tool.",
                param="tool_choice.tools",
            )
        names = set()
        for i, t in enumerate(allowed):
            where = f"tool_choice.tools[{i}]"
            if not isinstance(t, dict) or t.get("type") != "function":
                raise InvalidRequest(
                    f"Only function tools can be allowed here ({where}).", param=where
                )
            names.add(_function_name(t.get("name"), f"{where}.name"))
        return [t for t in tools if t.name in names], mode
    shown = repr(kind)[:80]
    raise InvalidRequest(
        f"tool_choice type {shown} is not supported by this gateway: use 'none', 'auto', "
        "'required', a function or allowed_tools.",
        param="tool_choice.type",
    )


def _function_name(name: Any, param: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= schema.NAME_MAX:
        raise InvalidRequest(
            f"Invalid value for '{param}': a function name of 1 to {schema.NAME_MAX} characters.",
            param=param,
        )
    return name


def _response_format(fmt: BaseModel) -> dict[str, Any] | None:
    """`text.format` as chat's `response_format` (plain text: none at all)."""
    if isinstance(fmt, schema.FormatJsonObject):
        return {"type": "json_object"}
    if isinstance(fmt, schema.FormatJsonSchema):
        spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema_}
        if fmt.description is not None:
            spec["description"] = fmt.description
        if fmt.strict is not None:
            spec["strict"] = fmt.strict
        return {"type": "json_schema", "json_schema": spec}
    return None
