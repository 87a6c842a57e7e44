"""Keeping our credentials out of what we relay.

A provider's error message is passed on to the caller (a 400 as it is, others wrapped), and some
providers repeat in it the credentials they were sent: the gateway's own provider key would
reach every caller. `Redactor` replaces, in any text, every secret the gateway is configured
with (each provider's key and secret variables, every secret setting) and whatever has the
shape of a credential (`Bearer <token>`, `sk-…` keys, Gatewayz keys, Google OAuth access
tokens, PEM private keys) with `MASK`. It is built once at startup (`providers.registry`) and
applied where provider errors leave the provider layer (`redacted.py`), so every family,
both dialects, streams and the logs downstream see only masked text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote

import orjson
from pydantic import SecretStr

from gatewayz.canonical.key_format import KEY_RE
from gatewayz.errors import GatewayError
from gatewayz.settings import Settings

MASK = "[redacted]"
# A secret shorter than this (a self-hosted server's throwaway key) is masked only as a whole
# word, so ordinary text that happens to contain it stays readable; a message that ends in at
# least `TAIL_MIN` first characters of a secret (a message cut to a length inside the echoed
# key) has that tail masked.
SHORT_SECRET = 8
TAIL_MIN = 4

# Credential shapes masked whoever they belong to.
SHAPES = (
    r"(?i:bearer)\s+[A-Za-z0-9\-._~+/]{8,}=*",  # RFC 6750 bearer tokens, whatever the header
    r"\bsk-[A-Za-z0-9_\-]{8,}",  # OpenAI-style keys: sk-…, sk-proj-…, sk-ant-…
    KEY_RE.pattern,  # our own API keys (gw_{env}_…)
    r"\bya29\.[A-Za-z0-9_\-.]+",  # Google OAuth access tokens (Vertex)
    # A PEM private key (a service-account file's), to its end or to the end of the text.
    r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:.*?-----END[A-Z ]*PRIVATE KEY-----|.*)",
)


class Redactor:
    """`redactor(text)`: the text with every configured secret and credential shape masked."""

    def __init__(self, secrets: Iterable[str]) -> None:
        forms: set[str] = set()
        for secret in secrets:
            if secret:
                # As sent, and as it appears inside a JSON string (with "/" escaped or not,
                # as encoders differ) or a URL.
                in_json = orjson.dumps(secret).decode()[1:-1]
                forms |= {secret, in_json, in_json.replace("/", "\\/"), quote(secret, safe="")}
        # Longest first: a secret that contains another is masked whole.
        ordered = sorted(forms, key=len, reverse=True)
        literal = [
            re.escape(s) if len(s) >= SHORT_SECRET else rf"(?<!\w){re.escape(s)}(?!\w)"
            for s in ordered
        ]
        self._pattern = re.compile("|".join([*literal, *SHAPES]), re.DOTALL)
        self._tails = [s for s in ordered if len(s) > TAIL_MIN]

    @classmethod
    def from_config(cls, settings: Settings, provider_secrets: Iterable[str]) -> Redactor:
        """Every provider credential given, and every secret setting (Butter, Stripe, the key
        ring's, ...)."""
        own = [
            value.get_secret_value()
            for name in type(settings).model_fields
            if isinstance(value := getattr(settings, name), SecretStr)
        ]
        return cls([*provider_secrets, *own])

    def __call__(self, text: str) -> str:
        return self._cut_tail(self._pattern.sub(MASK, text))

    def _cut_tail(self, text: str) -> str:
        """Mask the start of a secret the text ends in (cut there by a length limit)."""
        end = text.rstrip()
        for secret in self._tails:
            for n in range(min(len(secret) - 1, len(end)), TAIL_MIN - 1, -1):
                if end.endswith(secret[:n]):
                    return end[: len(end) - n] + MASK
        return text

    def error(self, err: GatewayError) -> GatewayError:
        """`err` with its message (and the headers it sends, e.g. a provider's Retry-After)
        masked, in place: it is the error already being raised."""
        err.message = self(err.message)
        err.args = (err.message,)
        err.headers = {name: self(value) for name, value in err.headers.items()}
        return err
