"""One webhook delivery: a POST never aimed inside. Every address the URL's host resolves to
must be public unless `allow_private`; `post` checks again at each call (DNS rebinding) and
connects to the checked address itself, TLS verified against the host name. No redirects are
followed, the answer is read up to a bound, the exchange has a deadline. Plain asyncio streams."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from functools import cache

Resolver = Callable[[str, int], Awaitable[list[str]]]  # (host, port) -> IP addresses
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH = 2048
EXCERPT_CHARS = 500
MAX_RESPONSE_HEADERS = 100
USER_AGENT = "Gatewayz-Webhooks/1"


class BlockedDestination(ValueError):
    """A webhook URL that may not be called: malformed, not resolvable, or resolving to an
    address inside. The message says which host or address, and why."""


@dataclass(frozen=True, slots=True)
class Delivery:
    status: int | None  # the final HTTP status, None if none arrived
    error: str | None  # short and human: "timed out after 10 s", "blocked: …", "TLS: …"
    duration_ms: float
    response_excerpt: str = ""  # the first characters of the response body, for the log


_REFUSED = [  # (network, why); the first network that holds an address says why
    (ipaddress.ip_network(cidr), why)
    for why, cidrs in {
        "a private address": "10.0.0.0/8 172.16.0.0/12 192.168.0.0/16",
        "a loopback address": "127.0.0.0/8 ::1/128",
        "an unspecified ('this network') address": "0.0.0.0/8 ::/128",
        "a shared address space (carrier-grade NAT) address": "100.64.0.0/10",
        "a link-local address": "169.254.0.0/16 fe80::/10",
        "a site-local address": "fec0::/10",
        "a unique-local address": "fc00::/7",
        "a documentation address": "192.0.2.0/24 198.51.100.0/24 203.0.113.0/24 "
        "2001:db8::/32 3fff::/20",
        "a benchmarking address": "198.18.0.0/15 2001:2::/48",
        "the broadcast address": "255.255.255.255/32",
        "a multicast address": "224.0.0.0/4 ff00::/8",
        "a reserved address": "240.0.0.0/4 192.88.99.0/24 100::/64 64:ff9b:1::/48",
        "an IETF protocol assignment address": "192.0.0.0/24 2001::/23",
    }.items()
    for cidr in cidrs.split()
]
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def refusal(address: Address) -> str | None:
    """Why a webhook may not go to `address` ("a private address"), or None if it is public.
    An IPv6 form of an IPv4 address (mapped, 6to4, Teredo, NAT64, compatible) is judged by it."""
    if isinstance(address, ipaddress.IPv6Address):
        n = int(address)
        low32 = ipaddress.IPv4Address(n & 0xFFFFFFFF)
        for form, v4 in (
            ("an IPv4-mapped form", address.ipv4_mapped),
            ("a 6to4 form", address.sixtofour),
            ("a Teredo form", address.teredo[1] if address.teredo else None),
            ("a NAT64 form", low32 if address in _NAT64 else None),
            ("an IPv4-compatible form", low32 if 1 < n < 2**32 else None),  # ::/96 but :: ::1
        ):
            if v4 is not None:
                why = refusal(v4)
                return None if why is None else f"{form} of {v4}, {why}"
    for network, why in _REFUSED:  # (an IPv4 address is in no IPv6 network, and back)
        if address in network:
            return why
    return None if address.is_global else "not a public address"


@dataclass(frozen=True, slots=True)
class _Url:
    scheme: str
    host: str  # lower case, no brackets
    port: int
    host_header: str  # host[:port] as the URL wrote it
    target: str  # path?query
    literal: Address | None  # the host, when it is an IP address


_URL = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)://([^/?#]*)([^?#]*)(\?[^#]*)?(?:#.*)?")
_NETLOC = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]]+)(?::([0-9]{1,5}))?")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
# An IPv4 part as inet_aton reads it: 2130706433, 0x7f.1, 127.1, 0177.0.0.1, 127.0.0.1. are out
_NUMBER = re.compile(r"0x[0-9a-f]*|[0-9]+")


def _parse(url: str, allow_private: bool) -> _Url:
    if len(url) > MAX_URL_LENGTH or not url.isascii() or not url.isprintable() or " " in url:
        raise BlockedDestination(f"the URL must be up to {MAX_URL_LENGTH} visible ASCII characters")
    parts = _URL.fullmatch(url)
    if parts is None:
        raise BlockedDestination("the URL is not an absolute URL (scheme://host/path)")
    scheme, netloc_text, path, query = parts[1].lower(), parts[2].lower(), parts[3], parts[4]
    schemes = ("https", "http") if allow_private else ("https",)
    if scheme not in schemes:
        raise BlockedDestination(f"the scheme must be {' or '.join(schemes)}, not {scheme!r}")
    if "@" in netloc_text:
        raise BlockedDestination("the URL may not carry a user name or password")
    netloc = _NETLOC.fullmatch(netloc_text)
    if netloc is None:
        raise BlockedDestination(f"the URL has no valid host[:port] ({netloc_text!r})")
    host, port = netloc[1].strip("[]"), int(netloc[2] or (443 if scheme == "https" else 80))
    if not 1 <= port <= 65535:
        raise BlockedDestination(f"port {port} is out of range (1-65535)")
    literal: Address | None = None
    with suppress(ValueError):
        literal = ipaddress.ip_address(host)
    if netloc[1].startswith("[") != isinstance(literal, ipaddress.IPv6Address):
        raise BlockedDestination(f"{netloc[1]!r} is not a valid IP address or host name")
    if literal is not None:
        host = str(literal)  # as connected to, and named in messages
    else:
        labels = host.removesuffix(".").split(".")
        if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
            raise BlockedDestination(f"{host!r} is not a valid host name")
        if _NUMBER.fullmatch(labels[-1]):
            raise BlockedDestination(f"{host!r} is an IPv4 address in an unusual form")
    return _Url(scheme, host, port, netloc[0], (path or "/") + (query or ""), literal)


async def _getaddrinfo(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _checked(dest: _Url, allow_private: bool, resolve: Resolver | None) -> list[str]:
    resolved = dest.literal is None
    try:
        answers = await (resolve or _getaddrinfo)(dest.host, dest.port) if resolved else [dest.host]
    except OSError as e:
        raise BlockedDestination(f"{dest.host} does not resolve ({e.strerror or e})") from None
    if not answers:
        raise BlockedDestination(f"{dest.host} resolves to no address")
    for answer in answers:
        try:
            why = refusal(ipaddress.ip_address(answer))
        except ValueError:
            raise BlockedDestination(f"{dest.host} resolves to {answer!r}, not an IP") from None
        if why is not None and not allow_private:  # one inside is enough: we don't pick
            where = f"{dest.host} resolves to {answer}," if resolved else f"{answer} is"
            raise BlockedDestination(f"{where} {why}")
    return list(dict.fromkeys(answers))


async def check_destination(
    url: str, *, allow_private: bool, resolve: Resolver | None = None
) -> list[str]:
    """The addresses a webhook to `url` may connect to, in order; BlockedDestination if the
    URL is malformed, its host does not resolve, or ANY address it resolves to is not public
    (unless `allow_private`). `resolve` defaults to the system resolver (TCP, IPv4 and 6)."""
    return await _checked(_parse(url, allow_private), allow_private, resolve)


class _Failed(Exception):
    """Connecting failed, or the answer was not HTTP: the message is the Delivery's error."""


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # a header name (RFC 9110 token)
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")  # printable ASCII and tab: no CR, LF, NUL
_OWN = {"host", "content-length", "content-type", "user-agent", "connection", "transfer-encoding"}
_STATUS_LINE = re.compile(rb"HTTP/1\.[01] ([1-9][0-9]{2})(?: [^\r\n]*)?\r?\n")


