"""Chaos (SPEC §5, CM-5): two simulators are two self-hosted providers serving one model, and
the primary misbehaves — 503s, a hang past the attempt timeout, a connection dropped mid-stream,
429s with Retry-After. Every case goes through the official `openai` and `anthropic` SDKs
(both dialects), streaming and not; the circuit breaker is watched through GET
/admin/circuit-breakers and through what the primary simulator receives."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import anthropic
import httpx2
import openai
import pytest

from gatewayz.simulators import Fault, Simulator
from gatewayz.simulators.protocol import Reply, Request
from gatewayz.simulators.server import CHAT_PATHS
from tests.e2e.harness import (
    Gateway,
    add_user,
    gateway_settings,
    set_price,
    simulators,
    start_gateway,
)
from tests.money.conftest import money, usage_rows, wait_settled

MODEL = "chaos-model"
MSG = [{"role": "user", "content": "hello"}]
ATTEMPT_TIMEOUT_S = 0.5  # upstream_read_timeout_s: one attempt's wait for the provider
HANG_S = 5.0  # how long the hanging provider sits on a request (far past the timeout)
OPEN_S = 1.5  # breaker_open_s
THRESHOLD = 5  # breaker_failure_threshold (the default, stated)
RETRIES_429 = 2  # upstream_429_retries (the default, stated)
MAX_WAIT_S = 5.0  # upstream_429_max_wait_s (the default, stated)
RETRY_AFTER = "0.3"
# Every request pins the chain's order: the primary first. Breakers apply to an explicit order
# like to any other; pinning keeps load balancing (which demotes a provider this worker saw
# failing) from moving the primary behind the secondary, so that each step is deterministic.
PRIMARY, SECONDARY = "vllm", "lm-studio"
PIN = {"provider": {"order": [PRIMARY, SECONDARY]}}
DROP_TEXT = "alpha beta gamma delta epsilon zeta eta theta iota kappa"

# (dialect, stream): every test that is not dialect-specific runs through all four.
COMBOS = [
    pytest.param("openai", False, id="openai"),
    pytest.param("openai", True, id="openai-stream"),
    pytest.param("anthropic", False, id="anthropic"),
    pytest.param("anthropic", True, id="anthropic-stream"),
]
SDK_ERRORS = (openai.APIStatusError, anthropic.APIStatusError)


class TimedSimulator(Simulator):
    """A simulator that also notes when each chat request arrived (time.monotonic)."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    def _handle(self, req: Request) -> Reply:
        if req.path in CHAT_PATHS:
            self.arrivals.append(time.monotonic())
        return super()._handle(req)

    def clear(self) -> None:
        super().clear()
        self.arrivals.clear()

    @property
    def chats(self) -> int:
        return len([r for r in self.requests if r.path in CHAT_PATHS])


@pytest.fixture(scope="module")
def sims() -> Iterator[tuple[TimedSimulator, ...]]:
    with simulators(TimedSimulator) as pair:
        yield pair


