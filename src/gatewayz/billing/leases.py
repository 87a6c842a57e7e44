"""Credit leases: a busy account's holds served from a slice of its balance, reserved once.

Holding and settling every request in the ledger puts two transactions on one user row per
request, and on PostgreSQL a busy customer's requests queue on that row's lock. Instead each
worker reserves a slice of an account's balance in one ledger transaction (a lease: an open hold
of its own, `storage.ledger.leases`) and takes each request's hold from it in memory — atomic,
since the event loop runs one request's check-and-take without a pause, and never past the
slice. The charges go back in batches: a settle queues its charge and waits for the next batch
to commit (group commit), so a response still completes only once its charge is in the ledger,
while a loaded worker writes one transaction per batch instead of two per request.

- Only a busy account gets a lease: one that made another request within `horizon_s`. An
  account that calls now and then is held per request, as a lease would cost it a reservation
  and a return for each request.
- A slice is sized by recent spend: what the lease's requests held per second over the last
  `horizon_s`, at least 8 times the request in hand, and twice the lease's last growth when
  that lasted less than `horizon_s` (a burst ramps up in a few steps); at most a quarter of
  what the account has free (other workers and replicas keep room). A lease that runs short
  grows in one transaction; concurrent requests of one account wait for the same growth.
- An idle lease (no request in flight, no use for `idle_s`) is given back; a lease in use is
  touched in the ledger before its expiry; a worker that dies leaves its leases to expire, and
  the sweep releases them like any hold: never spent twice, since the ledger only charges rows
  this worker wrote.
- A lease the ledger released meanwhile (its worker stalled past the expiry) stops serving; its
  requests in flight are still charged in full, and the next request starts a new lease.
- A batch the database cannot take is retried once, then each charge is spooled to disk
  (`settle_spool`) and the lease dropped: its reservation expires, the spool charges.
- When the account's free balance (or what is left of the day's cap) is below 200 holds like
  the request's, or the account is on the trial, the meter holds per request, as without
  leases: near its end a balance is held exactly, and its refusal is the 402. A lease
  another worker took earlier may still reserve the last slice for up to `idle_s`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from time import monotonic
from typing import TYPE_CHECKING

from gatewayz.background import Periodic
from gatewayz.billing.settle_spool import PendingSettle, SettleSpool
from gatewayz.lru import LRU
from gatewayz.storage.errors import DB_ERRORS
from gatewayz.storage.ledger import leases as ledger_leases
from gatewayz.storage.ledger.leases import Batch, Charge, LedgerConflict

if TYPE_CHECKING:
    from gatewayz.storage.ledger.runner import LedgerRunner

log = logging.getLogger("gatewayz.billing")

__all__ = ["Charge", "Lease", "Leases"]


@dataclass(slots=True, eq=False)
class Lease:
    id: str
    user_id: str
    since: float
    amount: int = 0  # what the ledger reserves for it, less the charges queued
    holding: int = 0  # the holds of its requests in flight
    taken: int = 0  # holds taken since `since` (sizes the next growth)
    granted: int = 0  # the last growth (a lease that keeps running short doubles it)
    used_at: float = 0.0
    touched_at: float = 0.0
    exists: bool = False  # written in the ledger
    queued: list[Charge] = field(default_factory=list)

    @property
    def free(self) -> int:
        return self.amount - self.holding


class Leases(Periodic):
    name = "credit leases"

    def __init__(
        self,
        ledger: LedgerRunner,
        spool: SettleSpool,
        *,
        ttl_s: float = 60.0,
        idle_s: float = 2.0,
        horizon_s: float = 2.0,
        trial_plan: str = "",
        eager: bool = False,
        clock: Callable[[], float] = monotonic,
        on_spooled: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(min(idle_s, ttl_s / 3))
        self.ledger = ledger
        self.spool = spool
        self.ttl = timedelta(seconds=ttl_s)
        self.idle_s = idle_s
        self.horizon_s = horizon_s
        self.trial_plan = trial_plan
        self.eager = eager  # a lease from an account's first request (tests)
        self.clock = clock
        self.on_spooled = on_spooled  # each charge spooled (the meter's counters)
        self.grows = 0  # ledger transactions that reserved (or tried to)
        self.flushes = 0  # ledger transactions that charged or gave back
        self._leases: dict[str, Lease] = {}
        self._growing: dict[str, asyncio.Task[int]] = {}
        self._pending: set[Lease] = set()  # leases with charges queued (current or not)
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._seen: LRU[str, float] = LRU(100_000)  # an account's last request without a lease
        self._declined: LRU[str, float] = LRU(100_000)  # when the ledger last refused a lease

    # ---- the request path ----------------------------------------------------------------
    def take(self, user_id: str, amount: int) -> Lease | None:
        """Hold `amount` from the account's lease, if it has that much free (no I/O)."""
        lease = self._leases.get(user_id)
        if lease is None or lease.free < amount:
            return None
        lease.holding += amount
        lease.taken += amount
        lease.used_at = self.clock()
        return lease

    async def reserve(self, user_id: str, amount: int, daily_cap_nanos: int | None) -> Lease | None:
        """Hold `amount` from a lease, growing it when short; None when the account cannot
        fund it or is not busy (the caller holds per request instead)."""
        if user_id not in self._leases and (not self._busy(user_id) or self._refused(user_id)):
            return None
        for _ in range(8):  # each growth at least doubles the last
            lease = self.take(user_id, amount)
            if lease is not None:
                return lease
            task = self._growing.get(user_id)
            if task is None:
                task = asyncio.ensure_future(self._grow(user_id, amount, daily_cap_nanos))
                self._growing[user_id] = task
                task.add_done_callback(lambda _, uid=user_id: self._growing.pop(uid, None))
            if await asyncio.shield(task) == 0:
                return self.take(user_id, amount)
        return None

    def _busy(self, user_id: str) -> bool:
        """Whether the account made another request within `horizon_s`: an account that calls
        now and then is held per request (a lease would cost it a reservation and a return)."""
        now = self.clock()
        last = self._seen.get(user_id)
        self._seen.put(user_id, now)
        return self.eager or (last is not None and now - last < self.horizon_s)

    def _refused(self, user_id: str) -> bool:
        """Whether the ledger refused the account a lease within `horizon_s` (a balance near
        its end): its requests are held one by one without asking again each time."""
        refused_at = self._declined.peek(user_id)
        return refused_at is not None and self.clock() - refused_at < self.horizon_s

    def release(self, lease: Lease, hold: int) -> None:
        """A request served from the lease ended with nothing to charge."""
        lease.holding -= hold

    async def charge(self, lease: Lease, hold: int, charge: Charge) -> None:
        """Queue a request's charge and wait until the batch that carries it is committed."""
        lease.holding -= hold
        lease.amount -= min(charge.nanos, max(lease.amount, 0))
        lease.queued.append(charge)
        lease.used_at = self.clock()
        self._pending.add(lease)
        done = asyncio.get_running_loop().create_future()
        self._waiters.append(done)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_queued())
        await done

    # ---- growing ---------------------------------------------------------------------------
    async def _grow(self, user_id: str, need: int, daily_cap_nanos: int | None) -> int:
        now = self.clock()
        lease = self._leases.get(user_id)
        if lease is None:
            lease = Lease(f"{ledger_leases.PREFIX}{secrets.token_hex(12)}", user_id, since=now)
        missing = max(need - lease.free, 1)
        rate = lease.taken / max(now - lease.since, 0.05)
        ramp = 2 * lease.granted if now - lease.since < self.horizon_s else 0  # spent fast
        target = max(need * 8, int(rate * self.horizon_s), ramp, missing)
        self.grows += 1
        granted = await self.ledger.run(
            ledger_leases.grow,
            user_id,
            lease.id,
            missing,
            target,
            exists=lease.exists,
            hold=need,
            ttl=self.ttl,
            daily_cap_nanos=daily_cap_nanos,
            trial_plan=self.trial_plan,
            account=user_id,
        )
        if granted < 0:  # released by the ledger meanwhile: the next try starts a new lease
            self._drop(lease)
            return granted
        if granted == 0:
            self._declined.put(user_id, now)
        if granted > 0:
            lease.amount += granted
            lease.granted, lease.exists = granted, True
            lease.since, lease.taken, lease.touched_at = now, 0, now
            self._leases[user_id] = lease
        return granted

    # ---- writing the charges -----------------------------------------------------------------
    async def _flush_queued(self) -> None:
        """Write what is queued, one transaction per batch; the charges queued meanwhile form
        the next batch."""
        while self._waiters:
            await _let_others_queue()
            waiters, self._waiters = self._waiters, []
            try:
                await self._write(self._batches())
            finally:
                for done in waiters:
                    if not done.done():
                        done.set_result(None)

    def _batches(self) -> list[Batch]:
        """The queued charges, a batch per lease, in account order: every worker's flush locks
        the accounts' rows in the same order, so two workers' flushes never deadlock."""
        return [self._batch(lease) for lease in sorted(self._pending, key=_by_account)]

    def _batch(self, lease: Lease, close: bool = False) -> Batch:
        charges, lease.queued = lease.queued, []
        self._pending.discard(lease)
        lease.touched_at = self.clock()
        return Batch(lease.id, lease.user_id, charges, close=close)

    async def _write(self, batches: list[Batch]) -> None:
        """One transaction for all the batches, retried once when the database fails. What still
        fails is written lease by lease, so one account's trouble (deleted meanwhile) does not
        hold back another's charges; a batch that fails alone is spooled, never dropped."""
        if not batches:
            return
        failure: Exception | None = None
        for attempt in range(2):
            try:
                self.flushes += 1
                left = await self.ledger.run_serial(
                    ledger_leases.flush,
                    batches,
                    ttl=self.ttl,
                    trial_plan=self.trial_plan,
                    replayed=attempt > 0,
                )
            except (*DB_ERRORS, LedgerConflict) as exc:
                failure = exc
                continue
            except Exception as exc:  # an unknown account, or a bug: not retried as a whole
                failure = exc
                break
            for batch, reserved in zip(batches, left, strict=True):
                if reserved is None and not batch.close:
                    current = self._leases.get(batch.user_id)
                    if current is not None and current.id == batch.lease_id:
                        self._drop(current)
            return
        if len(batches) > 1:
            for batch in batches:
                await self._write([batch])
            return
        log.error("lease batch of %d charges failed: %s", _count(batches), failure)
        self._spool(batches)

    def _spool(self, batches: list[Batch]) -> None:
        """The ledger refused the batch: each charge goes to the disk spool (replayed until the
        database takes it; one whose account is gone is kept for an operator) and the lease
        stops serving (its reservation expires)."""
        for batch in batches:
            current = self._leases.get(batch.user_id)
            if current is not None and current.id == batch.lease_id:
                self._drop(current)
            for charge in batch.charges:
                try:
                    self.spool.put(_pending(batch.user_id, charge))
                    if self.on_spooled is not None:
                        self.on_spooled()
                except OSError as exc:  # the database and the disk both failed
                    log.critical("charge of %s could not be recorded: %s", charge.request_id, exc)

    def _drop(self, lease: Lease) -> None:
        """The lease serves no more (given back, released by the ledger, or refused)."""
        if self._leases.get(lease.user_id) is lease:
            del self._leases[lease.user_id]

    # ---- background: give back idle leases, keep busy ones alive -----------------------------
    async def run_once(self) -> None:
        now = self.clock()
        batches: list[Batch] = []
        for user_id, lease in list(self._leases.items()):
            idle = lease.holding <= 0 and not lease.queued and now - lease.used_at >= self.idle_s
            if idle and user_id not in self._growing:
                self._drop(lease)
                batches.append(self._batch(lease, close=True))
            elif now - lease.touched_at >= self.ttl.total_seconds() / 3:
                lease.touched_at = now  # its queued charges stay with their waiters' batch
                batches.append(Batch(lease.id, user_id))
        await self._write(sorted(batches, key=lambda batch: (batch.user_id, batch.lease_id)))

    async def stop(self) -> None:
        """Stop the background job, write what is queued and give every lease back."""
        await super().stop()
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        leases = list(self._leases.values())
        for lease in leases:
            self._drop(lease)
        await self._write([self._batch(lease, close=True) for lease in leases])
        await self._write(self._batches())


async def _let_others_queue() -> None:
    """Two turns of the event loop before a batch is taken: requests whose answers are already
    in (their callbacks ready) queue their charges into this batch rather than the next one.
    Idle, that costs two empty turns (microseconds); busy, it halves the flushes (one CPU core
    at 32 connections: 11 % more requests per second, bench/scaling.sh case ab)."""
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def _pending(user_id: str, charge: Charge) -> PendingSettle:
    request, nanos, tokens = charge.request_id, charge.nanos, charge.tokens
    return PendingSettle(user_id, request, nanos, tokens, charge.description)


def _by_account(lease: Lease) -> tuple[str, str]:
    return lease.user_id, lease.id


def _count(batches: list[Batch]) -> int:
    return sum(len(batch.charges) for batch in batches)
