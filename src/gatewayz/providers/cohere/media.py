"""Cohere's v2 embed endpoint (`POST /v2/embed`) for the embeddings API: a canonical
EmbeddingRequest → `{"model", "texts", "input_type", "embedding_types": ["float"],
"output_dimension"}`, the answer's `embeddings.float` → vectors in input order and
`meta.billed_units.input_tokens` → the tokens charged.

Cohere takes at most 96 texts a call: more are sent in batches of 96, a few at a time, and
their vectors joined in order (tokens summed). Text only: token-id inputs are refused, as is
every field OpenAI's request does not have except `input_type` (Cohere's, validated here),
before anything is sent (`Unsupported`: failover tries the next provider). `user` is an
end-user id for OpenAI's abuse monitoring; Cohere has no such field, so it is not sent.

The Bedrock family's Cohere embed models share `input_type`, the batching and the reading
of `embeddings` (`read_vectors`), which is why those are public here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson

from gatewayz.canonical.bounds import BadUsage, token_count
from gatewayz.canonical.media import EmbeddingRequest, EmbeddingResponse
from gatewayz.errors import Unsupported
from gatewayz.providers.cohere.codec import bad_upstream
from gatewayz.providers.openai.media import check_vector

EMBED_PATH = "/v2/embed"
MAX_TEXTS = 96  # Cohere's limit of texts per embed call (its API and Bedrock's alike)
CONCURRENT_CALLS = 4  # batches (or, on Bedrock, single-input calls) in flight at once
DEFAULT_INPUT_TYPE = "search_document"
# Cohere's documented input types for text (`image` is for image inputs, which are not sent).
INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})

T = TypeVar("T")
R = TypeVar("R")


def input_type(req: EmbeddingRequest, provider: str) -> str:
    """The caller's `input_type` (an extra field) when valid, else `search_document`; any other
    extra field, or token-id input, is refused by name."""
    if req.token_arrays is not None:
        raise Unsupported(f"{provider} embeds text only, not arrays of token ids.", param="input")
    for name in req.extra:
        if name != "input_type":
            raise Unsupported(f"{provider} does not support the field '{name}'.", param=name)
    value = req.extra.get("input_type", DEFAULT_INPUT_TYPE)
    if value not in INPUT_TYPES:
        # Unsupported, not a 400: other providers name their input types differently
        # (`query`/`passage`), so failover may find one that takes this value.
        raise Unsupported(
            f"{provider} takes input_type {', '.join(sorted(INPUT_TYPES))}.", param="input_type"
        )
    return str(value)


def batches(items: Sequence[T], size: int = MAX_TEXTS) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def gather_bounded(
    items: Sequence[T], call: Callable[[T], Awaitable[R]], limit: int = CONCURRENT_CALLS
) -> list[R]:
    """`call(item)` for every item, at most `limit` at a time, results in order; the first
    failure cancels the rest and is raised (a TaskGroup's ExceptionGroup is unwrapped)."""
    if len(items) == 1:
        return [await call(items[0])]
    gate = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with gate:
            return await call(item)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
    except ExceptionGroup as eg:
        raise eg.exceptions[0] from None
    return [t.result() for t in tasks]


def read_vectors(embeddings: Any, count: int) -> list[list[float]]:
    """`embeddings` as Cohere answers it, by type (`{"float": [[...]]}`) or as the bare list of
    float vectors (Bedrock's Cohere models without `embedding_types`): one per input."""
    if isinstance(embeddings, dict):
        embeddings = embeddings["float"]
    if not isinstance(embeddings, list):
        raise TypeError("embeddings is not a list")
    vectors = [check_vector(v) for v in embeddings]
    if len(vectors) != count:
        raise ValueError(f"{len(vectors)} vectors for {count} inputs")
    return vectors


def sum_tokens(counts: Sequence[int | None]) -> int | None:
    """The tokens of every call, or None when any call did not report its own."""
    return None if any(c is None for c in counts) else sum(c for c in counts if c is not None)


def reported_tokens(value: Any) -> int | None:
    """A reported token count, or None when missing or nonsense (the estimate is charged)."""
    if value is None:
        return None
    try:
        return token_count(value)
    except BadUsage:
        return None


def embed_body(native_model: str, texts: Sequence[str], kind: str, dimensions: int | None) -> bytes:
    body: dict[str, Any] = {
        "model": native_model,
        "texts": list(texts),
        "input_type": kind,
        "embedding_types": ["float"],  # the gateway encodes base64 itself, for every family
    }
    if dimensions is not None:
        body["output_dimension"] = dimensions
    return orjson.dumps(body)


def parse_embed(data: bytes, provider: str, count: int) -> tuple[list[list[float]], int | None]:
    """The vectors (one per text, in order) and the billed input tokens of one call."""
    try:
        raw = orjson.loads(data)
        vectors = read_vectors(raw["embeddings"], count)
        meta = raw.get("meta")
        billed = meta.get("billed_units") if isinstance(meta, dict) else None
        tokens = reported_tokens(billed.get("input_tokens") if isinstance(billed, dict) else None)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad_upstream(provider, exc) from None
    return vectors, tokens


async def embed(
    post: Callable[[str, bytes], Awaitable[bytes]],
    req: EmbeddingRequest,
    native_model: str,
    provider: str,
) -> EmbeddingResponse:
    """`post(path, body)` sends one call and returns the answer's body (the adapter's)."""
    kind = input_type(req, provider)

    async def call(batch: Sequence[str]) -> tuple[list[list[float]], int | None]:
        body = embed_body(native_model, batch, kind, req.dimensions)
        return parse_embed(await post(EMBED_PATH, body), provider, len(batch))

    results = await gather_bounded(batches(req.texts or []), call)
    vectors = [v for batch_vectors, _ in results for v in batch_vectors]
    return EmbeddingResponse(vectors, sum_tokens([t for _, t in results]), native_model)
