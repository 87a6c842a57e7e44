"""The web console: `GET /console` (its page) and `GET /console/{asset}` (its scripts, style and
icon), static files shipped in the package (`gatewayz/console/static/`, package data), served
by the gateway itself — no other server, no CDN. The console is a client of the gateway's own
JSON API only, with the caller's API key in the `Authorization` header (never in a URL).

`GET /console/config.json` is the one generated asset: what the console needs to know of this
deployment (whether Privy login is configured, and its public app id; the webhook event types).

Every answer carries a strict Content-Security-Policy (scripts, styles and connections to this
origin only; no inline script or style; no framing), `X-Frame-Options: DENY`, `nosniff` and
`Referrer-Policy: no-referrer`. Assets are read once, kept in memory with their gzip form (sent
when the client accepts it) and revalidated by ETag; the per-IP limit counts the page, not its
files (api/ip_limit.py).
"""

from __future__ import annotations

import gzip
import hashlib
import mimetypes
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gatewayz.errors import NotFound
from gatewayz.settings import Settings
from gatewayz.webhooks.events import EVENT_TYPES

router = APIRouter(prefix="/console", tags=["console"])

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
}
INDEX = "index.html"
CONFIG = "config.json"
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
}
_DOC = {
    200: {"description": "The asset", "content": {"text/html": {}, "text/javascript": {}}},
    304: {"description": "Not modified (ETag)"},
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    gzipped: bytes
    media_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, media_type: str) -> Asset:
        digest = hashlib.sha256(body).hexdigest()[:32]
        return cls(body, gzip.compress(body, 9, mtime=0), media_type, f'"{digest}"')


def static_root() -> Traversable:
    return files("gatewayz").joinpath("console", "static")


def _walk(folder: Traversable, prefix: str = "") -> dict[str, Asset]:
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        name = prefix + entry.name
        if entry.is_dir():
            found.update(_walk(entry, name + "/"))
        elif not entry.name.startswith("."):
            suffix = "." + entry.name.rsplit(".", 1)[-1]
            kind = _TYPES.get(suffix) or mimetypes.guess_type(entry.name)[0]
            found[name] = Asset.of(entry.read_bytes(), kind or "application/octet-stream")
    return found


@cache
def assets() -> dict[str, Asset]:
    """Every file of the console, by its path under /console/ (read once per process)."""
    return _walk(static_root())


def console_config(settings: Settings) -> dict[str, Any]:
    """What the console needs to know of this deployment (public: no secret in it)."""
    privy = bool(settings.privy_app_id and settings.privy_verification_key)
    return {
        "privy": privy,
        "privy_app_id": settings.privy_app_id if privy else None,
        "webhook_events": list(EVENT_TYPES),
    }


def config_asset(request: Request) -> Asset:
    cached: Asset | None = getattr(request.app.state, "console_config", None)
    if cached is None:
        body = orjson.dumps(console_config(request.app.state.settings))
        cached = request.app.state.console_config = Asset.of(body, _TYPES[".json"])
    return cached


def _answer(request: Request, asset: Asset) -> Response:
    headers = {**SECURITY_HEADERS, "cache-control": "no-cache", "etag": asset.etag}
    headers["vary"] = "Accept-Encoding"
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["content-encoding"] = "gzip"
    return Response(body, media_type=asset.media_type, headers=headers)


@router.get("", summary="The web console", responses=_DOC, response_class=Response)
async def console_page(request: Request) -> Response:
    """The console's page (sign in with an API key; dashboard, keys, playground, models,
    webhooks, status, admin). Public: the page holds no data; it calls the JSON API."""
    return _answer(request, assets()[INDEX])


@router.get("/{asset:path}", summary="A web console asset", responses=_DOC, response_class=Response)
async def console_asset(asset: str, request: Request) -> Response:
    """A file of the console (scripts, style, icon) or its `config.json`; `/console/` is the
    page. 404 for anything else."""
    if asset in ("", INDEX):
        return _answer(request, assets()[INDEX])
    if asset == CONFIG:
        return _answer(request, config_asset(request))
    found = assets().get(asset)
    if found is None:
        raise NotFound(f"Unknown path: GET /console/{asset}")
    return _answer(request, found)
