"""The human message inside a provider's error body, whatever its shape: `{"error": {...}}`
(OpenAI, Anthropic, Gemini), `{"error": "..."}`, `{"message": ...}` (Cohere), `{"detail": ...}`
(FastAPI services such as fal, a string or a list of `{loc, msg}`), any of those in a
one-element list (Vertex), or plain text."""

from __future__ import annotations

from typing import Any

import orjson

_LIMIT = 1000


def error_message(body: bytes) -> str:
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode("utf-8", "replace").strip() or "no details"
    return _message_of(raw)[:_LIMIT]


def _message_of(raw: Any) -> str:
    if isinstance(raw, list) and len(raw) == 1:  # Vertex wraps the error object in a list
        raw = raw[0]
    if isinstance(raw, dict):
        for key in ("error", "message", "detail"):
            inner = raw.get(key)
            if not inner:
                continue
            if isinstance(inner, dict):
                found = inner.get("message") or inner.get("detail") or inner.get("status")
                return str(found or inner)
            if isinstance(inner, list):
                return "; ".join(_detail_item(d) for d in inner)
            return str(inner)
    return str(raw)


def _detail_item(d: Any) -> str:
    if isinstance(d, dict):
        loc = ".".join(str(x) for x in d.get("loc", ()) if x != "body")
        return f"{loc}: {d.get('msg')}" if loc else str(d.get("msg"))
    return str(d)
