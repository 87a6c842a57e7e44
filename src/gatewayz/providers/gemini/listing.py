"""The Gemini (AI Studio) model list: `GET /v1beta/models?pageSize=1000`, paged with
`pageToken` / `nextPageToken`, the key in `x-goog-api-key` (the header form of `?key=`: it stays
out of URLs and logs). `models/` is stripped from `name`; `displayName`, `inputTokenLimit`;
models without `generateContent` in `supportedGenerationMethods` (embeddings, …) are skipped.
`google_pages` is Google's paging, shared with Vertex."""

from __future__ import annotations

from typing import Any

from gatewayz.providers import urls
from gatewayz.providers.listing import MAX_PAGES, PAGE, Fetch, positive, text
from gatewayz.providers.provider import Listed


async def read_models(fetch: Fetch) -> list[Listed]:
    out: list[Listed] = []
    for m in await google_pages(fetch, "/v1beta/models", "models"):
        methods = m.get("supportedGenerationMethods")
        if isinstance(methods, list) and "generateContent" not in methods:
            continue
        name = text(m.get("name"))
        if name is None:
            continue
        out.append(
            Listed(
                name.removeprefix("models/"),
                name=text(m.get("displayName")),
                context_length=positive(m.get("inputTokenLimit")),
            )
        )
    return out


async def google_pages(fetch: Fetch, path: str, key: str) -> list[dict[str, Any]]:
    """Every object of every page of a Google list (`key` names the page's list field)."""
    items: list[dict[str, Any]] = []
    token = ""
    for _ in range(MAX_PAGES):
        url = f"{path}?pageSize={PAGE}"
        if token:
            url += "&pageToken=" + urls.query(token)
        page = await fetch.json(url)
        items += [m for m in page.get(key) or () if isinstance(m, dict)]
        token = page.get("nextPageToken") or ""
        if not token:
            break
    return items
