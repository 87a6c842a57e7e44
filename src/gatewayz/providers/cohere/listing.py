"""The Cohere model list: `GET /v1/models?endpoint=chat&page_size=1000`, paged with
`page_token` / `next_page_token`; `context_length`, `features` (`tools`, `vision`). A model
whose `endpoints` leave out `chat` is skipped."""

from __future__ import annotations

from typing import Any

from gatewayz.providers import urls
from gatewayz.providers.listing import MAX_PAGES, PAGE, Fetch, positive, text
from gatewayz.providers.provider import Listed

MODELS_PATH = "/v1/models"


async def read_models(fetch: Fetch) -> list[Listed]:
    out: list[Listed] = []
    token = ""
    for _ in range(MAX_PAGES):
        path = f"{MODELS_PATH}?endpoint=chat&page_size={PAGE}"
        if token:
            path += "&page_token=" + urls.query(token)
        entries, next_token = parse_page(await fetch.json(path))
        out += entries
        token = next_token or ""
        if not token:
            break
    return out


def parse_page(page: Any) -> tuple[list[Listed], str | None]:
    """The chat models of one `/v1/models` page and the next page's token."""
    out: list[Listed] = []
    for m in page["models"]:
        name = text(m.get("name")) if isinstance(m, dict) else None
        if name is None:
            continue
        endpoints = m.get("endpoints")
        if isinstance(endpoints, list) and "chat" not in endpoints:
            continue
        features = m.get("features")
        out.append(
            Listed(
                name,
                context_length=positive(m.get("context_length")),
                tools=("tools" in features) if isinstance(features, list) else None,
                vision=("vision" in features) if isinstance(features, list) else None,
            )
        )
    return out, page.get("next_page_token") or None
