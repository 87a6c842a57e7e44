"""Pydantic models of an OpenAI chat-completions request: the edge validation, nothing else.

Strict types (a string is not a number, except that a whole float is an integer: `n: 1.0`), as
OpenAI itself answers. Unknown top-level parameters are kept and forwarded to OpenAI-compatible
providers only (`canonical/fidelity.py` says what becomes of them elsewhere). Every shape of
the current API is accepted: custom tools, `allowed_tools`, the legacy `functions` /
`function_call` and `role: "function"` messages.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _whole(value: Any) -> Any:
    """`100.0` → 100: JSON has one number type, and OpenAI takes whole floats for integers."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    return value


WholeInt = Annotated[int, BeforeValidator(_whole)]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class FunctionDef(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FunctionToolDef(_Strict):
    type: Literal["function"]
    function: FunctionDef


class CustomDef(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    format: dict[str, Any] | None = None  # {"type": "text"} or {"type": "grammar", ...}


class CustomToolDef(_Strict):
    type: Literal["custom"]
    custom: CustomDef


ToolDef = Annotated[FunctionToolDef | CustomToolDef, Field(discriminator="type")]


class FunctionCall(_Strict):
    name: str
    arguments: str


class ToolCallIn(_Strict):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class CustomCall(_Strict):
    name: str
    input: str


class CustomToolCallIn(_Strict):
    id: str
    type: Literal["custom"]
    custom: CustomCall


class TextPartIn(_Strict):
    model_config = ConfigDict(strict=True, extra="allow")  # cache_control (OpenRouter's)
    type: Literal["text"]
    text: str


class ImageURL(_Strict):
    url: Annotated[str, Field(min_length=1)]
    detail: Literal["auto", "low", "high"] | None = None


class ImagePartIn(_Strict):
    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["image_url"]
    image_url: ImageURL


class OtherPartIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")
    type: Literal["input_audio", "file", "refusal"]


ContentPart = Annotated[TextPartIn | ImagePartIn | OtherPartIn, Field(discriminator="type")]


class MessageIn(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn | CustomToolCallIn] | None = None
    function_call: FunctionCall | None = None  # legacy: an assistant's one call
    tool_call_id: str | None = None
    reasoning_content: str | None = None
    refusal: str | None = None


class StreamOptions(_Strict):
    include_usage: bool | None = None


class NamedFunction(_Strict):
    name: str


class NamedToolChoice(_Strict):
    type: Literal["function"]
    function: NamedFunction


class CustomToolChoice(_Strict):
    type: Literal["custom"]
    custom: NamedFunction


class AllowedTools(_Strict):
    mode: Literal["auto", "required"]
    tools: list[dict[str, Any]]  # empty: no tool allowed (tools.py)


class AllowedToolsChoice(_Strict):
    type: Literal["allowed_tools"]
    allowed_tools: AllowedTools


ToolChoice = Annotated[
    NamedToolChoice | CustomToolChoice | AllowedToolsChoice, Field(discriminator="type")
]


class JsonSchemaSpec(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=64)]
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Strict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class ChatCompletionIn(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=256)]
    messages: Annotated[list[MessageIn], Field(min_length=1)]
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    max_tokens: Annotated[WholeInt, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[WholeInt, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    n: Annotated[WholeInt, Field(ge=1, le=128)] | None = None
    stop: str | Annotated[list[str], Field(max_length=4)] | None = None
    seed: WholeInt | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    logit_bias: dict[str, float] | None = None
    tools: list[ToolDef] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoice | None = None
    functions: Annotated[list[FunctionDef], Field(min_length=1)] | None = None  # legacy
    function_call: Literal["none", "auto"] | NamedFunction | None = None  # legacy
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    logprobs: bool | None = None
    top_logprobs: Annotated[WholeInt, Field(ge=0, le=20)] | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    reasoning_effort: str | None = None
