"""Responses-API input items (and output items sent back) into canonical messages.

Message items keep their role; `input_text` / `output_text` parts are text, `input_image` an
image (by URL or data: URL), `refusal` the assistant's refusal. `function_call` items become the
tool calls of an assistant message, `function_call_output` items tool messages. Consecutive
assistant-side items (reasoning, assistant messages, function calls) make one assistant turn,
as in chat. `reasoning` items are carried: their text (the `content`, else the summary) and
`encrypted_content` become the turn's reasoning and its signature (see `responses.py`).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gatewayz.canonical.types import ImagePart, Message, Part, TextPart, ToolCall
from gatewayz.errors import InvalidRequest
from gatewayz.providers.openai import responses_schema as schema
from gatewayz.providers.openai.responses_schema import validation_error


def parse_item(raw: Any, i: int) -> schema.Item:
    where = f"input[{i}]"
    if not isinstance(raw, dict):
        raise InvalidRequest(
            f"Invalid value for '{where}': an input item is an object.", param=where
        )
    kind = raw.get("type", "message")
    model = schema.ITEMS.get(kind) if isinstance(kind, str) else None
    if model is None:
        shown = repr(kind)[:80]
        raise InvalidRequest(
            f"Input item type {shown} is not supported by this gateway: message, function_call, "
            "function_call_output and reasoning items are.",
            param=f"{where}.type",
        )
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc, raw, where) from None


def items_to_messages(items: list[schema.Item]) -> list[Message]:
    """Input (or output) items as canonical messages; consecutive assistant-side items make one
    assistant turn."""
    out: list[Message] = []
    for item in items:
        if isinstance(item, schema.FunctionCallOutputItem):
            out.append(Message("tool", _tool_output(item.output), tool_call_id=item.call_id))
        elif isinstance(item, schema.MessageItem) and item.role != "assistant":
            out.append(Message(item.role, _content(item.content)))
        elif isinstance(item, schema.MessageItem):
            _add_assistant_text(_assistant(out), item.content)
        elif isinstance(item, schema.FunctionCallItem):
            turn = _assistant(out)
            turn.tool_calls = [
                *(turn.tool_calls or ()),
                ToolCall(item.call_id, item.name, item.arguments),
            ]
        else:
            turn = _assistant(out)
            parts = item.content if item.content else item.summary
            text = "\n\n".join(p.text for p in parts)
            if text:
                turn.reasoning = f"{turn.reasoning}\n\n{text}" if turn.reasoning else text
            if item.encrypted_content:
                turn.reasoning_signature = item.encrypted_content
    return out


def _assistant(out: list[Message]) -> Message:
    if out and out[-1].role == "assistant":
        return out[-1]
    out.append(Message("assistant", None))
    return out[-1]


def _add_assistant_text(turn: Message, content: str | list[Any]) -> None:
    texts: list[str] = []
    if isinstance(content, str):
        texts.append(content)
    else:
        for part in content:
            if isinstance(part, schema.Refusal):
                turn.refusal = (turn.refusal or "") + part.refusal
            elif isinstance(part, schema.InputImage):
                raise InvalidRequest(
                    "An assistant message cannot contain images.", param="input.content"
                )
            else:
                texts.append(part.text)
    if not texts:
        return
    if turn.content is None:
        turn.content = texts[0] if len(texts) == 1 else [TextPart(t) for t in texts]
        return
    have = [TextPart(turn.content)] if isinstance(turn.content, str) else list(turn.content)
    turn.content = have + [TextPart(t) for t in texts]


def _content(content: str | list[Any]) -> str | list[Part]:
    if isinstance(content, str):
        return content
    parts: list[Part] = []
    for part in content:
        if isinstance(part, schema.InputImage):
            parts.append(_image(part))
        elif isinstance(part, schema.Refusal):
            parts.append(TextPart(part.refusal))
        else:
            parts.append(TextPart(part.text))
    return parts


def _tool_output(output: str | list[Any]) -> str | list[Part]:
    if isinstance(output, str):
        return output
    return [_image(p) if isinstance(p, schema.InputImage) else TextPart(p.text) for p in output]


def _image(part: schema.InputImage) -> ImagePart:
    if part.image_url is None:
        raise InvalidRequest(
            "input_image needs an image_url (an https or data: URL); images by file_id are not "
            "supported by this gateway.",
            param="input.content.image_url",
        )
    detail = "high" if part.detail == "original" else part.detail  # chat knows auto/low/high
    return ImagePart(part.image_url, detail)
