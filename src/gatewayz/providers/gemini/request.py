"""Google Gemini `generateContent` requests: canonical request → the body AI Studio
(`/v1beta/models/{model}:generateContent`) and Vertex AI (`.../publishers/google/models/
{model}:generateContent`) both take. Responses, stream chunks and errors are in
`response.py` (streams coming in: `stream.py`).

Gemini's shape: `contents` of `{role: user|model, parts}`; system text goes to
`systemInstruction`; a tool result is a `functionResponse` part that names the function (not the
call id), so the name is recovered from the assistant turn that made the call; consecutive turns
of one role are merged (parallel calls must be answered in one turn). Tool parameters and
response schemas are Gemini's OpenAPI subset of JSON Schema (`to_gemini_schema`).
"""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from gatewayz.canonical.types import (
    ChatRequest,
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    Part,
    TextPart,
    Tool,
)
from gatewayz.errors import InvalidRequest, Unsupported

# Keys of Gemini's Schema object (camelCase, as the REST API spells them).
_SCHEMA_KEYS = frozenset(
    {
        "type", "format", "title", "description", "nullable", "enum", "items", "maxItems",
        "minItems", "properties", "required", "minProperties", "maxProperties", "minLength",
        "maxLength", "pattern", "example", "anyOf", "propertyOrdering", "default", "minimum",
        "maximum",
    }
)  # fmt: skip
_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
# Top-level request fields a caller may pass through `extra` (never the OpenAI dialect's own).
_PASSTHROUGH = ("safetySettings", "cachedContent", "labels")
_BUDGETS = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}
_MAX_REF_DEPTH = 8


def render_request(req: ChatRequest, model: str) -> bytes:
    """The JSON body of a generateContent / streamGenerateContent call for `model`."""
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool call id -> function name, from earlier assistant turns
    for m in req.messages:
        if m.role in ("system", "developer"):
            system += [p for p in _parts(m.content) if "text" in p]
            continue
        if m.role == "assistant":
            role, parts = "model", _assistant_parts(m)
            for tc in m.tool_calls or ():
                names[tc.id] = tc.name
        elif m.role == "tool":
            role, parts = "user", [_function_response(m, names)]
        else:
            role, parts = "user", _parts(m.content)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    if not contents:
        raise InvalidRequest("The conversation has no user or assistant content.", param="messages")
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if req.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in req.tools]}]
        tool_config = _tool_config(req.tool_choice)
        if tool_config:
            body["toolConfig"] = {"functionCallingConfig": tool_config}
    config = generation_config(req, model)
    if config:
        body["generationConfig"] = config
    for key in _PASSTHROUGH:
        if key in req.extra:
            body[key] = req.extra[key]
    return orjson.dumps(body)


# ---------------------------------------------------------------- contents
def _parts(content: str | list[Part] | None) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    out = []
    for p in content:
        part = _part(p)
        if part is not None:
            out.append(part)
    return out


def _part(p: Part) -> dict[str, Any] | None:
    if isinstance(p, TextPart):
        return {"text": p.text} if p.text else None
    if isinstance(p, ImagePart):
        return _media(p.url, None)
    if isinstance(p, DocumentPart):
        if p.data is not None:
            if p.media_type.startswith("text/"):
                return {"text": p.data}
            return {"inlineData": {"mimeType": p.media_type, "data": p.data}}
        if p.url:
            return _media(p.url, p.media_type)
        return None
    return _other_part(p)


def _media(url: str, mime: str | None) -> dict[str, Any]:
    """A data: URL becomes inline bytes; any other URL a fileData reference."""
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        if not sep or not header.endswith(";base64"):
            raise InvalidRequest("Only base64 data: URLs are supported for media content.")
        return {"inlineData": {"mimeType": mime or header[:-7] or "image/jpeg", "data": data}}
    guessed = mime or mimetypes.guess_type(url.split("?", 1)[0])[0] or "image/jpeg"
    return {"fileData": {"mimeType": guessed, "fileUri": url}}


def _other_part(p: OtherPart) -> dict[str, Any] | None:
    if p.type == "input_audio":
        audio = p.data.get("input_audio") or {}
        fmt = str(audio.get("format") or "wav")
        return {"inlineData": {"mimeType": f"audio/{fmt}", "data": audio.get("data", "")}}
    if p.type == "file":
        f = p.data.get("file") or {}
        if isinstance(f.get("file_data"), str):
            return _media(f["file_data"], None)
        raise InvalidRequest("Gemini needs file parts as file_data (a base64 data: URL).")
    if p.type == "refusal":
        return None
    raise Unsupported(f"Content parts of type '{p.type}' are not supported by Gemini.")


def _assistant_parts(m: Message) -> list[dict[str, Any]]:
    parts = _parts(m.content)
    calls = []
    for tc in m.tool_calls or ():
        try:
            args = orjson.loads(tc.arguments) if tc.arguments.strip() else {}
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                f"The arguments of tool call '{tc.id}' are not valid JSON.", param="messages"
            ) from None
        if not isinstance(args, dict):
            raise InvalidRequest(
                f"The arguments of tool call '{tc.id}' must be a JSON object.", param="messages"
            )
        calls.append({"functionCall": {"name": tc.name, "args": args}})
    # Gemini signs its turn: the signature rides on the first function call, else on the text.
    if m.reasoning_signature:
        target = calls[0] if calls else (parts[-1] if parts else None)
        if target is not None:
            target["thoughtSignature"] = m.reasoning_signature
    return parts + calls


