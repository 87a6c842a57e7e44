"""Embeddings and Imagen for the simulator's Google formats. AI Studio: `:batchEmbedContents`
(at most 100 requests) and `:embedContent` for embedding models, `:predict` for Imagen models.
Vertex: `:predict` for both — embedding models answer `predictions[].embeddings` with
`values` and `statistics.token_count` (at most 250 instances; `gemini-embedding-*` models take
one). The model's name decides what it is: one containing "embedding" embeds, one containing
"imagen" draws (`sampleCount` 1x1 PNGs, `aspectRatio` one of Imagen's), any other is a 404.

Vectors are deterministic (`openai_media.vector`: the text's hash), `outputDimensionality`
long (16 when not asked). Faults as `generate`'s: an error `status` (200: its `body` as it is),
`malformed` (half the body), `drop_after_chunks` (0: no answer; more: the headers and half the
body), `delay_s`; on Vertex `omit_usage` leaves `statistics` out and `usage` is merged over
them. Pairs with `gatewayz.providers.gemini.media` and `gatewayz.providers.vertex.media`."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from ...faults import Fault, status_reply
from ...protocol import Reply, Request
from ..cohere import json_reply
from ..openai_media import DEFAULT_DIMENSIONS, PNG_1X1, vector
from .replies import error_dict, error_reply

if TYPE_CHECKING:
    from ...server import Simulator

EMBED = "(?P<model>[^/:]+):(?P<method>batchEmbedContents|embedContent)"
PREDICT = "(?P<model>[^/:]+):predict"
MAX_DIMENSIONS = 3072
STUDIO_BATCH, VERTEX_INSTANCES, IMAGEN_SAMPLES = 100, 250, 4
ASPECT_RATIOS = ("1:1", "3:4", "4:3", "9:16", "16:9")
_STUDIO_FIELDS = {"model", "content", "taskType", "title", "outputDimensionality"}
_VERTEX_FIELDS = {"content", "task_type", "title"}
_IMAGEN_PARAMETERS = {
    "sampleCount", "aspectRatio", "personGeneration", "safetySetting", "addWatermark",
    "negativePrompt", "seed", "enhancePrompt", "outputOptions", "sampleImageSize",
    "includeRaiReason", "language",
}  # fmt: skip

Auth = Callable[["Simulator", Request], Reply | None]


class _Bad(Exception):
    """A 400 INVALID_ARGUMENT with this message."""


def _start(sim: Simulator, req: Request, auth: Auth) -> tuple[Fault, Reply | None]:
    """The request's fault, and the reply that ends it before any content (auth, a fault)."""
    problem = auth(sim, req)
    if problem is not None:
        return Fault(), problem
    f = sim.take_fault() or Fault()
    if f.drop_after_chunks == 0:
        return f, Reply(b"", keep_alive=False, delay=max(0.0, f.delay_s), drop_now=True)
    if f.status:
        return f, status_reply(req, f, error_dict)
    return f, None


def _not_found(req: Request, f: Fault, model: str, api: str, method: str) -> Reply:
    message = f"models/{model} is not found for API version {api}, or is not supported for "
    return error_reply(req, 404, message + f"{method}.", max(0.0, f.delay_s))


def _dimensions(value: Any) -> int:
    if value is None:
        return DEFAULT_DIMENSIONS
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DIMENSIONS:
        raise _Bad(f"outputDimensionality must be 1 to {MAX_DIMENSIONS}.")
    return value


def _unknown(value: dict[str, Any], allowed: set[str], where: str) -> None:
    for name in value:
        if name not in allowed:
            raise _Bad(f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}'.")


# ---------------------------------------------------------------- AI Studio embeddings
def embed(
    sim: Simulator, req: Request, parsed: Any, m: re.Match[str], auth: Auth, api: str
) -> Reply:
    """`:batchEmbedContents` / `:embedContent` of an embedding model."""
    f, early = _start(sim, req, auth)
    if early is not None:
        return early
    model, method = m.group("model"), m.group("method")
    if "embedding" not in model:
        return _not_found(req, f, model, api, method)
    batch = method == "batchEmbedContents"
    try:
        if not isinstance(parsed, dict):
            raise _Bad("The request body must be a JSON object.")
        items = parsed.get("requests") if batch else [parsed]
        if batch:
            _unknown(parsed, {"requests"}, "")
        if not isinstance(items, list) or not items:
            raise _Bad("BatchEmbedContentsRequest.requests: must not be empty.")
        if len(items) > STUDIO_BATCH:
            raise _Bad(
                "BatchEmbedContentsRequest.requests: at most 100 requests can be in one batch"
            )
        vectors = [_studio_vector(item, model, batch, i) for i, item in enumerate(items)]
    except _Bad as exc:
        return error_reply(req, 400, str(exc), max(0.0, f.delay_s))
    if batch:
        answer: dict[str, Any] = {"embeddings": [{"values": v} for v in vectors]}
    else:
        answer = {"embedding": {"values": vectors[0]}}
    return json_reply(req, orjson.dumps(answer), f)


