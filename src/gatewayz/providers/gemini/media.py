"""Embeddings and Imagen image generation for the Gemini family (Google AI Studio), and what
the Vertex family shares of them (`providers/vertex/media.py`).

- Embeddings: `POST /v1beta/models/{model}:batchEmbedContents` with
  `{"requests": [{"model": "models/{model}", "content": {"parts": [{"text"}]},
  "outputDimensionality"}]}` → `{"embeddings": [{"values": [...]}]}` in input order, at most
  100 texts a call (the API's limit: longer inputs are sent in several calls). Gemini reports
  no token usage: the gateway charges its estimate.
- Images (Imagen): `POST {model}:predict` with `{"instances": [{"prompt"}], "parameters":
  {"sampleCount", "aspectRatio"}}` → `{"predictions": [{"bytesBase64Encoded", "mimeType"}]}`;
  Vertex takes the same body at its own model path.

What these APIs cannot honour is refused before anything is sent (`Unsupported`: failover
moves on): image models other than Imagen (Gemini's `gemini-*-image` models draw through
`generateContent`, not served here yet), token-array inputs, fields the gateway does not know
(`extra`), image `quality` or `style`, a `size` whose ratio is not one Imagen makes, more than
4 images. `encoding_format` is the gateway's (providers answer floats)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from math import gcd
from typing import Any, TypeVar

import orjson

from gatewayz.canonical.media import EmbeddingRequest, Image, ImageRequest, ImageResponse
from gatewayz.errors import Unsupported
from gatewayz.providers.gemini.response import bad_upstream
from gatewayz.providers.openai.media import check_vector

R = TypeVar("R")

MAX_BATCH = 100  # texts per batchEmbedContents call
MAX_SAMPLES = 4  # Imagen's largest sampleCount
PARALLEL_CALLS = 4  # calls of one request in flight at once, when it needs several
ASPECT_RATIOS = {(1, 1): "1:1", (3, 4): "3:4", (4, 3): "4:3", (9, 16): "9:16", (16, 9): "16:9"}
_MIME = re.compile(r"image/[a-z0-9.+-]{1,40}")


def refuse_extra(extra: dict[str, Any], family: str) -> None:
    """Fields the gateway does not know have no meaning in Google's bodies."""
    if extra:
        name = next(iter(extra))[:64]
        raise Unsupported(f"{family} does not support the field '{name}'.", param=name)


def embedding_texts(req: EmbeddingRequest, family: str) -> list[str]:
    """The texts to embed; what the family cannot honour raises Unsupported."""
    if req.token_arrays is not None or req.texts is None:
        raise Unsupported(f"{family} embeds text only, not arrays of token ids.", param="input")
    refuse_extra(req.extra, family)
    # `user` (OpenAI's end-user id for abuse monitoring) has no field here: not forwarded.
    return req.texts


def batches(texts: list[str], max_items: int, max_chars: int | None = None) -> list[list[str]]:
    """`texts` in order, in runs of at most `max_items` (and `max_chars`, unless one text alone
    is longer)."""
    out: list[list[str]] = []
    chars = 0
    for text in texts:
        full = bool(out) and (
            len(out[-1]) >= max_items or (max_chars is not None and chars + len(text) > max_chars)
        )
        if not out or full:
            out.append([])
            chars = 0
        out[-1].append(text)
        chars += len(text)
    return out


async def in_order(calls: list[Callable[[], Awaitable[R]]]) -> list[R]:
    """Every call's result, in order, at most PARALLEL_CALLS at once; the first failure
    cancels the others and is raised as it is."""
    if len(calls) == 1:
        return [await calls[0]()]
    gate = asyncio.Semaphore(PARALLEL_CALLS)

    async def one(call: Callable[[], Awaitable[R]]) -> R:
        async with gate:
            return await call()

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(c)) for c in calls]
    except BaseExceptionGroup as failed:
        raise _first(failed) from None
    return [t.result() for t in tasks]


def _first(group: BaseExceptionGroup[Any]) -> BaseException:
    exc = group.exceptions[0]
    return _first(exc) if isinstance(exc, BaseExceptionGroup) else exc


def model_name(native_model: str) -> str:
    """The model's resource name in a request body: `models/x`, or `tunedModels/x` as it is."""
    return native_model if "/" in native_model else f"models/{native_model}"


