"""Accounts over HTTP: `POST /auth` (Privy login or sign-up) and `POST /auth/register`.

Both are limited per client IP before anything else is read (login 10 per 15 min, register 3
per hour by default; sliding windows in the shared state, so every worker counts together) and
answer errors in the OpenAI shape. A Privy sign-up through `/auth` also counts against the
register limit: sign-ups per IP are limited whichever door they come through.

`/auth/register` (unverified e-mail sign-up) exists for deployments without Privy. With Privy
configured it is refused: otherwise anyone could pre-register a victim's address and own the
account the victim later logs into with a verified identity.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import orjson
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gatewayz.accounts.disposable import validate_signup_email
from gatewayz.accounts.privy import IdentityVerifier, InvalidIdentityToken
from gatewayz.accounts.provisioning import (
    AuthResult,
    auth_response,
    login_or_sign_up,
    referral_code,
    register,
)
from gatewayz.api.asgi import header, read_body, send_bytes
from gatewayz.api.chat_endpoint import send_error
from gatewayz.api.openai_routes import OPENAI
from gatewayz.canonical.bounds import json_object
from gatewayz.context import bearer_token
from gatewayz.errors import GatewayError, InvalidRequest, PermissionDenied, RateLimited
from gatewayz.security.client_ip import client_ip, trusted_networks
from gatewayz.settings import ConfigError
from gatewayz.state import StateUnavailable
from gatewayz.storage.query_cache import KEYS

if TYPE_CHECKING:
    from gatewayz.services import Services

log = logging.getLogger("gatewayz.auth")

# Auth bodies are a token or an e-mail address: a few KB at most.
AUTH_MAX_BODY_BYTES = 64 * 1024


class NotConfigured(GatewayError):
    status, type, code = 501, "invalid_request_error", "login_not_configured"


def build_verifier(services: Services) -> IdentityVerifier | None:
    """The Privy verifier from settings, or None when Privy is not configured; a half or
    unusable configuration fails at startup."""
    s = services.settings
    pem = s.privy_verification_key.get_secret_value() if s.privy_verification_key else ""
    if not s.privy_app_id and not pem:
        return None
    if not s.privy_app_id or not pem:
        raise ConfigError(
            "set both GATEWAYZ_PRIVY_APP_ID and GATEWAYZ_PRIVY_VERIFICATION_KEY, or neither"
        )
    if "\\n" in pem and "\n" not in pem:  # a PEM squeezed onto one line in an env file
        pem = pem.replace("\\n", "\n")
    try:
        return IdentityVerifier(pem, s.privy_app_id, s.privy_issuer)
    except ValueError as exc:
        raise ConfigError(f"GATEWAYZ_PRIVY_VERIFICATION_KEY: {exc}") from None


class _AuthEndpoint(ABC):
    def __init__(self, services: Services, verifier: IdentityVerifier | None) -> None:
        self.s = services
        self.verifier = verifier

    def ip(self, scope: Scope) -> str:
        return client_ip(scope, trusted_networks(self.s.settings.trusted_proxies)) or "unknown"

    def audit(self, scope: Scope, event: str, severity: str = "info", **fields: Any) -> None:
        self.s.audit.event(
            event, severity=severity, ip=self.ip(scope), path=scope.get("path"), **fields
        )

    def audit_new_keys(self, scope: Scope, result: AuthResult, via: str) -> None:
        user_id = result.user["id"]
        if result.is_new_user:
            self.audit(scope, "user_created", user_id=user_id, detail={"via": via})
        if result.api_key_id is not None:
            self.audit(
                scope,
                "key_created",
                user_id=user_id,
                api_key_id=result.api_key_id,
                detail={"via": via, "primary": result.is_new_user},
            )

    async def limit(self, scope: Scope, name: str, limit: int, window_s: float) -> dict[str, str]:
        """Count one attempt from the client's IP; `RateLimited` (429) past the limit. Returns
        the X-RateLimit-* headers. A state failure lets the attempt through (logged)."""
        ip = self.ip(scope)
        try:
            result = await self.s.state.window_add(f"auth:{name}:{ip}", limit, window_s)
        except StateUnavailable:
            log.warning("auth %s limit not enforced: state unavailable", name)
            return {}
        reset = str(max(1, math.ceil(result.reset_after_s)))
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(result.remaining),
            "X-RateLimit-Reset": reset,
        }
        if not result.allowed:
            log.warning("auth %s limit reached for %s", name, ip)
            raise RateLimited(
                f"Too many {name} attempts from this address; retry in {reset} s.",
                headers={**headers, "Retry-After": reset},
            )
        return headers

    async def json_body(self, scope: Scope, receive: Receive) -> dict[str, Any]:
        limit = min(self.s.settings.max_body_bytes, AUTH_MAX_BODY_BYTES)
        body = await read_body(scope, receive, limit)
        if not body.strip():
            return {}
        return json_object(body)

    @abstractmethod
    async def handle(
        self, scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        """(status, answer) for one request; errors raise GatewayError."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers: dict[str, str] = {}  # X-RateLimit-*, on every answer once counted
        try:
            status, answer = await self.handle(scope, receive, headers)
        except GatewayError as err:
            if err.status in (401, 429):
                self.audit(
                    scope,
                    "auth_failed" if err.status == 401 else "auth_rate_limited",
                    severity="warning",
                    detail={"reason": err.message},
                )
            err.headers = {**headers, **err.headers}
            await send_error(send, OPENAI, err)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        extra.append((b"cache-control", b"no-store"))  # the answer may carry a secret
        await send_bytes(send, status, orjson.dumps(answer), headers=extra)


