"""``Fault``: one scripted misbehaviour of the simulator, consumed by one chat completion.

Every wire format of the simulator answers a fault the same way; the helpers at the bottom
(`status_reply`, `fault_message`, `mid_stream`) are what the formats share for it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

import orjson

from .protocol import JSON_CONTENT_TYPE, Reply, Request, response

# The request headers that carry a caller's credentials in the formats the simulator speaks
# (OpenAI/Cohere/Cloudflare/fal/Vertex Authorization, Anthropic x-api-key, Gemini
# x-goog-api-key, Azure api-key, the SigV4 Authorization and its session token).
CREDENTIAL_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key",
                      "x-amz-security-token")  # fmt: skip


@dataclass(slots=True)
class Fault:
    """A scripted misbehaviour for the next chat completion request (faults queue FIFO).

    - ``status``: answer with this HTTP status and ``body`` (default: an error in the format's
      shape), plus a ``Retry-After: retry_after`` header when given. On a stream, ``status``
      together with ``drop_after_chunks`` instead sends that many events and then the format's
      mid-stream error event for the status. A ``status`` of 200 answers ``body`` as it is,
      whether the request asked for a stream or not (one JSON body where a stream was due).
    - ``content_type`` / ``raw_body``: a ``status`` answer with this Content-Type and exactly
      this body text instead of JSON (e.g. an HTML page from a proxy in between).
    - ``echo_credentials``: the scripted error (a ``status`` answer without ``body``, or the
      mid-stream error) repeats the credentials the request carried, as some providers'
      error messages do.
    - ``delay_s``: wait this long before sending the response headers.
    - ``chunk_delay_s``: wait this long between stream events.
    - ``drop_after_chunks``: streams: abort the connection after that many SSE events;
      non-streams: 0 aborts without any response, more sends the headers and half the body.
    - ``empty_stream``: a 200 stream with no choice chunks (only the usage chunk when requested,
      with 0 completion tokens, then ``[DONE]``); a non-stream answers with empty content.
    - ``omit_usage``: no ``usage`` key (non-stream) / no usage chunk (stream).
    - ``malformed``: a body that is not JSON (non-stream) / a data line that is not JSON (stream).
    - ``text``: exactly this assistant content (no tools, stop or max_tokens applied).
    - ``usage``: keys merged over the reported ``usage`` object (OpenAI format), verbatim:
      ``{"prompt_tokens": 12}`` as a tokenizer with a chat template counts, or nonsense
      (negative, huge, strings) as a misbehaving provider reports it."""

    status: int | None = None
    body: dict[str, Any] | None = None
    retry_after: str | None = None
    content_type: str | None = None
    raw_body: str | None = None
    echo_credentials: bool = False
    delay_s: float = 0.0
    chunk_delay_s: float = 0.0
    drop_after_chunks: int | None = None
    empty_stream: bool = False
    omit_usage: bool = False
    malformed: bool = False
    text: str | None = None
    usage: dict[str, Any] | None = None

    @classmethod
    def from_dict(cls, data: Any) -> Fault:
        """Build a fault from JSON (the control endpoint); ValueError on unknown or bad fields."""
        if not isinstance(data, dict):
            raise ValueError("a fault must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(unknown)}")
        for name, value in data.items():
            allowed = _FIELD_TYPES[name]
            if value is None and name in _OPTIONAL:
                continue
            if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
                raise ValueError(f"fault field {name!r} has the wrong type")
        return cls(**data)

    def breaks_stream(self, stream: bool) -> bool:
        """Whether this fault is a mid-stream error (rather than an error status) here."""
        return stream and self.status is not None and self.drop_after_chunks is not None


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "status": (int,),
    "body": (dict,),
    "retry_after": (str,),
    "content_type": (str,),
    "raw_body": (str,),
    "echo_credentials": (bool,),
    "delay_s": (int, float),
    "chunk_delay_s": (int, float),
    "drop_after_chunks": (int,),
    "empty_stream": (bool,),
    "omit_usage": (bool,),
    "malformed": (bool,),
    "text": (str,),
    "usage": (dict,),
}
_OPTIONAL = frozenset(
    {
        "status",
        "body",
        "retry_after",
        "content_type",
        "raw_body",
        "drop_after_chunks",
        "text",
        "usage",
    }
)


def fault_message(f: Fault, req: Request) -> str:
    """The human message of a scripted error: with `echo_credentials`, followed by every
    credential header the request carried, verbatim."""
    text = f"Simulated upstream fault: HTTP {f.status}."
    if not f.echo_credentials:
        return text
    seen = [f"{name}: {req.headers[name]}" for name in CREDENTIAL_HEADERS if name in req.headers]
    return f"{text} Credentials received: {'; '.join(seen) or 'none'}."


def status_reply(
    req: Request,
    f: Fault,
    error_body: Callable[[int, str], Any],
    headers: Iterable[tuple[str, str]] = (),
) -> Reply:
    """The answer to a `status` fault: `raw_body` (as `content_type`), else `body`, else the
    format's error body `error_body(status, message)`; with Retry-After when scripted."""
    assert f.status is not None
    keep = req.keep_alive
    extra = [*headers, *([("Retry-After", f.retry_after)] if f.retry_after is not None else [])]
    if f.raw_body is not None:
        data = f.raw_body.encode()
    else:
        data = orjson.dumps(
            f.body if f.body is not None else error_body(f.status, fault_message(f, req))
        )
    content_type = f.content_type.encode() if f.content_type else JSON_CONTENT_TYPE
    head = response(f.status, data, keep, content_type, headers=extra)
    return Reply(head, keep_alive=keep, delay=max(0.0, f.delay_s))


def mid_stream(
    events: list[bytes], f: Fault, req: Request, error_event: Callable[[int, str], bytes]
) -> tuple[list[bytes], int | None]:
    """The events of a stream and where to drop it: for a mid-stream error fault, the first
    `drop_after_chunks` events and then the format's error event (the stream then ends
    normally); otherwise the events as they are, dropped after `drop_after_chunks`."""
    if f.status is None or f.drop_after_chunks is None:
        return events, f.drop_after_chunks
    message = (f.body or {}).get("message") or fault_message(f, req)
    return [*events[: f.drop_after_chunks], error_event(f.status, str(message))], None
