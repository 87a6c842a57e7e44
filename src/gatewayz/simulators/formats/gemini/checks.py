"""Request checks of the Gemini simulator, AI Studio and Vertex alike: the errors Gemini answers
for unknown fields, malformed parts, schemas outside its OpenAPI subset, function responses that
do not match the calls of the turn before, and bad generation settings; plus the field-name and
schema normalisation the simulator reads requests with."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

_TOP = {
    "contents",
    "systemInstruction",
    "tools",
    "toolConfig",
    "generationConfig",
    "safetySettings",
    "cachedContent",
    "labels",
}
_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse")
_PART = {*_DATA, "thought", "thoughtSignature", "videoMetadata", "mediaResolution"}
_GEN = {
    "temperature",
    "topP",
    "topK",
    "maxOutputTokens",
    "stopSequences",
    "candidateCount",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "thinkingConfig",
    "responseLogprobs",
    "logprobs",
    "responseModalities",
    "mediaResolution",
    "speechConfig",
}
_SCHEMA = {
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "minimum",
    "maximum",
}
_TYPES = {"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:-]{0,127}")


_OPAQUE = frozenset({"args", "response", "labels", "example", "default", "enum", "required"})


def normalize(value: Any, key: str = "") -> Any:
    """Field names as Gemini reads them: proto JSON takes snake_case as well as lowerCamelCase
    (the official SDK sends some nested fields, like `include_thoughts`, in snake_case). User
    data (function args/responses, property names, labels) is left alone."""
    if isinstance(value, list):
        return [normalize(v, key) for v in value]
    if not isinstance(value, dict) or key in _OPAQUE:
        return value
    if key == "properties":
        return {k: normalize(v) for k, v in value.items()}
    out = {}
    for k, v in value.items():
        camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k)
        out[camel] = normalize(v, camel)
    return out


def _unknown(key: str, where: str) -> str:
    return f"Invalid JSON payload received. Unknown name \"{key}\" at '{where}': Cannot find field."


def _schema_problem(s: Any, where: str) -> str | None:
    if not isinstance(s, dict):
        return f"{where}: must be an object"
    for key in s:
        if key not in _SCHEMA:
            return _unknown(key, where)
    kind = s.get("type")
    if kind is not None and (not isinstance(kind, str) or kind.upper() not in _TYPES):
        return f"{where}.type: invalid value {kind!r}"
    if isinstance(kind, str) and kind.upper() == "OBJECT" and s.get("properties") == {}:
        return f"{where}.properties: should be non-empty for OBJECT type"
    subs = [(v, f"{where}.properties[{k}]") for k, v in (s.get("properties") or {}).items()]
    subs += [(v, f"{where}.any_of[{i}]") for i, v in enumerate(s.get("anyOf") or ())]
    if "items" in s:
        subs.append((s["items"], f"{where}.items"))
    for sub, path in subs:
        problem = _schema_problem(sub, path)
        if problem:
            return problem
    return None


def _part_problem(p: Any, where: str) -> str | None:
    if not isinstance(p, dict) or set(p) - _PART:
        return f"{where}: unknown or invalid part"
    kinds = [k for k in _DATA if k in p]
    if len(kinds) != 1:
        return f"{where}: a part must have exactly one of {', '.join(_DATA)}"
    v = p[kinds[0]]
    if kinds[0] == "text":
        return None if isinstance(v, str) else f"{where}.text: must be a string"
    if kinds[0] == "inlineData":
        try:
            base64.b64decode(v["data"], validate=True)
            return None if isinstance(v["mimeType"], str) else f"{where}: bad mimeType"
        except (KeyError, TypeError, binascii.Error):
            return f"{where}.inline_data: needs mimeType and base64 data"
    if kinds[0] == "fileData":
        return None if isinstance(v, dict) and v.get("fileUri") else f"{where}: needs fileUri"
    if kinds[0] == "functionCall":
        ok = (
            isinstance(v, dict)
            and isinstance(v.get("name"), str)
            and isinstance(v.get("args", {}), dict)
        )
        return None if ok else f"{where}.function_call: needs name and args"
    ok = (
        isinstance(v, dict)
        and isinstance(v.get("name"), str)
        and isinstance(v.get("response"), dict)
    )
    return None if ok else f"{where}.function_response: needs name and response object"


def problem(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "Invalid JSON payload received."
    for key in body:
        if key not in _TOP:
            return f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.'
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    prev_calls = 0
    for i, c in enumerate(contents):
        if (
            not isinstance(c, dict)
            or set(c) - {"role", "parts"}
            or c.get("role", "user") not in ("user", "model")
        ):
            return f"contents[{i}]: invalid content (role must be user or model)"
        parts = c.get("parts")
        if not isinstance(parts, list) or not parts:
            return (
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        for j, p in enumerate(parts):
            problem = _part_problem(p, f"contents[{i}].parts[{j}]")
            if problem:
                return problem
        responses = sum("functionResponse" in p for p in parts)
        if responses and responses != prev_calls:
            return (
                "Please ensure that the number of function response parts is equal to the "
                "number of function call parts of the function call turn."
            )
        prev_calls = sum("functionCall" in p for p in parts) if c.get("role") == "model" else 0
    system = body.get("systemInstruction")
    if system is not None and not (
        isinstance(system, dict) and isinstance(system.get("parts"), list)
    ):
        return "systemInstruction: must be a content with parts"
    for i, tool in enumerate(body.get("tools") or ()):
        for j, decl in enumerate((tool or {}).get("functionDeclarations") or ()):
            where = f"tools[{i}].function_declarations[{j}]"
            if not isinstance(decl, dict) or not _NAME.fullmatch(str(decl.get("name", ""))):
                return f"* GenerateContentRequest.{where}.name: Invalid function name."
            if set(decl) - {
                "name",
                "description",
                "parameters",
                "parametersJsonSchema",
                "response",
            }:
                return f"{where}: unknown field"
            if "parameters" in decl and (
                problem := _schema_problem(decl["parameters"], f"{where}.parameters")
            ):
                return f"* GenerateContentRequest.{problem}"
    fcc = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
    if fcc.get("mode", "AUTO") not in ("AUTO", "ANY", "NONE", "VALIDATED"):
        return f"toolConfig.functionCallingConfig.mode: invalid value {fcc.get('mode')!r}"
    if fcc.get("allowedFunctionNames") and fcc.get("mode") != "ANY":
        return "allowed_function_names can only be set when the function calling mode is ANY."
    gen = body.get("generationConfig") or {}
    for key in gen:
        if key not in _GEN:
            return _unknown(key, "generation_config")
    thinking = gen.get("thinkingConfig") or {}
    if set(thinking) - {"includeThoughts", "thinkingBudget", "thinkingLevel"}:
        return "generation_config.thinking_config: unknown field"
    if "thinkingBudget" in thinking and "thinkingLevel" in thinking:
        return "You can only set one of thinking budget and thinking level."
    if "responseSchema" in gen:
        if gen.get("responseMimeType") != "application/json":
            return "response_schema requires response_mime_type application/json."
        if problem := _schema_problem(gen["responseSchema"], "generation_config.response_schema"):
            return problem
    n = gen.get("candidateCount", 1)
    if not isinstance(n, int) or not 1 <= n <= 8:
        return "generation_config.candidate_count: must be between 1 and 8"
    return None


def json_schema(s: Any) -> Any:
    """Gemini schema → JSON Schema, for the shared value generator."""
    if isinstance(s, list):
        return [json_schema(v) for v in s]
    if not isinstance(s, dict):
        return s
    out = {k: json_schema(v) for k, v in s.items() if k != "nullable"}
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
    if "properties" in s:
        out["properties"] = {k: json_schema(v) for k, v in s["properties"].items()}
    return out
