"""OpenAI's embeddings, image generation and audio endpoints, as the OpenAI-compatible family
sends them (`POST /v1/embeddings`, `/v1/images/generations`, `/v1/audio/transcriptions`,
`/v1/audio/translations`, multipart for audio). Deterministic answers (a vector from the text's
hash, placeholder images, a transcript naming the file), with the simulator's faults: an error
`status`, `malformed`, `drop_after_chunks: 0`, `delay_s`, `omit_usage`, `usage` merged over the
reported usage, `text` as the transcript, and a 200 `body` answered as it is (e.g. fewer images
than asked). Pairs with `gatewayz.providers.openai.media`."""

from __future__ import annotations

import base64
import hashlib
import math
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from ..faults import Fault, status_reply
from ..protocol import Reply, Request, response
from .cohere import error_reply, json_reply
from .openai import error_dict, fault_error

if TYPE_CHECKING:
    from ..server import Simulator

DEFAULT_DIMENSIONS = 16  # small vectors keep test payloads small; `dimensions` asks for more
PNG_1X1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def _authorized(sim: Simulator, req: Request) -> bool:
    return sim.api_key is None or req.headers.get("authorization") == f"Bearer {sim.api_key}"


def _start(sim: Simulator, req: Request) -> tuple[Fault, Reply | None]:
    """The request's fault, and the reply that ends it before any content (401, a fault)."""
    if not _authorized(sim, req):
        return Fault(), error_reply(req, 401, error_dict("Incorrect API key provided.", "auth"))
    f = sim.take_fault() or Fault()
    if f.drop_after_chunks == 0:
        return f, Reply(b"", keep_alive=False, delay=max(0.0, f.delay_s), drop_now=True)
    if f.status:
        return f, status_reply(req, f, fault_error)
    return f, None


def _bad(req: Request, message: str, param: str, f: Fault) -> Reply:
    return error_reply(req, 400, error_dict(message, "invalid_request_error", param), f)


def vector(text: str, dimensions: int) -> list[float]:
    """A unit vector from the text's hash: equal texts, equal vectors."""
    seed = hashlib.sha256(text.encode()).digest()
    raw = [((seed[i % 32] + i * 37) % 251) / 125.0 - 1.0 for i in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [round(x / norm, 6) for x in raw]


def embeddings(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    f, early = _start(sim, req)
    if early is not None:
        return early
    if not isinstance(parsed, dict) or not isinstance(parsed.get("model"), str):
        return _bad(req, "'model' is required.", "model", f)
    inputs = parsed.get("input")
    if isinstance(inputs, str) or (
        isinstance(inputs, list) and inputs and isinstance(inputs[0], int)
    ):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs:
        return _bad(req, "'input' must be a string or a non-empty array.", "input", f)
    dims = parsed.get("dimensions") or DEFAULT_DIMENSIONS
    if not isinstance(dims, int) or not 1 <= dims <= 4096:
        return _bad(req, "'dimensions' must be 1 to 4096.", "dimensions", f)
    texts = [x if isinstance(x, str) else " ".join(map(str, x)) for x in inputs]
    tokens = sum(len(x) if isinstance(x, list) else max(1, round(len(x) / 4)) for x in inputs)
    b64 = parsed.get("encoding_format") == "base64"
    data = []
    for i, text in enumerate(texts):
        vec = vector(text, dims)
        if b64:
            value: Any = base64.b64encode(np.asarray(vec, dtype="<f4").tobytes()).decode()
        else:
            value = vec
        data.append({"object": "embedding", "index": i, "embedding": value})
    body: dict[str, Any] = {"object": "list", "data": data, "model": parsed["model"]}
    if not f.omit_usage:
        body["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens, **(f.usage or {})}
    return json_reply(req, orjson.dumps(body), f)


def images(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    f, early = _start(sim, req)
    if early is not None:
        return early
    if not isinstance(parsed, dict) or not isinstance(parsed.get("prompt"), str):
        return _bad(req, "'prompt' is required.", "prompt", f)
    n = parsed.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= 10:
        return _bad(req, "'n' must be 1 to 10.", "n", f)
    digest = hashlib.sha256(parsed["prompt"].encode()).hexdigest()[:16]
    data = []
    for i in range(n):
        if parsed.get("response_format") == "b64_json":
            item: dict[str, Any] = {"b64_json": base64.b64encode(PNG_1X1).decode()}
        else:
            item = {"url": f"https://images.sim.invalid/{digest}-{i}.png"}
        if str(parsed.get("model", "")).startswith("dall-e-3"):
            item["revised_prompt"] = f"A picture of: {parsed['prompt']}"
        data.append(item)
    return json_reply(req, orjson.dumps({"created": 1_700_000_000, "data": data}), f)


def _form(req: Request) -> dict[str, Any] | None:
    """The multipart form's fields (str) and files (bytes); None when it is not one."""
    ctype = req.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        return None
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + req.body
    )
    if not msg.is_multipart():
        return None
    out: dict[str, Any] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if not isinstance(name, str):
            continue
        if part.get_filename() is not None:
            out[name] = payload
            out[name + ".filename"] = part.get_filename()
        else:
            out.setdefault(name + "[]", []).append(payload.decode())
            out[name] = payload.decode()
    return out


def audio(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    f, early = _start(sim, req)
    if early is not None:
        return early
    form = _form(req)
    if form is None or not isinstance(form.get("file"), bytes) or "model" not in form:
        return _bad(req, "A multipart form with 'file' and 'model' is required.", "file", f)
    translate = match.group(1) == "translations"
    text = f.text or f"Simulated {'translation' if translate else 'transcript'} of " + (
        f"{form.get('file.filename')} ({len(form['file'])} bytes)."
    )
    fmt = form.get("response_format", "json")
    keep = req.keep_alive
    if fmt in ("text", "srt", "vtt"):
        body = _subtitles(text, fmt).encode()
        head = response(200, body, keep, b"text/plain; charset=utf-8")
        return Reply(head, keep_alive=keep, delay=max(0.0, f.delay_s))
    value: dict[str, Any] = {"text": text}
    if fmt == "verbose_json":
        value = {
            "task": "translate" if translate else "transcribe",
            "language": "english",
            "duration": 1.0,
            "text": text,
            "segments": [{"id": 0, "start": 0.0, "end": 1.0, "text": text}],
        }
        if "word" in form.get("timestamp_granularities[][]", []):
            value["words"] = [{"word": w, "start": 0.0, "end": 1.0} for w in text.split()]
    if not f.omit_usage and fmt == "json":
        value["usage"] = {"type": "duration", "seconds": 1, **(f.usage or {})}
    return json_reply(req, orjson.dumps(value), f)


def _subtitles(text: str, fmt: str) -> str:
    if fmt == "text":
        return text + "\n"
    if fmt == "srt":
        return f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n\n"
    return f"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n{text}\n\n"


ROUTES = [
    ("POST", r"(?:/v1)?/embeddings", embeddings),
    ("POST", r"(?:/v1)?/images/generations", images),
    ("POST", r"(?:/v1)?/audio/(transcriptions|translations)", audio),
]
