"""Embeddings and image generation on Bedrock, through InvokeModel
(`POST /model/{modelId}/invoke`, SigV4-signed like Converse) with each model's native body,
chosen by the model id (a cross-region prefix such as `us.` aside):

- `amazon.titan-embed-text-v2*`: one text per call, `{"inputText", "dimensions", "normalize":
  true}` → `{"embedding", "inputTextTokenCount"}`; several inputs are several calls, a few at a
  time, their tokens summed. `dimensions` 256, 512 or 1024 (AWS's documented values).
  `amazon.titan-embed-text-v1` (G1) takes `inputText` only.
- `cohere.embed-*`: `{"texts", "input_type"}` (96 texts a call, batched as for Cohere's own API,
  `output_dimension` for embed v4) → `{"embeddings": [[...]]}` (or by type); the input tokens
  come in the `X-Amzn-Bedrock-Input-Token-Count` header.
- `amazon.titan-image-generator-*`, `amazon.nova-canvas-*`: `{"taskType": "TEXT_IMAGE",
  "textToImageParams", "imageGenerationConfig"}` → `{"images": ["<base64 PNG>"]}`.

Any other model serves neither (`Unsupported`), nor do fields these bodies have no place for:
nothing is sent, failover tries the next provider. `user` (OpenAI's end-user id for abuse
monitoring) has no Bedrock counterpart and is not sent.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

from gatewayz.canonical.media import (
    EmbeddingRequest,
    EmbeddingResponse,
    Image,
    ImageRequest,
    ImageResponse,
)
from gatewayz.errors import Unsupported, UpstreamError
from gatewayz.providers.bedrock.codec import bad_upstream
from gatewayz.providers.cohere import media as cohere_media
from gatewayz.providers.openai.media import check_vector

# `invoke(native_model, body)` → (the answer's body, the input-token header's count)
Invoke = Callable[[str, bytes], Awaitable[tuple[bytes, int | None]]]

TITAN_EMBED_V2 = "amazon.titan-embed-text-v2"
TITAN_EMBED_V1 = "amazon.titan-embed-text-v1"
COHERE_EMBED = "cohere.embed-"
COHERE_EMBED_V4 = "cohere.embed-v4"
IMAGE_MODELS = ("amazon.titan-image-generator-", "amazon.nova-canvas-")
TITAN_DIMENSIONS = frozenset({256, 512, 1024})
COHERE_V4_DIMENSIONS = frozenset({256, 512, 1024, 1536})
QUALITIES = {"standard": "standard", "hd": "premium"}  # OpenAI's → Titan's / Nova Canvas's
MAX_IMAGES = 5  # numberOfImages per call (Titan Image Generator and Nova Canvas alike)
_REGION_PREFIX = re.compile(r"^(?:us|us-gov|eu|apac|jp|au|ca|global)\.")


def base_model(native_model: str) -> str:
    """The model id without a cross-region inference profile's prefix (`us.`, `eu.`, …)."""
    return _REGION_PREFIX.sub("", native_model, count=1)


def _unsupported(provider: str, native_model: str, what: str) -> Unsupported:
    return Unsupported(f"{provider} does not serve {what} with {native_model}.", param="model")


def _no_extra(req: EmbeddingRequest | ImageRequest, provider: str) -> None:
    for name in req.extra:
        raise Unsupported(f"{provider} does not support the field '{name}'.", param=name)


# ---------------------------------------------------------------- embeddings
async def embed(
    invoke: Invoke, req: EmbeddingRequest, native_model: str, provider: str
) -> EmbeddingResponse:
    model = base_model(native_model)
    if model.startswith(COHERE_EMBED):
        return await _cohere_embed(invoke, req, native_model, provider)
    if not model.startswith((TITAN_EMBED_V2, TITAN_EMBED_V1)):
        raise _unsupported(provider, native_model, "embeddings")
    if req.token_arrays is not None:
        raise Unsupported(f"{provider} embeds text only, not arrays of token ids.", param="input")
    _no_extra(req, provider)
    v2 = model.startswith(TITAN_EMBED_V2)
    dims = req.dimensions
    if dims is not None and (not v2 or dims not in TITAN_DIMENSIONS):
        sizes = ", ".join(map(str, sorted(TITAN_DIMENSIONS)))
        what = f"dimensions {sizes} only" if v2 else "no dimensions"
        raise Unsupported(f"{native_model} takes {what}.", param="dimensions")

    async def call(text: str) -> tuple[list[list[float]], int | None]:
        body: dict[str, Any] = {"inputText": text}
        if v2:
            body["normalize"] = True  # as OpenAI's embeddings are: unit length
            if dims is not None:
                body["dimensions"] = dims
        data, _ = await invoke(native_model, orjson.dumps(body))
        return _parse_titan(data, provider)

    results = await cohere_media.gather_bounded(req.texts or [], call)
    vectors = [v for one, _ in results for v in one]
    tokens = cohere_media.sum_tokens([t for _, t in results])
    return EmbeddingResponse(vectors, tokens, native_model)


