"""Embeddings on Vertex AI: `POST {model path}:predict` with
`{"instances": [{"content": text}], "parameters": {"outputDimensionality": N}}` →
`{"predictions": [{"embeddings": {"values": [...], "statistics": {"token_count": N}}}]}`, one
prediction per instance in order; the input tokens are the sum of the `token_count`s.

A call takes at most 250 texts and about 20,000 tokens (Vertex's limits; `gemini-embedding-*`
models take one text a call), so a longer input is sent in several calls, in order. Image
generation is the Gemini family's Imagen body at Vertex's model path (`providers/gemini/
media.py`), as is what neither family can honour."""

from __future__ import annotations

from typing import Any

import orjson

from gatewayz.canonical.bounds import BadUsage, token_count
from gatewayz.providers.gemini.media import batches, checked_vectors
from gatewayz.providers.gemini.response import bad_upstream

MAX_INSTANCES = 250
MAX_CHARS = 60_000  # per call: ~20,000 tokens at a conservative 3 characters a token


def embed_batches(texts: list[str], native_model: str) -> list[list[str]]:
    one_each = native_model.rsplit("/", 1)[-1].startswith("gemini-embedding")
    return batches(texts, 1 if one_each else MAX_INSTANCES, MAX_CHARS)


def predict_body(texts: list[str], dimensions: int | None) -> bytes:
    body: dict[str, Any] = {"instances": [{"content": t} for t in texts]}
    if dimensions is not None:
        body["parameters"] = {"outputDimensionality": dimensions}
    return orjson.dumps(body)


def parse_predictions(
    data: bytes, provider: str, count: int, dimensions: int | None
) -> tuple[list[list[float]], int | None]:
    """The vectors, and the tokens Vertex counted (None when any count is missing or not one)."""
    try:
        raw = orjson.loads(data)
        found = [p["embeddings"] for p in raw["predictions"]]
        vectors = checked_vectors([e["values"] for e in found], count, dimensions)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise bad_upstream(provider, exc) from None
    try:
        tokens: int | None = sum(token_count(e["statistics"]["token_count"]) for e in found)
    except (BadUsage, KeyError, TypeError):
        tokens = None  # the gateway charges its estimate
    return vectors, tokens
