"""``Fault``: one scripted misbehaviour of the simulator, consumed by one chat completion."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any


@dataclass(slots=True)
class Fault:
    """A scripted misbehaviour for the next chat completion request (faults queue FIFO).

    - ``status``: answer with this HTTP status and ``body`` (default: an OpenAI-shaped error),
      plus a ``Retry-After: retry_after`` header when given.
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


_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "status": (int,),
    "body": (dict,),
    "retry_after": (str,),
    "delay_s": (int, float),
    "chunk_delay_s": (int, float),
    "drop_after_chunks": (int,),
    "empty_stream": (bool,),
    "omit_usage": (bool,),
    "malformed": (bool,),
    "text": (str,),
    "usage": (dict,),
}
_OPTIONAL = frozenset({"status", "body", "retry_after", "drop_after_chunks", "text", "usage"})
