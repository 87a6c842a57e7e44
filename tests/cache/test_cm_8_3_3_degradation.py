"""CM-8.3.3: an exception in any cache layer is caught and the request proceeds — a broken
store, semantic index or embedder, and a Redis killed in the middle of a run."""

from __future__ import annotations

import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gatewayz.simulators import Simulator
from tests.e2e.harness import Gateway

from .conftest import start_cached_gateway
from .helpers import chat_body, chat_calls, post, sse_text, text_of, unique


class Broken:
    """A store, index or embedder whose every call raises."""

    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    async def _fail(self, *args: Any) -> Any:
        self.calls += 1
        raise RuntimeError("cache layer exploded")

    get = put = nearest = add = embed = _fail


@pytest.mark.parametrize("layer", ["store", "index", "embedder"])
def test_cm_8_3_3_cache_failure_never_blocks_request(
    gateway: Gateway, upstream: Simulator, layer: str
) -> None:
    cache = gateway.services.response_cache
    broken = Broken()
    saved = getattr(cache, layer)
    setattr(cache, layer, broken)
    errors = cache.stats.errors
    try:
        system = f"[{secrets.token_hex(4)}]"
        body: dict[str, Any] = {
            **chat_body(unique()),
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": "What is the capital of France?"},
            ],
            "cache": {"semantic": True},
        }
        for stream in (False, True, False):
            r = post(gateway, {**body, "stream": stream})
            assert r.status_code == 200, r.text
            assert (sse_text(r) if stream else text_of(r)) != ""
        assert broken.calls > 0
        assert cache.stats.errors > errors
    finally:
        setattr(cache, layer, saved)


def test_cm_8_3_3_a_corrupt_entry_is_a_miss(gateway: Gateway, upstream: Simulator) -> None:
    cache = gateway.services.response_cache
    body = chat_body(unique())
    assert post(gateway, body).headers["x-gatewayz-cache"] == "miss"
    store = cache.store

    class Garbage:
        name = "garbage"

        async def get(self, key: str) -> bytes:
            return b"\x00not an entry"

        async def put(self, key: str, value: bytes, ttl_s: float) -> None:
            pass

    cache.store = Garbage()  # type: ignore[assignment]
    try:
        r = post(gateway, body)
        assert r.status_code == 200 and r.headers["x-gatewayz-cache"] == "miss"
    finally:
        cache.store = store
    assert len(chat_calls(upstream)) == 2


# ---------------------------------------------------------------- Redis killed mid-run
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_redis(port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not start")


@pytest.fixture
def own_redis() -> Iterator[tuple[int, list[subprocess.Popen[bytes]]]]:
    """A redis-server of this test's own (the shared one is never touched)."""
    port = _free_port()
    procs = [_start_redis(port)]
    yield port, procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_cm_8_3_3_redis_killed_mid_run_requests_keep_succeeding(
    upstream: Simulator,
    tmp_path: Path,
    own_redis: tuple[int, list[subprocess.Popen[bytes]]],
) -> None:
    port, procs = own_redis
    gw: Gateway = start_cached_gateway(
        tmp_path, upstream, f"redis://127.0.0.1:{port}/0", state_fallback_retry_s=0.5
    )
    try:
        body = chat_body(unique())
        assert post(gw, body).headers["x-gatewayz-cache"] == "miss"
        assert post(gw, body).headers["x-gatewayz-cache"] == "hit"  # served from Redis

        procs[0].kill()  # Redis dies mid-run
        procs[0].wait(timeout=10)
        for i in range(6):
            started = time.monotonic()
            r = post(gw, {**body, "stream": i % 2 == 1})
            assert r.status_code == 200, r.text
            assert r.headers["x-gatewayz-cache"] == "miss"
            assert time.monotonic() - started < 2.0  # no hanging on the dead Redis
        fresh = post(gw, chat_body(unique()))
        assert fresh.status_code == 200 and text_of(fresh)
        assert gw.services.response_cache.stats.errors > 0

        procs.append(_start_redis(port))  # back, empty
        time.sleep(0.6)  # past the retry window
        deadline = time.monotonic() + 10
        while post(gw, body).headers["x-gatewayz-cache"] != "hit":
            assert time.monotonic() < deadline, "the cache did not come back with Redis"
            time.sleep(0.2)
    finally:
        gw.stop()