def _studio_vector(item: Any, model: str, batch: bool, i: int) -> list[float]:
    where = f"requests[{i}]" if batch else ""
    if not isinstance(item, dict):
        raise _Bad(f"{where or 'request'} must be an object.")
    _unknown(item, _STUDIO_FIELDS, where)
    if batch and item.get("model") != f"models/{model}":
        raise _Bad(f"{where}.model: must match the batch's model models/{model}.")
    content = item.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list) or not parts:
        raise _Bad(f"{where}.content.parts: * must have at least one part.")
    texts = [p.get("text") if isinstance(p, dict) else None for p in parts]
    if not all(isinstance(t, str) for t in texts):
        raise _Bad(f"{where}.content.parts: only text parts can be embedded here.")
    return vector("".join(t for t in texts if t), _dimensions(item.get("outputDimensionality")))


# ---------------------------------------------------------------- :predict
def predict(
    sim: Simulator,
    req: Request,
    parsed: Any,
    m: re.Match[str],
    auth: Auth,
    api: str,
    embeddings: bool,
) -> Reply:
    """`:predict` of an Imagen model, or (on Vertex: `embeddings`) of an embedding model."""
    f, early = _start(sim, req, auth)
    if early is not None:
        return early
    model = m.group("model")
    if "imagen" in model:
        answer = _images
    elif embeddings and "embedding" in model:
        answer = _embeddings
    else:
        return _not_found(req, f, model, api, "predict")
    try:
        if not isinstance(parsed, dict):
            raise _Bad("The request body must be a JSON object.")
        _unknown(parsed, {"instances", "parameters"}, "")
        instances, params = parsed.get("instances"), parsed.get("parameters") or {}
        if not isinstance(instances, list) or not instances:
            raise _Bad("instances: must be a non-empty array.")
        if not isinstance(params, dict):
            raise _Bad("parameters: must be an object.")
        body = answer(instances, params, model, f)
    except _Bad as exc:
        return error_reply(req, 400, str(exc), max(0.0, f.delay_s))
    return json_reply(req, orjson.dumps(body), f)


def _images(instances: list[Any], params: dict[str, Any], model: str, f: Fault) -> Any:
    if len(instances) != 1:
        raise _Bad("Imagen takes exactly one instance.")
    (instance,) = instances
    if not isinstance(instance, dict) or not isinstance(instance.get("prompt"), str):
        raise _Bad("instances[0].prompt: a text prompt is required.")
    _unknown(instance, {"prompt"}, "instances[0]")
    _unknown(params, _IMAGEN_PARAMETERS, "parameters")
    count = params.get("sampleCount", IMAGEN_SAMPLES)
    if not isinstance(count, int) or not 1 <= count <= IMAGEN_SAMPLES:
        raise _Bad(f"sampleCount must be 1 to {IMAGEN_SAMPLES}.")
    if params.get("aspectRatio", "1:1") not in ASPECT_RATIOS:
        raise _Bad(f"aspectRatio must be one of {', '.join(ASPECT_RATIOS)}.")
    png = base64.b64encode(PNG_1X1).decode()
    return {"predictions": [{"bytesBase64Encoded": png, "mimeType": "image/png"}] * count}


def _embeddings(instances: list[Any], params: dict[str, Any], model: str, f: Fault) -> Any:
    limit = 1 if model.startswith("gemini-embedding") else VERTEX_INSTANCES
    if len(instances) > limit:
        raise _Bad(f"{model} takes at most {limit} instance(s) per request.")
    _unknown(params, {"outputDimensionality", "autoTruncate"}, "parameters")
    dims = _dimensions(params.get("outputDimensionality"))
    predictions = []
    for i, instance in enumerate(instances):
        if not isinstance(instance, dict) or not isinstance(instance.get("content"), str):
            raise _Bad(f"instances[{i}].content: a text is required.")
        _unknown(instance, _VERTEX_FIELDS, f"instances[{i}]")
        text = instance["content"]
        found: dict[str, Any] = {"values": vector(text, dims)}
        if not f.omit_usage:
            stats = {"token_count": max(1, round(len(text) / 4)), "truncated": False}
            found["statistics"] = {**stats, **(f.usage or {})}
        predictions.append({"embeddings": found})
    return {"predictions": predictions}
