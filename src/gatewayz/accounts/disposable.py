"""Sign-up e-mail checks: a plausible address, and not a disposable (throw-away) domain.

The disposable list is the maintained `disposable-email-domains` package (`blocklist`, with its
`allowlist` of known false positives). A subdomain of a listed domain counts as listed.
"""

from __future__ import annotations

import re

from disposable_email_domains import allowlist, blocklist

from gatewayz.errors import InvalidRequest

_LOCAL = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$")
_MAX_EMAIL = 254  # RFC 5321 path limit
# Reserved top-level domains (RFC 2606 / 6761): never anyone's mailbox.
_RESERVED_TLDS = frozenset({"invalid", "test", "localhost", "example", "local"})


def is_disposable(domain: str) -> bool:
    """True if `domain` or any parent domain of it is on the disposable list."""
    name = domain.strip().lower().rstrip(".")
    labels = name.split(".")
    for i in range(len(labels) - 1):  # never the bare TLD
        candidate = ".".join(labels[i:])
        if candidate in allowlist:
            return False
        if candidate in blocklist:
            return True
    return False


def validate_signup_email(email: object) -> str:
    """The normalised address (trimmed, lower-cased, IDNA domain), or `InvalidRequest` (400)
    for a malformed, reserved or disposable one."""
    if not isinstance(email, str) or not email.strip():
        raise InvalidRequest("'email' is required and must be a string.", param="email")
    value = email.strip().lower()
    local, at, domain = value.rpartition("@")
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        domain = ""
    labels = domain.split(".")
    if (
        not at
        or not _LOCAL.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
        or len(labels) < 2
        or not all(_LABEL.match(label) for label in labels)
        or not _TLD.match(labels[-1])
        or len(local) + 1 + len(domain) > _MAX_EMAIL
    ):
        raise InvalidRequest(f"Invalid e-mail address: {email.strip()[:100]!r}.", param="email")
    if labels[-1] in _RESERVED_TLDS:
        raise InvalidRequest(
            f"E-mail addresses under .{labels[-1]} cannot receive mail.", param="email"
        )
    check_not_disposable(domain)
    return f"{local}@{domain}"


def check_not_disposable(domain: str) -> None:
    if is_disposable(domain):
        raise InvalidRequest(
            f"Disposable e-mail addresses are not accepted ({domain}); "
            "sign up with a permanent address.",
            code="disposable_email",
            param="email",
        )
