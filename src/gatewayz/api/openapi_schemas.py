"""JSON Schemas (OpenAPI 3.1) of the bodies of the raw-ASGI routes, for api/openapi_doc.py: the
fields the README's API table says we accept, after OpenAI's OpenAPI document and Anthropic's
Messages API. A body is open (`additionalProperties`) where the gateway passes unknown fields
on; the Responses request is closed, as its parser is (providers/openai/responses_schema.py)."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def arr(items: Schema, **kw: Any) -> Schema:
    return {"type": "array", "items": items, **kw}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def const(value: str) -> Schema:
    return {"type": "string", "const": value}


def one_of(*schemas: Schema) -> Schema:
    return {"anyOf": list(schemas)}


def null(schema: Schema) -> Schema:
    return one_of(schema, {"type": "null"})


def rng(lo: float | None = None, hi: float | None = None, kind: str = "integer") -> Schema:
    bounds = {"minimum": lo, "maximum": hi}
    return {"type": kind, **{k: v for k, v in bounds.items() if v is not None}}


STR, INT, NUM = {"type": "string"}, {"type": "integer"}, {"type": "number"}
OBJ: Schema = {"type": "object", "additionalProperties": True}
_UNIT = rng(0, 1, "number")
_KINDS = {"s": STR, "i": INT, "n": NUM, "b": {"type": "boolean"}, "o": OBJ, "p": rng(1), "u": _UNIT}
_KINDS |= {"n" + kind: null(schema) for kind, schema in list(_KINDS.items())}


def obj(
    required: str = "", props: dict[str, Schema] | None = None, extra: bool = True, **kw: Any
) -> Schema:
    """An object schema. `required`: space-separated names. Keyword arguments `s`, `i`, `n`,
    `b`, `o`, `p` and `u` name (space-separated) more properties: strings, integers, numbers,
    booleans, open objects, positive integers and numbers from 0 to 1; with an `n` before it
    (`ns`, `ni`, …), or null. Any other keyword is a keyword of the schema."""
    properties = dict(props or {})
    for kind, schema in _KINDS.items():
        properties.update(dict.fromkeys(kw.pop(kind, "").split(), schema))
    out: Schema = {"type": "object", "properties": properties, "additionalProperties": extra}
    if required:
        out["required"] = required.split()
    return {**out, **kw}


MODEL: Schema = {"type": "string", "minLength": 1, "maxLength": 200}
BINARY: Schema = {"type": "string", "format": "binary"}
_STRS = arr(STR)
_STR_MAP: Schema = {"type": "object", "additionalProperties": STR}
_TEMPERATURE = rng(0, 2, "number")
_GATEWAY = {"provider": ref("ProviderPreferences"), "cache": ref("CachePolicy")}
_FUNCTION_CALL = obj(s="name arguments")
_TOOL_CALL = obj(
    "id type", {"type": enum("function", "custom"), "function": _FUNCTION_CALL}, s="id"
)
_FORMAT = obj("type", {"type": enum("text", "json_object", "json_schema")}, o="json_schema")
_TOOL_CHOICE = one_of(enum("none", "auto", "required"), OBJ)
_TRANSCRIPT = enum("json", "text", "srt", "verbose_json", "vtt")
_CONTENT = one_of(STR, arr(OBJ))
_CHAT_USAGE = obj(
    "prompt_tokens completion_tokens total_tokens",
    {
        "prompt_tokens_details": obj(i="cached_tokens"),
        "completion_tokens_details": obj(i="reasoning_tokens"),
        "cost": {"type": "number", "description": "USD charged by Gatewayz"},
    },
    i="prompt_tokens completion_tokens total_tokens",
    b="estimated",
)
_MSG = obj(
    "role",
    {"role": const("assistant"), "tool_calls": arr(_TOOL_CALL), "function_call": _FUNCTION_CALL},
    ns="content refusal",
    s="reasoning_content",
)
_OPENAI_ERROR = obj(
    "message type param code", {"suggestions": _STRS}, s="message type", ns="param code"
)
_ANTHROPIC_ERROR = obj("type message", {"suggestions": _STRS}, s="type message")
_LIST = const("list")
_FUNCTION = obj("name", s="name description", o="parameters", b="strict")
_CHOICE = obj(
    "index message finish_reason", {"message": _MSG}, i="index", no="logprobs", ns="finish_reason"
)
_EMBEDDING = obj(
    "object index embedding",
    {"object": const("embedding"), "embedding": one_of(arr(NUM), STR)},
    i="index",
)
_AUDIO_FIELDS = {"file": BINARY, "model": MODEL, "response_format": _TRANSCRIPT}
_TURN = obj("role content", {"role": enum("user", "assistant"), "content": _CONTENT})

SCHEMAS: dict[str, Schema] = {
    # ---- errors: OpenAI's shape everywhere but /v1/messages*, which answers Anthropic's
    "OpenAIError": obj("error", {"error": _OPENAI_ERROR}),
    "AnthropicError": obj("type error", {"type": const("error"), "error": _ANTHROPIC_ERROR}),
    # ---- the gateway's own request fields (never forwarded)
    "ProviderPreferences": one_of(
        STR,
        obj(
            "",
            {"order": _STRS, "only": _STRS, "ignore": _STRS, "max_latency_ms": rng(1)}
            | {"sort": enum("price", "latency", "throughput")},
            extra=False,
            b="allow_fallbacks",
        ),
    )
    | {"description": "A provider slug, or OpenRouter-style preferences."},
    "CachePolicy": obj(
        "", {"ttl": rng(1, 86400)}, extra=False, b="no_store no_cache nondeterministic semantic"
    ),
    # ---- chat completions
    "ChatMessage": obj(
        "role",
        {
            "role": enum("system", "developer", "user", "assistant", "tool", "function"),
            "content": one_of(STR, arr(OBJ), {"type": "null"}),
            "tool_calls": arr(_TOOL_CALL),
            "function_call": _FUNCTION_CALL,
        },
        s="name tool_call_id",
        ns="refusal",
    ),
    "ChatTool": obj(
        "type", {"type": enum("function", "custom"), "function": _FUNCTION}, o="custom"
    ),
    "ChatCompletionRequest": obj(
        "model messages",
        {
            "model": MODEL,
            "messages": arr(ref("ChatMessage"), minItems=1),
            "stream_options": obj(b="include_usage"),
            "temperature": _TEMPERATURE,
            "top_k": rng(0),
            "n": rng(1, 128),
            "stop": one_of(STR, arr(STR, maxItems=4), {"type": "null"}),
            "presence_penalty": rng(-2, 2, "number"),
            "frequency_penalty": rng(-2, 2, "number"),
            "logit_bias": {"type": "object", "additionalProperties": NUM},
            "tools": arr(ref("ChatTool")),
            "tool_choice": _TOOL_CHOICE,
            "functions": arr(OBJ, minItems=1, deprecated=True),
            "function_call": one_of(enum("none", "auto"), obj("name", s="name")),
            "response_format": _FORMAT,
            "top_logprobs": rng(0, 20),
            "metadata": _STR_MAP,
            **_GATEWAY,
        },
        b="stream parallel_tool_calls logprobs",
        i="seed",
        p="max_tokens max_completion_tokens",
        u="top_p",
        s="user reasoning_effort",
    ),
    "ChatCompletion": obj(
        "id object created model choices",
        {
            "object": const("chat.completion"),
            "choices": arr(_CHOICE),
            "usage": _CHAT_USAGE,
        },
        s="id model",
        i="created",
    ),
    # ---- embeddings, images, audio
    "EmbeddingRequest": obj(
        "model input",
        {
            "model": MODEL,
            "input": one_of(
                STR,
                arr(STR, minItems=1, maxItems=2048),
                arr(INT, minItems=1),
                arr(arr(INT, minItems=1), minItems=1, maxItems=2048),
            ),
            "encoding_format": enum("float", "base64"),
            "dimensions": rng(1, 65536),
            "provider": ref("ProviderPreferences"),
        },
        s="user",
    ),
    "EmbeddingList": obj(
        "object data model usage",
        {
            "object": _LIST,
            "data": arr(_EMBEDDING),
            "usage": obj(i="prompt_tokens total_tokens", n="cost"),
        },
        s="model",
    ),
    "ImageRequest": obj(
        "model prompt",
        {
            "model": MODEL,
            "prompt": {"type": "string", "minLength": 1, "maxLength": 32000},
            "n": rng(1, 10),
            "size": {"type": "string", "description": "`WIDTHxHEIGHT` or `auto`"},
            "quality": enum("standard", "hd", "low", "medium", "high", "auto"),
            "style": enum("vivid", "natural"),
            "response_format": enum("url", "b64_json"),
            "provider": ref("ProviderPreferences"),
        },
        s="user",
    ),
    "ImagesResponse": obj(
        "created data", {"data": arr(obj(s="url b64_json revised_prompt"))}, i="created"
    ),
    "TranscriptionRequest": obj(
        "file model",
        _AUDIO_FIELDS | {"timestamp_granularities[]": arr(enum("word", "segment"), maxItems=2)},
        s="language prompt",
        u="temperature",
    ),
    "TranslationRequest": obj(
        "file model",
        _AUDIO_FIELDS,
        s="prompt",
        u="temperature",
    ),
    "Transcription": obj(
        "text", {"words": arr(OBJ), "segments": arr(OBJ)}, s="text language", n="duration"
    ),
    # ---- responses
    "ResponseRequest": obj(
        "model",
        {
            "model": MODEL,
            "input": _CONTENT,
            "tools": arr(OBJ, maxItems=128),
            "tool_choice": _TOOL_CHOICE,
            "text": obj("", {"format": _FORMAT}, s="verbosity"),
            "reasoning": obj("", {"effort": null(STR), "summary": null(STR)}),
            "max_output_tokens": rng(16),
            "temperature": _TEMPERATURE,
            "top_logprobs": rng(0, 20),
            "include": arr(STR, maxItems=16),
            "metadata": _STR_MAP | {"maxProperties": 16},
            "store": {"type": "boolean", "default": True},
            "truncation": enum("disabled", "auto"),
            "prompt_cache_retention": enum("in_memory", "24h"),
            **_GATEWAY,
        },
        extra=False,
        b="parallel_tool_calls stream background",
        s="user safety_identifier previous_response_id service_tier prompt_cache_key",
        o="stream_options prompt_cache_options",
        ns="instructions",
        p="max_tool_calls",
        u="top_p",
    ),
    "Response": obj(
        "id object created_at status model output",
        {
            "object": const("response"),
            "status": enum("completed", "failed", "in_progress", "incomplete", "cancelled"),
            "output": arr(obj("type", s="type id")),
            "tool_choice": {},
            "tools": arr(OBJ),
            "usage": obj(
                i="input_tokens output_tokens total_tokens",
                o="input_tokens_details output_tokens_details",
                n="cost",
                b="estimated",
            ),
        },
        s="id model",
        n="created_at temperature top_p",
        b="parallel_tool_calls store",
        nn="completed_at",
        no="error incomplete_details metadata",
        ns="instructions previous_response_id",
    ),
    "ResponseDeleted": obj("id object deleted", {"object": const("response")}, s="id", b="deleted"),
    # ---- models: OpenAI's shape, or Anthropic's with an `anthropic-version` header
    "Model": obj(
        "id object owned_by",
        {"object": const("model")},
        s="id owned_by name",
        i="created",
        ni="context_length",
    ),
    "ModelList": obj("object data", {"object": _LIST, "data": arr(ref("Model"))}),
    "AnthropicModel": obj(
        "type id display_name created_at",
        {"type": const("model")},
        s="id display_name created_at",
        i="max_input_tokens",
    ),
    "AnthropicModelList": obj(
        "data has_more",
        {"data": arr(ref("AnthropicModel"))},
        b="has_more",
        ns="first_id last_id",
    ),
    # ---- Anthropic messages
    "MessagesRequest": obj(
        "model messages max_tokens",
        {
            "model": MODEL,
            "messages": arr(_TURN, minItems=1),
            "system": _CONTENT,
            "stop_sequences": _STRS,
            "top_k": rng(0),
            "metadata": obj(s="user_id"),
            "tools": arr(OBJ),
            **_GATEWAY,
        },
        b="stream",
        o="tool_choice thinking output_config output_format",
        p="max_tokens",
        u="temperature top_p",
    ),
    "AnthropicMessage": obj(
        "id type role content model stop_reason usage",
        {
            "type": const("message"),
            "role": const("assistant"),
            "content": arr(obj("type", s="type")),
            "usage": obj(
                "input_tokens output_tokens",
                i="input_tokens output_tokens",
                n="cost",
                ni="cache_creation_input_tokens cache_read_input_tokens",
            ),
        },
        s="id model",
        ns="stop_reason stop_sequence",
    ),
    "CountTokensRequest": obj(
        "model messages",
        {"model": MODEL, "messages": arr(OBJ, minItems=1), "system": _CONTENT, "tools": arr(OBJ)},
        o="tool_choice thinking",
    ),
    "CountTokensResponse": obj("input_tokens", i="input_tokens"),
    # ---- accounts
    "LoginRequest": obj(b="new_api_key", s="token referral_code partner_code"),
    "RegisterRequest": obj(
        "email", {"email": STR | {"format": "email"}}, s="referral_code partner_code"
    ),
    "AuthResponse": obj(
        "user_id api_key is_new_user",
        s="user_id email plan tier auth_method",
        b="is_new_user",
        ns="api_key trial_ends_at partner_code",
    ),
    # ---- catalog (public)
    "CatalogModel": obj(
        "id",
        {"providers": arr(OBJ)},
        s="id name provider_slug modality",
        ni="context_length",
        ns="health_status",
        no="benchmarks huggingface",
        o="pricing",
        b="supports_streaming supports_function_calling supports_vision",
    ),
    "CatalogModelList": obj(
        "object data",
        {"object": _LIST, "data": arr(ref("CatalogModel"))},
        i="total",
        ni="next_offset",
    ),
    "CatalogProviderList": obj("data", {"object": _LIST, "data": arr(OBJ)}),
    # ---- FastAPI routes that read their bodies themselves (api/batch_routes.py)
    "FileUpload": obj("file purpose", {"file": BINARY, "purpose": const("batch")}),
    "BatchRequest": obj(
        "input_file_id endpoint completion_window",
        {
            "endpoint": enum("/v1/chat/completions", "/v1/embeddings"),
            "completion_window": const("24h"),
            "metadata": _STR_MAP,
        },
        s="input_file_id",
    ),
}
