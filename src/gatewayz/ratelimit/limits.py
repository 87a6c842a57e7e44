"""Key and anonymous rate-limit layers (SPEC §2), on the shared state backend.

Key layer: per-key requests per minute, tokens per day and tokens per month from the plan tier
(`billing/plans.toml`), each overridable per key by `api_keys.limits`
(`{"rpm", "tokens_per_day", "tokens_per_month"}`: an administrator's grant, above the plan or
below it, set by `PATCH /admin/api-keys/{id}` or the CLI). The key's owner may only lower its
requests per minute (`limits.user_rpm`, from `/user/api-keys`): that value caps the ceiling (the
administrator's `rpm`, else the plan's) and never raises it, whatever the plan is later. Fixed
windows on wall-clock time (UTC), so
every worker and replica agrees on the window; each check is ONE atomic round trip
(`incr_many`, a Lua script on Redis):

* `rate_limit:{api_key_id}:{minute}` (TTL 60 s) counts requests (refused ones too);
* `rate_limit_tpd:{api_key_id}:{yyyymmdd}` (TTL 1 day) and `rate_limit_tpm:{api_key_id}:{yyyymm}`
  (TTL 31 days) count tokens: read before the call (plus the prompt's estimate), incremented by
  the real usage after the response. The request does not wait for that increment: usage is
  queued (`add_tokens`) and written in batches, one round trip for the calls that ended within
  20 ms or while the previous batch was on its way; the key's next check carries what this
  worker queued for it and not yet sent, in its own round trip.

Anonymous layer: callers without a key, `:free` models only, `anon_rate:{ip_hash}:{minute}`
(TTL 60 s) against `anonymous_rpm`, stricter than any tier.

When the state backend cannot serve a call at all (Redis down AND the in-memory fallback
failing), the request is allowed and the event logged and counted: infrastructure failure never
blocks a request.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from gatewayz.billing.plans import Plans, load_plans
from gatewayz.ratelimit.headers import Decision
from gatewayz.security.auth import Principal
from gatewayz.state import StateBackend
from gatewayz.state.resilient import CONNECTIVITY_ERRORS

log = logging.getLogger("gatewayz.ratelimit")

MINUTE_S = 60
DAY_S = 86_400
MONTH_TTL_S = 31 * DAY_S
OVERRIDE_FIELDS = ("rpm", "tokens_per_day", "tokens_per_month")  # an administrator's
USER_RPM = "user_rpm"  # the key owner's own requests per minute: only ever lowers the ceiling
# The largest values anyone may store (validation bounds, not policy).
MAX_RPM = 1_000_000
MAX_TOKENS = 10**12

# Callers without an API key (`:free` models only). No user, no key: the request log stores NULL.
ANONYMOUS = Principal(
    api_key_id="",
    user_id="",
    env="",
    role="free",
    plan="anonymous",
    expires_at=None,
    record={},
)


def is_anonymous(principal: Principal) -> bool:
    return not principal.api_key_id


def ip_hash(ip: str) -> str:
    """The anonymous layer's identity of an IP: sha256 hex, truncated (no raw IPs in state)."""
    return hashlib.sha256(ip.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class KeyLimits:
    rpm: int
    tokens_per_day: int
    tokens_per_month: int


@dataclass
class LimiterMetrics:
    """Counters until Prometheus arrives: state fallbacks (Redis down → memory), fail-open
    admissions (state entirely unavailable) and refusals per layer."""

    state_fallbacks: int = 0
    fail_open: int = 0
    refused: dict[str, int] | None = None
    on_refused: Callable[[str], None] | None = None  # Prometheus (observability/metrics.py)

    def on_state_fallback(self, op: str, exc: Exception) -> None:
        """`ResilientState`'s on_fallback hook: Redis became unreachable."""
        self.state_fallbacks += 1
        log.warning(
            "rate limiting: Redis unreachable (%s: %s); using the in-memory fallback",
            op,
            exc.__class__.__name__,
        )

    def count_refusal(self, scope: str) -> None:
        if self.refused is None:
            self.refused = {}
        self.refused[scope] = self.refused.get(scope, 0) + 1
        if self.on_refused is not None:
            self.on_refused(scope)


def _count(value: Any) -> int | None:
    """A stored limit, if it is one (a non-negative integer); garbage is ignored, not trusted."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def rpm_ceiling(plans: Plans, plan: str, limits: Any) -> int:
    """The most requests per minute a key's owner may choose: the administrator's grant for
    the key, else the plan's."""
    granted = _count(limits.get("rpm")) if isinstance(limits, Mapping) else None
    return plans.tier(plan).rpm if granted is None else granted


def effective_limits(plans: Plans, plan: str, limits: Any) -> KeyLimits:
    """The plan tier's limits with an administrator's overrides applied, then the owner's own
    requests per minute if lower."""
    tier = plans.tier(plan)
    values = {f: getattr(tier, f) for f in OVERRIDE_FIELDS}
    if isinstance(limits, Mapping):
        for f in OVERRIDE_FIELDS:
            v = _count(limits.get(f))
            if v is not None:
                values[f] = v
        own = _count(limits.get(USER_RPM))
        if own is not None:
            values["rpm"] = min(values["rpm"], own)
    return KeyLimits(**values)


def key_limits(plans: Plans, principal: Principal) -> KeyLimits:
    return effective_limits(plans, principal.plan, principal.record.get("limits"))


_day_cache: tuple[int, str, str, float] = (-1, "", "", 0.0)
_LIMITS_CACHE_MAX = 10_000


def _windows(now: float) -> tuple[int, str, str, float, float, float]:
    """(minute, yyyymmdd, yyyymm, seconds to the end of the minute / day / month), UTC.
    The calendar part is computed once per day (this runs twice per request)."""
    global _day_cache
    day_index = int(now // DAY_S)
    if _day_cache[0] != day_index:
        t = time.gmtime(day_index * DAY_S)
        next_month = (t.tm_year + t.tm_mon // 12, t.tm_mon % 12 + 1)
        month_end = float(calendar.timegm((*next_month, 1, 0, 0, 0)))
        _day_cache = (day_index, time.strftime("%Y%m%d", t), time.strftime("%Y%m", t), month_end)
    _, day, month, month_end = _day_cache
    minute = int(now // MINUTE_S)
    return (
        minute,
        day,
        month,
        (minute + 1) * MINUTE_S - now,
        (day_index + 1) * DAY_S - now,
        month_end - now,
    )


# How long queued token usage waits for a check to carry it before it is written on its own.
TOKEN_WRITE_DELAY_S = 0.02


class RateLimiter:
    """The key and anonymous layers. `clock` is wall-clock seconds (injectable for tests)."""

    def __init__(
        self,
        state: StateBackend,
        plans: Plans | None = None,
        metrics: LimiterMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.state = state
        self.plans = plans or load_plans()
        self.metrics = metrics or LimiterMetrics()
        self.clock = clock
        # key id → (its plan, its limits object, the effective limits): a key's record is
        # cached by the authenticator, so the same objects come back until the key changes.
        self._limits: dict[str, tuple[str, Any, KeyLimits]] = {}
        self._queued: dict[str, tuple[int, float]] = {}  # token counter → (amount, its TTL)
        self._writer: asyncio.Task[None] | None = None

    def _key_limits(self, principal: Principal) -> KeyLimits:
        stored = principal.record.get("limits")
        hit = self._limits.get(principal.api_key_id)
        if hit is not None and hit[0] == principal.plan and hit[1] is stored:
            return hit[2]
        if len(self._limits) >= _LIMITS_CACHE_MAX:
            self._limits.clear()
        lim = effective_limits(self.plans, principal.plan, stored)
        self._limits[principal.api_key_id] = (principal.plan, stored, lim)
        return lim

    def _fail_open(self, layer: str, exc: Exception) -> None:
        self.metrics.fail_open += 1
        log.error(
            "rate limiting unavailable (%s layer: %s); request allowed", layer, exc, exc_info=False
        )

    async def check_key(self, principal: Principal, estimated_tokens: int = 0) -> Decision:
        """Count one request for the key and decide: RPM first, then the token budgets
        (tokens used so far plus `estimated_tokens` must fit)."""
        lim = self._key_limits(principal)
        kid = principal.api_key_id
        minute, day, month, to_minute, to_day, to_month = _windows(self.clock())
        tpd, tpm = f"rate_limit_tpd:{kid}:{day}", f"rate_limit_tpm:{kid}:{month}"
        queued = self._queued  # this key's usage not yet sent goes with the check
        day_add = queued.pop(tpd, (0, 0.0))[0] if queued else 0
        month_add = queued.pop(tpm, (0, 0.0))[0] if queued else 0
        try:
            used_rpm, used_day, used_month = await self.state.incr_many(
                [
                    (f"rate_limit:{kid}:{minute}", 1, MINUTE_S),
                    (tpd, day_add, DAY_S),
                    (tpm, month_add, MONTH_TTL_S),
                ]
            )
        except CONNECTIVITY_ERRORS as exc:
            self._fail_open("key", exc)
            return Decision(True, lim.rpm, lim.rpm, to_minute, "rpm", enforced=False)
        if used_rpm > lim.rpm:
            return self._refuse(Decision(False, lim.rpm, 0, to_minute, "rpm"))
        # Refused when the budget is spent, or when the prompt's estimate would overshoot it.
        est = max(0, estimated_tokens)
        if used_day >= lim.tokens_per_day or used_day + est > lim.tokens_per_day:
            return self._refuse(Decision(False, lim.tokens_per_day, 0, to_day, "tokens_per_day"))
        if used_month >= lim.tokens_per_month or used_month + est > lim.tokens_per_month:
            return self._refuse(
                Decision(False, lim.tokens_per_month, 0, to_month, "tokens_per_month")
            )
        return Decision(True, lim.rpm, lim.rpm - used_rpm, to_minute, "rpm")

    def add_tokens(self, principal: Principal, tokens: int) -> None:
        """Queue a finished call's real (or, failing that, estimated) usage: written by the next
        batch, or carried by the key's next check, whichever comes first."""
        for key, ttl in self._token_counters(principal, tokens):
            self._queued[key] = (self._queued.get(key, (0, ttl))[0] + tokens, ttl)
        if self._queued and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write_tokens())

    async def record_tokens(self, principal: Principal, tokens: int) -> None:
        """Count a finished call's usage now, in its own round trip."""
        try:
            await self.state.incr_many(
                [(key, tokens, ttl) for key, ttl in self._token_counters(principal, tokens)]
            )
        except CONNECTIVITY_ERRORS as exc:
            self._fail_open("token usage", exc)

    def _token_counters(self, principal: Principal, tokens: int) -> list[tuple[str, float]]:
        if tokens <= 0 or is_anonymous(principal):
            return []
        kid = principal.api_key_id
        _, day, month, *_ = _windows(self.clock())
        return [
            (f"rate_limit_tpd:{kid}:{day}", DAY_S),
            (f"rate_limit_tpm:{kid}:{month}", MONTH_TTL_S),
        ]

    async def flush(self) -> None:
        """Write what is queued (at shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)
        if self._queued:
            self._writer = asyncio.create_task(self._write_tokens())
            await self._writer

    async def _write_tokens(self) -> None:
        # A moment's wait: the key's next check, if it comes meanwhile, carries the usage in its
        # own round trip (one call per request instead of two when requests follow each other).
        await asyncio.sleep(TOKEN_WRITE_DELAY_S)
        while self._queued:
            batch, self._queued = self._queued, {}
            try:
                await self.state.incr_many([(k, n, ttl) for k, (n, ttl) in batch.items()])
            except CONNECTIVITY_ERRORS as exc:
                self._fail_open("token usage", exc)

    async def check_anonymous(self, ip: str) -> Decision:
        """Count one anonymous request from `ip` and decide."""
        limit = self.plans.anonymous_rpm
        minute, *_, to_minute, _to_day, _to_month = _windows(self.clock())
        try:
            used = await self.state.incr(f"anon_rate:{ip_hash(ip)}:{minute}", 1, MINUTE_S)
        except CONNECTIVITY_ERRORS as exc:
            self._fail_open("anonymous", exc)
            return Decision(True, limit, limit, to_minute, "anonymous", enforced=False)
        if used > limit:
            return self._refuse(Decision(False, limit, 0, to_minute, "anonymous"))
        return Decision(True, limit, limit - used, to_minute, "anonymous")

    async def check_ip(self, ip: str, limit: int) -> Decision:
        """The IP layer's window: sliding, 60 s, `limit` requests (already velocity-adjusted)."""
        try:
            res = await self.state.window_add(f"ip_rate:{ip_hash(ip)}", limit, MINUTE_S)
        except CONNECTIVITY_ERRORS as exc:
            self._fail_open("ip", exc)
            return Decision(True, limit, limit, MINUTE_S, "ip", enforced=False)
        decision = Decision(res.allowed, limit, res.remaining, res.reset_after_s, "ip")
        return decision if res.allowed else self._refuse(decision)

    def _refuse(self, decision: Decision) -> Decision:
        self.metrics.count_refusal(decision.scope)
        return decision

    def snapshot(self) -> dict[str, Any]:
        m = self.metrics
        return {
            "state_fallbacks": m.state_fallbacks,
            "fail_open": m.fail_open,
            "refused": m.refused or {},
        }
