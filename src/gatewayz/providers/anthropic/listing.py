"""The Anthropic model list: `GET /v1/models?limit=1000`, paged with `after_id` while
`has_more` (`last_id` names the next page's start); `display_name` is the name."""

from __future__ import annotations

from gatewayz.providers import urls
from gatewayz.providers.listing import MAX_PAGES, PAGE, Fetch, text
from gatewayz.providers.provider import Listed

MODELS_PATH = "/v1/models"


async def read_models(fetch: Fetch) -> list[Listed]:
    out: list[Listed] = []
    after: str | None = None
    for _ in range(MAX_PAGES):
        path = f"{MODELS_PATH}?limit={PAGE}"
        if after:
            path += "&after_id=" + urls.query(after)
        page = await fetch.json(path)
        for m in page["data"]:
            if isinstance(m, dict) and text(m.get("id")):
                out.append(Listed(m["id"], name=text(m.get("display_name"))))
        after = page.get("last_id")
        if page.get("has_more") is not True or not after:
            break
    return out