@pytest.fixture(scope="module")
def gw(
    sims: tuple[TimedSimulator, TimedSimulator], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    a, b = sims
    settings = gateway_settings(
        tmp_path_factory.mktemp("chaos"),
        a,
        provider_env={
            PRIMARY: {"base_url": a.base_url, "models": MODEL},
            SECONDARY: {"base_url": b.base_url, "models": MODEL},
        },
        upstream_read_timeout_s=ATTEMPT_TIMEOUT_S,
        breaker_open_s=OPEN_S,
        breaker_failure_threshold=THRESHOLD,
        upstream_429_retries=RETRIES_429,
        upstream_429_max_wait_s=MAX_WAIT_S,
        price_refresh_s=3600,  # prices are set directly on the meter below
        ip_rate_limit_rpm=100_000,
    )
    g = start_gateway(settings, a)
    for slug in (PRIMARY, SECONDARY):  # the same price on both: a money check is exact
        set_price(g, MODEL, slug, prompt="10", completion="20")
    yield g
    g.stop()


@pytest.fixture(scope="module")
def admin_key(gw: Gateway) -> str:
    _, key = add_user(gw, credits_usd=1000, role="admin")
    return key


@pytest.fixture
def chain(
    gw: Gateway, sims: tuple[TimedSimulator, TimedSimulator]
) -> tuple[str, TimedSimulator, str, TimedSimulator]:
    """(primary slug, its simulator, secondary slug, its simulator); faults, recorded requests
    and the breakers (per provider and per provider × model) cleared."""
    for sim in sims:
        sim.clear()
    for slug in (PRIMARY, SECONDARY):
        asyncio.run(gw.services.breakers.reset(slug))
        asyncio.run(gw.services.breakers.reset(slug, MODEL))
    return PRIMARY, sims[0], SECONDARY, sims[1]


# ---- the SDKs ------------------------------------------------------------------------------


def ask(gw: Gateway, dialect: str, stream: bool) -> tuple[str, Any]:
    """One chat through the official SDK of `dialect`: (answer text, response headers)."""
    key = gw.api_key
    if dialect == "openai":
        oa = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)
        if stream:
            with oa.chat.completions.with_streaming_response.create(
                model=MODEL, messages=MSG, stream=True, extra_body=PIN
            ) as resp:
                chunks = list(resp.parse())
                text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
                return text, resp.headers
        raw = oa.chat.completions.with_raw_response.create(
            model=MODEL, messages=MSG, extra_body=PIN
        )
        return raw.parse().choices[0].message.content or "", raw.headers
    an = anthropic.Anthropic(base_url=gw.root, api_key=key, max_retries=0, timeout=30)
    if stream:
        with an.messages.stream(model=MODEL, max_tokens=50, messages=MSG, extra_body=PIN) as s:
            text = "".join(s.text_stream)
            return text, s.response.headers
    raw_msg = an.messages.with_raw_response.create(
        model=MODEL, max_tokens=50, messages=MSG, extra_body=PIN
    )
    block = raw_msg.parse().content[0]
    assert block.type == "text"
    return block.text, raw_msg.headers


def served(gw: Gateway, dialect: str, stream: bool, provider: str, attempts: int) -> None:
    """A chat succeeds, transparently: a normal answer, and only the headers say by whom."""
    text, headers = ask(gw, dialect, stream)
    assert text
    assert headers["x-gatewayz-provider"] == provider
    assert headers["x-gatewayz-attempts"] == str(attempts)


def breaker(gw: Gateway, admin_key: str, provider: str) -> dict[str, Any]:
    """The provider's entry in GET /admin/circuit-breakers."""
    r = httpx2.get(
        f"{gw.root}/admin/circuit-breakers",
        headers={"authorization": f"Bearer {admin_key}"},
        trust_env=False,
        timeout=10,
    )
    assert r.status_code == 200, r.text
    (entry,) = [e for e in r.json()["data"] if e["provider"] == provider and e["model"] is None]
    return dict(entry)


def sleep_until(wall_clock: float) -> None:
    time.sleep(max(0.0, wall_clock - time.time()) + 0.05)


# ---- a provider returning 503s ---------------------------------------------------------------


@pytest.mark.parametrize(("dialect", "stream"), COMBOS)
def test_503s_fail_over_open_the_breaker_and_a_probe_decides(
    gw: Gateway,
    chain: tuple[str, TimedSimulator, str, TimedSimulator],
    admin_key: str,
    dialect: str,
    stream: bool,
) -> None:
    first, primary, second, backup = chain

    def trip() -> dict[str, Any]:
        """THRESHOLD requests, each failing on the primary and served by the secondary."""
        for i in range(1, THRESHOLD + 1):
            primary.fault(Fault(status=503))
            served(gw, dialect, stream, second, attempts=2)
            entry = breaker(gw, admin_key, first)
            assert entry["failures"] == i
            assert entry["state"] == ("open" if i == THRESHOLD else "closed")
        return breaker(gw, admin_key, first)

    opened = trip()
    assert primary.chats == THRESHOLD and backup.chats == THRESHOLD
    assert opened["retry_at"] == pytest.approx(opened["opened_at"] + OPEN_S)
    assert breaker(gw, admin_key, second)["state"] == "closed"

    # OPEN: the primary is skipped, it receives nothing; one attempt each.
    for _ in range(3):
        served(gw, dialect, stream, second, attempts=1)
    assert primary.chats == THRESHOLD

    # After breaker_open_s: HALF_OPEN; the probe succeeds and closes the breaker.
    sleep_until(opened["retry_at"])
    assert breaker(gw, admin_key, first)["state"] == "half_open"
    served(gw, dialect, stream, first, attempts=1)
    assert primary.chats == THRESHOLD + 1
    closed = breaker(gw, admin_key, first)
    assert (closed["state"], closed["failures"], closed["retry_at"]) == ("closed", 0, None)
    served(gw, dialect, stream, first, attempts=1)

    # Trip it again; this time the probe fails: OPEN again, timer restarted.
    primary.clear()
    reopened_before = trip()
    sleep_until(reopened_before["retry_at"])
    primary.fault(Fault(status=503))
    served(gw, dialect, stream, second, attempts=2)  # the probe failed over, transparently
    assert primary.chats == THRESHOLD + 1
    reopened = breaker(gw, admin_key, first)
    assert reopened["state"] == "open"
    assert reopened["opened_at"] > reopened_before["opened_at"]
    assert reopened["retry_at"] == pytest.approx(reopened["opened_at"] + OPEN_S)
    served(gw, dialect, stream, second, attempts=1)
    assert primary.chats == THRESHOLD + 1


