"""The fal any-llm codec: a canonical request → the app's input, its output → canonical, and
its SSE stream of cumulative outputs → deltas (`FalStreamDecoder`). Error bodies are FastAPI's
`{"detail": ...}` (`error_message`).

The conversation is rendered into one `prompt` plus a `system_prompt`, and the model's native
id (e.g. `google/gemini-flash-1.5`) is its `model`; a stream event carries the output so far,
the one with `partial: false` ends the answer. any-llm takes no output limit: the gateway
ends the answer after `max_tokens` (at `CHARS_PER_TOKEN` characters a token) with
finish_reason `length` (canonical/fidelity.py: emulated).
"""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.types import (
    ChatRequest,
    ChatResponse,
    Choice,
    ChoiceDelta,
    ImagePart,
    Message,
    StreamChunk,
    TextPart,
)
from gatewayz.errors import (
    GatewayError,
    InvalidRequest,
    Unsupported,
    UpstreamError,
    UpstreamUnavailable,
)
from gatewayz.providers.sse import SSEDecoder
from gatewayz.providers.upstream_errors import error_message as error_message

_SPEAKERS = {"user": "User", "assistant": "Assistant"}
CHARS_PER_TOKEN = 4


def output_limit(req: ChatRequest) -> int | None:
    """The most characters of answer the request's `max_tokens` allows (None: no limit)."""
    return req.max_tokens * CHARS_PER_TOKEN if req.max_tokens else None


# ---------------------------------------------------------------- request out
def render_request(req: ChatRequest, native_model: str) -> bytes:
    """The any-llm input for a canonical request; InvalidRequest for what fal cannot take."""
    if req.tools or req.tool_choice not in (None, "none", "auto"):
        raise Unsupported("fal does not support tools.", param="tools")
    if req.n > 1:
        raise Unsupported("fal does not support n > 1.", param="n")
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for m in req.messages:
        if m.role == "tool" or m.tool_calls:
            raise Unsupported("fal does not support tools.", param="messages")
        text = _text(m)
        if m.role in ("system", "developer"):
            system.append(text)
        elif m.role in _SPEAKERS:
            turns.append((m.role, text))
        else:
            raise InvalidRequest(f"fal does not accept messages with role '{m.role}'.")
    if not turns:
        raise InvalidRequest("fal needs at least one user message.", param="messages")
    if len(turns) == 1 and turns[0][0] == "user":
        prompt = turns[0][1]
    else:
        lines = [f"{_SPEAKERS[role]}: {text}" for role, text in turns]
        if turns[-1][0] == "user":
            lines.append("Assistant:")
        prompt = "\n\n".join(lines)
    body: dict[str, Any] = {"model": native_model, "prompt": prompt}
    if system:
        body["system_prompt"] = "\n\n".join(system)
    thinking = (req.thinking or {}).get("type") == "enabled"
    if thinking or req.reasoning_effort not in (None, "none"):
        body["reasoning"] = True
    return orjson.dumps(body)


def _text(m: Message) -> str:
    if m.content is None or isinstance(m.content, str):
        return m.content or ""
    out = []
    for p in m.content:
        if isinstance(p, TextPart):
            out.append(p.text)
        elif isinstance(p, ImagePart):
            raise Unsupported("fal does not support image input.", param="messages")
        else:
            kind = getattr(p, "media_type", None) or getattr(p, "type", "unknown")
            raise Unsupported(f"fal does not support '{kind}' content.", param="messages")
    return "".join(out)


# ---------------------------------------------------------------- response in
def _checked(raw: Any, provider: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or not isinstance(raw.get("output"), str):
        raise TypeError("no output")
    if raw.get("error"):
        raise UpstreamError(
            f"provider {provider} failed: {str(raw['error'])[:500]}", provider=provider
        )
    return raw


def parse_response(body: bytes, provider: str, limit: int | None = None) -> ChatResponse:
    try:
        raw = _checked(orjson.loads(body), provider)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise bad_upstream(provider, exc) from None
    text, finish = raw["output"], "stop"
    if limit is not None and len(text) > limit:
        text, finish = text[:limit], "length"
    message = Message(role="assistant", content=text, reasoning=raw.get("reasoning"))
    return ChatResponse(choices=[Choice(0, message, finish)])


def bad_upstream(provider: str, exc: Exception) -> GatewayError:
    return UpstreamUnavailable(
        f"provider {provider} sent a malformed response ({type(exc).__name__})", provider=provider
    )


class FalStreamDecoder:
    """SSE `data:` events of cumulative output → canonical text (and reasoning) deltas; the
    event with `partial: false` ends the answer."""

    def __init__(self, provider: str, limit: int | None = None) -> None:
        self._sse = SSEDecoder()
        self._provider = provider
        self._limit = limit  # characters of output (max_tokens), then the answer ends
        self._sent = 0
        self._output = ""
        self._reasoning = ""
        self._started = False
        self._done = False

    def feed(self, data: bytes) -> list[StreamChunk]:
        batch: list[StreamChunk] = []
        for _event, payload in self._sse.feed(data):
            if self._done:
                continue
            try:
                raw = _checked(orjson.loads(payload), self._provider)
            except (orjson.JSONDecodeError, TypeError):
                raise bad_upstream(self._provider, ValueError("stream event")) from None
            text = self._advance("_output", raw["output"])
            thought = self._advance("_reasoning", raw.get("reasoning") or "")
            finish = "stop" if raw.get("partial") is False else None
            if self._limit is not None and self._sent + len(text) > self._limit:
                text, finish = text[: self._limit - self._sent], "length"
            self._sent += len(text)
            delta = ChoiceDelta(0, content=text or None, reasoning=thought or None)
            if not self._started:
                delta.role, self._started = "assistant", True
            if finish is not None:
                delta.finish_reason, self._done = finish, True
            if delta.role or delta.content or delta.reasoning or delta.finish_reason:
                batch.append(StreamChunk([delta]))
        return batch

    def _advance(self, attr: str, now: str) -> str:
        before: str = getattr(self, attr)
        setattr(self, attr, now)
        return now[len(before) :] if now.startswith(before) else now

    def finish(self) -> list[StreamChunk]:
        if not self._done:
            raise UpstreamUnavailable(
                f"provider {self._provider} ended the stream before the final result",
                provider=self._provider,
            )
        return []
