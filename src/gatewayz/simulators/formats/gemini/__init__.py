"""Google Gemini (AI Studio) for the simulator: `/v1beta/models/{model}:generateContent` with the
key in `x-goog-api-key`, also `:streamGenerateContent` (`?alt=sse`: SSE, else one JSON array),
the model list, and embeddings and Imagen images (`media.py`). Vertex AI answers the same
bodies (`generate` here) under its own paths and auth: `formats/vertex.py`. Pairs with the
family `gatewayz.providers.gemini`.

Requests are checked the way Gemini checks them (unknown fields, part shapes, the schema subset,
function responses matching the calls) and answered by the shared deterministic planner
(`content.plan_choice`) on an OpenAI-shaped view of the request: function calls when tools are
given and the mode is ANY or the model name ends with "tools" (two in parallel when two tools
exist), a thought part first when `thinkingConfig.includeThoughts` (`checks.py`, `answers.py`)."""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson

from ... import model_lists
from ...content import plan_choice, prompt_tokens
from ...faults import Fault, mid_stream, status_reply
from ...protocol import (
    CHUNKED_END,
    SSE_CONTENT_TYPE,
    Reply,
    Request,
    chunk,
    response,
    response_head,
)
from . import answers, checks, media
from .replies import error_dict, error_reply

if TYPE_CHECKING:
    from ...server import Simulator

AuthCheck = Callable[["Simulator", Request], Reply | None]  # an error reply, or None: let in
MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.5-flash-lite", "gemini-3-pro-preview")
THOUGHT = "Thinking it through: the user wants a clear, direct answer."
GENERATE = "(?P<model>[^/:]+):(?P<method>generateContent|streamGenerateContent)"


@dataclass
class State:
    """Per-simulator Google state: the OAuth tokens issued by Vertex's `/token` (`vertex.py`)."""

    token_calls: int = 0
    expires_in: int = 3600
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


_STATES: weakref.WeakKeyDictionary[Simulator, State] = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def state(sim: Simulator) -> State:
    with _STATES_LOCK:
        return _STATES.setdefault(sim, State())


def json_reply(req: Request, value: Any) -> Reply:
    return Reply(response(200, orjson.dumps(value), req.keep_alive), keep_alive=req.keep_alive)


def key_problem(sim: Simulator, req: Request) -> Reply | None:
    if sim.api_key is None:
        return None
    key = req.headers.get("x-goog-api-key") or (parse_qs(req.query).get("key") or [""])[0]
    if not key:
        msg = "Method doesn't allow unregistered callers. Please use an API Key."
        return error_reply(req, 403, msg)
    if key != sim.api_key:
        return error_reply(req, 400, "API key not valid. Please pass a valid API key.")
    return None


# ---------------------------------------------------------------- model lists
def _studio_models(sim: Simulator, req: Request, _parsed: Any, _m: re.Match[str]) -> Reply:
    """`models.list`: the scripted list (simulators/model_lists.py) or MODELS, paged by
    `pageSize` (default 50, at most 1000) and `pageToken`."""
    problem = key_problem(sim, req)
    if problem is not None:
        return problem
    scripted, fault = model_lists.lists_of(sim).take("gemini")
    failing = model_lists.fault_reply(req, fault, _list_error)
    if failing is not None:
        return failing
    entries = scripted if scripted is not None else [{"id": m} for m in MODELS]
    query = parse_qs(req.query)
    size = (query.get("pageSize") or ["50"])[0]
    items, token = model_lists.page(
        entries, min(1000, int(size)) if size.isdigit() else 50, (query.get("pageToken") or [""])[0]
    )
    body: dict[str, Any] = {"models": [_studio_entry(e) for e in items]}
    if token is not None:
        body["nextPageToken"] = token
    return model_lists.delayed(json_reply(req, body), fault)


def _studio_entry(e: dict[str, Any]) -> dict[str, Any]:
    embeds = "embeddings" in e.get("output_modalities", ())
    methods = ["embedContent"] if embeds else ["generateContent", "streamGenerateContent"]
    out: dict[str, Any] = {
        "name": f"models/{e['id']}",
        "displayName": e.get("name", e["id"]),
        "supportedGenerationMethods": [*methods, "countTokens"],
    }
    if "context_length" in e:
        out["inputTokenLimit"] = e["context_length"]
    return out


def _list_error(status: int) -> bytes:
    return orjson.dumps(error_dict(status, "simulated model list failure"))