# ---- a provider hanging past the attempt timeout ---------------------------------------------


@pytest.mark.parametrize(("dialect", "stream"), COMBOS)
def test_a_hanging_provider_times_out_and_the_secondary_answers(
    gw: Gateway,
    chain: tuple[str, TimedSimulator, str, TimedSimulator],
    admin_key: str,
    dialect: str,
    stream: bool,
) -> None:
    first, primary, second, backup = chain
    primary.fault(Fault(delay_s=HANG_S))
    started = time.monotonic()
    served(gw, dialect, stream, second, attempts=2)
    elapsed = time.monotonic() - started
    # One attempt timeout, plus the secondary's (fast) answer: nowhere near the hang.
    assert ATTEMPT_TIMEOUT_S <= elapsed < ATTEMPT_TIMEOUT_S + 1.0, elapsed
    assert primary.chats == 1 and backup.chats == 1
    entry = breaker(gw, admin_key, first)
    assert (entry["state"], entry["failures"]) == ("closed", 1)  # counted against the primary


def test_timeouts_alone_open_the_breaker(
    gw: Gateway, chain: tuple[str, TimedSimulator, str, TimedSimulator], admin_key: str
) -> None:
    first, primary, second, _ = chain
    for _ in range(THRESHOLD):
        primary.fault(Fault(delay_s=HANG_S))
        served(gw, "openai", False, second, attempts=2)
    assert breaker(gw, admin_key, first)["state"] == "open"
    served(gw, "openai", False, second, attempts=1)  # no more waiting on the hanging one
    assert primary.chats == THRESHOLD


# ---- a provider dropping the connection mid-stream ------------------------------------------


@pytest.mark.parametrize("dialect", ["openai", "anthropic"])
def test_a_connection_dropped_mid_stream_ends_with_an_error_event_and_is_refunded(
    gw: Gateway,
    chain: tuple[str, TimedSimulator, str, TimedSimulator],
    admin_key: str,
    dialect: str,
) -> None:
    first, primary, _, backup = chain
    user, key = add_user(gw, credits_usd="1")
    before = money(gw, user)
    primary.fault(Fault(text=DROP_TEXT, drop_after_chunks=4))
    seen: list[str] = []
    headers: Any = None
    if dialect == "openai":
        oa = openai.OpenAI(base_url=gw.base_url, api_key=key, max_retries=0, timeout=30)
        with (
            pytest.raises(openai.APIError) as caught,
            oa.chat.completions.with_streaming_response.create(
                model=MODEL, messages=MSG, max_tokens=100, stream=True, extra_body=PIN
            ) as resp,
        ):
            headers = resp.headers
            for chunk in resp.parse():
                seen.extend(c.delta.content or "" for c in chunk.choices)
        # An OpenAI-shaped error in the stream (`data: {"error": ...}`), not a broken stream.
        assert not isinstance(caught.value, openai.APIConnectionError)
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["message"] and caught.value.body["type"]
    else:
        an = anthropic.Anthropic(base_url=gw.root, api_key=key, max_retries=0, timeout=30)
        with (
            pytest.raises(anthropic.APIStatusError) as caught_a,
            an.messages.stream(model=MODEL, max_tokens=100, messages=MSG, extra_body=PIN) as s,
        ):
            headers = s.response.headers
            seen.extend(s.text_stream)
        # Anthropic's `event: error`, parsed by the SDK.
        body = caught_a.value.body
        assert isinstance(body, dict) and body["type"] == "error"
        assert body["error"]["type"] and body["error"]["message"]
    # The client saw the first chunks, then the error; no failover after the first byte.
    text = "".join(seen)
    assert text and DROP_TEXT.startswith(text) and text != DROP_TEXT
    assert headers["x-gatewayz-provider"] == first and headers["x-gatewayz-attempts"] == "1"
    assert primary.chats == 1 and backup.chats == 0
    # The money is released: balance unchanged, no charge, the ledger consistent.
    wait_settled(gw, user)
    after = money(gw, user)  # also verifies the ledger (storage.ledger.money.verify_ledger)
    assert [h["status"] for h in after["holds"]] == ["released"]
    assert after["credits_nanos"] == before["credits_nanos"] == 10**9
    assert after["held_nanos"] == 0 and usage_rows(after) == []
    # The failure counts against the provider that failed.
    assert breaker(gw, admin_key, first)["failures"] == 1


