"""Google's error bodies (`{"error": {"code", "message", "status"}}`), for every Google format
of the simulator (`gemini/`, `vertex.py`)."""

from __future__ import annotations

from typing import Any

import orjson

from ...protocol import Reply, Request, response

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_dict(status: int, message: str) -> dict[str, Any]:
    return {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}


def error_reply(req: Request, status: int, message: str, delay: float = 0.0) -> Reply:
    body = orjson.dumps(error_dict(status, message))
    return Reply(response(status, body, req.keep_alive), keep_alive=req.keep_alive, delay=delay)