def batch_embed_body(texts: list[str], native_model: str, dimensions: int | None) -> bytes:
    name = model_name(native_model)
    extra = {} if dimensions is None else {"outputDimensionality": dimensions}
    requests = [{"model": name, "content": {"parts": [{"text": t}]}, **extra} for t in texts]
    return orjson.dumps({"requests": requests})


def parse_batch_embed(
    data: bytes, provider: str, count: int, dimensions: int | None
) -> list[list[float]]:
    try:
        raw = orjson.loads(data)
        return checked_vectors([e["values"] for e in raw["embeddings"]], count, dimensions)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise bad_upstream(provider, exc) from None


def checked_vectors(values: Any, count: int, dimensions: int | None) -> list[list[float]]:
    """One vector of numbers per input (ValueError otherwise), of the asked `dimensions`."""
    if not isinstance(values, list) or len(values) != count:
        raise ValueError(f"not {count} vectors")
    vectors = [check_vector(v) for v in values]
    if dimensions is not None and any(len(v) != dimensions for v in vectors):
        raise ValueError(f"vectors of other than {dimensions} dimensions")
    return vectors


# ---------------------------------------------------------------- Imagen
def aspect_ratio(size: str) -> str:
    """`WxH` as one of Imagen's aspect ratios, when it is exactly one; else Unsupported. The
    resolution is the model's own (1024x1024 for 1:1, …): only the shape is asked for."""
    w, _, h = size.partition("x")
    if w.isdigit() and h.isdigit() and int(w) and int(h):
        d = gcd(int(w), int(h))
        ratio = ASPECT_RATIOS.get((int(w) // d, int(h) // d))
        if ratio is not None:
            return ratio
    raise Unsupported(
        f"Imagen makes only the aspect ratios {', '.join(ASPECT_RATIOS.values())}; "
        f"'size' {size[:32]} is none of them.",
        param="size",
    )


def imagen_body(req: ImageRequest, family: str, native_model: str) -> bytes:
    if not native_model.rsplit("/", 1)[-1].startswith("imagen"):
        # Gemini's own image models (`gemini-*-image`) answer `generateContent`, not this.
        raise Unsupported(
            f"{family} generates images here with Imagen models only, not '{native_model}'.",
            param="model",
        )
    refuse_extra(req.extra, family)
    for name in ("quality", "style"):
        if getattr(req, name) is not None:
            raise Unsupported(f"Imagen models take no '{name}'.", param=name)
    if req.n > MAX_SAMPLES:
        raise Unsupported(f"Imagen makes at most {MAX_SAMPLES} images a request.", param="n")
    params: dict[str, Any] = {"sampleCount": req.n}
    if req.size is not None:
        params["aspectRatio"] = aspect_ratio(req.size)
    # `user` (OpenAI's end-user id for abuse monitoring) has no field here: not forwarded.
    return orjson.dumps({"instances": [{"prompt": req.prompt}], "parameters": params})


def parse_imagen(data: bytes, provider: str, req: ImageRequest) -> ImageResponse:
    """The images returned, at most `n`. Imagen leaves out images its safety filters removed
    (a prediction without bytes, or no `predictions` at all when every one was)."""
    try:
        raw = orjson.loads(data)
        predictions = raw.get("predictions", [])
        if not isinstance(predictions, list):
            raise TypeError("predictions is not an array")
        images = [_image(p, req.response_format) for p in predictions if _has_bytes(p)]
    except (orjson.JSONDecodeError, TypeError, ValueError, AttributeError) as exc:
        raise bad_upstream(provider, exc) from None
    return ImageResponse(images[: req.n])


def _has_bytes(p: Any) -> bool:
    return p.get("bytesBase64Encoded") is not None


def _image(p: dict[str, Any], response_format: str) -> Image:
    b64 = p["bytesBase64Encoded"]
    if not isinstance(b64, str) or not b64:
        raise TypeError("bytesBase64Encoded is not a string")
    if response_format == "b64_json":
        return Image(b64_json=b64)
    mime = p.get("mimeType")
    mime = mime if isinstance(mime, str) and _MIME.fullmatch(mime) else "image/png"
    # Imagen returns no hosted URL: "url" is answered with a data URL of the image itself.
    return Image(url=f"data:{mime};base64,{b64}")
