"""Failover as a wrapper: `Fallback.run` tries one request's candidate routes in order, under
declared rules, around whatever an attempt is (send a request, open a stream).

The rules (`FailoverRules`, from settings):
- which errors move on to the next candidate: those marked `failover` — provider 401/402/403/
  404, 5xx, timeouts, connection failures, a 200 that is not an answer; a 400 never (returned
  as is); a provider that cannot take the request (`Unsupported`: nothing was sent) is skipped
  without counting as a failure;
- a 429 is retried on the same provider, `retries_429` times, after its `Retry-After` (seconds
  or an HTTP-date) or an exponential backoff with full jitter; a Retry-After longer than
  `max_retry_wait_s`, or one that would outlive the deadline, returns the 429 at once; never
  failed over;
- a candidate whose circuit breaker (provider, or provider × model) is open is skipped, and
  every attempt's outcome feeds the breakers and passive health;
- the deadline: nothing outlives `deadline_s` from the request's start; an attempt still
  running then is cancelled and the caller gets a 504 `deadline_exceeded`;
- streams fail over until their first byte: an attempt returns once the stream is open, and
  what fails after that is the stream's own error (the pipeline reports it to `failed`).
- with tracing on, each attempt (a 429 retry too) is its own span (observability/tracing.py).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Container, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from time import perf_counter
from typing import Protocol, TypeVar

from gatewayz.errors import (
    GatewayError,
    RateLimited,
    Unsupported,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gatewayz.observability.tracing import Tracing
from gatewayz.reliability.breaker import CircuitBreakers
from gatewayz.reliability.passive_health import PassiveHealth, Sample
from gatewayz.routing.explanation import Route

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FailoverRules:
    retries_429: int = 2
    max_retry_wait_s: float = 5.0
    deadline_s: float = 600.0


class Attempts(Protocol):
    """What a request keeps of its attempts (`pipeline.call.Call` is one)."""

    attempts: int
    sample: Sample | None
    attempt_t0: float

    def use(self, route: Route) -> None: ...

    def waited_upstream(self, seconds: float) -> None: ...


class Fallback:
    def __init__(
        self,
        rules: FailoverRules,
        breakers: CircuitBreakers,
        health: PassiveHealth,
        tracing: Tracing | None = None,
    ) -> None:
        self.rules = rules
        self.breakers = breakers
        self.health = health
        self.tracing = tracing or Tracing()

    async def run(
        self,
        routes: Sequence[Route],
        priced: Container[str],
        attempt: Callable[[Route], Awaitable[T]],
        log: Attempts,
        started: float,
    ) -> T:
        """The first candidate's answer that succeeds (`attempt(route)`), trying `routes` in
        order (those in `priced` only) from the request's start `started` (perf_counter)."""
        deadline = started + self.rules.deadline_s
        last: GatewayError | None = None
        for route in routes:
            key, native = route.key, route.native_id
            if (
                route.provider.slug not in priced
                or not await self.breakers.allow(key, native)
                or not await self.breakers.allow(key)
            ):
                continue
            remaining = deadline - perf_counter()
            if remaining <= 0:
                last = self._deadline_passed()
                break
            log.use(route)
            t0 = perf_counter()
            try:
                async with asyncio.timeout(remaining) as budget:
                    result = await self._with_429_retries(log, route, attempt, deadline)
            except TimeoutError:
                if not budget.expired():
                    raise
                self._sample(log, route, False, t0)
                last = self._deadline_passed()
                break
            except Unsupported as err:  # nothing was sent: this provider cannot take it
                log.attempts -= 1
                last = last or err
                continue
            except GatewayError as err:
                if err.failover or isinstance(err, UpstreamError):  # the provider's failure
                    self._sample(log, route, False, t0)
                    await self.failed(route, err)
                if err.failover:
                    last = err
                    continue
                raise
            self._sample(log, route, True, t0)
            await self.breakers.record_success(key, native)
            await self.breakers.record_success(key)
            return result
        raise last or UpstreamUnavailable(
            "Every provider serving this model is unavailable right now (circuit breakers "
            "open); retry shortly.",
            headers={"Retry-After": "30"},
        )

    async def failed(self, route: Route, err: GatewayError) -> None:
        """A failure counts against the provider × model breaker; and against the provider's,
        unless only the model is missing there (404)."""
        key = route.key
        await self.breakers.record_failure(key, route.native_id)
        if err.upstream_status != 404:
            await self.breakers.record_failure(key)

    def _deadline_passed(self) -> UpstreamTimeout:
        return UpstreamTimeout(
            f"No provider answered within the request deadline of {self.rules.deadline_s:g} s.",
            code="deadline_exceeded",
        )

    def _sample(self, log: Attempts, route: Route, ok: bool, t0: float) -> None:
        """Passive health: the attempt's outcome and its time to the provider's answer (for a
        stream, to its headers; its time to first token is added when that arrives)."""
        latency_ms = (perf_counter() - t0) * 1000
        log.sample = self.health.record(route.key, route.native_id, ok, latency_ms)
        log.attempt_t0 = t0

    async def _with_429_retries(
        self,
        log: Attempts,
        route: Route,
        attempt: Callable[[Route], Awaitable[T]],
        deadline: float,
    ) -> T:
        retries = self.rules.retries_429
        for retry in range(retries + 1):
            log.attempts += 1
            t = perf_counter()
            try:
                # Each attempt's span (tracing on): siblings, the failed ones marked so.
                with self.tracing.attempt(route.provider.slug, route.native_id, log.attempts):
                    return await attempt(route)
            except RateLimited as err:
                wait = self._backoff(retry, err.headers.get("Retry-After"))
                if retry == retries or wait is None or perf_counter() + wait >= deadline:
                    raise
                await asyncio.sleep(wait)
            finally:
                log.waited_upstream(perf_counter() - t)
        raise AssertionError("unreachable")

    def _backoff(self, retry: int, retry_after: str | None) -> float | None:
        """Retry-After when the provider sent one, else exponential with full jitter; None when
        the provider asks for longer than we hold a request (its 429 goes back at once)."""
        wait = retry_after_s(retry_after)
        if wait is None:
            return random.uniform(0, 0.25 * 2**retry)
        return max(0.0, wait) if wait <= self.rules.max_retry_wait_s else None


def retry_after_s(value: str | None) -> float | None:
    """A `Retry-After` header in seconds: delay-seconds or an HTTP-date (RFC 9110 §10.2.3);
    None when absent or unreadable."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()