class Login(_AuthEndpoint):
    """POST /auth {"token": "<Privy identity token>", "new_api_key"?: bool, "referral_code"?,
    "partner_code"?} (or the token as `Authorization: Bearer`). The codes apply to a sign-up
    only; identity comes from the verified token alone."""

    async def handle(
        self, scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        s = self.s.settings
        if self.verifier is None:
            raise NotConfigured(
                "Privy login is not configured on this gateway; sign up with POST /auth/register."
            )
        headers.update(await self.limit(scope, "login", s.login_rate_limit, s.login_rate_window_s))
        data = await self.json_body(scope, receive)
        token = data.get("token")
        if token is None:
            token = bearer_token(header(scope, b"authorization"), None)
        if token is None or token == "":
            raise InvalidIdentityToken(
                'An identity token is required: send {"token": ...} or Authorization: Bearer.'
            )
        if not isinstance(token, str):
            raise InvalidRequest("'token' must be a string.", param="token")
        new_key = data.get("new_api_key", False)
        if not isinstance(new_key, bool):
            raise InvalidRequest("'new_api_key' must be a boolean.", param="new_api_key")
        referred_by = referral_code(data.get("referral_code"))
        identity = self.verifier.verify(token)

        async def before_sign_up() -> None:
            await self.limit(scope, "register", s.register_rate_limit, s.register_rate_window_s)

        result = await login_or_sign_up(
            self.s.db,
            self.s.keyring,
            identity,
            env=s.env,
            new_api_key=new_key,
            referred_by_code=referred_by,
            partner_code=data.get("partner_code"),
            before_sign_up=before_sign_up,
        )
        if result.api_key is not None and not result.is_new_user:  # their cached key list
            await self.s.query_cache.invalidate(KEYS, result.user["id"])
        self.audit_new_keys(scope, result, "privy")
        answer = auth_response(result)
        answer["auth_method"] = identity.method
        return 200, answer


class Register(_AuthEndpoint):
    """POST /auth/register {"email", "referral_code"?, "partner_code"?} → 201 with the key."""

    async def handle(
        self, scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        s = self.s.settings
        if self.verifier is not None:
            raise PermissionDenied(
                "This gateway signs users up through POST /auth (Privy login); "
                "e-mail registration is disabled.",
                code="registration_disabled",
            )
        headers.update(
            await self.limit(scope, "register", s.register_rate_limit, s.register_rate_window_s)
        )
        data = await self.json_body(scope, receive)
        email = validate_signup_email(data.get("email"))
        referred_by = referral_code(data.get("referral_code"))
        result = await register(
            self.s.db,
            self.s.keyring,
            email=email,
            env=s.env,
            partner_code=data.get("partner_code"),
            referred_by_code=referred_by,
        )
        self.audit_new_keys(scope, result, "register")
        answer = auth_response(result)
        answer["partner_code"] = result.partner_code
        return 201, answer


def auth_routes(services: Services) -> list[Route]:
    """The account routes, with the Privy verifier built (and checked) now, at startup."""
    verifier = build_verifier(services)
    return [
        Route("/auth", Login(services, verifier), methods=["POST"]),
        Route("/auth/register", Register(services, verifier), methods=["POST"]),
    ]
