"""OpenAI's embeddings, image generation and audio endpoints, for the OpenAI-compatible family:
the request bodies a provider takes (JSON; multipart for audio) and what its answers mean.
Fields the gateway does not know (`extra`) go to the provider as sent: this family speaks the
dialect they came in."""

from __future__ import annotations

import os
from typing import Any

import orjson

from gatewayz.canonical.bounds import BadUsage, token_count
from gatewayz.canonical.media import (
    EmbeddingRequest,
    EmbeddingResponse,
    Image,
    ImageRequest,
    ImageResponse,
    TranscriptionRequest,
    TranscriptionResponse,
)
from gatewayz.providers.openai.chat import bad_upstream

MAX_VECTOR = 65_536  # dimensions of one embedding the gateway accepts from a provider


def embeddings_body(req: EmbeddingRequest, native_model: str) -> bytes:
    body: dict[str, Any] = {**req.extra, "model": native_model}
    body["input"] = req.texts if req.texts is not None else req.token_arrays
    body["encoding_format"] = "float"  # the gateway encodes base64 itself, for every family
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    if req.user is not None:
        body["user"] = req.user
    return orjson.dumps(body)


def parse_embeddings(data: bytes, provider: str, count: int) -> EmbeddingResponse:
    """The vectors in input order; a malformed answer (or one vector per input missing) is
    the provider's failure."""
    try:
        raw = orjson.loads(data)
        items = sorted(raw["data"], key=lambda d: d.get("index", 0))
        vectors = [check_vector(d["embedding"]) for d in items]
        if len(vectors) != count:
            raise ValueError(f"{len(vectors)} vectors for {count} inputs")
        usage = raw.get("usage") or {}
        tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        reported = None if tokens is None else token_count(tokens)
    except BadUsage:
        reported = None  # nonsense usage: the gateway's estimate is charged
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad_upstream(provider, exc) from None
    return EmbeddingResponse(vectors, reported, raw.get("model"))


def check_vector(value: Any) -> list[float]:
    if not isinstance(value, list) or not 0 < len(value) <= MAX_VECTOR:
        raise ValueError("an embedding must be a non-empty array of numbers")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        raise ValueError("an embedding must hold numbers only")
    return [float(x) for x in value]


def images_body(req: ImageRequest, native_model: str) -> bytes:
    body: dict[str, Any] = {**req.extra, "model": native_model, "prompt": req.prompt, "n": req.n}
    for name in ("size", "quality", "style", "user"):
        value = getattr(req, name)
        if value is not None:
            body[name] = value
    if not native_model.startswith("gpt-image"):  # those answer b64_json only, and refuse it
        body["response_format"] = req.response_format
    return orjson.dumps(body)


def parse_images(data: bytes, provider: str, req: ImageRequest) -> ImageResponse:
    """Images as returned (at most `n`: more would not be what was held for); base64 where a
    URL was asked for (gpt-image models answer nothing else) becomes a `data:` URL."""
    try:
        raw = orjson.loads(data)
        images = [
            Image(
                url=_str_or_none(d.get("url")),
                b64_json=_str_or_none(d.get("b64_json")),
                revised_prompt=_str_or_none(d.get("revised_prompt")),
            )
            for d in raw["data"]
        ]
        created = raw.get("created")
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise bad_upstream(provider, exc) from None
    images = [i for i in images if i.url or i.b64_json][: req.n]
    if req.response_format == "url":
        for image in images:
            if image.url is None:
                image.url, image.b64_json = f"data:image/png;base64,{image.b64_json}", None
    return ImageResponse(images, created if isinstance(created, int) else None)


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def transcription_form(req: TranscriptionRequest, native_model: str) -> tuple[bytes, bytes]:
    """(content type, body): the multipart form OpenAI's audio endpoints take."""
    fields: list[tuple[str, str]] = [(k, str(v)) for k, v in req.extra.items()]
    fields.append(("model", native_model))
    for name in ("language", "prompt", "temperature"):
        value = getattr(req, name)
        if value is not None:
            fields.append((name, str(value)))
    fields.append(("response_format", req.response_format))
    fields += [("timestamp_granularities[]", g) for g in req.timestamp_granularities]
    boundary = "gatewayz-" + os.urandom(12).hex()
    parts = [_part(boundary, k, v.encode()) for k, v in fields]
    parts.append(_part(boundary, "file", req.file, req.filename, req.content_type))
    parts.append(f"--{boundary}--\r\n".encode())
    return f"multipart/form-data; boundary={boundary}".encode(), b"".join(parts)


def _part(
    boundary: str, name: str, value: bytes, filename: str | None = None, ctype: str | None = None
) -> bytes:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quote(name)}"'
    if filename is not None:
        head += f'; filename="{_quote(filename)}"\r\nContent-Type: {_quote(ctype or "")}'
    return head.encode() + b"\r\n\r\n" + value + b"\r\n"


def _quote(value: str) -> str:
    """A header parameter value: no quote, backslash or line break can end it early."""
    return "".join(c for c in value if c not in '"\\\r\n')


def parse_transcription(data: bytes, provider: str, fmt: str) -> TranscriptionResponse:
    """The answer in the requested format; JSON formats are checked to hold the text."""
    ctype, text = "text/plain; charset=utf-8", None  # text, srt, vtt (as OpenAI sends them)
    if fmt in ("json", "verbose_json"):
        try:
            raw = orjson.loads(data)
            text = raw["text"]
            if not isinstance(text, str):
                raise TypeError("text is not a string")
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise bad_upstream(provider, exc) from None
        ctype = "application/json"
    return TranscriptionResponse(data, ctype, text)
