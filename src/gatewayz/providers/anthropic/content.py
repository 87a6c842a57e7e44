"""Anthropic Messages content blocks ↔ canonical messages, both directions (shared by the
request codec in `request.py` and the response codec in `response.py`).

Anthropic keeps tool results inside user turns (`tool_result` blocks) and thinking inside
assistant turns (`thinking` / `redacted_thinking` blocks); canonically a tool result is its own
`tool` message and thinking is `reasoning` + `reasoning_signature` on the assistant message.
A `redacted_thinking` block has no text: its opaque `data` travels as the reasoning signature
with the `REDACTED` prefix, so it can be sent back unchanged.

A block's fields the canonical model does not name (`cache_control`, `citations`, `context`,
...) travel in the part's `extra` and are put back on the block: all of them for a request of
the Anthropic dialect (`own`), only `cache_control` (OpenRouter's extension of OpenAI parts has
Anthropic's shape) for one of another dialect.
"""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.types import (
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    Part,
    TextPart,
    ToolCall,
)
from gatewayz.errors import InvalidRequest, Unsupported

REDACTED = "redacted_thinking:"
# Content parts of other dialects that Anthropic has no block for.
_FOREIGN_PARTS = frozenset({"input_audio", "file", "image_url", "input_text", "input_image"})


