"""The canonical requests and answers of the endpoints beside chat: embeddings, image generation
and audio transcription/translation. The OpenAI edge parses into them (api/media_*.py); each
provider family that serves one renders it in its own wire format (`Adapter.embed`,
`Adapter.generate_images`, `Adapter.transcribe`); the media steps (pipeline/media.py) route,
hold, invoke with failover and charge them like chat."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

EMBEDDING, IMAGE, AUDIO = "embedding", "image", "audio"  # a price row's `mode` (billing)


@dataclass(slots=True)
class EmbeddingRequest:
    mode: ClassVar[str] = EMBEDDING
    method: ClassVar[str] = "embed"  # the adapter's method for it
    model: str
    texts: list[str] | None = None  # `input` as strings...
    token_arrays: list[list[int]] | None = None  # ...or as arrays of token ids
    dimensions: int | None = None
    encoding_format: str = "float"  # float | base64: how the gateway answers (providers: float)
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = False

    @property
    def count(self) -> int:
        return len(self.texts if self.texts is not None else self.token_arrays or ())


@dataclass(slots=True)
class EmbeddingResponse:
    vectors: list[list[float]]
    prompt_tokens: int | None = None  # as the provider reported it (None: not reported)
    upstream_model: str | None = None


@dataclass(slots=True)
class ImageRequest:
    mode: ClassVar[str] = IMAGE
    method: ClassVar[str] = "generate_images"
    model: str
    prompt: str
    n: int = 1
    size: str | None = None  # "1024x1024", … (None: the model's default)
    quality: str | None = None  # standard | hd | low | medium | high | auto
    style: str | None = None  # vivid | natural (dall-e-3)
    response_format: str = "url"  # url | b64_json
    user: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = False


@dataclass(slots=True)
class Image:
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


@dataclass(slots=True)
class ImageResponse:
    images: list[Image]
    created: int | None = None


@dataclass(slots=True)
class TranscriptionRequest:
    mode: ClassVar[str] = AUDIO
    method: ClassVar[str] = "transcribe"
    model: str
    file: bytes
    filename: str
    content_type: str
    duration_s: float  # measured by the gateway from the file (api/audio_file.py)
    translate: bool = False  # /audio/translations: into English
    language: str | None = None
    prompt: str | None = None
    response_format: str = "json"  # json | text | srt | verbose_json | vtt
    temperature: float | None = None
    timestamp_granularities: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = False


@dataclass(slots=True)
class TranscriptionResponse:
    body: bytes  # the provider's answer in the requested response_format, passed through
    content_type: str
    text: str | None = None  # the transcript, when the format is JSON


MediaRequest = EmbeddingRequest | ImageRequest | TranscriptionRequest
MediaResponse = EmbeddingResponse | ImageResponse | TranscriptionResponse
