"""Reading a provider's model list API, per wire format, into `Listed` entries.

- openai (OpenAI-compatible): `GET {base}/models` → `{"data": [{"id", ...}]}` (or a bare JSON
  array, as Together answers). Extra fields are read when present: `name`, `context_length`
  (or Groq's `context_window`, or `top_provider.context_length`), `architecture.input_modalities` /
  `output_modalities` (or `architecture.modality`), `supported_parameters` (`tools`) and
  `hugging_face_id`.
- anthropic: `GET /v1/models?limit=1000`, paged with `after_id` while `has_more`; `x-api-key`
  (or Bearer) and `anthropic-version`. `display_name` is the name.
- gemini (AI Studio): `GET /v1beta/models?pageSize=1000`, paged with `pageToken` /
  `nextPageToken`, the key in `x-goog-api-key` (the header form of `?key=`: it stays out of
  URLs and logs). `models/` is stripped from `name`; `displayName`, `inputTokenLimit`; models
  without `generateContent` in `supportedGenerationMethods` (embeddings, …) are skipped.
- vertex: `GET /v1beta1/publishers/google/models?pageSize=1000` with the family's OAuth token,
  paged like Gemini; ids only.
- cohere: `GET /v1/models?endpoint=chat&page_size=1000`, paged with `page_token` /
  `next_page_token`; `context_length`, `features` (`tools`, `vision`).

Bedrock (ListFoundationModels lives on another host and lists models the account may not be
granted) and fal (no model list for its LLM app) have no reader: their offers come from the
pricing data and their configuration. Every read runs within `timeout_s` in total (all pages),
on the provider's pooled connection; any failure raises `ListingError`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import orjson

from gatewayz.catalog.capabilities import is_modality, modality
from gatewayz.catalog.offers import Listed
from gatewayz.providers.anthropic.adapter import API_VERSION
from gatewayz.providers.registry import Provider
from gatewayz.providers.transport import HttpPool, TransportError
from gatewayz.providers.upstream_errors import error_message

MAX_PAGES = 50
MAX_BODY = 32 << 20
ERROR_BODY = 64 << 10
PAGE = 1000

NO_READER = {
    "bedrock": "ListFoundationModels is on another host and lists models the account may not "
    "be granted: offers come from the pricing data and configuration",
    "fal": "fal has no model list for its LLM app: offers come from the pricing data and "
    "configuration",
}


class ListingError(Exception):
    """A provider's model list could not be read (HTTP error, timeout, bad body)."""


Reader = Callable[[Provider, "Fetch"], Awaitable[list[Listed]]]


class Fetch:
    """GETs on one provider's pool within one overall deadline."""

    def __init__(self, pool: HttpPool, headers: list[tuple[bytes, bytes]], deadline: float):
        self.pool = pool
        self.headers = headers
        self.deadline = deadline

    async def json(self, path: str) -> Any:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise ListingError("timed out")
        try:
            async with asyncio.timeout(left):
                body = await self._get(path, left)
        except TimeoutError:
            raise ListingError(f"timed out after reading part of the list ({path})") from None
        except TransportError as exc:
            raise ListingError(f"unreachable: {exc}") from None
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            raise ListingError(f"the model list is not JSON ({path})") from None

    async def _get(self, path: str, read_timeout: float) -> bytes:
        resp = await self.pool.request("GET", path, self.headers, read_timeout=read_timeout)
        try:
            if resp.status >= 400:
                detail = await resp.read(ERROR_BODY)
                raise ListingError(f"HTTP {resp.status}: {error_message(detail)}")
            body = await resp.read(MAX_BODY)
        except BaseException:
            resp.abort()
            raise
        resp.release()
        return body


def can_list(provider: Provider) -> bool:
    return provider.family in READERS


async def list_models(provider: Provider, timeout_s: float) -> list[Listed]:
    """Every model the provider's list API offers (all pages), within `timeout_s`."""
    reader = READERS.get(provider.family)
    if reader is None:
        raise ListingError(NO_READER.get(provider.family, "no model list reader"))
    adapter: Any = provider.adapter
    pool = getattr(adapter, "pool", None)
    if pool is None:
        raise ListingError("the provider is not served (no connection pool)")
    headers = await _headers(provider, adapter)
    fetch = Fetch(pool, headers, time.monotonic() + timeout_s)
    try:
        return await reader(provider, fetch)
    except ListingError:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ListingError(f"unexpected model list shape: {exc!r}") from None