def _header_lines(headers: Mapping[str, str]) -> str:
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or name.lower() in _OWN or not _HEADER_VALUE.fullmatch(value):
            raise ValueError(f"header {name!r}: CR/LF in its value, a bad name, or one post sets")
    return "".join(f"{name}: {value}\r\n" for name, value in headers.items())


@cache
def _default_context() -> ssl.SSLContext:
    return ssl.create_default_context()


def _describe(e: Exception) -> str:
    if isinstance(e, ssl.SSLCertVerificationError):
        return f"TLS: certificate verify failed ({e.verify_message})"
    if isinstance(e, ssl.SSLError):
        return f"TLS: {e.reason or e}"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    return f"connection failed: {e.strerror or e}" if isinstance(e, OSError) else str(e)


async def _connect(
    dest: _Url, addresses: list[str], timeout_s: float, context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    tls = {"ssl": context or _default_context(), "server_hostname": dest.host.rstrip(".")}
    error, options = "no address to connect to", tls if dest.scheme == "https" else {}
    for address in addresses:  # the checked addresses, in order; never the name again
        try:
            async with asyncio.timeout(timeout_s):  # TCP and the TLS handshake
                return await asyncio.open_connection(address, dest.port, **options)
        except TimeoutError:
            error = f"connect timed out after {timeout_s:g} s"
        except OSError as e:  # ssl.SSLError included
            error = _describe(e)
    raise _Failed(error)


async def _read_upto(reader: asyncio.StreamReader, n: int) -> bytes:
    data = bytearray()
    while len(data) < n and (chunk := await reader.read(min(n - len(data), 65536))):
        data += chunk
    return bytes(data)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The final status and headers (interim 1xx answers skipped)."""
    while True:
        line = await reader.readline()
        match = _STATUS_LINE.fullmatch(line)
        if match is None:
            why = f"not an HTTP/1.x response: {line[:60]!r}" if line else "closed before a response"
            raise _Failed(why)
        headers: dict[str, str] = {}
        while (line := await reader.readline()) not in (b"\r\n", b"\n"):
            if not line.endswith(b"\n") or len(headers) >= MAX_RESPONSE_HEADERS:
                raise _Failed("a response head cut short or with too many headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if int(match[1]) >= 200 or int(match[1]) == 101:
            return int(match[1]), headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], limit: int) -> bytes:
    """At most `limit` bytes of the body, as sent (a chunked body keeps its chunk sizes)."""
    length = headers.get("content-length", "")  # else: until the server closes, or `limit`
    return await _read_upto(reader, min(int(length), limit) if length.isdigit() else limit)


async def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    allow_private: bool,
    connect_timeout_s: float = 5,
    total_timeout_s: float = 10,
    max_response_bytes: int = 65536,
    ssl_context: ssl.SSLContext | None = None,
    resolve: Resolver | None = None,
) -> Delivery:
    """POST `body` (JSON) to `url` with `headers` added: one attempt, never raising for what
    the network or the receiver did (that is the Delivery's `error`). ValueError for a header
    that could not be sent as is (CR/LF in a value, or one `post` sets itself)."""
    extra = _header_lines(headers)
    started = time.perf_counter()
    status: int | None = None
    answer, error = b"", None
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(total_timeout_s):
            dest = _parse(url, allow_private)
            addresses = await _checked(dest, allow_private, resolve)  # again: DNS rebinding
            reader, writer = await _connect(dest, addresses, connect_timeout_s, ssl_context)
            writer.write(
                f"POST {dest.target} HTTP/1.1\r\nHost: {dest.host_header}\r\n"
                f"User-Agent: {USER_AGENT}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n{extra}\r\n".encode()
                + body
            )
            with suppress(ConnectionError):  # it may have answered early and closed: read it
                await writer.drain()
            status, response_headers = await _read_head(reader)  # a 3xx is just its status
            if status >= 200 and status not in (204, 304):
                answer = await _read_body(reader, response_headers, max_response_bytes)
    except BlockedDestination as e:
        error = f"blocked: {e}"
    except TimeoutError:
        error = f"timed out after {total_timeout_s:g} s"
    except ValueError:  # from readline: a line longer than the stream's limit (64 KiB)
        error = "a response line is too long"
    except (_Failed, OSError) as e:
        error = _describe(e)
    duration_ms = (time.perf_counter() - started) * 1000
    if writer is not None:
        writer.close()
        with suppress(Exception):  # an abrupt peer, a TLS shutdown: nothing left to learn
            await asyncio.wait_for(writer.wait_closed(), 1)
    excerpt = answer[: EXCERPT_CHARS * 4].decode("utf-8", "replace")[:EXCERPT_CHARS]
    return Delivery(status, error, duration_ms, excerpt)
