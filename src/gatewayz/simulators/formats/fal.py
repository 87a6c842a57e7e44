"""fal's synchronous API in the simulator (`Authorization: Key <key>`):

- `POST /fal-ai/any-llm` → `{"output", "reasoning", "partial": false, "error": null}`
- `POST /fal-ai/any-llm/stream` → SSE `data:` events whose `output` is the text so far
  (`partial: true`), then the complete result (`partial: false`)
- `POST /fal-ai/<image app>` (e.g. `fal-ai/flux/schnell`) → `{"images": [{"url", ...}], ...}`;
  with `sync_mode: true` each `url` is the image itself, a `data:image/png;base64,` URI

Errors are FastAPI-shaped: `{"detail": "..."}` or a list of validation problems (422)."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING, Any

import orjson

from ..content import plan_choice
from ..faults import Fault
from ..protocol import Reply, Request
from .cohere import error_reply, fault_reply, json_reply, sse_reply
from .openai_media import PNG_1X1

if TYPE_CHECKING:
    from ..server import Simulator

_NO_FAULT = Fault()
DEFAULT_MODEL = "google/gemini-flash-1.5"
REASONING_PREFIX = "Considering the prompt: "
IMAGE_HOST = "https://v3.fal.media/files/simulator"


def _fault_error(status: int, message: str) -> dict[str, Any]:
    return {"detail": message}


def _error_event(status: int, message: str) -> bytes:
    """A failed run's final event: no output, the error in `error`."""
    return b"data: " + orjson.dumps({**_output("", None, False), "error": message}) + b"\n\n"


def _unauthorized(sim: Simulator, req: Request) -> Reply | None:
    if sim.api_key is None or req.headers.get("authorization") == f"Key {sim.api_key}":
        return None
    if "authorization" not in req.headers:
        return error_reply(req, 401, {"detail": "No authentication credentials provided."})
    return error_reply(req, 401, {"detail": "Invalid authentication credentials."})


def _missing(field: str) -> dict[str, Any]:
    return {
        "detail": [{"loc": ["body", field], "msg": "field required", "type": "value_error.missing"}]
    }


def _result(parsed: dict[str, Any], f: Fault) -> tuple[str, str | None]:
    """The output text and reasoning for a valid any-llm request."""
    model = parsed.get("model") or DEFAULT_MODEL
    view = {"model": model, "messages": [{"role": "user", "content": parsed["prompt"]}]}
    c = plan_choice(view, 0, text=f.text, empty=f.empty_stream)
    reasoning = None
    if parsed.get("reasoning") is True and not f.empty_stream:
        reasoning = REASONING_PREFIX + parsed["prompt"][:100]
    return c.content or "", reasoning


def _output(text: str, reasoning: str | None, partial: bool) -> dict[str, Any]:
    return {"output": text, "reasoning": reasoning, "partial": partial, "error": None}


def _llm(sim: Simulator, req: Request, parsed: Any, stream: bool) -> Reply:
    denied = _unauthorized(sim, req)
    if denied is not None:
        return denied
    f = sim.take_fault() or _NO_FAULT
    early = fault_reply(req, f, stream, _fault_error)
    if early is not None:
        return early
    if not isinstance(parsed, dict) or not isinstance(parsed.get("prompt"), str):
        return error_reply(req, 422, _missing("prompt"), f)
    if parsed.get("model") is not None and not isinstance(parsed["model"], str):
        problem = {"loc": ["body", "model"], "msg": "str type expected", "type": "type_error.str"}
        return error_reply(req, 422, {"detail": [problem]}, f)
    text, reasoning = _result(parsed, f)
    if not stream:
        return json_reply(req, orjson.dumps(_output(text, reasoning, False)), f)
    events: list[bytes] = []
    if f.malformed:
        events.append(b'data: {"output": "\n\n')
    so_far = ""
    for piece in re.findall(r"\s*\S+\s*", text):
        so_far += piece
        events.append(b"data: " + orjson.dumps(_output(so_far, reasoning, True)) + b"\n\n")
    events.append(b"data: " + orjson.dumps(_output(text, reasoning, False)) + b"\n\n")
    return sse_reply(req, events, f, _error_event)


def any_llm(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    return _llm(sim, req, parsed, stream=False)


def any_llm_stream(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    return _llm(sim, req, parsed, stream=True)


def image(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    denied = _unauthorized(sim, req)
    if denied is not None:
        return denied
    f = sim.take_fault() or _NO_FAULT
    early = fault_reply(req, f, False, _fault_error)
    if early is not None:
        return early
    if not isinstance(parsed, dict) or not isinstance(parsed.get("prompt"), str):
        return error_reply(req, 422, _missing("prompt"), f)
    count = parsed.get("num_images", 1)
    count = count if isinstance(count, int) and 1 <= count <= 4 else 1
    size = parsed.get("image_size")
    width, height = (
        (size.get("width", 1024), size.get("height", 768))
        if isinstance(size, dict)
        else (1024, 768)
    )
    digest = hashlib.sha1(f"{match.group(1)}:{parsed['prompt']}".encode()).hexdigest()
    seed = parsed.get("seed") if isinstance(parsed.get("seed"), int) else int(digest[:8], 16)
    inline = "data:image/png;base64," + base64.b64encode(PNG_1X1).decode()
    sync = parsed.get("sync_mode") is True  # the images in the answer, not stored
    images = [
        {
            "url": inline if sync else f"{IMAGE_HOST}/{digest[:16]}-{i}.png",
            "width": width,
            "height": height,
            "content_type": "image/png",
        }
        for i in range(count)
    ]
    body = {
        "images": images,
        "timings": {"inference": 0.01},
        "seed": seed,
        "has_nsfw_concepts": [False] * count,
        "prompt": parsed["prompt"],
    }
    return json_reply(req, orjson.dumps(body), f)


ROUTES = [
    ("POST", r"/fal-ai/any-llm", any_llm),
    ("POST", r"/fal-ai/any-llm/stream", any_llm_stream),
    ("POST", r"/(fal-ai/(?!any-llm(?:/|$))[a-z0-9._-]+(?:/[a-z0-9._-]+)*)", image),
]
