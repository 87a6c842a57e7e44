"""`create_app(settings)` → the Gatewayz FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException
from starlette.routing import Route

from gatewayz import __version__
from gatewayz.api import (
    admin_billing_routes,
    admin_routes,
    batch_routes,
    billing_routes,
    breaker_routes,
    console_routes,
    health_routes,
    keys_routes,
    profile_routes,
    status_routes,
    stripe_routes,
    usage_routes,
    webhook_routes,
)
from gatewayz.api.anthropic_routes import ANTHROPIC, CountTokens, MessagesEndpoint
from gatewayz.api.asgi import speaks_anthropic
from gatewayz.api.auth_routes import auth_routes
from gatewayz.api.catalog_routes import catalog_routes
from gatewayz.api.chat_endpoint import ChatEndpoint, Dialect
from gatewayz.api.http_protocol import CONNECTION_LIMITS, ConnectionLimits
from gatewayz.api.ip_limit import IPRateLimitMiddleware
from gatewayz.api.media_routes import media_routes
from gatewayz.api.metrics_routes import MetricsEndpoint
from gatewayz.api.middleware import RequestContextMiddleware
from gatewayz.api.openai_routes import OPENAI, Models
from gatewayz.api.openapi_doc import install_openapi
from gatewayz.api.responses_routes import ResponsesEndpoint, StoredResponse
from gatewayz.errors import GatewayError, InvalidRequest, NotFound
from gatewayz.observability.error_reports import report
from gatewayz.security.client_ip import trusted_networks
from gatewayz.services import Services
from gatewayz.settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    services = Services(settings, batch_lines=batch_routes.LINE_KINDS)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        await services.start()
        try:
            # uvicorn hands the lifespan state to each connection's protocol: the one way this
            # worker's settings reach api/http_protocol.py.
            yield {CONNECTION_LIMITS: ConnectionLimits.of(settings)}
        finally:
            await services.stop()

    app = FastAPI(
        title="Gatewayz",
        version=__version__,
        summary="One API key, every AI model, one bill.",
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.settings = settings
    # The hot paths are raw ASGI endpoints (see api/openai_routes.py).
    models = Models(services)
    app.router.routes += [
        Route("/v1/chat/completions", ChatEndpoint(services, OPENAI), methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/v1/models/{model_id:path}", models, methods=["GET"]),
        Route("/v1/messages", MessagesEndpoint(services), methods=["POST"]),
        Route("/v1/messages/count_tokens", CountTokens(services), methods=["POST"]),
        Route("/v1/responses", ResponsesEndpoint(services), methods=["POST"]),
        Route("/v1/responses/{response_id}", StoredResponse(services), methods=["GET", "DELETE"]),
        Route("/metrics", MetricsEndpoint(services), methods=["GET"]),
    ]
    app.router.routes += media_routes(services)  # /v1/embeddings, /v1/images, /v1/audio
    app.router.routes += auth_routes(services)  # accounts: POST /auth, POST /auth/register
    app.router.routes += catalog_routes(services)  # public: /catalog/models, /catalog/providers
    app.include_router(health_routes.router)
    app.include_router(status_routes.router)  # public: /status, incidents, uptime
    app.include_router(keys_routes.router)  # users: /user/api-keys
    app.include_router(profile_routes.router)  # users: /user/me (role, permissions, plan)
    app.include_router(admin_routes.router)  # admin: /admin/* (permission-guarded, audited)
    app.include_router(billing_routes.router)  # /user/balance, /plans, /trial/status, …
    app.include_router(usage_routes.router)  # users: /user/usage (JSON or CSV)
    app.include_router(admin_billing_routes.router)  # admin: /admin/credits, /admin/pricing
    app.include_router(breaker_routes.router)  # admin: /admin/circuit-breakers (list, reset)
    app.include_router(stripe_routes.router)  # payments: checkout, Stripe webhook, referral
    app.include_router(webhook_routes.router)  # users: /user/webhooks (endpoints, deliveries)
    app.include_router(batch_routes.router)  # /v1/files, /v1/batches
    app.include_router(console_routes.router)  # public: /console, the web console's files
    _error_handlers(app)
    # The IP rate-limit layer runs before authentication; the request context stays outermost
    # (the last added) so that even its 429s carry X-Request-ID.
    app.add_middleware(IPRateLimitMiddleware, services=services)
    app.add_middleware(
        RequestContextMiddleware,
        trusted=trusted_networks(settings.trusted_proxies),
        tracing=services.tracing,
    )
    install_openapi(app)  # /openapi.json and /docs: the raw-ASGI routes too (api/openapi_doc.py)
    return app


def _dialect(request: Request) -> Dialect:
    return ANTHROPIC if speaks_anthropic(request.url.path) else OPENAI


def _error_response(err: GatewayError, request: Request) -> Response:
    return Response(
        _dialect(request).render_error(err),
        status_code=err.status,
        media_type="application/json",
        headers=err.headers,
    )


def _error_handlers(app: FastAPI) -> None:
    """Every error, on every route, in the caller's dialect; never a bare 500 page."""

    @app.exception_handler(GatewayError)
    async def gateway_error(r: Request, exc: GatewayError) -> Response:
        return _error_response(exc, r)

    @app.exception_handler(HTTPException)
    async def http_error(r: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404:
            err: GatewayError = NotFound(f"Unknown path: {r.method} {r.url.path}")
        else:
            err = GatewayError(str(exc.detail), status=exc.status_code, code="http_error")
            err.type = "invalid_request_error" if exc.status_code < 500 else "api_error"
        err.headers = dict(exc.headers or {})
        return _error_response(err, r)

    @app.exception_handler(RequestValidationError)
    async def validation_error(r: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        loc = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error_response(InvalidRequest(f"Invalid '{loc}': {first.get('msg')}", param=loc), r)

    @app.exception_handler(Exception)
    async def unexpected(r: Request, exc: Exception) -> Response:
        ctx = r.scope.get("gw")  # the request context (api/middleware.py), if it got that far
        report(
            exc,
            request_id=ctx.request_id if ctx is not None else None,
            route=getattr(r.scope.get("route"), "path", None),  # the template, once routed
        )
        return _error_response(GatewayError("The server had an error processing your request."), r)
