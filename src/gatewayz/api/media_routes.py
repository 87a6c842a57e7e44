"""OpenAI's embeddings, image generation and audio endpoints: `POST /v1/embeddings`,
`/v1/images/generations`, `/v1/audio/transcriptions` and `/v1/audio/translations`.

Each is the chat endpoint (api/chat_endpoint.py: auth, the call's exit stack, errors in OpenAI's
shape, the request log) with its own reading of the request (api/media_requests.py) and the
media steps (pipeline/media.py). The cost is in `X-Gatewayz-Cost` (and, for embeddings, in
`usage.cost`, as chat reports it)."""

from __future__ import annotations

import base64
import time
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.routing import Route
from starlette.types import Receive, Scope

from gatewayz.api.asgi import read_body
from gatewayz.api.audio_file import MAX_AUDIO_BYTES, audio_of, read_form
from gatewayz.api.chat_endpoint import ChatEndpoint, StreamWriter
from gatewayz.api.media_requests import parse_embeddings, parse_images, parse_transcription
from gatewayz.canonical.media import (
    EmbeddingRequest,
    EmbeddingResponse,
    ImageResponse,
    TranscriptionResponse,
)
from gatewayz.errors import GatewayError
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.steps import Steps
from gatewayz.providers.openai import chat as openai_chat

if TYPE_CHECKING:
    from gatewayz.services import Services
    from gatewayz.settings import Settings


class MediaDialect(ABC):
    """OpenAI's shape for one media endpoint; answers are whole, never streamed."""

    endpoint = ""

    @abstractmethod
    async def read(self, scope: Scope, receive: Receive, settings: Settings) -> Any:
        """The canonical request."""

    @abstractmethod
    def render(self, resp: Any, call: Call) -> bytes: ...

    def stream_writer(self, call: Call) -> StreamWriter:
        raise TypeError("media answers are not streamed")

    def render_error(self, err: GatewayError) -> bytes:
        return openai_chat.render_error(err)


class Embeddings(MediaDialect):
    endpoint = "/v1/embeddings"

    async def read(self, scope: Scope, receive: Receive, settings: Settings) -> Any:
        return parse_embeddings(await read_body(scope, receive, settings.max_body_bytes))

    def render(self, resp: EmbeddingResponse, call: Call) -> bytes:
        req = call.req
        assert isinstance(req, EmbeddingRequest) and call.answer is not None
        usage = call.answer.usage
        assert usage is not None
        as_base64 = req.encoding_format == "base64"
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": _base64(v) if as_base64 else v,
            }
            for i, v in enumerate(resp.vectors)
        ]
        return orjson.dumps(
            {
                "object": "list",
                "data": data,
                "model": req.model,
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "total_tokens": usage.prompt_tokens,
                    "cost": float(usage.cost) if usage.cost is not None else 0.0,
                },
            }
        )


def _base64(vector: list[float]) -> str:
    """OpenAI's base64 encoding: the vector as little-endian float32."""
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


class Images(MediaDialect):
    endpoint = "/v1/images/generations"

    async def read(self, scope: Scope, receive: Receive, settings: Settings) -> Any:
        return parse_images(await read_body(scope, receive, settings.max_body_bytes))

    def render(self, resp: ImageResponse, call: Call) -> bytes:
        data = []
        for image in resp.images:
            item: dict[str, Any] = {}
            if image.url is not None:
                item["url"] = image.url
            if image.b64_json is not None:
                item["b64_json"] = image.b64_json
            if image.revised_prompt is not None:
                item["revised_prompt"] = image.revised_prompt
            data.append(item)
        return orjson.dumps({"created": resp.created or int(time.time()), "data": data})


class Transcriptions(MediaDialect):
    def __init__(self, translate: bool) -> None:
        self.translate = translate
        self.endpoint = "/v1/audio/translations" if translate else "/v1/audio/transcriptions"

    async def read(self, scope: Scope, receive: Receive, settings: Settings) -> Any:
        # The file plus its form fields: OpenAI's file limit and room for the rest.
        body = await read_body(scope, receive, MAX_AUDIO_BYTES + 256 * 1024)
        form = await read_form(scope, body)
        try:
            return parse_transcription(form, await audio_of(form), self.translate)
        finally:
            await form.close()

    def render(self, resp: TranscriptionResponse, call: Call) -> bytes:
        return resp.body


class MediaEndpoint(ChatEndpoint):
    dialect: MediaDialect  # type: ignore[assignment]

    @property
    def steps(self) -> Steps:
        return self.s.pipeline.media

    async def read(self, scope: Scope, receive: Receive) -> Any:
        return await self.dialect.read(scope, receive, self.s.settings)


def media_routes(services: Services) -> list[Route]:
    dialects = (Embeddings(), Images(), Transcriptions(False), Transcriptions(True))
    return [
        Route(d.endpoint, MediaEndpoint(services, d), methods=["POST"])  # type: ignore[arg-type]
        for d in dialects
    ]
