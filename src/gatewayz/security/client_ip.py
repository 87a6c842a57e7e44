"""The client's IP address: the socket peer, unless that peer is a trusted proxy — then the
right-most `X-Forwarded-For` hop that is not itself a trusted proxy (SPEC §1). Garbage in the
header never becomes an identity: unparsable hops are skipped."""

from __future__ import annotations

import ipaddress
from functools import cache

from starlette.types import Scope

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@cache
def trusted_networks(spec: str) -> tuple[Network, ...]:
    """Parse `GATEWAYZ_TRUSTED_PROXIES` (comma-separated IPs or CIDRs); ValueError if bad."""
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in spec.split(",") if p.strip()
    )


def _trusted(ip: str, networks: tuple[Network, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in n for n in networks)


def client_ip(scope: Scope, networks: tuple[Network, ...]) -> str:
    peer = (scope.get("client") or ("", 0))[0] or ""
    if not networks or not _trusted(peer, networks):
        return peer
    forwarded: list[str] = []
    for name, value in scope["headers"]:
        if name == b"x-forwarded-for":
            forwarded += [h.strip() for h in value.decode("latin-1").split(",")]
    for hop in reversed(forwarded):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            continue
        if not _trusted(hop, networks):
            return hop
    return peer
