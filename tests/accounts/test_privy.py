"""Identity-token verification and primary-identity selection (CM-12.6, CM-12.7)."""

from __future__ import annotations

import base64
import time
from typing import Any

import jwt
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from gatewayz.accounts.privy import (
    PLACEHOLDER_DOMAIN,
    IdentityVerifier,
    InvalidIdentityToken,
    parse_linked_accounts,
    primary_account,
)
from gatewayz.api.auth_routes import build_verifier
from gatewayz.settings import ConfigError
from tests.accounts.conftest import APP_ID, ISSUER, TokenFactory, public_pem, sign

EMAIL = {"type": "email", "address": "Ada@Example.com"}
GOOGLE = {"type": "google_oauth", "email": "ada.google@gmail.com", "subject": "1234"}
PHONE = {"type": "phone", "phone_number": "+1 (555) 010-9999"}
GITHUB = {"type": "github_oauth", "username": "Ada-L", "email": None}
WALLET = {"type": "wallet", "address": "0xabc"}


@pytest.fixture(scope="module")
def verifier(privy_pem: str) -> IdentityVerifier:
    return IdentityVerifier(privy_pem, APP_ID, ISSUER)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(data)).rstrip(b"=").decode()


# ---- primary identity ------------------------------------------------------------------


def test_cm_12_6_auth_info_priority_email_first(
    verifier: IdentityVerifier, make_token: TokenFactory
) -> None:
    for order in ([GITHUB, PHONE, GOOGLE, EMAIL], [EMAIL, GOOGLE, PHONE], [PHONE, EMAIL, GOOGLE]):
        identity = verifier.verify(make_token(accounts=order))
        assert identity.method == "email"
        assert identity.email == "ada@example.com"
        assert identity.account_email == "ada@example.com"


def test_cm_12_7_auth_info_priority_google_over_phone(
    verifier: IdentityVerifier, make_token: TokenFactory
) -> None:
    identity = verifier.verify(make_token(accounts=[PHONE, WALLET, GOOGLE, GITHUB]))
    assert identity.method == "google_oauth"
    assert identity.email == "ada.google@gmail.com"


def test_cm_12_7_phone_over_github_and_placeholder_address(
    verifier: IdentityVerifier, make_token: TokenFactory
) -> None:
    identity = verifier.verify(make_token(accounts=[GITHUB, PHONE]))
    assert identity.method == "phone"
    assert identity.primary.value == "+15550109999"
    assert identity.email is None  # a phone number is not a mailbox
    assert identity.account_email == f"phone-15550109999@{PLACEHOLDER_DOMAIN}"
    only_github = verifier.verify(make_token(accounts=[GITHUB, WALLET]))
    assert only_github.method == "github_oauth"
    assert only_github.account_email == f"github-ada-l@{PLACEHOLDER_DOMAIN}"


def test_linked_accounts_accepted_as_list_or_json_string(
    verifier: IdentityVerifier, make_token: TokenFactory
) -> None:
    as_list = verifier.verify(make_token(accounts=[PHONE, EMAIL], as_string=False))
    as_text = verifier.verify(make_token(accounts=[PHONE, EMAIL], as_string=True))
    assert as_list.primary == as_text.primary
    assert [a.type for a in parse_linked_accounts([WALLET, {"type": "email"}, 3, EMAIL])] == [
        "email"
    ]
    assert primary_account([]) is None


def test_token_without_supported_account_is_401(
    verifier: IdentityVerifier, make_token: TokenFactory
) -> None:
    for accounts in ([], [WALLET], [{"type": "email", "address": "not-an-address"}]):
        with pytest.raises(InvalidIdentityToken):
            verifier.verify(make_token(accounts=accounts))
    with pytest.raises(InvalidIdentityToken):
        verifier.verify(make_token(linked_accounts="{not json"))
    with pytest.raises(InvalidIdentityToken):
        verifier.verify(make_token(linked_accounts='{"type": "email"}'))


# ---- bad tokens: all 401 ---------------------------------------------------------------


def test_valid_token_verifies(verifier: IdentityVerifier, make_token: TokenFactory) -> None:
    identity = verifier.verify(make_token(sub="did:privy:abc"))
    assert identity.subject == "did:privy:abc"