# ---------------------------------------------------------------- generate
def generate(
    sim: Simulator, req: Request, parsed: Any, m: re.Match[str], auth: AuthCheck, api: str
) -> Reply:
    """`:generateContent` / `:streamGenerateContent` of a model, the caller checked by `auth`
    (AI Studio's key or Vertex's token); `api` is the version named in a not-found error."""
    problem = auth(sim, req)
    if problem is not None:
        return problem
    model, stream = m.group("model"), m.group("method") == "streamGenerateContent"
    f = sim.take_fault() or Fault()
    keep, delay = req.keep_alive, max(0.0, f.delay_s)
    if f.drop_after_chunks == 0 and not stream:
        return Reply(b"", keep_alive=False, delay=delay, drop_now=True)
    if f.status and not f.breaks_stream(stream):
        return status_reply(req, f, error_dict)
    parsed = checks.normalize(parsed)
    problem_text = checks.problem(parsed)
    if problem_text is not None:
        return error_reply(req, 400, problem_text, delay)
    if not model.startswith("gemini"):
        return error_reply(
            req,
            404,
            f"models/{model} is not found for API version {api}, or is not supported for "
            "generateContent.",
            delay,
        )
    planned = answers.planned(parsed, model)
    gen = parsed.get("generationConfig") or {}
    thoughts = (gen.get("thinkingConfig") or {}).get("includeThoughts") is True
    n = gen.get("candidateCount", 1)
    choices = [plan_choice(planned, i, text=f.text, empty=f.empty_stream) for i in range(n)]
    thought = THOUGHT if thoughts and not f.empty_stream else None
    cands = [answers.candidate(c, i, thought, model) for i, c in enumerate(choices)]
    ptoks = prompt_tokens(planned["messages"])
    usage = None if f.omit_usage else answers.usage_metadata(ptoks, choices, thought)
    base = {"modelVersion": model, "responseId": os.urandom(9).hex()}
    if not stream:
        answer: dict[str, Any] = {"candidates": cands, **base}
        if usage is not None:
            answer["usageMetadata"] = usage
        data = orjson.dumps(answer)
        if f.malformed:
            data = data[: len(data) // 2]
        full = response(200, data, keep)
        if f.drop_after_chunks is not None:  # > 0: headers and half the body, then drop
            return Reply(
                full[: len(full) - len(data) // 2], keep_alive=False, delay=delay, drop_after=0
            )
        return Reply(full, keep_alive=keep, delay=delay)
    if f.empty_stream:
        cands, choices = [], []
    events = answers.stream_events(cands, choices, base, usage)
    if "alt=sse" not in req.query:  # without SSE: one JSON array of the same objects
        data = orjson.dumps(events)
        return Reply(
            response(200, data[: len(data) // 2] if f.malformed else data, keep),
            keep_alive=keep,
            delay=delay,
        )
    frames = [b"data: " + orjson.dumps(ev) + b"\r\n\r\n" for ev in events]
    if f.malformed:
        frames.insert(1, b"data: {not json\r\n\r\n")
    frames, drop_after = mid_stream(  # an error interrupting the stream: its body as an event
        frames, f, req, lambda s, text: b"data: " + orjson.dumps(error_dict(s, text)) + b"\r\n\r\n"
    )
    chunked = req.version != "1.0"
    keep = keep and chunked
    head = response_head(200, SSE_CONTENT_TYPE, keep, chunked=chunked)
    gap = max(0.0, f.chunk_delay_s)
    if chunked:
        frames = [chunk(fr) for fr in frames]
    return Reply(
        head,
        frames,
        tail=CHUNKED_END if chunked else b"",
        keep_alive=keep,
        delay=delay,
        gap=gap,
        drop_after=drop_after,
    )


def _studio(sim: Simulator, req: Request, parsed: Any, m: re.Match[str]) -> Reply:
    return generate(sim, req, parsed, m, key_problem, "v1beta")


def _studio_embed(sim: Simulator, req: Request, parsed: Any, m: re.Match[str]) -> Reply:
    return media.embed(sim, req, parsed, m, key_problem, "v1beta")


def _studio_predict(sim: Simulator, req: Request, parsed: Any, m: re.Match[str]) -> Reply:
    return media.predict(sim, req, parsed, m, key_problem, "v1beta", embeddings=False)


ROUTES = [
    ("POST", r"/v1beta/models/" + GENERATE, _studio),
    ("POST", r"/v1beta/models/" + media.EMBED, _studio_embed),
    ("POST", r"/v1beta/models/" + media.PREDICT, _studio_predict),
    ("GET", r"/v1beta/models", _studio_models),
]
