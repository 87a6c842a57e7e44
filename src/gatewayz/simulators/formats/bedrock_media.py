"""AWS Bedrock InvokeModel (`POST /model/{modelId}/invoke`) for the embedding and image models
the Bedrock family serves through it, each with its native body:

- `amazon.titan-embed-text-v2*` / `-v1`: `{"inputText", "dimensions", "normalize"}` →
  `{"embedding", "inputTextTokenCount", "embeddingsByType"}`
- `cohere.embed-*`: `{"texts", "input_type", "embedding_types", "output_dimension" (v4)}` →
  `{"embeddings": [[...]]}` (by type, `{"float": [[...]]}`, when `embedding_types` is given),
  the input tokens in the `X-Amzn-Bedrock-Input-Token-Count` header
- `amazon.titan-image-generator-*`, `amazon.nova-canvas-*`: `{"taskType": "TEXT_IMAGE",
  "textToImageParams", "imageGenerationConfig"}` → `{"images": ["<base64 PNG>"], "error": null}`

Any other model id: 400 ValidationException. Auth and faults as for Converse (formats/bedrock.py):
an error `status` with its `x-amzn-ErrorType`, `malformed` (half the JSON body),
`drop_after_chunks`, `delay_s`, `omit_usage` (no token count), and `usage` merged over Titan's
answer (e.g. `{"inputTextTokenCount": -1}`). Vectors are openai_media's deterministic ones
(DEFAULT_DIMENSIONS long unless dimensions are asked for); a cross-region prefix (`us.`) is
ignored. Pairs with `gatewayz.providers.bedrock.media`."""

from __future__ import annotations

import base64
import re
import uuid
from typing import Any

import orjson

from ..faults import Fault
from ..protocol import Reply, Request
from .bedrock import begin, error_reply, json_reply
from .openai_media import DEFAULT_DIMENSIONS, PNG_1X1, vector

_REGION_PREFIX = re.compile(r"^(?:us|us-gov|eu|apac|jp|au|ca|global)\.")
_COHERE_INPUT_TYPES = frozenset(
    {"search_document", "search_query", "classification", "clustering", "image"}
)
_IMAGE_MODELS = ("amazon.titan-image-generator-", "amazon.nova-canvas-")


class _Invalid(Exception):
    pass


def _tokens(text: str) -> int:
    return max(1, round(len(text) / 4))


def _titan_embed(model: str, body: Any, f: Fault) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    text = body.get("inputText")
    if not isinstance(text, str) or not text:
        raise _Invalid("Malformed input request: #: required key [inputText] not found")
    v2 = model.startswith("amazon.titan-embed-text-v2")
    if not v2 and set(body) - {"inputText"}:
        raise _Invalid("Malformed input request: extraneous key is not permitted")
    dims = body.get("dimensions", DEFAULT_DIMENSIONS)
    if "dimensions" in body and dims not in (256, 512, 1024):
        raise _Invalid("Malformed input request: #/dimensions: 256, 512 or 1024 expected")
    vec = vector(text, dims)
    out: dict[str, Any] = {"embedding": vec, "embeddingsByType": {"float": vec}}
    if not f.omit_usage:
        out["inputTextTokenCount"] = _tokens(text)
        out.update(f.usage or {})
    return out, []


def _cohere_embed(model: str, body: Any, f: Fault) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    texts = body.get("texts")
    if not isinstance(texts, list) or not 1 <= len(texts) <= 96:
        raise _Invalid("Malformed input request: #/texts: expected 1 to 96 texts")
    if not all(isinstance(t, str) for t in texts):
        raise _Invalid("Malformed input request: #/texts: expected type: String")
    if body.get("input_type") not in _COHERE_INPUT_TYPES:
        raise _Invalid("Malformed input request: #/input_type: is not a valid enum value")
    dims = body.get("output_dimension")
    if dims is not None and (
        not model.startswith("cohere.embed-v4") or dims not in (256, 512, 1024, 1536)
    ):
        raise _Invalid("Malformed input request: #/output_dimension: not permitted here")
    vectors = [vector(t, dims or DEFAULT_DIMENSIONS) for t in texts]
    by_type = "embedding_types" in body
    out: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "embeddings": {"float": vectors} if by_type else vectors,
        "response_type": "embeddings_by_type" if by_type else "embeddings_floats",
        "texts": texts,
    }
    headers: list[tuple[str, str]] = []
    if not f.omit_usage:
        count = sum(_tokens(t) for t in texts)
        headers.append(("X-Amzn-Bedrock-Input-Token-Count", str(count)))
    return out, headers


def _image(model: str, body: Any, f: Fault) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    params = body.get("textToImageParams")
    if body.get("taskType") != "TEXT_IMAGE" or not isinstance(params, dict):
        raise _Invalid("Malformed input request: #/taskType: TEXT_IMAGE expected")
    if not isinstance(params.get("text"), str) or not params["text"]:
        raise _Invalid("Malformed input request: #/textToImageParams/text: required")
    config = body.get("imageGenerationConfig") or {}
    n = config.get("numberOfImages", 1)
    if not isinstance(n, int) or not 1 <= n <= 5:
        raise _Invalid("Malformed input request: #/imageGenerationConfig/numberOfImages: 1 to 5")
    if config.get("quality", "standard") not in ("standard", "premium"):
        raise _Invalid("Malformed input request: #/imageGenerationConfig/quality: bad value")
    for side in ("width", "height"):
        if side in config and (
            not isinstance(config[side], int) or not 256 <= config[side] <= 4096
        ):
            raise _Invalid(f"Malformed input request: #/imageGenerationConfig/{side}: bad value")
    png = base64.b64encode(PNG_1X1).decode()
    return {"images": [png] * n, "error": None}, []


def invoke(sim: Any, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    keep = req.keep_alive
    f, early = begin(sim, req, stream=False)
    if early is not None:
        return early
    model = _REGION_PREFIX.sub("", match.group("model"), count=1)
    if model.startswith("amazon.titan-embed-text-"):
        answer = _titan_embed
    elif model.startswith("cohere.embed-"):
        answer = _cohere_embed
    elif model.startswith(_IMAGE_MODELS):
        answer = _image
    else:
        message = orjson.dumps({"message": "The provided model identifier is invalid."})
        return error_reply(400, message, keep, delay=max(0.0, f.delay_s))
    try:
        if not isinstance(parsed, dict):
            raise _Invalid("Malformed input request, please reformat your input and try again.")
        body, headers = answer(model, parsed, f)
    except _Invalid as exc:
        return error_reply(
            400, orjson.dumps({"message": str(exc)}), keep, delay=max(0.0, f.delay_s)
        )
    return json_reply(orjson.dumps(body), f, keep, headers)


ROUTES = [
    ("POST", r"/model/(?P<model>[^/]+)/invoke", invoke),
]
