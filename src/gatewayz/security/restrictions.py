"""Per-key restrictions (SPEC §1): an IP allowlist (single IPs and CIDRs, v4 and v6) and a
domain allowlist (the Origin header's host, else the Referer's; `example.com` also allows its
subdomains).

Allowlists are validated and normalised when a key is saved (`normalize_ip_allowlist`,
`normalize_domain_allowlist`: `ValueError` with a clear message); at request time they are
parsed once per distinct list (cached) and matched without allocation-heavy work. An empty or
missing allowlist means "no restriction".
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import urlsplit

from gatewayz.security.client_ip import Network

MAX_ENTRIES = 100  # per allowlist
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_MAX_HOST = 253


class Violation(Exception):
    """A request broke one of its key's restrictions; `kind` is "ip" or "domain"."""

    def __init__(self, kind: str, message: str, detail: dict[str, str | None]) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.detail = detail


# ---- validation at save time ------------------------------------------------------------


def _check_size(entries: Sequence[object], what: str) -> None:
    if not isinstance(entries, list | tuple):
        raise ValueError(f"{what} must be a list of strings")
    if len(entries) > MAX_ENTRIES:
        raise ValueError(f"{what} may hold at most {MAX_ENTRIES} entries")


def normalize_ip_allowlist(entries: Sequence[str]) -> list[str]:
    """Canonical forms (`10.0.0.0/8`, `2001:db8::1`), deduplicated, in order.

    A CIDR must be a network address (`10.0.0.1/8` is refused: it names a host, not a network).
    """
    _check_size(entries, "ip_allowlist")
    out: list[str] = []
    for raw in entries:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"ip_allowlist: {raw!r} is not an IP address or CIDR")
        text = raw.strip()
        try:
            if "/" in text:
                value = str(ipaddress.ip_network(text, strict=True))
            else:
                value = str(ipaddress.ip_address(text))
        except ValueError as exc:
            raise ValueError(
                f"ip_allowlist: {text!r} is not a valid IP address or CIDR ({exc})"
            ) from None
        if value not in out:
            out.append(value)
    return out


def normalize_host(host: str) -> str | None:
    """A lower-case ASCII (IDNA) host name without a trailing dot, or None if it is not one."""
    value = host.strip().lower().rstrip(".")
    if not value or len(value) > _MAX_HOST:
        return None
    try:
        value = value.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    labels = value.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    return value


def normalize_domain_allowlist(entries: Sequence[str]) -> list[str]:
    """Bare host names (`example.com`); a leading `*.` is accepted and dropped, since a domain
    always allows its subdomains. Schemes, ports, paths and wildcards elsewhere are refused."""
    _check_size(entries, "domain_allowlist")
    out: list[str] = []
    for raw in entries:
        if not isinstance(raw, str):
            raise ValueError(f"domain_allowlist: {raw!r} is not a domain name")
        text = raw.strip()
        if text.startswith("*."):
            text = text[2:]
        host = normalize_host(text)
        if host is None:
            raise ValueError(
                f"domain_allowlist: {raw!r} is not a domain name (expected e.g. 'example.com', "
                "without scheme, port or path)"
            )
        if host not in out:
            out.append(host)
    return out


# ---- matching at request time -----------------------------------------------------------


@lru_cache(maxsize=4096)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    nets: list[Network] = []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # saved before validation existed: an unparsable entry allows nobody
    return tuple(nets)


def ip_allowed(ip: str, allowlist: Sequence[str]) -> bool:
    """Whether `ip` is inside any entry. An unparsable IP is never allowed. An IPv4-mapped IPv6
    address (`::ffff:192.0.2.1`) matches as its IPv4 address."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == n.version and addr in n for n in _networks(tuple(allowlist)))


def request_host(origin: str | None, referer: str | None) -> str | None:
    """The host the request comes from: the Origin header's, else the Referer's."""
    for value in (origin, referer):
        if not value or value == "null":
            continue
        try:
            host = urlsplit(value.strip()).hostname
        except ValueError:
            host = None
        if host:
            return normalize_host(host)
        return None  # present but unusable: do not fall through to a weaker header
    return None


def domain_allowed(host: str | None, allowlist: Sequence[str]) -> bool:
    if host is None:
        return False
    return any(host == d or host.endswith("." + d) for d in allowlist)


def check(
    ip: str,
    origin: str | None,
    referer: str | None,
    ip_allowlist: Sequence[str] | None,
    domain_allowlist: Sequence[str] | None,
) -> None:
    """`Violation` if the request breaks an allowlist; nothing if it passes (or none is set)."""
    if ip_allowlist and not ip_allowed(ip, ip_allowlist):
        raise Violation(
            "ip",
            f"This API key is not allowed from IP address {ip or 'unknown'}.",
            {"client_ip": ip or None},
        )
    if domain_allowlist:
        host = request_host(origin, referer)
        if not domain_allowed(host, domain_allowlist):
            seen = f"domain {host}" if host else "a request without an Origin or Referer"
            raise Violation(
                "domain",
                f"This API key is not allowed from {seen}.",
                {"host": host},
            )
