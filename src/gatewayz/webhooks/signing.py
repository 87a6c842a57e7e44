"""The signature a webhook carries: `X-Gatewayz-Signature: t=<unix seconds>,v1=<hex>`, where
the hex is HMAC-SHA256 keyed with the endpoint's secret (its UTF-8 bytes, `whsec_` included)
over `<t>.<raw body>`. A receiver recomputes it over the bytes it received and refuses old or
future timestamps (replays). While a secret is rotated the header carries one `v1=` per
secret; any one matching is enough. `verify` is the documented verifier's logic."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time

HEADER = "X-Gatewayz-Signature"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_S = 300

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and 32 random bytes, URL-safe base64."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _digest(secret: str, body: bytes, timestamp: int) -> str:
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The header value for `body` sent at `timestamp` (unix seconds)."""
    return f"t={timestamp},v1={_digest(secret, body, timestamp)}"


def verify(
    secret: str,
    body: bytes,
    header: str,
    *,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
    now: float | None = None,
) -> bool:
    """True if `header` signs `body` with `secret` and its timestamp is within `tolerance_s`
    of `now` (either way). Malformed headers are False, never an exception; entries other
    than `t` and `v1` are ignored (later schemes)."""
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            return False
        if key == "t":
            if timestamp is not None or not _TIMESTAMP.fullmatch(value):
                return False
            timestamp = int(value)
        elif key == "v1" and _HEX_DIGEST.fullmatch(value):
            candidates.append(value)
    if timestamp is None or not candidates:
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = _digest(secret, body, timestamp).encode()
    matched = False
    for candidate in candidates:  # compare with every one: no early exit to time
        matched |= hmac.compare_digest(expected, candidate.encode())
    return matched
