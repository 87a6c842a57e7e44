"""AWS Bedrock Converse / ConverseStream, as botocore's bedrock-runtime model describes them.

Requests: canonical → `{messages, system, inferenceConfig, toolConfig, outputConfig,
additionalModelRequestFields}` (consecutive messages of one role merge, so tool results that
follow each other form one user message). Responses: `output.message.content` blocks → text,
reasoning, tool calls. Streams are in `stream.py`. Errors: `{"message": ...}` plus
the error type from the `x-amzn-ErrorType` header or the `:exception-type` of a stream frame.
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import unquote_to_bytes

import orjson

from gatewayz.canonical.bounds import BadUsage, optional_count, token_count
from gatewayz.canonical.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    DocumentPart,
    ImagePart,
    Message,
    Part,
    TextPart,
    ToolCall,
    Usage,
)
from gatewayz.errors import (
    GatewayError,
    InvalidRequest,
    Unsupported,
    UpstreamUnavailable,
    from_upstream_status,
)
from gatewayz.providers import urls

STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
# Error type (lower-cased, as the x-amzn-ErrorType header or a stream's :exception-type names
# it) → the HTTP status Bedrock documents for it.
ERROR_STATUS = {
    "validationexception": 400,
    "servicequotaexceededexception": 400,
    "conflictexception": 400,
    "accessdeniedexception": 403,
    "unrecognizedclientexception": 403,
    "resourcenotfoundexception": 404,
    "modeltimeoutexception": 408,
    "throttlingexception": 429,
    "modelnotreadyexception": 429,
    "modelerrorexception": 424,
    "modelstreamerrorexception": 424,
    "internalserverexception": 500,
    "serviceunavailableexception": 503,
}
IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "text/html": "html",
    "text/plain": "txt",
    "text/markdown": "md",
}
_DOC_NAME_BAD = re.compile(r"[^A-Za-z0-9\s\-()\[\]]")


def model_path(native_model: str, stream: bool) -> str:
    """`/model/{modelId}/converse[-stream]`, the model id percent-encoded (`:` → `%3A`)."""
    return f"/model/{urls.segment(native_model)}/{'converse-stream' if stream else 'converse'}"


# ---------------------------------------------------------------- request out
def render_request(req: ChatRequest, native_model: str) -> bytes:
    return orjson.dumps(build_request(req, native_model))


def build_request(req: ChatRequest, native_model: str) -> dict[str, Any]:
    if req.n > 1:
        raise Unsupported("AWS Bedrock does not support n > 1", param="n")
    system: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    uses_tools = False
    docs = [0]
    for m in req.messages:
        if m.role in ("system", "developer"):
            text = _plain_text(m.content)
            if text:
                system.append({"text": text})
            continue
        if m.role == "tool":
            role, blocks = "user", [_tool_result(m, docs)]
            uses_tools = True
        elif m.role == "assistant":
            role, blocks = "assistant", _assistant_blocks(m)
            uses_tools = uses_tools or bool(m.tool_calls)
        else:
            role, blocks = "user", _content_blocks(m.content, docs)
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    body: dict[str, Any] = {"messages": messages}
    if system:
        body["system"] = system
    inference: dict[str, Any] = {}
    if req.max_tokens is not None:
        inference["maxTokens"] = req.max_tokens
    if req.temperature is not None:
        inference["temperature"] = req.temperature
    if req.top_p is not None:
        inference["topP"] = req.top_p
    if req.stop:
        inference["stopSequences"] = list(req.stop)
    if inference:
        body["inferenceConfig"] = inference
    tool_config = _tool_config(req, uses_tools)
    if tool_config:
        body["toolConfig"] = tool_config
    fmt = req.response_format or {}
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema: dict[str, Any] = {"schema": orjson.dumps(spec.get("schema") or {}).decode()}
        for key in ("name", "description"):
            if spec.get(key):
                schema[key] = spec[key]
        body["outputConfig"] = {
            "textFormat": {"type": "json_schema", "structure": {"jsonSchema": schema}}
        }
    extra: dict[str, Any] = {}
    if req.top_k is not None:
        if "amazon.nova" in native_model:
            extra["inferenceConfig"] = {"topK": req.top_k}
        else:
            extra["top_k"] = req.top_k
    if req.thinking:
        extra["thinking"] = req.thinking
    if extra:
        body["additionalModelRequestFields"] = extra
    return body


def _plain_text(content: str | list[Part] | None) -> str:
    if isinstance(content, str):
        return content
    return "".join(p.text for p in content or () if isinstance(p, TextPart))


def _content_blocks(content: str | list[Part] | None, docs: list[int]) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content:
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"text": part.text})
        elif isinstance(part, ImagePart):
            blocks.append({"image": image_block(part.url)})
        elif isinstance(part, DocumentPart):
            docs[0] += 1
            blocks.append({"document": _document_block(part, docs[0])})
        else:
            raise Unsupported(
                f"content parts of type '{part.type}' are not supported by AWS Bedrock",
                param="messages",
            )
    return blocks


def image_block(url: str) -> dict[str, Any]:
    """A `data:` URL → `{format, source: {bytes: base64}}`; Bedrock cannot fetch URLs."""
    if not url.startswith("data:"):
        raise InvalidRequest(
            "AWS Bedrock accepts images only as base64 data: URLs", param="messages"
        )
    meta, sep, data = url[5:].partition(",")
    subtype = meta.split(";")[0].partition("/")[2].lower()
    if not sep or subtype not in IMAGE_FORMATS:
        raise InvalidRequest(
            f"unsupported image type for AWS Bedrock: {meta.split(';')[0] or 'unknown'}",
            param="messages",
        )
    if not meta.endswith(";base64"):
        data = base64.b64encode(unquote_to_bytes(data)).decode()
    return {"format": IMAGE_FORMATS[subtype], "source": {"bytes": data}}


def _document_block(part: DocumentPart, n: int) -> dict[str, Any]:
    fmt = DOCUMENT_FORMATS.get(part.media_type.split(";")[0].strip().lower())
    if fmt is None or part.data is None:
        what = part.media_type if fmt is None else "documents by URL"
        raise InvalidRequest(f"AWS Bedrock does not accept {what}", param="messages")
    data = part.data
    if fmt == "txt":
        data = base64.b64encode(data.encode()).decode()
    name = " ".join(_DOC_NAME_BAD.sub("-", part.title or "").split())[:200] or f"document-{n}"
    return {"format": fmt, "name": name, "source": {"bytes": data}}


def _tool_input(arguments: str) -> Any:
    try:
        return orjson.loads(arguments) if arguments.strip() else {}
    except orjson.JSONDecodeError:
        raise InvalidRequest(
            "tool call arguments must be valid JSON for AWS Bedrock", param="messages"
        ) from None


def _assistant_blocks(m: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if m.reasoning:
        text: dict[str, Any] = {"text": m.reasoning}
        if m.reasoning_signature:
            text["signature"] = m.reasoning_signature
        blocks.append({"reasoningContent": {"reasoningText": text}})
    blocks += _content_blocks(m.content, [0])
    for tc in m.tool_calls or ():
        blocks.append(
            {"toolUse": {"toolUseId": tc.id, "name": tc.name, "input": _tool_input(tc.arguments)}}
        )
    return blocks


def _tool_result(m: Message, docs: list[int]) -> dict[str, Any]:
    content = _content_blocks(m.content, docs) or [{"text": ""}]
    return {
        "toolResult": {
            "toolUseId": m.tool_call_id or "",
            "content": content,
            "status": "error" if m.is_error else "success",
        }
    }


def _tool_config(req: ChatRequest, uses_tools: bool) -> dict[str, Any] | None:
    if not req.tools:
        return None
    tools = []
    for t in req.tools:
        spec: dict[str, Any] = {
            "name": t.name,
            "inputSchema": {"json": t.parameters or {"type": "object", "properties": {}}},
        }
        if t.description:
            spec["description"] = t.description
        if t.strict is not None:
            spec["strict"] = t.strict
        tools.append({"toolSpec": spec})
    choice = req.tool_choice
    if choice == "none":
        # Bedrock has no "none": leave the tools out unless the history needs them declared.
        return {"tools": tools} if uses_tools else None
    config: dict[str, Any] = {"tools": tools}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and choice.get("name"):
        config["toolChoice"] = {"tool": {"name": choice["name"]}}
    return config


# ---------------------------------------------------------------- response in
def parse_usage(u: Any) -> Usage | None:
    if not isinstance(u, dict) or u.get("inputTokens") is None:
        return None
    try:
        read = optional_count(u.get("cacheReadInputTokens"))
        write = optional_count(u.get("cacheWriteInputTokens"))
        # inputTokens leaves out the cached part; canonical prompt_tokens counts all of it.
        return Usage(
            prompt_tokens=token_count(u["inputTokens"]) + (read or 0) + (write or 0),
            completion_tokens=token_count(u.get("outputTokens") or 0),
            cached_tokens=read,
            cache_write_tokens=write,
        )
    except BadUsage:
        return Usage.unreadable()


def finish_reason(stop_reason: Any) -> str:
    return STOP_REASONS.get(stop_reason, "stop")


def stop_sequence(fields: Any) -> str | None:
    seq = fields.get("stop_sequence") if isinstance(fields, dict) else None
    return seq if isinstance(seq, str) else None


def parse_response(
    body: bytes, provider: str, native_model: str | None = None, request_id: str | None = None
) -> ChatResponse:
    try:
        raw = orjson.loads(body)
        blocks = raw["output"]["message"]["content"]
        texts: list[str] = []
        reasoning: list[str] = []
        signature = None
        calls = []
        for block in blocks:
            if "text" in block:
                texts.append(block["text"])
            elif "toolUse" in block:
                use = block["toolUse"]
                args = orjson.dumps(use.get("input", {})).decode()
                calls.append(ToolCall(use["toolUseId"], use["name"], args))
            elif "reasoningContent" in block:
                rt = block["reasoningContent"].get("reasoningText") or {}
                reasoning.append(rt.get("text") or "")
                signature = rt.get("signature") or signature
        message = Message(
            role="assistant",
            content="".join(texts) if texts or not calls else None,
            tool_calls=calls or None,
            reasoning="".join(reasoning) or None,
            reasoning_signature=signature,
        )
        choice = Choice(
            0,
            message,
            finish_reason(raw.get("stopReason")),
            stop_sequence=stop_sequence(raw.get("additionalModelResponseFields")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise bad_upstream(provider, exc) from None
    return ChatResponse(
        [choice], parse_usage(raw.get("usage")), upstream_id=request_id, upstream_model=native_model
    )


def bad_upstream(provider: str, exc: Exception | str) -> GatewayError:
    what = exc if isinstance(exc, str) else type(exc).__name__
    return UpstreamUnavailable(
        f"provider {provider} sent a malformed response ({what})", provider=provider
    )


# ---------------------------------------------------------------- errors
def error_type(header: str | None) -> str | None:
    """`ThrottlingException:http://internal.amazon.com/...` → `ThrottlingException`."""
    return (header.split(":", 1)[0].strip() or None) if header else None


def error_message(body: bytes, kind: str | None = None) -> str:
    try:
        raw = orjson.loads(body)
        msg = (raw.get("message") or raw.get("Message")) if isinstance(raw, dict) else None
    except orjson.JSONDecodeError:
        msg = None
    if not isinstance(msg, str) or not msg:
        msg = body[:500].decode("utf-8", "replace").strip() or "no error message"
    return f"{kind}: {msg}" if kind else msg


def upstream_error(
    status: int, body: bytes, kind: str | None, provider: str, retry_after: str | None = None
) -> GatewayError:
    """An HTTP error answer (or a stream exception with its documented status) → our error.
    424 (the model itself failed) counts as a bad gateway, not as the caller's fault."""
    mapped = 502 if status == 424 else status
    return from_upstream_status(mapped, error_message(body, kind), provider, retry_after)
