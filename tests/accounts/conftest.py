"""Fixtures for account tests: a generated ES256 key pair standing in for Privy's, a token
factory, and gateways configured for Privy login (or for e-mail sign-up without Privy)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway, gateway_settings, start_gateway

APP_ID = "test-privy-app"
ISSUER = "privy.io"
TokenFactory = Callable[..., str]


def public_pem(private: ec.EllipticCurvePrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="session")
def privy_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="session")
def privy_pem(privy_key: ec.EllipticCurvePrivateKey) -> str:
    return public_pem(privy_key)


def sign(
    key: Any,
    *,
    sub: str | None = None,
    accounts: list[dict[str, Any]] | None = None,
    as_string: bool = True,
    ttl_s: int = 3600,
    algorithm: str = "ES256",
    **claims: Any,
) -> str:
    """An identity token shaped like Privy's (linked_accounts as a JSON string by default)."""
    now = int(time.time())
    if accounts is None:
        accounts = [{"type": "email", "address": f"u{secrets.token_hex(4)}@example.com"}]
    payload: dict[str, Any] = {
        "sub": f"did:privy:{secrets.token_hex(12)}" if sub is None else sub,
        "iss": ISSUER,
        "aud": APP_ID,
        "iat": now,
        "exp": now + ttl_s,
        "linked_accounts": orjson.dumps(accounts).decode() if as_string else accounts,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=algorithm)


@pytest.fixture(scope="session")
def make_token(privy_key: ec.EllipticCurvePrivateKey) -> TokenFactory:
    def factory(**kwargs: Any) -> str:
        return sign(privy_key, **kwargs)

    return factory


@pytest.fixture(scope="session")
def upstream() -> Iterator[Simulator]:
    sim = Simulator()
    sim.start_in_thread()
    yield sim
    sim.stop_thread()


def privy_settings(privy_pem: str, **overrides: Any) -> dict[str, Any]:
    return {"privy_app_id": APP_ID, "privy_verification_key": privy_pem, **overrides}


@pytest.fixture(scope="session")
def privy_gateway(
    upstream: Simulator, privy_pem: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway with Privy login; auth limits raised so that only the limit tests hit them."""
    data_dir: Path = tmp_path_factory.mktemp("gw-privy")
    settings = gateway_settings(
        data_dir,
        upstream,
        **privy_settings(privy_pem, login_rate_limit=10_000, register_rate_limit=10_000),
    )
    gw = start_gateway(settings, upstream)
    yield gw
    gw.stop()


@pytest.fixture(scope="session")
def email_gateway(
    upstream: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """A gateway without Privy (e-mail registration), auth limits raised."""
    data_dir: Path = tmp_path_factory.mktemp("gw-email")
    settings = gateway_settings(
        data_dir, upstream, login_rate_limit=10_000, register_rate_limit=10_000
    )
    gw = start_gateway(settings, upstream)
    yield gw
    gw.stop()