async def _headers(provider: Provider, adapter: Any) -> list[tuple[bytes, bytes]]:
    if provider.family in ("gemini", "vertex"):
        headers: list[tuple[bytes, bytes]] = await adapter.headers()
        return [h for h in headers if h[0] != b"content-type"]
    out = [(b"accept", b"application/json"), (b"user-agent", b"gatewayz/0.1")]
    key = (provider.api_key or "").encode()
    auth = provider.auth
    if provider.family == "anthropic" and auth not in ("bearer", "none"):
        auth = "x-api-key"  # as the Anthropic family authenticates
    if provider.family == "anthropic":
        out.append((b"anthropic-version", API_VERSION))
    if key and auth == "bearer":
        out.append((b"authorization", b"Bearer " + key))
    elif key and auth in ("x-api-key", "api-key"):
        out.append((auth.encode(), key))
    out += [(k.lower().encode(), v.encode()) for k, v in provider.headers.items()]
    return out


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# ---------------------------------------------------------------- the readers
async def _openai(provider: Provider, fetch: Fetch) -> list[Listed]:
    raw = await fetch.json("/models")
    items = raw if isinstance(raw, list) else raw["data"]
    return [_openai_entry(m) for m in items if isinstance(m, dict) and _text(m.get("id"))]


def _openai_entry(m: dict[str, Any]) -> Listed:
    arch = m.get("architecture") if isinstance(m.get("architecture"), dict) else {}
    ins, outs = arch.get("input_modalities"), arch.get("output_modalities")
    found: str | None = None
    if isinstance(ins, list) and isinstance(outs, list):
        found = modality(ins, outs)
    elif isinstance(arch.get("modality"), str) and is_modality(arch["modality"]):
        found = arch["modality"]
    params = m.get("supported_parameters")
    top = m.get("top_provider") if isinstance(m.get("top_provider"), dict) else {}
    return Listed(
        native_id=m["id"],
        name=_text(m.get("name")),
        context_length=_positive(m.get("context_length"))
        or _positive(m.get("context_window"))
        or _positive(top.get("context_length")),
        modality=found,
        tools=("tools" in params) if isinstance(params, list) else None,
        vision=("image" in ins) if isinstance(ins, list) else None,
        huggingface_id=_text(m.get("hugging_face_id")),
    )


async def _anthropic(provider: Provider, fetch: Fetch) -> list[Listed]:
    out: list[Listed] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        path = f"/v1/models?limit={PAGE}"
        if after:
            path += "&after_id=" + quote(after, safe="")
        page = await fetch.json(path)
        for m in page["data"]:
            if isinstance(m, dict) and _text(m.get("id")):
                out.append(Listed(m["id"], name=_text(m.get("display_name"))))
        after = page.get("last_id")
        if page.get("has_more") is not True or not after:
            break
    return out


async def _gemini(provider: Provider, fetch: Fetch) -> list[Listed]:
    out: list[Listed] = []
    for m in await _google_pages(fetch, "/v1beta/models", "models"):
        methods = m.get("supportedGenerationMethods")
        if isinstance(methods, list) and "generateContent" not in methods:
            continue
        name = _text(m.get("name"))
        if name is None:
            continue
        out.append(
            Listed(
                name.removeprefix("models/"),
                name=_text(m.get("displayName")),
                context_length=_positive(m.get("inputTokenLimit")),
            )
        )
    return out


async def _vertex(provider: Provider, fetch: Fetch) -> list[Listed]:
    path = "/v1beta1/publishers/google/models"
    items = await _google_pages(fetch, path, "publisherModels")
    return [Listed(m["name"].rsplit("/", 1)[-1]) for m in items if _text(m.get("name"))]


async def _google_pages(fetch: Fetch, path: str, key: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    token = ""
    for _ in range(MAX_PAGES):
        url = f"{path}?pageSize={PAGE}"
        if token:
            url += "&pageToken=" + quote(token, safe="")
        page = await fetch.json(url)
        items += [m for m in page.get(key) or () if isinstance(m, dict)]
        token = page.get("nextPageToken") or ""
        if not token:
            break
    return items


async def _cohere(provider: Provider, fetch: Fetch) -> list[Listed]:
    out: list[Listed] = []
    token = ""
    for _ in range(MAX_PAGES):
        path = f"/v1/models?endpoint=chat&page_size={PAGE}"
        if token:
            path += "&page_token=" + quote(token, safe="")
        page = await fetch.json(path)
        for m in page["models"]:
            name = _text(m.get("name")) if isinstance(m, dict) else None
            if name is None:
                continue
            endpoints = m.get("endpoints")
            if isinstance(endpoints, list) and "chat" not in endpoints:
                continue
            features = m.get("features")
            out.append(
                Listed(
                    name,
                    context_length=_positive(m.get("context_length")),
                    tools=("tools" in features) if isinstance(features, list) else None,
                    vision=("vision" in features) if isinstance(features, list) else None,
                )
            )
        token = page.get("next_page_token") or ""
        if not token:
            break
    return out


READERS: dict[str, Reader] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "vertex": _vertex,
    "cohere": _cohere,
}
