"""`GET /metrics`: Prometheus' scrape (observability/metrics.py), in the text format 0.0.4 that
every Prometheus version reads. Open unless
`GATEWAYZ_METRICS_TOKEN` is set; then it needs `Authorization: Bearer <token>` (401 otherwise,
compared in constant time). 404 when metrics are off (`GATEWAYZ_METRICS=false`)."""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.types import Receive, Scope, Send

from gatewayz.api.asgi import header, send_bytes
from gatewayz.api.openai_routes import OPENAI
from gatewayz.context import bearer_token
from gatewayz.errors import GatewayError, NotFound, Unauthorized

if TYPE_CHECKING:
    from gatewayz.services import Services

log = logging.getLogger("gatewayz.api")


class MetricsEndpoint:
    def __init__(self, services: Services) -> None:
        self.s = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            body = await self._scrape(scope)
        except GatewayError as err:
            headers = [(k.lower().encode(), v.encode()) for k, v in err.headers.items()]
            await send_bytes(send, err.status, OPENAI.render_error(err), headers=headers)
            return
        await send_bytes(send, 200, body, CONTENT_TYPE_PLAIN_0_0_4.encode())

    async def _scrape(self, scope: Scope) -> bytes:
        metrics, settings = self.s.metrics, self.s.settings
        if metrics is None:
            raise NotFound("Metrics are off (GATEWAYZ_METRICS=false).")
        token = settings.metrics_token
        if token is not None:
            given = bearer_token(header(scope, b"authorization"), None) or ""
            if not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
                raise Unauthorized(
                    "Scraping /metrics needs Authorization: Bearer <token>.",
                    headers={"WWW-Authenticate": "Bearer"},
                )
        breakers: list[dict[str, Any]] = []
        try:
            breakers = await self.s.breakers.snapshot()
        except Exception as exc:  # the shared state is down: the rest of the scrape still works
            log.warning("metrics: circuit breakers unreadable (%s)", exc)
        return metrics.scrape(breakers)
