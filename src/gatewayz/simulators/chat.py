"""``POST /v1/chat/completions``: turns a request (and the fault it consumed) into a ``Reply``.

Fault-free answers are rendered once per distinct request body with placeholder id/created
values and cached; every response then only substitutes a fresh id and timestamp, so repeated
benchmark requests cost a dictionary lookup and two ``bytes.replace`` calls."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from .content import plan_choice, prompt_tokens
from .faults import Fault, mid_stream, status_reply
from .formats import openai as openai_format
from .protocol import CHUNKED_END, SSE_CONTENT_TYPE, Reply, Request, chunk, response, response_head

_NO_FAULT = Fault()
_ID = "chatcmpl-" + "S" * 24
_ID_TOKEN = b'"' + _ID.encode() + b'"'
_CREATED = 1_000_000_000
_CREATED_TOKEN = b'"created":%d' % _CREATED
_CACHE_MAX_BODY = 64 * 1024
_BAD_JSON = (
    "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload, "
    "but what was sent was not valid JSON."
)


@dataclass(slots=True)
class _Rendered:
    """A 200 answer with placeholder id/created: the body, or (streams) the SSE events."""

    body: bytes
    events: list[bytes] | None


def _render(parsed: dict[str, Any], fault: Fault, stream: bool) -> _Rendered:
    n = parsed.get("n") or 1
    choices = [plan_choice(parsed, i, text=fault.text, empty=fault.empty_stream) for i in range(n)]
    model: str = parsed["model"]
    ptoks = prompt_tokens(parsed["messages"])
    logprobs = parsed.get("logprobs") is True
    top_n = parsed.get("top_logprobs") or 0
    if not stream:
        body = openai_format.completion_body(
            model, _ID, _CREATED, choices, ptoks,
            logprobs=logprobs, top_n=top_n, with_usage=not fault.omit_usage,
            usage_extra=fault.usage,
        )  # fmt: skip
        return _Rendered(body, None)
    options = parsed.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    events = openai_format.stream_events(
        model, _ID, _CREATED, choices, ptoks,
        logprobs=logprobs, top_n=top_n, include_usage=include_usage and not fault.omit_usage,
        empty=fault.empty_stream, malformed=fault.malformed, usage_extra=fault.usage,
    )  # fmt: skip
    return _Rendered(b"".join(events), events)


class ChatResponder:
    """Builds chat completion replies; keeps an LRU-ish cache of fault-free renders."""

    def __init__(self, cache_size: int = 256) -> None:
        self._cache: dict[bytes, _Rendered] = {}
        self._cache_size = cache_size

    def reply(self, req: Request, parsed: Any, json_ok: bool, fault: Fault | None) -> Reply:
        f = fault or _NO_FAULT
        keep, delay = req.keep_alive, max(0.0, f.delay_s)
        stream = isinstance(parsed, dict) and parsed.get("stream") is True
        if f.drop_after_chunks == 0 and not stream:
            return Reply(b"", keep_alive=False, delay=delay, drop_now=True)
        if f.status and not f.breaks_stream(stream):
            return status_reply(req, f, openai_format.fault_error)
        cacheable = fault is None and len(req.body) <= _CACHE_MAX_BODY
        rendered = self._cache.get(req.body) if cacheable else None
        if rendered is None:
            if not json_ok:
                body = openai_format.error_body(_BAD_JSON)
                return Reply(response(400, body, keep), keep_alive=keep, delay=delay)
            problem = openai_format.validate(parsed)
            if problem is not None:
                body = openai_format.error_body(problem[0], param=problem[1])
                return Reply(response(400, body, keep), keep_alive=keep, delay=delay)
            rendered = _render(parsed, f, stream)
            if cacheable:
                if len(self._cache) >= self._cache_size:
                    del self._cache[next(iter(self._cache))]
                self._cache[req.body] = rendered
        hexid = os.urandom(12).hex()
        id_token = b'"chatcmpl-' + hexid.encode() + b'"'
        created_token = b'"created":%d' % int(time.time())
        headers = [("x-request-id", "req_" + hexid)]

        if rendered.events is None:
            body = rendered.body.replace(_ID_TOKEN, id_token).replace(_CREATED_TOKEN, created_token)
            if f.malformed:
                body = body[: len(body) // 2]
            full = response(200, body, keep, headers=headers)
            if f.drop_after_chunks is not None:  # > 0: headers and half the body, then drop
                return Reply(full[: len(full) - len(body) // 2], keep_alive=False, delay=delay,
                             drop_after=0)  # fmt: skip
            return Reply(full, keep_alive=keep, delay=delay)

        chunked = req.version != "1.0"  # HTTP/1.0: unframed body, ends when the connection closes
        keep = keep and chunked
        head = response_head(200, SSE_CONTENT_TYPE, keep, chunked=chunked, headers=headers)
        gap = max(0.0, f.chunk_delay_s)
        drop_after = f.drop_after_chunks
        if gap <= 0 and drop_after is None:  # one write: the whole stream in one frame
            data = rendered.body.replace(_ID_TOKEN, id_token).replace(_CREATED_TOKEN, created_token)
            events = [chunk(data) if chunked else data]
        else:
            events = [
                e.replace(_ID_TOKEN, id_token).replace(_CREATED_TOKEN, created_token)
                for e in rendered.events
            ]
            events, drop_after = mid_stream(events, f, req, openai_format.error_event)
            if chunked:
                events = [chunk(e) for e in events]
        return Reply(
            head,
            events,
            tail=CHUNKED_END if chunked else b"",
            keep_alive=keep,
            delay=delay,
            gap=gap,
            drop_after=drop_after,
        )
