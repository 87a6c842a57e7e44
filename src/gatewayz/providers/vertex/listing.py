"""The Vertex AI model list: Google's publisher models (Model Garden, v1beta1),
`GET /v1beta1/publishers/google/models?pageSize=1000` with the family's OAuth token, paged like
Gemini's; ids only (the last segment of `publishers/google/models/<id>`)."""

from __future__ import annotations

from gatewayz.providers.gemini.listing import google_pages
from gatewayz.providers.listing import Fetch, text
from gatewayz.providers.provider import Listed

MODELS_PATH = "/v1beta1/publishers/google/models"


async def read_models(fetch: Fetch) -> list[Listed]:
    items = await google_pages(fetch, MODELS_PATH, "publisherModels")
    return [Listed(m["name"].rsplit("/", 1)[-1]) for m in items if text(m.get("name"))]
