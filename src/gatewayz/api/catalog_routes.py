"""The model catalog, public (no key needed; the per-IP limit applies), as raw ASGI endpoints:
an L1 hit is a dictionary lookup and one write.

GET /catalog/models          the models: `?view=unique|full`, filters, search, order, page
                             (catalog/query.py)
GET /catalog/models/{id}     one model (canonical id) with every provider offering it
GET /catalog/providers       the served providers: offers, sync state, health

Errors are OpenAI-shaped (400 for a bad query, 404 for an unknown model, 503 while the
database is unreachable and nothing is cached).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gatewayz.api.asgi import send_bytes
from gatewayz.api.chat_endpoint import send_error
from gatewayz.api.openai_routes import OPENAI
from gatewayz.catalog.query import Query
from gatewayz.errors import GatewayError

if TYPE_CHECKING:
    from gatewayz.services import Services


class CatalogModels:
    def __init__(self, services: Services) -> None:
        self.s = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            model_id = scope.get("path_params", {}).get("model_id")
            if model_id is None:
                body = await self.s.catalog.models_body(Query.parse(scope["query_string"]))
            else:
                body = await self.s.catalog.model_body(model_id)
        except GatewayError as err:
            await send_error(send, OPENAI, err)
            return
        await send_bytes(send, 200, body)


class CatalogProviders:
    def __init__(self, services: Services) -> None:
        self.s = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self.s.catalog.providers_body()
        except GatewayError as err:
            await send_error(send, OPENAI, err)
            return
        await send_bytes(send, 200, body)


def catalog_routes(services: Services) -> list[Route]:
    models = CatalogModels(services)
    return [
        Route("/catalog/models", models, methods=["GET"]),
        Route("/catalog/models/{model_id:path}", models, methods=["GET"]),
        Route("/catalog/providers", CatalogProviders(services), methods=["GET"]),
    ]
