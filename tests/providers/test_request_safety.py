"""Nothing from a request reaches an upstream request line or header unvalidated (issue 11,
item 1): for every provider family, whatever the native model id and the credential values, one
call sends exactly one well-formed HTTP request — its target the family's own path with the id
escaped (no dot segments, no query or header smuggled in) — or nothing at all (refused before
sending). Checked by a raw TCP server that parses what arrives with httptools."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatewayz.canonical.bounds import model_id_problem
from gatewayz.canonical.types import ChatRequest, Message
from gatewayz.errors import GatewayError, InvalidRequest
from gatewayz.providers import anthropic, bedrock, cohere, fal, gemini, openai, urls, vertex
from gatewayz.providers.provider import Provider
from gatewayz.providers.request_safety import UnsafeRequest, check_request
from gatewayz.providers.transport import HttpPool

ATTACKS = [
    "x HTTP/1.1\r\nX-Injected: yes\r\n\r\nGET /v1/files HTTP/1.1",
    "tunedModels/x HTTP/1.1\r\nX-Injected: yes",
    "../../v1beta/files?x=",
    "tunedModels/../../files",
    "a/%2e%2e/b",
    "m?key=leak#frag",
    "m:generateContent?alt=sse",
    "a b",
    "é/ü",
    "\x00",
    "",
    ".",
]
# Anything a JSON string can carry: controls, spaces, slashes, dots, percent, unicode.
IDS = st.one_of(
    st.sampled_from(ATTACKS),
    st.text(alphabet=st.sampled_from("ab/.:%?#@ \r\n\t\x00-_~é"), max_size=24),
    st.text(max_size=24),
)
KEYS = st.one_of(
    st.sampled_from(["sk-plain", "k\r\nX-Injected: yes", "k\n", "k\x00", "k v", "ключ"]),
    st.text(max_size=16),
)


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[bytes, bytes]]
    body: bytes


@dataclass
class Recorder:
    """A raw HTTP/1.1 server: every complete request it parses, and whether the byte stream
    it got was ever not HTTP."""

    requests: list[Received] = field(default_factory=list, repr=False)
    malformed: int = 0
    port: int = 0


class _Protocol(asyncio.Protocol):
    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.parser = httptools.HttpRequestParser(self)
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = b""
        self.url = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.rec.malformed += 1
            self.transport.close()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode()
        self.rec.requests.append(
            Received(method, self.url.decode("latin-1"), self.headers, self.body)
        )
        self.headers, self.body, self.url = [], b"", b""
        answer = b'{"error":{"message":"no","type":"invalid_request_error"}}'
        self.transport.write(  # type: ignore[attr-defined]
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(answer), answer)
        )


@pytest.fixture(scope="module")
def loop_and_recorder() -> Iterator[tuple[asyncio.AbstractEventLoop, Recorder]]:
    loop = asyncio.new_event_loop()
    rec = Recorder()
    ready = threading.Event()

    async def start() -> None:
        server = await loop.create_server(lambda: _Protocol(rec), "127.0.0.1", 0)
        rec.port = server.sockets[0].getsockname()[1]
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    ready.wait(10)
    yield loop, rec
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@dataclass(frozen=True)
class Family:
    name: str
    build: Callable[[str, str], Any]  # (base URL, key) -> adapter
    path_prefix: str  # every target starts with it
    id_in_path: bool  # the native id is a path segment (else it travels in the JSON body)
    key_header: bytes | None  # where the key travels, verbatim (None: signed or a file)


def _provider(family: str, base: str, key: str, **extra: Any) -> Provider:
    return Provider(family, family, family, base, api_key=key, **extra)


def _vertex(base: str, key: str) -> vertex.Adapter:
    env = {"GOOGLE_CLOUD_PROJECT": "proj", "GOOGLE_CLOUD_LOCATION": "us-central1"}
    adapter = vertex.Adapter(_provider("vertex", base, key, auth="none", env=env), HttpPool(base))

    async def headers() -> list[tuple[bytes, bytes]]:  # no OAuth round trip: a fixed token
        return [*adapter._headers, (b"authorization", b"Bearer token")]

    adapter.headers = headers  # type: ignore[method-assign]
    return adapter


def _bedrock(base: str, key: str) -> bedrock.Adapter:
    env = {"AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "us-east-1"}
    return bedrock.Adapter(_provider("bedrock", base, key, env=env), HttpPool(base))


FAMILIES = [
    Family(
        "openai",
        lambda b, k: openai.Adapter(_provider("openai", b, k), HttpPool(b)),
        "/chat/completions",
        False,
        b"authorization",
    ),
    Family(
        "anthropic",
        lambda b, k: anthropic.Adapter(_provider("anthropic", b, k, auth="x-api-key"), HttpPool(b)),
        "/v1/messages",
        False,
        b"x-api-key",
    ),
    Family(
        "gemini",
        lambda b, k: gemini.Adapter(_provider("gemini", b, k), HttpPool(b)),
        "/v1beta/",
        True,
        b"x-goog-api-key",
    ),
    Family("vertex", _vertex, "/v1/projects/proj/locations/us-central1/", True, None),
    Family("bedrock", _bedrock, "/model/", True, None),
    Family(
        "cohere",
        lambda b, k: cohere.Adapter(_provider("cohere", b, k), HttpPool(b)),
        "/v2/chat",
        False,
        b"authorization",
    ),
    Family("fal", lambda b, k: fal.Adapter(_provider("fal", b, k), HttpPool(b)), "/", False, None),
]


def _call(loop: asyncio.AbstractEventLoop, adapter: Any, native: str) -> BaseException | None:
    req = ChatRequest(model="m", messages=[Message("user", "hi")], max_tokens=5)

    async def go() -> BaseException | None:
        try:
            await adapter.send(req, native)
        except GatewayError as err:
            return err
        finally:
            await adapter.pool.close()
        return None

    return asyncio.run_coroutine_threadsafe(go(), loop).result(10)


def _well_formed(got: Received, fam: Family, native: str, key: str) -> None:
    assert got.method == "POST"
    assert got.target.startswith("/" + fam.path_prefix.lstrip("/")) or fam.path_prefix == "/"
    assert got.target.isascii() and got.target.isprintable() and " " not in got.target
    path, _, query = got.target.partition("?")
    assert "#" not in got.target
    assert all(unquote(s) not in (".", "..") for s in path.split("/"))
    names = [n for n, _ in got.headers]
    assert b"x-injected" not in names and len(names) == len(set(names)), names
    assert dict(got.headers)[b"content-length"] == str(len(got.body)).encode()
    if fam.id_in_path:  # the id is in the path, escaped, whole, and nothing else came with it
        assert (native.rsplit("/", 1)[-1] if fam.name == "vertex" else native) in unquote(path)[1:]
        assert query in ("", "alt=sse")
    if fam.key_header is not None and key:  # the key verbatim (HTTP trims outer blanks)
        assert key.strip(" \t").encode() in dict(got.headers)[fam.key_header]


@pytest.mark.parametrize("fam", FAMILIES, ids=lambda f: f.name)
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(native=IDS, key=KEYS)
def test_one_well_formed_request_per_call_or_none(
    loop_and_recorder: tuple[asyncio.AbstractEventLoop, Recorder],
    fam: Family,
    native: str,
    key: str,
) -> None:
    loop, rec = loop_and_recorder
    base = f"http://127.0.0.1:{rec.port}"
    before, bad_before = len(rec.requests), rec.malformed
    adapter = fam.build(base, key)
    err = _call(loop, adapter, native)
    got = rec.requests[before:]
    assert rec.malformed == bad_before  # never bytes that are not one HTTP request
    assert len(got) <= 1
    if got:
        _well_formed(got[0], fam, native, key)
    else:  # refused before anything was sent: the caller's error, never a 5xx
        assert isinstance(err, InvalidRequest), err


def test_the_edge_character_set_takes_real_ids_and_refuses_attacks() -> None:
    for good in [
        "gpt-4o",
        "openai/gpt-4o-2024-08-06",
        "accounts/fireworks/models/llama-v3p3-70b-instruct",
        "@cf/meta/llama-3.1-8b-instruct",
        "anthropic.claude-3-5-sonnet-20241022-v2:0",
        "claude-3-5-sonnet-v2@20241022",
        "deepseek/deepseek-r1:free",
        "google-ai-studio/tunedModels/my-model_1",
        "router:general:quality",
    ]:
        assert model_id_problem(good) is None, good
    for bad in [*ATTACKS, "x" * 201, "a//b", "/a", "a/", "a/./b"]:
        assert model_id_problem(bad) is not None, bad


def test_transport_refuses_unsafe_targets_and_headers() -> None:
    check_request("POST", "/v1/models/a%2Fb:generateContent?alt=sse", [(b"x-k", b"v v\tw")])
    for target in ["/a b", "/a\r\nX: y", "/a/../b", "/a/%2E%2e/b", "/a#f", "/é", "a"]:
        with pytest.raises(UnsafeRequest):
            check_request("POST", target, [])
    for header in [(b"x-k", b"v\r\nX-Injected: 1"), (b"x-k", b"v\n"), (b"x k", b"v"), (b"", b"v")]:
        with pytest.raises(UnsafeRequest):
            check_request("POST", "/a", [header])
    with pytest.raises(UnsafeRequest):
        check_request("GET /evil HTTP/1.1\r\nPOST", "/a", [])


def test_url_values_are_escaped_and_dot_segments_refused() -> None:
    assert urls.segment("a/b:c?d#e f") == "a%2Fb%3Ac%3Fd%23e%20f"
    assert urls.segment("tunedModels/x@1", keep="/@") == "tunedModels/x@1"
    assert urls.query("a&b=c/d") == "a%26b%3Dc%2Fd"
    for bad in ["", ".", ".."]:
        with pytest.raises(InvalidRequest):
            urls.segment(bad)
    with pytest.raises(InvalidRequest):
        urls.segment("tunedModels/../files", keep="/")


async def test_an_unsafe_request_is_refused_before_connecting() -> None:
    pool = HttpPool("http://127.0.0.1:9")  # nothing listens: a connect would fail differently
    with pytest.raises(UnsafeRequest):
        await pool.request("POST", "/a\r\nX: y", [])
    await pool.close()
