"""Cohere's v2 embed endpoint in the simulator: `POST /v2/embed` (also under the `/cohere`
mount, as chat), Bearer auth as `cohere.py`. `{"model", "texts", "input_type",
"embedding_types", "output_dimension"}` → `{"embeddings": {"float": [[...]]}, "texts", "meta":
{"billed_units": {"input_tokens"}}, "response_type": "embeddings_by_type"}`, with the vectors of
`openai_media.vector` (a module of its own, not in `cohere.py`: openai_media imports that one).
Pairs with `gatewayz.providers.cohere.media`."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import orjson

from ..faults import Fault
from ..protocol import Reply, Request
from .cohere import error_reply, fault_reply, json_reply
from .openai_media import DEFAULT_DIMENSIONS, vector

if TYPE_CHECKING:
    from ..server import Simulator


def _error(message: str) -> dict[str, Any]:
    return {"id": os.urandom(16).hex(), "message": message}


def _fault_error(status: int, message: str) -> dict[str, Any]:
    return _error(message)


def _authorized(sim: Simulator, req: Request) -> bool:
    return sim.api_key is None or req.headers.get("authorization") == f"Bearer {sim.api_key}"


_INPUT_TYPES = frozenset(
    {"search_document", "search_query", "classification", "clustering", "image"}
)
_EMBEDDING_TYPES = frozenset({"float", "int8", "uint8", "binary", "ubinary", "base64"})


def _validate_embed(parsed: Any) -> str | None:
    if not isinstance(parsed, dict) or not isinstance(parsed.get("model"), str):
        return "invalid request: model must be a string"
    texts = parsed.get("texts")
    if not isinstance(texts, list) or not 1 <= len(texts) <= 96:
        return "invalid request: texts must be an array of 1 to 96 strings"
    if not all(isinstance(t, str) for t in texts):
        return "invalid request: texts must be an array of 1 to 96 strings"
    if parsed.get("input_type") not in _INPUT_TYPES:
        return "invalid request: input_type is required for embed v3 and newer models"
    types = parsed.get("embedding_types", ["float"])
    if not isinstance(types, list) or not types or not set(types) <= _EMBEDDING_TYPES:
        return "invalid request: embedding_types must be a list of float, int8, uint8, ..."
    dims = parsed.get("output_dimension")
    if dims is not None and dims not in (256, 512, 1024, 1536):
        return "invalid request: output_dimension must be one of 256, 512, 1024, 1536"
    return None


def embed(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    """`POST /v2/embed`: deterministic float vectors (openai_media's, DEFAULT_DIMENSIONS long
    unless `output_dimension` says), `meta.billed_units.input_tokens` (`usage` merged over it,
    none with `omit_usage`), and the faults chat honours (status, malformed, drop, delay)."""
    if not _authorized(sim, req):
        return error_reply(req, 401, _error("invalid api token"))
    f = sim.take_fault() or Fault()
    early = fault_reply(req, f, False, _fault_error)
    if early is not None:
        return early
    problem = _validate_embed(parsed)
    if problem is not None:
        return error_reply(req, 400, _error(problem), f)
    texts = parsed["texts"]
    dims = parsed.get("output_dimension") or DEFAULT_DIMENSIONS
    meta: dict[str, Any] = {"api_version": {"version": "2"}}
    if not f.omit_usage:
        tokens = sum(max(1, round(len(t) / 4)) for t in texts)
        meta["billed_units"] = {"input_tokens": tokens, **(f.usage or {})}
    body = {
        "id": os.urandom(16).hex(),
        "embeddings": {"float": [vector(t, dims) for t in texts]},
        "texts": texts,
        "meta": meta,
        "response_type": "embeddings_by_type",
    }
    return json_reply(req, orjson.dumps(body), f)


ROUTES = [
    ("POST", r"(?:/cohere)?/v2/embed", embed),
]
