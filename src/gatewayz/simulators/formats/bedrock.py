"""AWS Bedrock Converse (`POST /model/{modelId}/converse`) and ConverseStream
(`POST /model/{modelId}/converse-stream`, binary `application/vnd.amazon.eventstream` frames).

Auth: with `sim.api_key` set, an `Authorization: AWS4-HMAC-SHA256 Credential=<key id>/<date>/
<region>/bedrock/aws4_request, SignedHeaders=..., Signature=...` header whose access key id is
`sim.api_key` (the signature itself is not verified: the simulator knows no secret).

Content comes from `simulators/content.py` on an OpenAI-shaped view of the request: tool calls
when `toolConfig` is given and `toolChoice` is `any`/`tool` or the model id contains "tools"
(two parallel toolUse blocks when two or more tools are offered). Faults: `status` answers
`{"message"}` with the matching `x-amzn-ErrorType`; on a stream, `status` together with
`drop_after_chunks` instead sends that many event frames and then an exception frame for the
status (429 → throttlingException, 424 → modelStreamErrorException, ...). `malformed` corrupts
the CRC of the second frame (non-stream: half the JSON body). Other fields as for OpenAI.
InvokeModel, for the embedding and image models, is in `bedrock_media.py` (same auth and
faults: `begin`, `json_reply`).
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

import orjson

from gatewayz.providers.bedrock.eventstream import encode_message

from ..content import Completion, compact_json, plan_choice, prompt_tokens
from ..faults import Fault, mid_stream, status_reply
from ..protocol import CHUNKED_END, Reply, Request, chunk, response, response_head

EVENT_STREAM = b"application/vnd.amazon.eventstream"
_NO_FAULT = Fault()
_ERROR_TYPE_SUFFIX = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
_ERRORS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}
_STREAM_ERRORS = {
    400: "validationException",
    424: "modelStreamErrorException",
    429: "throttlingException",
    500: "internalServerException",
    503: "serviceUnavailableException",
}
_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_IMAGE_FORMATS = frozenset({"png", "jpeg", "gif", "webp"})
_BLOCKS = frozenset({"text", "image", "document", "toolUse", "toolResult", "reasoningContent"})
_CREDENTIAL = re.compile(
    r"AWS4-HMAC-SHA256 Credential=([^/,\s]+)/(\d{8})/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request"
)


class _Invalid(Exception):
    pass


def _converse(sim: Any, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    return _handle(sim, req, parsed, match.group("model"), stream=False)


def _converse_stream(sim: Any, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    return _handle(sim, req, parsed, match.group("model"), stream=True)


ROUTES = [
    ("POST", r"/model/(?P<model>[^/]+)/converse", _converse),
    ("POST", r"/model/(?P<model>[^/]+)/converse-stream", _converse_stream),
]


def error_reply(
    status: int,
    body: bytes,
    keep: bool,
    kind: str | None = None,
    retry_after: str | None = None,
    delay: float = 0.0,
) -> Reply:
    """A Bedrock error answer: `{"message"}` and the error type in `x-amzn-ErrorType`."""
    kind = kind or _error_kind(status)
    headers = [("x-amzn-ErrorType", kind + _ERROR_TYPE_SUFFIX), ("x-amzn-RequestId", _rid())]
    if retry_after is not None:
        headers.append(("Retry-After", retry_after))
    head = response(status, body, keep, headers=headers)
    return Reply(head, keep_alive=keep, delay=delay)


def _error_kind(status: int) -> str:
    return _ERRORS.get(status) or (
        "InternalServerException" if status >= 500 else "ValidationException"
    )


def _message(text: str) -> bytes:
    return orjson.dumps({"message": text})


def _rid() -> str:
    return str(uuid.uuid4())


def _auth_problem(sim: Any, req: Request) -> tuple[str, str] | None:
    if sim.api_key is None:
        return None
    auth = req.headers.get("authorization")
    if not auth:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    m = _CREDENTIAL.match(auth)
    if not m or "SignedHeaders=" not in auth or "Signature=" not in auth:
        return "IncompleteSignatureException", "Authorization header requires a SigV4 signature."
    if m.group(1) != sim.api_key:
        return (
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    if m.group(4) != "bedrock" or "x-amz-date" not in req.headers:
        return "InvalidSignatureException", "The request signature we calculated does not match."
    return None


def begin(sim: Any, req: Request, stream: bool) -> tuple[Fault, Reply | None]:
    """The request's fault, and the reply that ends it before any content: a SigV4 problem
    (403), a drop, or a scripted error status (with its `x-amzn-ErrorType`)."""
    problem = _auth_problem(sim, req)
    if problem is not None:
        return _NO_FAULT, error_reply(403, _message(problem[1]), req.keep_alive, problem[0])
    f = sim.take_fault() or _NO_FAULT
    if f.drop_after_chunks == 0 and not stream:
        return f, Reply(b"", keep_alive=False, delay=max(0.0, f.delay_s), drop_now=True)
    if f.status and not f.breaks_stream(stream):
        kind = None if f.status < 400 else _error_kind(f.status)
        headers = [("x-amzn-RequestId", _rid())]
        if kind is not None:
            headers.append(("x-amzn-ErrorType", kind + _ERROR_TYPE_SUFFIX))
        return f, status_reply(req, f, lambda _status, text: {"message": text}, headers)
    return f, None


def _handle(sim: Any, req: Request, parsed: Any, model: str, stream: bool) -> Reply:
    keep = req.keep_alive
    f, early = begin(sim, req, stream)
    if early is not None:
        return early
    delay = max(0.0, f.delay_s)
    try:
        chat = as_chat_request(model, parsed)
    except _Invalid as exc:
        return error_reply(400, _message(str(exc)), keep, delay=delay)
    completion = plan_choice(chat, 0, text=f.text, empty=f.empty_stream)
    ptoks = prompt_tokens(chat["messages"])
    usage = {
        "inputTokens": ptoks,
        "outputTokens": completion.completion_tokens,
        "totalTokens": ptoks + completion.completion_tokens,
    }
    if not stream:
        return _plain_reply(completion, usage, f, keep)
    return _stream_reply(req, completion, usage, f, keep, delay)


def _tool_use_id(call_id: str) -> str:
    return "tooluse_" + call_id.removeprefix("call_")


def _plain_reply(c: Completion, usage: dict[str, Any], f: Fault, keep: bool) -> Reply:
    content: list[dict[str, Any]] = [
        {"toolUse": {"toolUseId": _tool_use_id(t.id), "name": t.name,
                     "input": orjson.loads(t.arguments)}}
        for t in c.tool_calls
    ]  # fmt: skip
    if not content:
        content = [{"text": c.content or ""}]
    out: dict[str, Any] = {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": _STOP.get(c.finish_reason, "end_turn"),
        "metrics": {"latencyMs": 1},
    }
    if not f.omit_usage:
        out["usage"] = usage
    return json_reply(orjson.dumps(out), f, keep)


def json_reply(
    body: bytes, f: Fault, keep: bool, headers: list[tuple[str, str]] | None = None
) -> Reply:
    """A 200 JSON answer with its request id: `malformed` halves the body, `drop_after_chunks`
    (> 0) sends the headers and half the body, then drops the connection."""
    delay = max(0.0, f.delay_s)
    if f.malformed:
        body = body[: len(body) // 2]
    full = response(200, body, keep, headers=[("x-amzn-RequestId", _rid()), *(headers or [])])
    if f.drop_after_chunks is not None:
        return Reply(full[: len(full) - len(body) // 2], keep_alive=False, delay=delay,
                     drop_after=0)  # fmt: skip
    return Reply(full, keep_alive=keep, delay=delay)


def event_frame(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": event_type, ":content-type": "application/json",
               ":message-type": "event"}  # fmt: skip
    return encode_message(headers, orjson.dumps({**payload, "p": "abcdefghij"}))


def exception_frame(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json",
               ":message-type": "exception"}  # fmt: skip
    return encode_message(headers, orjson.dumps({"message": message}))


def _exception_for(status: int, message: str) -> bytes:
    return exception_frame(_STREAM_ERRORS.get(status, "internalServerException"), message)


def stream_frames(c: Completion, usage: dict[str, Any] | None) -> list[bytes]:
    frames = [event_frame("messageStart", {"role": "assistant"})]
    if c.tool_calls:
        for i, t in enumerate(c.tool_calls):
            start = {"toolUse": {"toolUseId": _tool_use_id(t.id), "name": t.name}}
            frames.append(
                event_frame("contentBlockStart", {"start": start, "contentBlockIndex": i})
            )
            for part in t.argument_chunks():
                delta = {"toolUse": {"input": part}}
                frames.append(
                    event_frame("contentBlockDelta", {"delta": delta, "contentBlockIndex": i})
                )
            frames.append(event_frame("contentBlockStop", {"contentBlockIndex": i}))
    elif c.pieces:
        for piece in c.pieces:
            frames.append(
                event_frame("contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": 0})
            )
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": 0}))
    frames.append(
        event_frame("messageStop", {"stopReason": _STOP.get(c.finish_reason, "end_turn")})
    )
    if usage is not None:
        frames.append(event_frame("metadata", {"usage": usage, "metrics": {"latencyMs": 1}}))
    return frames


def _stream_reply(
    req: Request, c: Completion, usage: dict[str, Any], f: Fault, keep: bool, delay: float
) -> Reply:
    frames, drop_after = mid_stream(stream_frames(c, None if f.omit_usage else usage), f, req,
                                    _exception_for)  # fmt: skip
    if f.malformed and len(frames) > 1:
        bad = frames[1]
        frames[1] = bad[:-1] + bytes(((bad[-1] ^ 0xFF),))
    chunked = req.version != "1.0"
    keep = keep and chunked
    head = response_head(200, EVENT_STREAM, keep, chunked=chunked,
                         headers=[("x-amzn-RequestId", _rid())])  # fmt: skip
    gap = max(0.0, f.chunk_delay_s)
    events = [b"".join(frames)] if gap <= 0 and drop_after is None else frames
    if chunked:
        events = [chunk(e) for e in events]
    return Reply(head, events, tail=CHUNKED_END if chunked else b"", keep_alive=keep,
                 delay=delay, gap=gap, drop_after=drop_after)  # fmt: skip


# ------------------------------------------------------------------ request → chat view
def _text_of(blocks: list[Any]) -> str:
    parts = []
    for b in blocks:
        if "text" in b:
            parts.append(str(b["text"]))
        elif "json" in b:
            parts.append(compact_json(b["json"]))
    return "".join(parts)


def _check_block(b: Any, where: str) -> None:
    if not isinstance(b, dict) or len(b) != 1 or next(iter(b)) not in _BLOCKS:
        raise _Invalid(f"The content block at {where} must set exactly one supported member.")
    if "text" in b and (not isinstance(b["text"], str) or not b["text"].strip()):
        raise _Invalid(f"The text field in the ContentBlock object at {where} is blank. "
                       "Add text to the text field, and try again.")  # fmt: skip
    if "image" in b:
        img = b["image"]
        if not isinstance(img, dict) or img.get("format") not in _IMAGE_FORMATS:
            raise _Invalid(f"Invalid image format at {where}.")
        try:
            base64.b64decode(img["source"]["bytes"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            raise _Invalid(f"Invalid base64 image bytes at {where}.") from None


def as_chat_request(model: str, body: Any) -> dict[str, Any]:
    """Validate a Converse body the way Bedrock does (the subset that matters) and return an
    OpenAI-shaped view of it for `content.plan_choice`."""
    if not isinstance(body, dict):
        raise _Invalid("Malformed input request, please reformat your input and try again.")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _Invalid("A conversation must start with a user message. Try again with a "
                       "conversation that starts with a user message.")  # fmt: skip
    config = body.get("toolConfig")
    tools = [t["toolSpec"] for t in (config or {}).get("tools", []) if "toolSpec" in t]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": _text_of(body["system"])}
    ] if body.get("system") else []  # fmt: skip
    prev_uses: set[str] = set()
    for i, m in enumerate(msgs):
        role = m.get("role") if isinstance(m, dict) else None
        content = m.get("content") if isinstance(m, dict) else None
        if role not in ("user", "assistant") or not isinstance(content, list) or not content:
            raise _Invalid(f"messages.{i}: a message needs a role and non-empty content.")
        if (i == 0 and role != "user") or (i and msgs[i - 1].get("role") == role):
            raise _Invalid("A conversation must alternate between user and assistant roles. "
                           "Make sure the conversation alternates between user and assistant "
                           "roles and try again.")  # fmt: skip
        texts, uses = [], []
        for j, b in enumerate(content):
            _check_block(b, f"messages.{i}.content.{j}")
            if ("toolUse" in b or "toolResult" in b) and config is None:
                raise _Invalid("The toolConfig field must be defined when using toolUse and "
                               "toolResult content blocks.")  # fmt: skip
            if "toolResult" in b:
                result = b["toolResult"]
                if result.get("toolUseId") not in prev_uses:
                    raise _Invalid(f"messages.{i}.content.{j}: toolResult {result.get('toolUseId')}"
                                   " does not answer a toolUse of the previous turn.")  # fmt: skip
                messages.append({"role": "tool", "tool_call_id": result["toolUseId"],
                                 "content": _text_of(result.get("content") or [])})  # fmt: skip
            elif "toolUse" in b:
                uses.append(b["toolUse"])
            elif "text" in b:
                texts.append(b["text"])
        prev_uses = {u["toolUseId"] for u in uses}
        if texts or uses or not any("toolResult" in b for b in content):
            msg: dict[str, Any] = {"role": role, "content": "".join(texts)}
            if uses:
                msg["tool_calls"] = [
                    {"id": u["toolUseId"], "type": "function",
                     "function": {"name": u["name"], "arguments": compact_json(u["input"])}}
                    for u in uses
                ]  # fmt: skip
            messages.append(msg)
    choice = (config or {}).get("toolChoice") or {}
    names = {t["name"] for t in tools}
    if "tool" in choice and choice["tool"].get("name") not in names:
        raise _Invalid("The tool named in toolChoice is not in toolConfig.tools.")
    inference = body.get("inferenceConfig") or {}
    effective = model if model.endswith("tools") or "tools" not in model else model + "-tools"
    return {
        "model": effective,
        "messages": messages,
        "tools": [{"type": "function", "function": {"name": t["name"],
                   "parameters": (t.get("inputSchema") or {}).get("json")}} for t in tools],
        "tool_choice": "required" if "any" in choice else
        {"type": "function", "function": {"name": choice["tool"]["name"]}} if "tool" in choice
        else "auto",
        "max_tokens": inference.get("maxTokens"),
        "stop": inference.get("stopSequences"),
    }  # fmt: skip
