"""Cloudflare Workers AI's OpenAI-compatible endpoint in the simulator:
`POST /client/v4/accounts/{account_id}/ai/v1/chat/completions` (Bearer API token), answered by
the simulator's OpenAI chat responder."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..protocol import Reply, Request
from .cohere import error_reply

if TYPE_CHECKING:
    from ..server import Simulator


def _auth_error() -> dict[str, Any]:
    return {"success": False, "errors": [{"code": 10000, "message": "Authentication error"}]}


def chat(sim: Simulator, req: Request, parsed: Any, match: re.Match[str]) -> Reply:
    if sim.api_key is not None and req.headers.get("authorization") != f"Bearer {sim.api_key}":
        return error_reply(req, 401, _auth_error())
    json_ok = parsed is not None
    return sim._chat.reply(req, parsed, json_ok, sim.take_fault())


ROUTES = [("POST", r"/client/v4/accounts/([^/]+)/ai/v1/chat/completions", chat)]
