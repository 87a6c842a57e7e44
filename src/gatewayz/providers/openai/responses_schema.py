"""Pydantic models of an OpenAI Responses-API request (`POST /v1/responses`): the edge
validation, nothing else (the translation is in `responses.py`).

Strict types (a string is not a number, but a whole float is an integer, as in chat), as OpenAI
answers. The top level forbids unknown fields (a 400 naming the field); inside items and tools
unknown fields are ignored, so that items an SDK received from us (with `id`, `status`,
`annotations`, `logprobs`, `phase`, ...) can be sent back as they are. Input items are
validated one by one (`ITEMS`, by their `type`), so that an error names the item it is in;
`validation_error` words pydantic's findings as OpenAI does.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gatewayz.errors import InvalidRequest
from gatewayz.providers.openai.schema import WholeInt

# Bounds beyond the request body's size (GATEWAYZ_MAX_BODY_BYTES), as OpenAI documents them.
MAX_TOOLS = 128
MAX_METADATA = 16
ID_MAX = 256  # call ids, item ids, response ids
NAME_MAX = 64  # function and schema names (as the chat parser bounds them)

Short = Annotated[str, Field(max_length=ID_MAX)]


class _Item(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class InputText(_Item):
    type: Literal["input_text"]
    text: str


class OutputText(_Item):
    type: Literal["output_text"]
    text: str


class InputImage(_Item):
    type: Literal["input_image"]
    image_url: Annotated[str, Field(min_length=1)] | None = None
    file_id: Short | None = None
    detail: Literal["auto", "low", "high", "original"] | None = None


class Refusal(_Item):
    type: Literal["refusal"]
    refusal: str


Part = Annotated[InputText | OutputText | InputImage | Refusal, Field(discriminator="type")]
ToolOutputPart = Annotated[InputText | InputImage, Field(discriminator="type")]


class MessageItem(_Item):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[Part]


class FunctionCallItem(_Item):
    type: Literal["function_call"]
    call_id: Annotated[str, Field(min_length=1, max_length=ID_MAX)]
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    arguments: str


class FunctionCallOutputItem(_Item):
    type: Literal["function_call_output"]
    call_id: Annotated[str, Field(min_length=1, max_length=ID_MAX)]
    output: str | list[ToolOutputPart]


class SummaryText(_Item):
    type: Literal["summary_text"]
    text: str


class ReasoningText(_Item):
    type: Literal["reasoning_text"]
    text: str


class ReasoningItem(_Item):
    type: Literal["reasoning"]
    summary: list[SummaryText] = Field(default_factory=list)
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None


Item = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem
ITEMS: dict[str, type[Item]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionCallOutputItem,
    "reasoning": ReasoningItem,
}


class FunctionTool(_Item):
    type: Literal["function"]
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class FormatText(_Item):
    type: Literal["text"]


class FormatJsonObject(_Item):
    type: Literal["json_object"]


class FormatJsonSchema(_Item):
    type: Literal["json_schema"]
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX)]
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


TextFormat = Annotated[
    FormatText | FormatJsonObject | FormatJsonSchema, Field(discriminator="type")
]


class TextConfig(_Item):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None


Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh", "max"]
Summary = Literal["auto", "concise", "detailed"]


class ReasoningConfig(_Item):
    effort: Effort | None = None
    summary: Summary | None = None
    generate_summary: Summary | None = None


class StreamOptions(_Item):
    include_obfuscation: bool | None = None  # we add no obfuscation: accepted, nothing to do


Include = Literal[
    "file_search_call.results",
    "web_search_call.results",
    "web_search_call.action.sources",
    "message.input_image.image_url",
    "computer_call_output.output.image_url",
    "code_interpreter_call.outputs",
    "reasoning.encrypted_content",
    "message.output_text.logprobs",
]


class CreateResponseIn(BaseModel):
    """The top level. `input` items and `tools` are checked one by one in `responses.py`
    (their errors name the item; a hosted tool is named by its type)."""

    model_config = ConfigDict(strict=True, extra="forbid")

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: str | list[Any] | None = None
    instructions: str | None = None
    tools: Annotated[list[Any], Field(max_length=MAX_TOOLS)] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    reasoning: ReasoningConfig | None = None
    max_output_tokens: Annotated[WholeInt, Field(ge=16)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(ge=0, le=1)] | None = None
    top_logprobs: Annotated[WholeInt, Field(ge=0, le=20)] | None = None
    metadata: (
        Annotated[
            dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=512)]],
            Field(max_length=MAX_METADATA),
        ]
        | None
    ) = None
    user: Short | None = None
    safety_identifier: Annotated[str, Field(max_length=64)] | None = None
    store: bool | None = None
    previous_response_id: Short | None = None
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    include: Annotated[list[Include], Field(max_length=16)] | None = None
    truncation: Literal["auto", "disabled"] | None = None
    background: bool | None = None
    max_tool_calls: Annotated[WholeInt, Field(ge=1, le=1_000_000)] | None = None
    # Hints for OpenAI's own serving (tier, prompt cache): no meaning here; accepted, not sent.
    service_tier: (
        Literal["auto", "default", "flex", "scale", "priority", "fast", "ultrafast"] | None
    ) = None
    prompt_cache_key: Short | None = None
    prompt_cache_retention: Literal["in_memory", "24h"] | None = None
    prompt_cache_options: dict[str, Any] | None = None
    # Documented features not served here: refused in responses.py when set (UNSUPPORTED);
    # null, as the document allows, means not used.
    conversation: None = None
    prompt: None = None
    context_management: None = None
    moderation: None = None
    # Ours, as in chat: provider preferences and the response-cache policy (never forwarded).
    provider: Any = None
    cache: Any = None


# ---------------------------------------------------------------- errors
# The tags of the discriminated unions (content parts, text formats): pydantic puts the tag of
# the branch it tried in an error's location, after the field or list index it is for.
_TAGS = frozenset(
    {"input_text", "output_text", "input_image", "refusal", "text", "json_object", "json_schema"}
)


def _parameter_path(err: Any, data: Any) -> list[str | int]:
    """The parts of an error's location that name a parameter: the keys and indexes found in the
    request as it walks down `data`. Pydantic's other parts (a union branch's label such as
    `str` or `list[...]`, a discriminator tag) are not in it; a missing field is the one part
    that names something absent, and it is last. A bad key (`[key]`) names its object."""
    loc = err["loc"]
    path: list[str | int] = []
    value, before = data, None
    for n, p in enumerate(loc):
        tag = p in _TAGS and (before == "format" or isinstance(before, int))
        before = p
        if tag:
            continue
        key = isinstance(value, dict) and isinstance(p, str) and p in value
        index = isinstance(value, list) and isinstance(p, int) and 0 <= p < len(value)
        if key or index:
            path.append(p)
            value = value[p]
        elif p == "[key]" and path:  # the key before it is the bad value: name its object
            path.pop()
            break
        elif n == len(loc) - 1 and err["type"] == "missing":
            path.append(p)
    return path


def validation_error(exc: ValidationError, data: Any, prefix: str = "") -> InvalidRequest:
    """The most specific problem pydantic found in `data` (of a union, the branch that got
    furthest), as OpenAI words it, naming the parameter (under `prefix`, where `data` is)."""
    err = max(exc.errors(include_url=False), key=lambda e: len(e["loc"]))
    param = prefix
    for p in _parameter_path(err, data):
        param += f"[{p}]" if isinstance(p, int) else f".{p}" if param else p
    if err["type"] == "extra_forbidden":
        return InvalidRequest(f"Unrecognized request argument supplied: {param}", param=param)
    if err["type"] == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param=param or None)
    got = type(err.get("input")).__name__ if "input" in err else "value"
    return InvalidRequest(
        f"Invalid value for '{param}': {err['msg']} (got {got}).", param=param or None
    )