def _function_response(m: Message, names: dict[str, str]) -> dict[str, Any]:
    name = names.get(m.tool_call_id or "") or m.name
    if not name:
        raise InvalidRequest(
            f"The tool message with tool_call_id '{m.tool_call_id}' does not answer a tool call "
            "of an earlier assistant message (Gemini needs the function name).",
            param="messages",
        )
    if isinstance(m.content, str) or m.content is None:
        text = m.content or ""
    else:
        text = "".join(p.text for p in m.content if isinstance(p, TextPart))
    try:
        value: Any = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    response = {"error" if m.is_error else "output": value}
    return {"functionResponse": {"name": name, "response": response}}


# ---------------------------------------------------------------- tools and config
def _declaration(t: Tool) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": t.name}
    if t.description:
        decl["description"] = t.description
    if t.parameters:
        params = to_gemini_schema(t.parameters)
        # An object without properties is rejected by Gemini: a function without parameters.
        if params.get("properties") or params.get("type") != "OBJECT":
            decl["parameters"] = params
    return decl


def _tool_config(choice: str | dict[str, str] | None) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, dict):
        return {"mode": "ANY", "allowedFunctionNames": [choice["name"]]}
    mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(choice)
    return {"mode": mode} if mode else None


def generation_config(req: ChatRequest, model: str) -> dict[str, Any]:
    cfg: dict[str, Any] = {}
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("max_tokens", "maxOutputTokens"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        value = getattr(req, src)
        if value is not None:
            cfg[dst] = value
    if req.stop:
        cfg["stopSequences"] = list(req.stop)
    if req.n != 1:
        cfg["candidateCount"] = req.n
    rf = req.response_format or {}
    if rf.get("type") == "json_object":
        cfg["responseMimeType"] = "application/json"
    elif rf.get("type") == "json_schema":
        cfg["responseMimeType"] = "application/json"
        schema = (rf.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            cfg["responseSchema"] = to_gemini_schema(schema)
    thinking = thinking_config(req, model)
    if thinking is not None:
        cfg["thinkingConfig"] = thinking
    return cfg


def thinking_config(req: ChatRequest, model: str) -> dict[str, Any] | None:
    """Anthropic-style `thinking` → a budget; `reasoning_effort` → a level for Gemini 3 models,
    a budget for the 2.5 ones. Thoughts are asked for whenever the model is to think."""
    if req.thinking:
        if req.thinking.get("type") == "disabled":
            return {"thinkingBudget": 0}
        budget = req.thinking.get("budget_tokens")
        cfg: dict[str, Any] = {"includeThoughts": True}
        if isinstance(budget, int):
            cfg["thinkingBudget"] = budget
        return cfg
    effort = req.reasoning_effort
    if effort is None:
        return None
    if "gemini-3" in model:
        level = {"none": "minimal", "xhigh": "high"}.get(effort, effort)
        if "pro" in model:
            level = {"minimal": "low", "medium": "high"}.get(level, level)
        return {"thinkingLevel": level.upper(), "includeThoughts": True}
    budget = _BUDGETS.get(effort, 24576 if effort == "xhigh" else 8192)
    if budget == 0:
        return {"thinkingBudget": 0}
    return {"thinkingBudget": budget, "includeThoughts": True}


# ---------------------------------------------------------------- JSON Schema → Gemini Schema
def to_gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """JSON Schema → Gemini's OpenAPI subset: local `$ref`s inlined, `const` as a one-value
    enum, `["x", "null"]` types as `nullable`, types upper-cased, everything else Gemini does
    not know (additionalProperties, $schema, $defs, oneOf, ...) dropped."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _convert(schema, defs, 0)


def _convert(s: Any, defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if not isinstance(s, dict):
        return {}
    ref = s.get("$ref")
    if isinstance(ref, str) and depth < _MAX_REF_DEPTH:
        target = defs.get(ref.rsplit("/", 1)[-1])
        if isinstance(target, dict):
            merged = {**target, **{k: v for k, v in s.items() if k != "$ref"}}
            return _convert(merged, defs, depth + 1)
        return {}
    out: dict[str, Any] = {}
    types = s.get("type")
    if isinstance(types, list):
        kinds = [t for t in types if t != "null"]
        if len(kinds) < len(types):
            out["nullable"] = True
        if len(kinds) > 1:
            alts = [_convert({**s, "type": k}, defs, depth) for k in kinds]
            return {"anyOf": alts, **out}
        types = kinds[0] if kinds else "null"
    if isinstance(types, str) and types.upper() in _TYPES:
        out["type"] = types.upper()
    if "const" in s and "enum" not in s:
        out["enum"] = [s["const"]]
    for key, value in s.items():
        if key not in _SCHEMA_KEYS or key == "type" or (key == "nullable" and key in out):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _convert(v, defs, depth) for k, v in value.items()}
        elif key == "items" and isinstance(value, dict):
            out[key] = _convert(value, defs, depth)
        elif key == "anyOf" and isinstance(value, list):
            out.update(_any_of(value, defs, depth))
        else:
            out[key] = value
    if "oneOf" in s and "anyOf" not in out and isinstance(s["oneOf"], list):
        out.update(_any_of(s["oneOf"], defs, depth))
    if "enum" in out:
        if not all(isinstance(v, str) for v in out["enum"]):
            out.pop("enum")  # Gemini enums are strings only
        elif "type" not in out:
            out["type"] = "STRING"
    if out.get("properties") == {}:
        out.pop("properties")
    if "required" in out:
        props = out.get("properties") or {}
        out["required"] = [r for r in out["required"] if r in props]
        if not out["required"]:
            out.pop("required")
    return out


def _any_of(alts: list[Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` (pydantic's Optional) → X with `nullable`."""
    converted = [_convert(v, defs, depth) for v in alts]
    kept = [c for c in converted if c.get("type") != "NULL"]
    out: dict[str, Any] = {"nullable": True} if len(kept) < len(converted) else {}
    if len(kept) == 1:
        return {**kept[0], **out}
    return {"anyOf": kept, **out} if kept else out