def _parse_titan(data: bytes, provider: str) -> tuple[list[list[float]], int | None]:
    try:
        raw = orjson.loads(data)
        vector = check_vector(raw["embedding"])
        tokens = cohere_media.reported_tokens(raw.get("inputTextTokenCount"))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise bad_upstream(provider, exc) from None
    return [vector], tokens


async def _cohere_embed(
    invoke: Invoke, req: EmbeddingRequest, native_model: str, provider: str
) -> EmbeddingResponse:
    kind = cohere_media.input_type(req, provider)
    dims = req.dimensions
    if dims is not None and (
        not base_model(native_model).startswith(COHERE_EMBED_V4) or dims not in COHERE_V4_DIMENSIONS
    ):
        sizes = ", ".join(map(str, sorted(COHERE_V4_DIMENSIONS)))
        raise Unsupported(
            f"{native_model} does not take dimensions={dims} (Cohere embed v4 takes {sizes}, "
            "earlier versions none).",
            param="dimensions",
        )

    async def call(batch: Sequence[str]) -> tuple[list[list[float]], int | None]:
        body: dict[str, Any] = {"texts": list(batch), "input_type": kind}
        if dims is not None:
            body["output_dimension"] = dims
        data, header_tokens = await invoke(native_model, orjson.dumps(body))
        try:
            vectors = cohere_media.read_vectors(orjson.loads(data)["embeddings"], len(batch))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise bad_upstream(provider, exc) from None
        return vectors, cohere_media.reported_tokens(header_tokens)

    results = await cohere_media.gather_bounded(cohere_media.batches(req.texts or []), call)
    vectors = [v for one, _ in results for v in one]
    tokens = cohere_media.sum_tokens([t for _, t in results])
    return EmbeddingResponse(vectors, tokens, native_model)


# ---------------------------------------------------------------- images
def image_body(req: ImageRequest, native_model: str, provider: str) -> bytes:
    if not base_model(native_model).startswith(IMAGE_MODELS):
        raise _unsupported(provider, native_model, "image generation")
    if req.style is not None:
        raise Unsupported(f"{provider} does not support 'style' for images.", param="style")
    _no_extra(req, provider)
    if req.n > MAX_IMAGES:
        raise Unsupported(f"{native_model} makes at most {MAX_IMAGES} images.", param="n")
    config: dict[str, Any] = {"numberOfImages": req.n}
    if req.quality is not None:
        if req.quality not in QUALITIES:
            raise Unsupported(
                f"{native_model} takes quality standard or hd, not '{req.quality}'.",
                param="quality",
            )
        config["quality"] = QUALITIES[req.quality]
    if req.size is not None:  # "WxH", checked by the edge
        width, height = req.size.split("x")
        config["width"], config["height"] = int(width), int(height)
    return orjson.dumps(
        {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": req.prompt},
            "imageGenerationConfig": config,
        }
    )


def parse_images(data: bytes, provider: str, n: int, response_format: str) -> ImageResponse:
    """The base64 PNGs returned (at most `n`); an `error` in the answer is the model's
    failure (e.g. its content filter)."""
    try:
        raw = orjson.loads(data)
        if raw.get("error"):
            raise UpstreamError(
                f"provider {provider} failed to generate: {str(raw['error'])[:500]}",
                provider=provider,
            )
        images = raw["images"]
        if not isinstance(images, list):
            raise TypeError("images is not a list")
        for b64 in images[:n]:
            if not isinstance(b64, str) or not b64:
                raise TypeError("an image is not a base64 string")
            base64.b64decode(b64, validate=True)
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise bad_upstream(provider, exc) from None
    if response_format == "b64_json":
        return ImageResponse([Image(b64_json=b64) for b64 in images[:n]])
    # Bedrock returns the image itself, never a link: asked for `url`, the caller gets the
    # image inline as a data URL (Titan Image Generator and Nova Canvas answer PNG).
    return ImageResponse([Image(url="data:image/png;base64," + b64) for b64 in images[:n]])


async def generate_images(
    invoke: Invoke, req: ImageRequest, native_model: str, provider: str
) -> ImageResponse:
    body = image_body(req, native_model, provider)
    data, _ = await invoke(native_model, body)
    return parse_images(data, provider, req.n, req.response_format)
