"""Sending a webhook: `check_destination` refuses every URL that would aim inside (private,
loopback, link-local, ... ranges, in IPv4, IPv6 and the IPv6 forms of IPv4 addresses; odd IPv4
spellings; userinfo; http without allow_private), whether the host is an IP literal or a name
an injected resolver answers. `post` is driven against real servers on 127.0.0.1 (plain and
TLS with a certificate made here): the request arrives exactly, redirects are not followed, the
answer is cut off, deadlines hold, and it connects only to addresses it has just checked."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gatewayz.webhooks.send import BlockedDestination, Resolver, check_destination, post
from gatewayz.webhooks.signing import new_secret, signature, verify

PUBLIC_V4 = "93.184.216.34"
PUBLIC_V6 = "2606:2800:220:1:248:1893:25c8:1946"
BODY = '{"type":"balance.low","data":{"note":"café ☕","lines":"a\\r\\nb"}}'.encode()


def answers(*addresses: str, calls: list[tuple[str, int]] | None = None) -> Resolver:
    """A resolver that answers `addresses` for any host (and records what it was asked)."""

    async def resolve(host: str, port: int) -> list[str]:
        if calls is not None:
            calls.append((host, port))
        return list(addresses)

    return resolve


# --- check_destination: what is refused -----------------------------------------------------

REFUSED = [  # (address, what the refusal must say)
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("10.0.0.1", "a private address"),
    ("172.16.0.1", "a private address"),
    ("172.31.255.254", "a private address"),
    ("192.168.1.1", "a private address"),
    ("100.64.0.1", "shared address space"),
    ("100.127.255.254", "shared address space"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("169.254.169.254", "link-local"),
    ("192.0.0.8", "IETF protocol assignment"),
    ("192.0.0.170", "IETF protocol assignment"),
    ("192.0.2.1", "documentation"),
    ("198.51.100.1", "documentation"),
    ("203.0.113.1", "documentation"),
    ("192.88.99.1", "reserved"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.254", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped form of 10.0.0.1, a private address"),
    ("::ffff:127.0.0.1", "IPv4-mapped form of 127.0.0.1, a loopback address"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of 169.254.169.254, a link-local"),
    ("::ffff:100.64.0.1", "IPv4-mapped form of 100.64.0.1, a shared address space"),
    ("::127.0.0.1", "IPv4-compatible form of 127.0.0.1"),
    ("::10.0.0.1", "IPv4-compatible form of 10.0.0.1"),
    ("2002:a00:1::1", "6to4 form of 10.0.0.1"),
    ("2002:7f00:1::", "6to4 form of 127.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo form of 127.0.0.1"),
    ("64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254"),
    ("64:ff9b:1::1", "reserved"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("fc00::1", "unique-local"),
    ("fd12:3456:789a::1", "unique-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("100::1", "reserved"),
    ("2001:2::1", "benchmarking"),
    ("2001:10::1", "IETF protocol assignment"),
]
ALLOWED = [PUBLIC_V4, "8.8.8.8", PUBLIC_V6, "2001:4860:4860::8888", f"::ffff:{PUBLIC_V4}"]


def literal_url(address: str, scheme: str = "https") -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{scheme}://{host}:8443/hook"


@pytest.mark.parametrize(("address", "why"), REFUSED)
async def test_refused_as_ip_literal(address: str, why: str) -> None:
    with pytest.raises(BlockedDestination) as caught:
        await check_destination(literal_url(address), allow_private=False)
    assert str(ipaddress.ip_address(address)) in str(caught.value)
    assert why in str(caught.value)


@pytest.mark.parametrize(("address", "why"), REFUSED)
async def test_refused_when_a_name_resolves_to_it(address: str, why: str) -> None:
    calls: list[tuple[str, int]] = []
    with pytest.raises(BlockedDestination) as caught:
        await check_destination(
            "https://hooks.example.com:8443/in",
            allow_private=False,
            resolve=answers(address, calls=calls),
        )
    assert calls == [("hooks.example.com", 8443)]
    assert f"hooks.example.com resolves to {address}, " in str(caught.value)
    assert why in str(caught.value)


@pytest.mark.parametrize("address", ALLOWED)
async def test_public_addresses_are_allowed(address: str) -> None:
    url = "https://hooks.example.com/in"
    assert await check_destination(url, allow_private=False, resolve=answers(address)) == [address]
    assert await check_destination(literal_url(address), allow_private=False) == [
        str(ipaddress.ip_address(address))
    ]


@pytest.mark.parametrize("private", ["10.0.0.1", "127.0.0.1", "fd00::1", "169.254.169.254"])
async def test_a_name_resolving_to_public_and_private_is_refused(private: str) -> None:
    for order in [(PUBLIC_V4, private), (private, PUBLIC_V4)]:
        with pytest.raises(BlockedDestination, match="resolves to"):
            await check_destination(
                "https://hooks.example.com/", allow_private=False, resolve=answers(*order)
            )


async def test_all_addresses_returned_in_order_without_duplicates() -> None:
    resolve = answers(PUBLIC_V6, PUBLIC_V4, PUBLIC_V6)
    url = "https://hooks.example.com/"
    assert await check_destination(url, allow_private=False, resolve=resolve) == [
        PUBLIC_V6,
        PUBLIC_V4,
    ]


async def test_http_needs_allow_private() -> None:
    public = answers(PUBLIC_V4)
    with pytest.raises(BlockedDestination, match="scheme must be https"):
        await check_destination("http://hooks.example.com/", allow_private=False, resolve=public)
    url = "http://hooks.example.com/"
    assert await check_destination(url, allow_private=True, resolve=public) == [PUBLIC_V4]


async def test_allow_private_lets_loopback_and_http_through() -> None:
    assert await check_destination("http://127.0.0.1:8080/x", allow_private=True) == ["127.0.0.1"]
    assert await check_destination("https://[::1]/x", allow_private=True) == ["::1"]
    resolve = answers("10.0.0.1", "fd00::1")
    url = "http://hooks.internal/"
    assert await check_destination(url, allow_private=True, resolve=resolve) == [
        "10.0.0.1",
        "fd00::1",
    ]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://hooks.example.com/",
        "file:///etc/passwd",
        "gopher://hooks.example.com/",
        "ws://hooks.example.com/",
        "javascript:alert(1)",
        "hooks.example.com/in",
        "//hooks.example.com/in",
    ],
)
async def test_other_schemes_are_refused_even_with_allow_private(url: str) -> None:
    with pytest.raises(BlockedDestination):
        await check_destination(url, allow_private=True, resolve=answers(PUBLIC_V4))


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pass@hooks.example.com/",
        "https://user@hooks.example.com/",
        "https://:pass@hooks.example.com/",
        "https://hooks.example.com@127.0.0.1/",
        "https://127.0.0.1@hooks.example.com/",
    ],
)
async def test_userinfo_is_refused(url: str) -> None:
    with pytest.raises(BlockedDestination, match="user name or password"):
        await check_destination(url, allow_private=False, resolve=answers(PUBLIC_V4))


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com:0/",
        "https://hooks.example.com:65536/",
        "https://hooks.example.com:99999/",
        "https://hooks.example.com:-1/",
        "https://hooks.example.com:443x/",
        "https:///path",
        "https://:443/",
        "https://",
        "https://[::1/",
        "https://[127.0.0.1]/",
        "https://[hooks.example.com]/",
        "https://[fe80::1%25eth0]/",
        "https://hooks..example.com/",
        "https://-hooks.example.com/",
        "https://hooks_example%2ecom/",
        "https://" + "a" * 64 + ".example.com/",
        "https://hooks.example.com/" + "a" * 2048,
        "https://hooks.example.com/a b",
        "https://hooks.example.com/\r\nX-Injected: 1",
        "https://hooks.example.com/\t",
        "https://hööks.example.com/",
        "https://hooks.example.com\\@127.0.0.1/",
    ],
)
async def test_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(BlockedDestination):
        await check_destination(url, allow_private=True, resolve=answers(PUBLIC_V4))


async def test_ports_and_length_at_their_bounds_are_allowed() -> None:
    public = answers(PUBLIC_V4)
    for url in ["https://h.example.com:1/", "https://h.example.com:65535/"]:
        assert await check_destination(url, allow_private=False, resolve=public) == [PUBLIC_V4]
    url = "https://h.example.com/"
    url += "a" * (2048 - len(url))
    assert await check_destination(url, allow_private=False, resolve=public) == [PUBLIC_V4]


ODD_IPV4 = [  # each is 127.0.0.1 or 10.0.0.1 to inet_aton, and so to many resolvers
    "2130706433",
    "0x7f000001",
    "017700000001",
    "0x7f.1",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "127.1",
    "127.0.1",
    "0x7F.0x0.0x0.0x1",
    "10.1",
    "012.0.0.1",
    "167772161",
]


@pytest.mark.parametrize("host", ODD_IPV4)
async def test_odd_ipv4_spellings_are_refused(host: str) -> None:
    assert socket.inet_aton(host) in (socket.inet_aton("127.0.0.1"), socket.inet_aton("10.0.0.1"))
    # The resolver would say "public": only the spelling itself may refuse it.
    with pytest.raises(BlockedDestination, match="unusual form"):
        await check_destination(f"https://{host}/", allow_private=False, resolve=answers(PUBLIC_V4))


async def test_a_trailing_dot_ipv4_is_refused() -> None:
    with pytest.raises(BlockedDestination, match="unusual form"):
        await check_destination(
            "https://127.0.0.1./", allow_private=False, resolve=answers(PUBLIC_V4)
        )


async def test_host_names_ending_in_digits_elsewhere_are_fine() -> None:
    public = answers(PUBLIC_V4)
    for url in ["https://hooks1.example.com/", "https://1hooks.example.com./", "https://a-1.io/"]:
        assert await check_destination(url, allow_private=False, resolve=public) == [PUBLIC_V4]


async def test_unresolvable_hosts_are_refused_clearly() -> None:
    async def nxdomain(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(BlockedDestination, match=r"nowhere\.example does not resolve \(Name"):
        await check_destination("https://nowhere.example/", allow_private=False, resolve=nxdomain)
    with pytest.raises(BlockedDestination, match="resolves to no address"):
        await check_destination("https://empty.example/", allow_private=True, resolve=answers())
    with pytest.raises(BlockedDestination, match="not an IP"):
        await check_destination(
            "https://junk.example/", allow_private=True, resolve=answers("localhost")
        )


async def test_the_default_resolver_is_the_system_one() -> None:
    with pytest.raises(BlockedDestination, match=r"localhost resolves to .*loopback"):
        await check_destination("https://localhost/", allow_private=False)
    allowed = await check_destination("https://localhost/", allow_private=True)
    assert allowed and set(allowed) <= {"127.0.0.1", "::1"}


async def test_the_message_says_which_address_and_why() -> None:
    with pytest.raises(BlockedDestination) as caught:
        await check_destination(
            "https://hooks.example.com/", allow_private=False, resolve=answers("10.0.0.1")
        )
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == "hooks.example.com resolves to 10.0.0.1, a private address"


# --- post against real local servers --------------------------------------------------------

Handler = Callable[["Server", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Request:
    request_line: str
    header_lines: list[str]
    body: bytes

    def header(self, name: str) -> str:
        for line in self.header_lines:
            key, _, value = line.partition(": ")
            if key.lower() == name.lower():
                return value
        raise KeyError(name)


@dataclass
class Server:
    """A server on 127.0.0.1 that runs `handler` for each connection and records them."""

    handler: Handler
    tls: ssl.SSLContext | None = None
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    cut_off: asyncio.Event = field(default_factory=asyncio.Event)
    port: int = 0
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self.handler(self, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            self.cut_off.set()
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> Request:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")[:-2]
        request = Request(head[0], head[1:], b"")
        request.body = await reader.readexactly(int(request.header("content-length")))
        self.requests.append(request)
        return request


@contextlib.asynccontextmanager
async def serving(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    server = Server(handler, tls)
    if tls is not None:

        def record_sni(_conn: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
            server.server_names.append(name)

        tls.sni_callback = record_sni  # type: ignore[assignment]
    listener = await asyncio.start_server(server._handle, "127.0.0.1", 0, ssl=tls)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()
        for task in server._tasks:
            task.cancel()
        await asyncio.gather(*server._tasks, return_exceptions=True)
        await listener.wait_closed()


def answer(raw: bytes) -> Handler:
    """A handler that reads the request, then writes `raw` and closes."""

    async def handler(
        server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter
    ) -> None:
        await server.read_request(reader)
        w.write(raw)
        await w.drain()

    return handler


async def test_the_request_arrives_exactly_and_the_answer_is_read() -> None:
    secret = new_secret()
    sig = signature(secret, BODY, int(time.time()))
    reply = (
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
        b'{"ok":true}'
    )
    async with serving(answer(reply)) as server:
        delivery = await post(
            f"http://127.0.0.1:{server.port}/hooks/in?account=7&x=%2F#fragment",
            BODY,
            {"X-Gatewayz-Signature": sig, "X-Gatewayz-Event": "balance.low"},
            allow_private=True,
        )
    assert (delivery.status, delivery.error) == (201, None)
    assert delivery.response_excerpt == '{"ok":true}'
    assert 0 < delivery.duration_ms < 5000
    (request,) = server.requests
    assert request.request_line == "POST /hooks/in?account=7&x=%2F HTTP/1.1"
    assert request.header_lines == [
        f"Host: 127.0.0.1:{server.port}",
        "User-Agent: Gatewayz-Webhooks/1",
        "Content-Type: application/json",
        f"Content-Length: {len(BODY)}",
        "Connection: close",
        f"X-Gatewayz-Signature: {sig}",
        "X-Gatewayz-Event: balance.low",
    ]
    assert request.body == BODY
    assert verify(secret, request.body, request.header("X-Gatewayz-Signature"))


async def test_a_large_body_arrives_intact() -> None:
    body = b'{"blob":"' + bytes(range(97, 123)) * 20_000 + b'"}'  # ~520 KB
    async with serving(answer(b"HTTP/1.1 204 No Content\r\n\r\n")) as server:
        delivery = await post(
            f"http://hooks.test:{server.port}",
            body,
            {},
            allow_private=True,
            resolve=answers("127.0.0.1"),
        )
    assert (delivery.status, delivery.error, delivery.response_excerpt) == (204, None, "")
    (request,) = server.requests
    assert request.request_line == "POST / HTTP/1.1"
    assert request.header("Host") == f"hooks.test:{server.port}"
    assert request.body == body


async def test_it_connects_to_the_checked_addresses_in_order_never_by_name() -> None:
    # hooks.test resolves nowhere but through the injected resolver; 127.0.0.2 refuses
    # (the server listens on 127.0.0.1 only), so the second address is the one that answers.
    calls: list[tuple[str, int]] = []
    async with serving(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")) as server:
        url = f"http://hooks.test:{server.port}/in"
        resolve = answers("127.0.0.2", "127.0.0.1", calls=calls)
        delivery = await post(url, b"{}", {}, allow_private=True, resolve=resolve)
        assert calls == [("hooks.test", server.port)]
        assert (delivery.status, delivery.error, delivery.response_excerpt) == (200, None, "ok")
        assert server.requests[0].header("Host") == f"hooks.test:{server.port}"
        only_refusing = answers("127.0.0.2")
        delivery = await post(url, b"{}", {}, allow_private=True, resolve=only_refusing)
        assert (delivery.status, delivery.error) == (None, "connection refused")
        assert server.connections == 1


async def test_a_redirect_is_not_followed() -> None:
    async with serving(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as target:
        location = f"http://127.0.0.1:{target.port}/stolen"
        reply = f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 5\r\n\r\nmoved"
        async with serving(answer(reply.encode())) as server:
            url = f"http://127.0.0.1:{server.port}/in"
            delivery = await post(url, b"{}", {}, allow_private=True)
    assert (delivery.status, delivery.error, delivery.response_excerpt) == (302, None, "moved")
    assert server.connections == 1
    assert target.connections == 0


async def endless_body(
    server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter
) -> None:
    """200, no length: 16 KiB after 16 KiB until the client goes away (10 s at most)."""
    await server.read_request(reader)
    w.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        w.write(b"x" * 16384)
        await w.drain()


async def stalled_body(
    server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter
) -> None:
    """200 announcing 1 MiB, of which 100 KiB are sent, then nothing."""
    await server.read_request(reader)
    w.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n" + b"y" * 102_400)
    await w.drain()
    await asyncio.sleep(30)


@pytest.mark.parametrize(("handler", "char"), [(endless_body, "x"), (stalled_body, "y")])
async def test_a_large_answer_is_cut_off_and_the_status_kept(handler: Handler, char: str) -> None:
    async with serving(handler) as server:
        url = f"http://127.0.0.1:{server.port}/in"
        delivery = await post(url, b"{}", {}, allow_private=True, total_timeout_s=5)
        assert (delivery.status, delivery.error) == (200, None)
        assert delivery.response_excerpt == char * 500
        assert delivery.duration_ms < 2000  # it stopped reading: it did not wait for more
        if handler is endless_body:
            await asyncio.wait_for(server.cut_off.wait(), 5)  # the server saw the close


async def test_interim_1xx_answers_are_skipped() -> None:
    reply = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
        b"HTTP/1.1 410 Gone\r\nContent-Length: 4\r\n\r\ngone"
    )
    async with serving(answer(reply)) as server:
        delivery = await post(f"http://127.0.0.1:{server.port}/", b"{}", {}, allow_private=True)
    assert (delivery.status, delivery.error, delivery.response_excerpt) == (410, None, "gone")


async def test_max_response_bytes_bounds_what_is_read() -> None:
    reply = b"HTTP/1.1 500 Oops\r\nContent-Length: 26\r\n\r\nabcdefghijklmnopqrstuvwxyz"
    async with serving(answer(reply)) as server:
        url = f"http://127.0.0.1:{server.port}/in"
        delivery = await post(url, b"{}", {}, allow_private=True, max_response_bytes=10)
    assert (delivery.status, delivery.error, delivery.response_excerpt) == (500, None, "abcdefghij")


async def silent(server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    await asyncio.sleep(30)


async def test_a_server_that_never_answers_times_out() -> None:
    async with serving(silent) as server:
        url = f"http://127.0.0.1:{server.port}/in"
        delivery = await post(url, b"{}", {}, allow_private=True, total_timeout_s=0.3)
    assert (delivery.status, delivery.error) == (None, "timed out after 0.3 s")
    assert 250 <= delivery.duration_ms < 1500


async def head_then_silence(
    server: Server, reader: asyncio.StreamReader, w: asyncio.StreamWriter
) -> None:
    await server.read_request(reader)
    w.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 10\r\n\r\nabc")
    await w.drain()
    await asyncio.sleep(30)


async def test_a_stalled_body_times_out_with_the_status_kept() -> None:
    async with serving(head_then_silence) as server:
        url = f"http://127.0.0.1:{server.port}/in"
        delivery = await post(url, b"{}", {}, allow_private=True, total_timeout_s=0.3)
    assert (delivery.status, delivery.error) == (202, "timed out after 0.3 s")


async def test_the_connect_deadline_covers_the_tls_handshake() -> None:
    async with serving(silent) as server:  # accepts TCP, never answers the TLS hello
        delivery = await post(
            f"https://localhost:{server.port}/in",
            b"{}",
            {},
            allow_private=True,
            connect_timeout_s=0.2,
            total_timeout_s=5,
            resolve=answers("127.0.0.1"),
        )
    assert (delivery.status, delivery.error) == (None, "connect timed out after 0.2 s")
    assert delivery.duration_ms < 1500


async def test_connection_refused_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    delivery = await post(f"http://127.0.0.1:{port}/in", b"{}", {}, allow_private=True)
    assert (delivery.status, delivery.error) == (None, "connection refused")


async def test_not_http_and_closed_early_are_clear_errors() -> None:
    async with serving(answer(b"SSH-2.0-OpenSSH_9.6\r\n")) as server:
        delivery = await post(f"http://127.0.0.1:{server.port}/", b"{}", {}, allow_private=True)
    assert delivery.status is None
    assert delivery.error is not None and delivery.error.startswith("not an HTTP/1.x response")
    async with serving(answer(b"")) as server:
        delivery = await post(f"http://127.0.0.1:{server.port}/", b"{}", {}, allow_private=True)
    assert (delivery.status, delivery.error) == (None, "closed before a response")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Evil": "a\r\nX-Injected: 1"},
        {"X-Evil": "a\nb"},
        {"X-Evil": "a\rb"},
        {"X-Evil": "a\x00b"},
        {"X-Bad\r\nName": "v"},
        {"Bad Name": "v"},
        {"Host": "internal.example"},
        {"content-length": "0"},
        {"Transfer-Encoding": "chunked"},
    ],
)
async def test_unsafe_headers_raise_before_connecting(headers: dict[str, str]) -> None:
    async with serving(answer(b"HTTP/1.1 200 OK\r\n\r\n")) as server:
        with pytest.raises(ValueError) as caught:
            await post(f"http://127.0.0.1:{server.port}/", b"{}", headers, allow_private=True)
        assert not isinstance(caught.value, BlockedDestination)
        assert server.connections == 0


async def test_post_refuses_inside_destinations_without_connecting() -> None:
    async with serving(answer(b"HTTP/1.1 200 OK\r\n\r\n")) as server:
        delivery = await post(f"https://127.0.0.1:{server.port}/", b"{}", {}, allow_private=False)
        assert delivery.status is None
        assert delivery.error == "blocked: 127.0.0.1 is a loopback address"
        delivery = await post(f"http://127.0.0.1:{server.port}/", b"{}", {}, allow_private=False)
        assert delivery.error == "blocked: the scheme must be https, not 'http'"
        assert server.connections == 0


async def test_dns_rebinding_is_refused_at_send_time_without_connecting() -> None:
    """Public when the URL was registered, 127.0.0.1 when the webhook is sent."""
    answers_over_time = [[PUBLIC_V4], ["127.0.0.1"]]

    async def rebinding(host: str, port: int) -> list[str]:
        return answers_over_time.pop(0) if len(answers_over_time) > 1 else answers_over_time[0]

    async with serving(answer(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")) as server:
        url = f"https://hooks.example.com:{server.port}/in"
        checked = await check_destination(url, allow_private=False, resolve=rebinding)
        assert checked == [PUBLIC_V4]  # registration: allowed
        delivery = await post(url, b"{}", {}, allow_private=False, resolve=rebinding)
        assert delivery.status is None
        assert delivery.error == (
            "blocked: hooks.example.com resolves to 127.0.0.1, a loopback address"
        )
        assert server.connections == 0


# --- TLS ------------------------------------------------------------------------------------


@dataclass
class Certificate:
    cert_pem: bytes
    key_pem: bytes


@pytest.fixture(scope="module")
def certificate() -> Certificate:
    """Self-signed, for "localhost" and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Certificate(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


def server_context(certificate: Certificate, tmp_path: Path) -> ssl.SSLContext:
    (tmp_path / "cert.pem").write_bytes(certificate.cert_pem)
    (tmp_path / "key.pem").write_bytes(certificate.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return context


def trusting(certificate: Certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cadata=certificate.cert_pem.decode())


async def test_https_with_a_trusted_certificate_sends_sni(
    certificate: Certificate, tmp_path: Path
) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nreceived"
    async with serving(answer(reply), server_context(certificate, tmp_path)) as server:
        delivery = await post(
            f"https://localhost:{server.port}/in",
            BODY,
            {"X-Gatewayz-Signature": "t=1,v1=00"},
            allow_private=True,
            ssl_context=trusting(certificate),
            resolve=answers("127.0.0.1"),
        )
        assert (delivery.status, delivery.error) == (200, None)
        assert delivery.response_excerpt == "received"
        delivery = await post(  # a fully qualified name: the certificate has no trailing dot
            f"https://localhost.:{server.port}/in",
            BODY,
            {},
            allow_private=True,
            ssl_context=trusting(certificate),
            resolve=answers("127.0.0.1"),
        )
        assert (delivery.status, delivery.error) == (200, None)
    assert server.server_names == ["localhost", "localhost"]
    assert [r.header("Host") for r in server.requests] == [
        f"localhost:{server.port}",
        f"localhost.:{server.port}",
    ]
    assert server.requests[0].body == BODY


async def test_https_with_the_default_context_refuses_a_self_signed_certificate(
    certificate: Certificate, tmp_path: Path
) -> None:
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    async with serving(answer(reply), server_context(certificate, tmp_path)) as server:
        delivery = await post(
            f"https://localhost:{server.port}/in",
            BODY,
            {},
            allow_private=True,
            resolve=answers("127.0.0.1"),
        )
    assert delivery.status is None
    assert delivery.error is not None
    assert delivery.error.startswith("TLS: certificate verify failed (self")
    assert server.requests == []


async def test_the_certificate_is_checked_against_the_host_name_not_the_address(
    certificate: Certificate, tmp_path: Path
) -> None:
    # The certificate is valid for 127.0.0.1, the address connected to, but not for the name.
    reply = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    async with serving(answer(reply), server_context(certificate, tmp_path)) as server:
        delivery = await post(
            f"https://other.test:{server.port}/in",
            BODY,
            {},
            allow_private=True,
            ssl_context=trusting(certificate),
            resolve=answers("127.0.0.1"),
        )
    assert delivery.status is None
    assert delivery.error is not None
    assert delivery.error.startswith("TLS: certificate verify failed (Hostname mismatch")
    assert server.server_names == ["other.test"]
    assert server.requests == []
