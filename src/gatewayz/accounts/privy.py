"""Privy identity tokens: ES256 JWTs verified against the app's verification key (SPEC §1).

The token is the only source of identity: its signature (ES256 only — `none`, HS256 and every
other algorithm are refused, so a public key can never double as an HMAC secret), its issuer,
its audience (the app id) and its time claims (`exp` and `iat` required, `nbf` honoured) are all
checked. Its `linked_accounts` claim (a JSON string, or a list) names the user's accounts; the
primary identity is the first present in the order email > Google > phone > GitHub.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from gatewayz.errors import Unauthorized

ALGORITHM = "ES256"
# Highest priority first (SPEC §1): the first of these the user has is the primary identity.
PRIORITY: tuple[str, ...] = ("email", "google_oauth", "phone", "github_oauth")
# Tolerated clock difference between Privy and us when checking exp / nbf / iat.
CLOCK_SKEW_S = 30.0
# A real identity token is a few KB; anything far larger is not one (and is never parsed).
MAX_TOKEN_CHARS = 16 * 1024
_MAX_SUBJECT = 128  # users.privy_user_id is String(128)
# Placeholder addresses for users whose primary identity has no e-mail: `.invalid` is a
# reserved top-level domain (RFC 2606), so such an address can never be anyone's mailbox.
PLACEHOLDER_DOMAIN = "users.privy.invalid"
_SLUG = re.compile(r"[^a-z0-9-]+")


class InvalidIdentityToken(Unauthorized):
    code = "invalid_identity_token"


@dataclass(frozen=True, slots=True)
class LinkedAccount:
    type: str  # one of PRIORITY
    value: str  # the address, phone number or username
    email: str | None  # a mailbox, when the account carries one


@dataclass(frozen=True, slots=True)
class Identity:
    subject: str  # Privy's user id (`sub`), e.g. did:privy:...
    primary: LinkedAccount
    accounts: tuple[LinkedAccount, ...]

    @property
    def method(self) -> str:
        return self.primary.type

    @property
    def email(self) -> str | None:
        """The primary identity's real e-mail address, if it has one."""
        return self.primary.email

    @property
    def account_email(self) -> str:
        """The address the user is stored under: the real one, else a reserved placeholder
        derived from the primary identity (a phone number or GitHub username)."""
        if self.primary.email:
            return self.primary.email
        kind = self.primary.type.removesuffix("_oauth")
        slug = _SLUG.sub("", self.primary.value.lower()) or _SLUG.sub("", self.subject.lower())
        return f"{kind}-{slug}@{PLACEHOLDER_DOMAIN}"


def _text(entry: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = entry.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _email(value: str | None) -> str | None:
    if value is None or "@" not in value:
        return None
    return value.lower()


def parse_linked_accounts(claim: Any) -> list[LinkedAccount]:
    """The supported accounts in a `linked_accounts` claim (JSON string or list); entries of
    other types (wallets, ...) and entries without an identifier are skipped."""
    if claim is None:
        return []
    if isinstance(claim, str | bytes):
        try:
            claim = orjson.loads(claim)
        except orjson.JSONDecodeError:
            raise InvalidIdentityToken("Invalid identity token: bad linked_accounts.") from None
    if not isinstance(claim, list):
        raise InvalidIdentityToken("Invalid identity token: linked_accounts must be a list.")
    out: list[LinkedAccount] = []
    for entry in claim:
        if not isinstance(entry, dict):
            continue
        kind = entry.get("type")
        if kind == "email":
            address = _email(_text(entry, "address", "email"))
            if address:
                out.append(LinkedAccount("email", address, address))
        elif kind == "google_oauth":
            address = _email(_text(entry, "email", "address"))
            if address:
                out.append(LinkedAccount("google_oauth", address, address))
        elif kind == "phone":
            number = _text(entry, "phone_number", "phoneNumber", "number", "phone")
            if number:
                digits = "+" * number.startswith("+") + re.sub(r"\D", "", number)
                if len(digits.lstrip("+")) >= 4:
                    out.append(LinkedAccount("phone", digits, None))
        elif kind == "github_oauth":
            username = _text(entry, "username", "name")
            address = _email(_text(entry, "email"))
            if username or address:
                out.append(LinkedAccount("github_oauth", username or address or "", address))
    return out


def primary_account(accounts: list[LinkedAccount]) -> LinkedAccount | None:
    """The highest-priority account: email > Google > phone > GitHub."""
    for kind in PRIORITY:
        for account in accounts:
            if account.type == kind:
                return account
    return None


class IdentityVerifier:
    """Verifies identity tokens for one Privy app. Built once at startup: a key that is not an
    EC P-256 public key in PEM form is a `ValueError` then, not a failure per request."""

    def __init__(
        self, public_key_pem: str, app_id: str, issuer: str, clock_skew_s: float = CLOCK_SKEW_S
    ) -> None:
        if not app_id:
            raise ValueError("the Privy app id must not be empty")
        try:
            key = load_pem_public_key(public_key_pem.strip().encode())
        except (ValueError, TypeError) as exc:
            raise ValueError("the Privy verification key is not a PEM public key") from exc
        if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError("the Privy verification key must be an EC P-256 (ES256) public key")
        self._key = key
        self.app_id = app_id
        self.issuer = issuer
        self.clock_skew_s = clock_skew_s

    def verify(self, token: str) -> Identity:
        """The identity in a valid token; `InvalidIdentityToken` (401) for anything else."""
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise InvalidIdentityToken("Invalid identity token.")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.app_id,
                issuer=self.issuer,
                leeway=self.clock_skew_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidIdentityToken("Identity token has expired.") from None
        except jwt.PyJWTError as exc:
            raise InvalidIdentityToken(f"Invalid identity token: {exc}") from None
        except (ValueError, TypeError):  # garbage the parser did not classify
            raise InvalidIdentityToken("Invalid identity token.") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip() or len(subject) > _MAX_SUBJECT:
            raise InvalidIdentityToken("Invalid identity token: bad subject.")
        accounts = parse_linked_accounts(claims.get("linked_accounts"))
        primary = primary_account(accounts)
        if primary is None:
            raise InvalidIdentityToken(
                "The identity token has no e-mail, Google, phone or GitHub account linked."
            )
        return Identity(subject.strip(), primary, tuple(accounts))
