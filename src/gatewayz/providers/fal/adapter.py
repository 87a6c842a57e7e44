"""The fal family: fal's synchronous endpoint `POST https://fal.run/{app_id}` with
`Authorization: Key <FAL_KEY>`.

Chat goes to fal's LLM app `fal-ai/any-llm` (and `fal-ai/any-llm/stream`, an SSE stream whose
events carry the output so far): the conversation is rendered into one `prompt` plus a
`system_prompt`, and the model's native id (e.g. `google/gemini-flash-1.5`) is its `model`.
fal takes no tools, images or documents here (a 400 says so) and reports no usage (the pipeline
estimates it). `generate_image` calls an image app (e.g. `fal-ai/flux/schnell`) for the images
API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
from gatewayz.providers.base import EventStream, event_stream, open_upstream, read_body
from gatewayz.providers.sse import SSEDecoder
from gatewayz.providers.transport import HttpPool
from gatewayz.providers.upstream_errors import error_message

if TYPE_CHECKING:
    from gatewayz.providers.registry import Provider

LLM_APP = "/fal-ai/any-llm"
LLM_STREAM_APP = "/fal-ai/any-llm/stream"
_SPEAKERS = {"user": "User", "assistant": "Assistant"}


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


def parse_response(body: bytes, provider: str) -> ChatResponse:
    try:
        raw = _checked(orjson.loads(body), provider)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise _bad_upstream(provider, exc) from None
    message = Message(role="assistant", content=raw["output"], reasoning=raw.get("reasoning"))
    return ChatResponse(choices=[Choice(0, message, "stop")])


def _bad_upstream(provider: str, exc: Exception) -> GatewayError:
    return UpstreamUnavailable(
        f"provider {provider} sent a malformed response ({type(exc).__name__})", provider=provider
    )


class FalStreamDecoder:
    """SSE `data:` events of cumulative output → canonical text (and reasoning) deltas; the
    event with `partial: false` ends the answer."""

    def __init__(self, provider: str) -> None:
        self._sse = SSEDecoder()
        self._provider = provider
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
                raise _bad_upstream(self._provider, ValueError("stream event")) from None
            text = self._advance("_output", raw["output"])
            thought = self._advance("_reasoning", raw.get("reasoning") or "")
            delta = ChoiceDelta(0, content=text or None, reasoning=thought or None)
            if not self._started:
                delta.role, self._started = "assistant", True
            if raw.get("partial") is False:
                delta.finish_reason, self._done = "stop", True
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


# ---------------------------------------------------------------- adapter
class Adapter:
    """send / stream / list_models for fal (chat through fal-ai/any-llm)."""

    family = "fal"

    def __init__(self, provider: Provider, pool: HttpPool) -> None:
        self.provider = provider
        self.pool = pool
        headers = [(b"content-type", b"application/json"), (b"user-agent", b"gatewayz/0.1")]
        if provider.api_key:
            headers.append((b"authorization", b"Key " + provider.api_key.encode()))
        for k, v in provider.headers.items():
            headers.append((k.lower().encode(), v.encode()))
        self.headers = headers
        self._json = [*headers, (b"accept", b"application/json")]
        self._sse = [*headers, (b"accept", b"text/event-stream")]

    async def send(self, req: ChatRequest, native_model: str) -> ChatResponse:
        slug = self.provider.slug
        body = render_request(req, native_model)
        resp = await open_upstream(
            self.pool, "POST", LLM_APP, self._json, body, slug, error_message
        )
        return parse_response(await read_body(resp, slug), slug)

    async def stream(self, req: ChatRequest, native_model: str) -> EventStream:
        slug = self.provider.slug
        body = render_request(req, native_model)
        resp = await open_upstream(
            self.pool, "POST", LLM_STREAM_APP, self._sse, body, slug, error_message
        )
        return await event_stream(resp, slug, FalStreamDecoder(slug))

    async def list_models(self) -> list[str]:
        """fal has no model list for any-llm: the configured models and mapped native ids."""
        return list(dict.fromkeys([*self.provider.models, *self.provider.native_ids.values()]))


async def generate_image(
    adapter: Adapter, model: str, prompt: str, **params: Any
) -> dict[str, Any]:
    """Run the image app `model` (e.g. `fal-ai/flux/schnell`) and return fal's JSON
    (`{"images": [{"url", "width", "height", "content_type"}], "seed", ...}`)."""
    slug = adapter.provider.slug
    body = orjson.dumps({"prompt": prompt, **params})
    resp = await open_upstream(
        adapter.pool, "POST", "/" + model.strip("/"), adapter._json, body, slug, error_message
    )
    data = await read_body(resp, slug)
    try:
        raw = orjson.loads(data)
        if not isinstance(raw, dict) or not isinstance(raw.get("images"), list):
            raise TypeError("no images")
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise _bad_upstream(slug, exc) from None
    return raw
