"""The canonical request, response and stream-event types every dialect and family translates
to and from. Plain slotted dataclasses: built once at the edge, never re-validated inside.

Vocabulary follows chat semantics: roles system|developer|user|assistant|tool; finish reasons
stop|length|tool_calls|content_filter (with `stop_sequence` set when a stop sequence ended the
turn); tool-call arguments are JSON text; logprobs keep OpenAI's shape (a dict per choice)
because no other provider family defines one. Reasoning ("thinking") is text plus, where the
provider signs it, a signature that must be sent back unchanged on the next turn.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# `extra` of a part, tool, tool call or tool-result message: the fields of the dialect's block
# the canonical model does not name (`cache_control`, `citations`, `context`, ...), as the
# client sent them. `cache_control` has the same shape in both dialects (Anthropic's, and
# OpenRouter's in OpenAI parts); the others reach only providers of the dialect they came in
# (`ChatRequest.extra_dialect`), and `canonical/fidelity.py` refuses them elsewhere.


@dataclass(slots=True)
class TextPart:
    text: str
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ImagePart:
    url: str  # http(s) URL or data: URL
    detail: str | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class DocumentPart:
    """A document (PDF or plain text): `data` is base64 (or the text itself for text/plain),
    or `url` points to it."""

    media_type: str
    data: str | None = None
    url: str | None = None
    title: str | None = None
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class OtherPart:
    """A content part the gateway forwards without interpreting (input_audio, file, ...)."""

    type: str
    data: dict[str, Any]


Part = TextPart | ImagePart | DocumentPart | OtherPart


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as produced by the model (a custom tool's: its free-form input)
    kind: str = "function"  # "function" | "custom" (OpenAI's free-form custom tools)
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class Message:
    role: str
    content: str | list[Part] | None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    refusal: str | None = None
    is_error: bool = False  # a tool result that reports a failure
    extra: dict[str, Any] | None = None  # a tool result block's other fields (cache_control)

    def text(self) -> str:
        """All text of the message (content parts, tool-call arguments, reasoning)."""
        out: list[str] = []
        if isinstance(self.content, str):
            out.append(self.content)
        elif self.content:
            out.extend(p.text for p in self.content if isinstance(p, TextPart))
        if self.tool_calls:
            for tc in self.tool_calls:
                out.append(tc.name)
                out.append(tc.arguments)
        if self.reasoning:
            out.append(self.reasoning)
        return "".join(out)


@dataclass(slots=True)
class Tool:
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    kind: str = "function"  # "function" | "custom" (free-form input, OpenAI only)
    format: dict[str, Any] | None = None  # a custom tool's input format (text or a grammar)
    extra: dict[str, Any] | None = None


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[Message]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    n: int = 1
    top_k: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: dict[str, float] | None = None
    tools: list[Tool] | None = None
    # "auto" | "none" | "required" | {"name": "<function>"} | {"name": .., "kind": "custom"}
    # | {"allowed": ["<tool name>", ...], "mode": "auto" | "required"} (OpenAI's allowed_tools)
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    # {"type": "text"|"json_object"} or {"type": "json_schema", "json_schema": {...}}
    response_format: dict[str, Any] | None = None
    logprobs: bool = False
    top_logprobs: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    reasoning_effort: str | None = None
    # Extended thinking: {"type": "enabled", "budget_tokens": N} (Anthropic's shape).
    thinking: dict[str, Any] | None = None
    # Anthropic beta flags (the `anthropic-beta` request header), sent on to Anthropic.
    betas: list[str] | None = None
    # The request used OpenAI's legacy `functions` / `function_call`: they are tools here,
    # and the answer goes back as `function_call`.
    legacy_functions: bool = False
    # Parameters the dialect accepted but the canonical model does not name, and the dialect
    # they came in ("openai" | "anthropic"): forwarded only to providers of that same format.
    extra: dict[str, Any] = field(default_factory=dict)
    extra_dialect: str = "openai"


@dataclass(slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None = None  # prompt tokens read from the provider's cache
    cache_write_tokens: int | None = None  # prompt tokens written to it
    reasoning_tokens: int | None = None
    estimated: bool = False
    cost: Decimal | None = None  # USD charged for the request (set by the gateway's meter)
    invalid: bool = False  # the provider's report was nonsense; the counts are estimates

    @classmethod
    def unreadable(cls) -> Usage:
        """What a parser returns for a usage report that is not one (`bounds.BadUsage`)."""
        return cls(prompt_tokens=0, completion_tokens=0, estimated=True, invalid=True)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Choice:
    index: int
    message: Message
    finish_reason: str | None
    logprobs: dict[str, Any] | None = None
    stop_sequence: str | None = None


@dataclass(slots=True)
class ChatResponse:
    choices: list[Choice]
    usage: Usage | None = None
    upstream_id: str | None = None
    upstream_model: str | None = None


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str | None = None
    kind: str | None = None  # "custom" for a custom tool's call (None: a function's)


@dataclass(slots=True)
class ChoiceDelta:
    index: int
    role: str | None = None
    content: str | None = None
    reasoning: str | None = None
    reasoning_signature: str | None = None
    refusal: str | None = None
    tool_calls: list[ToolCallDelta] | None = None
    finish_reason: str | None = None
    logprobs: dict[str, Any] | None = None
    stop_sequence: str | None = None


@dataclass(slots=True)
class StreamChunk:
    """One stream event: deltas for some choices, and/or the final usage."""

    choices: list[ChoiceDelta]
    usage: Usage | None = None
