"""API key cryptography.

A key looks like `gw_{env}_{secret}`: env is one of live|test|staging|dev and the secret is 32
random bytes, URL-safe base64 (43 characters). At rest a key exists twice, neither as plaintext:
a Fernet token (so an operator can recover and re-show it) and a hex HMAC-SHA256 of the full key
under a separate secret, which is the lookup column. Authentication hashes the presented key and
looks the hash up; it never decrypts anything. Comparisons are constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from cryptography.fernet import Fernet, InvalidToken

from gatewayz.canonical.key_format import ENVS, KEY_RE

SECRET_BYTES = 32


class KeyRing:
    """Generates, hashes, encrypts and verifies API keys with the deployment's two secrets."""

    __slots__ = ("_fernet", "_mac")

    def __init__(self, fernet_key: bytes, hmac_key: bytes) -> None:
        if not hmac_key:
            raise ValueError("the HMAC key must not be empty")
        self._fernet = Fernet(fernet_key)
        # Keyed once; `hash` copies this pre-initialised state instead of re-keying per call.
        self._mac = hmac.new(hmac_key, digestmod=hashlib.sha256)

    def generate(self, env: str) -> str:
        """A new random key for `env`; `ValueError` for an unknown env."""
        if env not in ENVS:
            raise ValueError(f"unknown key environment {env!r}; expected one of {', '.join(ENVS)}")
        return f"gw_{env}_{secrets.token_urlsafe(SECRET_BYTES)}"

    def hash(self, key: str) -> str:
        """Hex HMAC-SHA256 of the full key (64 characters): the lookup value."""
        mac = self._mac.copy()
        mac.update(key.encode())
        return mac.hexdigest()

    def encrypt(self, key: str) -> str:
        """A Fernet token for the key (authenticated encryption, random IV per call)."""
        return self._fernet.encrypt(key.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        """The key inside a token from `encrypt`; `ValueError` if it was not made with this ring."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError) as exc:
            raise ValueError(
                "encrypted key is invalid or was made with another Fernet key"
            ) from exc

    def verify(self, key: str, stored_hash: str) -> bool:
        """Whether `key` hashes to `stored_hash`, compared in constant time."""
        return hmac.compare_digest(self.hash(key).encode(), stored_hash.encode())


def key_env(key: str) -> str | None:
    """The env of a well-formed key (`"live"`, ...), else None. Cheap: no hashing."""
    if not key.startswith("gw_"):
        return None
    m = KEY_RE.fullmatch(key)
    return m.group(1) if m else None


def display_prefix(key: str) -> str:
    """What may be shown of a key: `gw_{env}_` and the first four secret characters."""
    env = key_env(key)
    if env is None:
        raise ValueError("not a Gatewayz API key")
    head = len("gw_") + len(env) + 1
    return key[: head + 4]


def last_four(key: str) -> str:
    """The key's last four characters, for display next to the prefix."""
    if key_env(key) is None:
        raise ValueError("not a Gatewayz API key")
    return key[-4:]


def masked(prefix: str, last4: str) -> str:
    """Display form of a stored key, e.g. `gw_live_AbCd…wxyz`."""
    return f"{prefix}…{last4}"