@pytest.mark.parametrize(
    "claims",
    [
        {"ttl_s": -3600},  # expired
        {"aud": "another-app"},
        {"iss": "evil.example"},
        {"exp": None},  # no expiry at all
        {"iat": None},
        {"sub": ""},
        {"sub": "x" * 200},
        {"nbf": int(time.time()) + 3600},  # not yet valid
        {"iat": int(time.time()) + 3600},  # issued in the future
        {"exp": "tomorrow"},
    ],
    ids=lambda c: ",".join(c),
)
def test_bad_claims_are_401(
    verifier: IdentityVerifier, make_token: TokenFactory, claims: dict[str, Any]
) -> None:
    with pytest.raises(InvalidIdentityToken) as info:
        verifier.verify(make_token(**claims))
    assert info.value.status == 401


def test_expired_token_says_so(verifier: IdentityVerifier, make_token: TokenFactory) -> None:
    with pytest.raises(InvalidIdentityToken, match="expired"):
        verifier.verify(make_token(ttl_s=-3600))


def test_wrong_signing_key_is_401(verifier: IdentityVerifier) -> None:
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidIdentityToken, match="Signature"):
        verifier.verify(sign(other))


def test_alg_none_and_hs256_key_confusion_are_401(
    verifier: IdentityVerifier, make_token: TokenFactory, privy_pem: str
) -> None:
    good = make_token()
    _, payload, _ = good.split(".")
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    with pytest.raises(InvalidIdentityToken):
        verifier.verify(unsigned)
    # HS256 signed with the *public* key as the HMAC secret: the classic confusion attack.
    import hashlib
    import hmac

    header = _b64({"alg": "HS256", "typ": "JWT"})
    mac = hmac.new(privy_pem.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(InvalidIdentityToken):
        verifier.verify(forged)
    # ES384 / other algorithms are not accepted either, even with a matching curve key.
    p384 = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(InvalidIdentityToken):
        verifier.verify(sign(p384, algorithm="ES384"))


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b.c", "a.b", "....", "\x00\xff", "Bearer x", "x" * 20_000, "e30.e30.e30"],
)
def test_malformed_tokens_are_401(verifier: IdentityVerifier, token: str) -> None:
    with pytest.raises(InvalidIdentityToken):
        verifier.verify(token)


def test_tampered_payload_is_401(verifier: IdentityVerifier, make_token: TokenFactory) -> None:
    header, payload, sig = make_token().split(".")
    claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["sub"] = "did:privy:someone-else"
    with pytest.raises(InvalidIdentityToken):
        verifier.verify(f"{header}.{_b64(claims)}.{sig}")


# ---- configuration ----------------------------------------------------------------------


class _S:
    def __init__(self, app_id: str | None, pem: str | None) -> None:
        self.privy_app_id = app_id
        self.privy_verification_key = SecretStr(pem) if pem is not None else None
        self.privy_issuer = ISSUER


class _Services:
    def __init__(self, app_id: str | None, pem: str | None) -> None:
        self.settings = _S(app_id, pem)


def test_verifier_configuration(privy_pem: str) -> None:
    assert build_verifier(_Services(None, None)) is None  # type: ignore[arg-type]
    assert build_verifier(_Services(APP_ID, privy_pem)) is not None  # type: ignore[arg-type]
    one_line = privy_pem.replace("\n", "\\n")
    assert build_verifier(_Services(APP_ID, one_line)) is not None  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="both"):
        build_verifier(_Services(APP_ID, None))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="PEM"):
        build_verifier(_Services(APP_ID, "not a key"))  # type: ignore[arg-type]
    rsa_pem = public_pem(rsa.generate_private_key(65537, 2048))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="P-256"):
        build_verifier(_Services(APP_ID, rsa_pem))  # type: ignore[arg-type]
    p384 = public_pem(ec.generate_private_key(ec.SECP384R1()))
    with pytest.raises(ConfigError, match="P-256"):
        build_verifier(_Services(APP_ID, p384))  # type: ignore[arg-type]


def test_verifier_rejects_token_for_configured_app_only(privy_pem: str) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    v = IdentityVerifier(public_pem(key), "app-a", ISSUER)
    assert v.verify(sign(key, aud="app-a")).subject
    with pytest.raises(InvalidIdentityToken):
        v.verify(sign(key))  # audience APP_ID, not app-a
    assert jwt.get_unverified_header(sign(key))["alg"] == "ES256"