def _bad(msg: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{param}: {msg}", param=param)


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise _bad("Input should be a valid string", param)
    return value


def _dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad("Input should be a valid dictionary", param)
    return value


def block_extra(block: dict[str, Any], known: frozenset[str]) -> dict[str, Any] | None:
    """The fields of a block besides those the canonical model names (None: none)."""
    extra = {k: v for k, v in block.items() if k not in known}
    return extra or None


def with_extra(block: dict[str, Any], extra: dict[str, Any] | None, own: bool) -> dict[str, Any]:
    """`block` with a canonical item's `extra` put back (see the module's docstring)."""
    if extra:
        if own:
            block.update(extra)
        elif "cache_control" in extra:
            block["cache_control"] = extra["cache_control"]
    return block


_IMAGE_KEYS = frozenset({"type", "source"})
_DOCUMENT_KEYS = frozenset({"type", "source", "title"})
_TEXT_KEYS = frozenset({"type", "text"})
_RESULT_KEYS = frozenset({"type", "tool_use_id", "content", "is_error"})
_USE_KEYS = frozenset({"type", "id", "name", "input"})


# ---------------------------------------------------------------- blocks in
def image_in(block: dict[str, Any], param: str) -> Part:
    src = _dict(block.get("source"), f"{param}.source")
    kind = src.get("type")
    if kind == "base64":
        media = _str(src.get("media_type"), f"{param}.source.media_type")
        data = _str(src.get("data"), f"{param}.source.data")
        return ImagePart(f"data:{media};base64,{data}", extra=block_extra(block, _IMAGE_KEYS))
    if kind == "url":
        url = _str(src.get("url"), f"{param}.source.url")
        return ImagePart(url, extra=block_extra(block, _IMAGE_KEYS))
    if kind == "file":
        return OtherPart("image", block)
    raise _bad("source.type must be one of 'base64', 'url', 'file'", f"{param}.source.type")


def document_in(block: dict[str, Any], param: str) -> Part:
    src = _dict(block.get("source"), f"{param}.source")
    kind = src.get("type")
    title = block.get("title") if isinstance(block.get("title"), str) else None
    extra = block_extra(block, _DOCUMENT_KEYS)
    if kind == "base64":
        media = _str(src.get("media_type"), f"{param}.source.media_type")
        data = _str(src.get("data"), f"{param}.source.data")
        return DocumentPart(media, data=data, title=title, extra=extra)
    if kind == "text":
        data = _str(src.get("data"), f"{param}.source.data")
        media = src.get("media_type") or "text/plain"
        return DocumentPart(media, data=data, title=title, extra=extra)
    if kind == "url":
        url = _str(src.get("url"), f"{param}.source.url")
        return DocumentPart("application/pdf", url=url, title=title, extra=extra)
    if kind in ("content", "file"):
        return OtherPart("document", block)
    raise _bad("unknown document source type", f"{param}.source.type")


def part_in(block: dict[str, Any], param: str) -> Part:
    """A text, image or document block (or any other block, kept verbatim)."""
    kind = block.get("type")
    if kind == "text":
        return TextPart(_str(block.get("text"), f"{param}.text"), block_extra(block, _TEXT_KEYS))
    if kind == "image":
        return image_in(block, param)
    if kind == "document":
        return document_in(block, param)
    if not isinstance(kind, str):
        raise _bad("Field required", f"{param}.type")
    return OtherPart(kind, block)


def _parts_in(content: Any, param: str) -> str | list[Part]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _bad("Input should be a valid string or list of content blocks", param)
    return [part_in(_dict(b, f"{param}.{j}"), f"{param}.{j}") for j, b in enumerate(content)]


def _tool_result_in(block: dict[str, Any], param: str) -> Message:
    tool_id = _str(block.get("tool_use_id"), f"{param}.tool_use_id")
    content = block.get("content")
    parts = "" if content is None else _parts_in(content, f"{param}.content")
    return Message(
        role="tool",
        content=parts,
        tool_call_id=tool_id,
        is_error=block.get("is_error") is True,
        extra=block_extra(block, _RESULT_KEYS),
    )


def _user_in(content: list[Any], param: str) -> list[Message]:
    """One user turn: its tool_result blocks become `tool` messages, the other blocks user
    messages, in block order (consecutive non-tool blocks stay one message)."""
    out: list[Message] = []
    pending: list[Part] = []
    for j, raw in enumerate(content):
        block = _dict(raw, f"{param}.{j}")
        if block.get("type") == "tool_result":
            if pending:
                out.append(Message("user", pending))
                pending = []
            out.append(_tool_result_in(block, f"{param}.{j}"))
        else:
            pending.append(part_in(block, f"{param}.{j}"))
    if pending or not out:
        out.append(Message("user", pending))
    return out


def _assistant_in(content: list[Any], param: str) -> Message:
    parts: list[Part] = []
    calls: list[ToolCall] = []
    thinking: list[str] = []
    signature: str | None = None
    for j, raw in enumerate(content):
        p = f"{param}.{j}"
        block = _dict(raw, p)
        kind = block.get("type")
        if kind == "tool_use":
            args = block.get("input", {})
            calls.append(
                ToolCall(
                    _str(block.get("id"), f"{p}.id"),
                    _str(block.get("name"), f"{p}.name"),
                    orjson.dumps(_dict(args, f"{p}.input")).decode(),
                    extra=block_extra(block, _USE_KEYS),
                )
            )
        elif kind == "thinking":
            thinking.append(_str(block.get("thinking"), f"{p}.thinking"))
            signature = block.get("signature") or signature
        elif kind == "redacted_thinking":
            if signature is None:
                signature = REDACTED + _str(block.get("data"), f"{p}.data")
        else:
            parts.append(part_in(block, p))
    return Message(
        role="assistant",
        content=parts if parts or not calls else None,
        tool_calls=calls or None,
        reasoning="".join(thinking) if thinking else None,
        reasoning_signature=signature,
    )


def messages_in(raw: Any) -> list[Message]:
    """A client's `messages` array → canonical messages."""
    if not isinstance(raw, list):
        raise _bad("Input should be a valid list", "messages")
    out: list[Message] = []
    for i, m in enumerate(raw):
        param = f"messages.{i}"
        m = _dict(m, param)
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise _bad("Input should be 'user' or 'assistant'", f"{param}.role")
        content = m.get("content")
        if isinstance(content, str):
            out.append(Message(role, content))
        elif not isinstance(content, list):
            raise _bad("Input should be a valid string or list", f"{param}.content")
        elif role == "user":
            out.extend(_user_in(content, f"{param}.content"))
        else:
            out.append(_assistant_in(content, f"{param}.content"))
    return out


def system_in(raw: Any) -> list[Message]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [Message("system", raw)]
    if not isinstance(raw, list):
        raise _bad("Input should be a valid string or list of text blocks", "system")
    parts: list[Part] = []
    for j, b in enumerate(raw):
        block = _dict(b, f"system.{j}")
        if block.get("type") != "text":
            raise _bad("system blocks must be of type 'text'", f"system.{j}.type")
        text = _str(block.get("text"), f"system.{j}.text")
        parts.append(TextPart(text, block_extra(block, _TEXT_KEYS)))
    return [Message("system", parts)]


# ---------------------------------------------------------------- blocks out
def _image_out(p: ImagePart) -> dict[str, Any]:
    if p.url.startswith("data:"):
        head, _, data = p.url[5:].partition(",")
        media = head.split(";", 1)[0] or "image/png"
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": p.url}}


def _document_out(p: DocumentPart) -> dict[str, Any]:
    src: dict[str, Any]
    if p.url is not None:
        src = {"type": "url", "url": p.url}
    elif p.media_type.startswith("text/"):
        src = {"type": "text", "media_type": "text/plain", "data": p.data or ""}
    else:
        src = {"type": "base64", "media_type": p.media_type, "data": p.data or ""}
    out: dict[str, Any] = {"type": "document", "source": src}
    if p.title is not None:
        out["title"] = p.title
    return out


def part_out(p: Part, own: bool = True) -> dict[str, Any] | None:
    """A canonical part as an Anthropic block (None: nothing to send, an empty text); `own`:
    the request is of the Anthropic dialect (every field of its blocks goes back)."""
    if isinstance(p, TextPart):
        return with_extra({"type": "text", "text": p.text}, p.extra, own) if p.text else None
    if isinstance(p, ImagePart):
        return with_extra(_image_out(p), p.extra, own)
    if isinstance(p, DocumentPart):
        return with_extra(_document_out(p), p.extra, own)
    if p.type in _FOREIGN_PARTS:
        raise Unsupported(
            f"Content parts of type '{p.type}' are not supported by this provider.",
            param="messages",
        )
    return p.data


def parts_out(content: str | list[Part] | None, own: bool = True) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [b for b in (part_out(p, own) for p in content) if b is not None]


def thinking_out(m: Message) -> list[dict[str, Any]]:
    """Thinking goes back only when signed: Anthropic rejects unsigned thinking blocks, and
    reasoning from another provider has no signature."""
    sig = m.reasoning_signature
    if not sig:
        return []
    if sig.startswith(REDACTED):
        return [{"type": "redacted_thinking", "data": sig[len(REDACTED) :]}]
    return [{"type": "thinking", "thinking": m.reasoning or "", "signature": sig}]


def tool_input(arguments: str, param: str) -> dict[str, Any]:
    """A call's arguments as a `tool_use` block's `input`, which is a JSON object: other
    arguments (the fidelity table refuses them for this family first) are Unsupported."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise Unsupported(
            f"{param}: the anthropic provider family takes tool-call arguments that are a JSON "
            "object only",
            param=param,
        )
    return value


def _tool_result_out(m: Message, own: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id or ""}
    if isinstance(m.content, list):
        block["content"] = parts_out(m.content, own)
    elif m.content:
        block["content"] = m.content
    if m.is_error:
        block["is_error"] = True
    return with_extra(block, m.extra, own)


def messages_out(
    messages: list[Message], own: bool = True
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Canonical messages → (`system` text blocks, alternating `messages`). System/developer
    messages move to `system`; consecutive `tool` messages (and the user text after them) merge
    into one user turn; consecutive same-role messages merge (Anthropic requires alternation).
    `own`: the request is of the Anthropic dialect (see the module's docstring)."""
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []  # {"role", "content": list of blocks, "text": str | None}
    for i, m in enumerate(messages):
        if m.role in ("system", "developer"):
            system.extend(parts_out(m.content, own))
            continue
        if m.role == "tool":
            role, blocks = "user", [_tool_result_out(m, own)]
        elif m.role == "assistant":
            role, blocks = "assistant", thinking_out(m) + parts_out(m.content, own)
            for j, tc in enumerate(m.tool_calls or ()):
                param = f"messages[{i}].tool_calls[{j}].function.arguments"
                use = {
                    "type": "tool_use",
                    "id": tc.id,
                    "name": tc.name,
                    "input": tool_input(tc.arguments, param),
                }
                blocks.append(with_extra(use, tc.extra, own))
        else:
            role, blocks = "user", parts_out(m.content, own)
        text = m.content if isinstance(m.content, str) and m.role == "user" else None
        if not blocks and text is None:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
            turns[-1]["text"] = None
        else:
            turns.append({"role": role, "content": blocks, "text": text})
    out = [
        {"role": t["role"], "content": t["text"] if t["text"] is not None else t["content"]}
        for t in turns
    ]
    return system, out
