"""OpenAI's request bodies for embeddings, image generation and transcription, read into the
canonical requests (canonical/media.py), every value bounded and checked first: a bad one is a
400 naming its field, never a 500. Fields we do not know are kept in `extra`: an
OpenAI-compatible provider gets them as sent, any other family refuses them by name
(`Unsupported`, so failover may find a provider that takes them). `provider` is ours (routing)."""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import FormData, UploadFile

from gatewayz.api.audio_file import AudioFile
from gatewayz.canonical.bounds import json_object
from gatewayz.canonical.media import EmbeddingRequest, ImageRequest, TranscriptionRequest
from gatewayz.errors import InvalidRequest

MAX_MODEL = 256
MAX_INPUTS = 2048  # OpenAI's limit of inputs per embeddings request
MAX_INPUT_CHARS = 1_000_000  # per input (far beyond any model's window; the provider decides)
MAX_TOKEN_ID = 2**31 - 1
MAX_DIMENSIONS = 65_536
MAX_PROMPT = 32_000  # OpenAI's longest image prompt (gpt-image-1)
MAX_IMAGES = 10
IMAGE_QUALITIES = {"standard", "hd", "low", "medium", "high", "auto"}
IMAGE_STYLES = {"vivid", "natural"}
_SIZE = re.compile(r"^(\d{2,5})x(\d{2,5})$")
TRANSCRIPT_FORMATS = {"json", "text", "srt", "verbose_json", "vtt"}
_LANGUAGE = re.compile(r"^[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{2,8})?$")


def _text(
    raw: dict[str, Any], name: str, limit: int, required: bool = False, least: int = 1
) -> str | None:
    value = raw.pop(name, None)
    if value is None:
        if required:
            raise InvalidRequest(f"'{name}' is required.", param=name)
        return None
    if not isinstance(value, str) or not least <= len(value) <= limit:
        raise InvalidRequest(
            f"'{name}' must be a string of {least} to {limit} characters.", param=name
        )
    return value


def _int(raw: dict[str, Any], name: str, lo: int, hi: int) -> int | None:
    value = raw.pop(name, None)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidRequest(f"'{name}' must be an integer from {lo} to {hi}.", param=name)
    return value


def _choice(raw: dict[str, Any], name: str, allowed: set[str], default: str | None) -> str | None:
    value = raw.pop(name, None)
    if value is None:
        return default
    if value not in allowed:
        raise InvalidRequest(f"'{name}' must be one of {', '.join(sorted(allowed))}.", param=name)
    return str(value)


def parse_embeddings(body: bytes) -> EmbeddingRequest:
    raw = json_object(body)
    model = _text(raw, "model", MAX_MODEL, required=True)
    assert model is not None
    req = EmbeddingRequest(model=model)
    value = raw.pop("input", None)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or len(value) > MAX_INPUTS:
        raise InvalidRequest(
            f"'input' must be a string, or an array of 1 to {MAX_INPUTS} strings or token arrays.",
            param="input",
        )
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        value = [value]  # one input as token ids
    if all(isinstance(v, str) for v in value):
        if any(not v or len(v) > MAX_INPUT_CHARS for v in value):
            raise InvalidRequest(
                f"Each 'input' string must have 1 to {MAX_INPUT_CHARS} characters.", param="input"
            )
        req.texts = value
    elif all(isinstance(v, list) and v and all(_token(t) for t in v) for v in value):
        req.token_arrays = value
    else:
        raise InvalidRequest(
            "'input' must be strings or non-empty arrays of token ids (integers), not a mix.",
            param="input",
        )
    req.dimensions = _int(raw, "dimensions", 1, MAX_DIMENSIONS)
    fmt = _choice(raw, "encoding_format", {"float", "base64"}, "float")
    req.encoding_format = fmt or "float"
    req.user = _text(raw, "user", MAX_MODEL, least=0)  # "" as chat takes it
    req.extra = raw
    return req


def _token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKEN_ID


def parse_images(body: bytes) -> ImageRequest:
    raw = json_object(body)
    model = _text(raw, "model", MAX_MODEL, required=True)
    prompt = _text(raw, "prompt", MAX_PROMPT, required=True)
    assert model is not None and prompt is not None
    req = ImageRequest(model=model, prompt=prompt)
    req.n = _int(raw, "n", 1, MAX_IMAGES) or 1
    size = raw.pop("size", None)
    if size is not None and size != "auto":
        match = _SIZE.match(size) if isinstance(size, str) else None
        if match is None or not all(64 <= int(d) <= 8192 for d in match.groups()):
            raise InvalidRequest(
                "'size' must be 'auto' or WIDTHxHEIGHT in pixels (64 to 8192 each), such as "
                "'1024x1024'.",
                param="size",
            )
        req.size = size
    quality = _choice(raw, "quality", IMAGE_QUALITIES, None)
    req.quality = None if quality == "auto" else quality
    req.style = _choice(raw, "style", IMAGE_STYLES, None)
    fmt = _choice(raw, "response_format", {"url", "b64_json"}, "url")
    req.response_format = fmt or "url"
    req.user = _text(raw, "user", MAX_MODEL, least=0)  # "" as chat takes it
    req.extra = raw
    return req


def parse_transcription(form: FormData, audio: AudioFile, translate: bool) -> TranscriptionRequest:
    raw: dict[str, Any] = {}
    grains: list[str] = []
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            if key != "file":
                raise InvalidRequest(f"Unexpected file field '{key}'.", param=key)
            continue
        if key in ("timestamp_granularities[]", "timestamp_granularities"):
            grains.append(value)
        elif key in raw:
            raise InvalidRequest(f"The field '{key}' is given twice.", param=key)
        else:
            raw[key] = value
    model = _text(raw, "model", MAX_MODEL, required=True)
    assert model is not None
    req = TranscriptionRequest(
        model=model,
        file=audio.data,
        filename=audio.filename,
        content_type=audio.content_type,
        duration_s=audio.duration_s,
        translate=translate,
    )
    language = _text(raw, "language", 16)
    if language is not None and (translate or not _LANGUAGE.match(language)):
        why = "is not taken by translations" if translate else "must be an ISO-639 code"
        raise InvalidRequest(f"'language' {why}.", param="language")
    req.language = language
    req.prompt = _text(raw, "prompt", 4096)
    req.response_format = _choice(raw, "response_format", TRANSCRIPT_FORMATS, "json") or "json"
    temperature = raw.pop("temperature", None)
    if temperature is not None:
        try:
            req.temperature = float(temperature)
        except ValueError:
            req.temperature = -1.0
        if not 0.0 <= req.temperature <= 1.0:
            raise InvalidRequest("'temperature' must be a number from 0 to 1.", param="temperature")
    if any(g not in ("word", "segment") for g in grains) or len(grains) > 2:
        raise InvalidRequest(
            "'timestamp_granularities[]' takes 'word' and/or 'segment'.",
            param="timestamp_granularities",
        )
    if grains and req.response_format != "verbose_json":
        raise InvalidRequest(
            "'timestamp_granularities[]' needs response_format 'verbose_json'.",
            param="timestamp_granularities",
        )
    req.timestamp_granularities = grains
    req.extra = raw
    return req