# ---- a provider answering 429 with Retry-After ----------------------------------------------


@pytest.mark.parametrize(("dialect", "stream"), COMBOS)
def test_429_retry_after_is_honoured_on_the_same_provider(
    gw: Gateway,
    chain: tuple[str, TimedSimulator, str, TimedSimulator],
    dialect: str,
    stream: bool,
) -> None:
    first, primary, _, backup = chain
    primary.fault(Fault(status=429, retry_after=RETRY_AFTER))
    served(gw, dialect, stream, first, attempts=2)
    assert len(primary.arrivals) == 2 and backup.chats == 0
    assert primary.arrivals[1] - primary.arrivals[0] >= float(RETRY_AFTER)


@pytest.mark.parametrize(("dialect", "stream"), COMBOS)
def test_429_after_the_bounded_retries_goes_back_to_the_caller(
    gw: Gateway,
    chain: tuple[str, TimedSimulator, str, TimedSimulator],
    dialect: str,
    stream: bool,
) -> None:
    _, primary, _, backup = chain
    for _ in range(RETRIES_429 + 2):  # one more than the gateway will try
        primary.fault(Fault(status=429, retry_after=RETRY_AFTER))
    started = time.monotonic()
    with pytest.raises(SDK_ERRORS) as caught:
        ask(gw, dialect, stream)
    elapsed = time.monotonic() - started
    err = caught.value
    assert isinstance(err, (openai.RateLimitError, anthropic.RateLimitError))
    assert err.status_code == 429
    assert float(err.response.headers["retry-after"]) >= float(RETRY_AFTER)
    assert err.response.headers["x-gatewayz-attempts"] == str(RETRIES_429 + 1)
    assert len(primary.arrivals) == RETRIES_429 + 1 and backup.chats == 0
    gaps = [b - a for a, b in zip(primary.arrivals, primary.arrivals[1:], strict=False)]
    assert all(g >= float(RETRY_AFTER) for g in gaps), gaps
    assert elapsed < RETRIES_429 * float(RETRY_AFTER) + 1.0


@pytest.mark.parametrize(("dialect", "stream"), COMBOS)
@pytest.mark.parametrize("as_date", [False, True], ids=["seconds", "http-date"])
def test_a_retry_after_over_the_max_wait_comes_back_at_once(
    gw: Gateway,
    chain: tuple[str, TimedSimulator, str, TimedSimulator],
    dialect: str,
    stream: bool,
    as_date: bool,
) -> None:
    _, primary, _, backup = chain
    # Retry-After is delay-seconds or an HTTP-date (RFC 9110): both mean "in a minute".
    retry_after = formatdate(time.time() + 60, usegmt=True) if as_date else "60"
    primary.fault(Fault(status=429, retry_after=retry_after))
    started = time.monotonic()
    with pytest.raises(SDK_ERRORS) as caught:
        ask(gw, dialect, stream)
    assert time.monotonic() - started < 1.0
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == retry_after
    assert primary.chats == 1 and backup.chats == 0
