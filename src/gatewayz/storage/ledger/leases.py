"""Credit leases, the ledger side: a worker reserves a slice of a balance once and serves many
requests' holds from it in memory (`billing.leases`); their charges come back in batches.

A lease is an open hold (`credit_holds`, status `held`, request id `lease.<random>`) whose
amount is what the slice still reserves, so every rule about holds holds for it: the user's
`held_nanos` is the sum of their open holds and leases (`money.verify_ledger`), a reservation
never exceeds the available balance or the day's cap (checked with the user's row locked), and
a lease whose worker died is released by the sweep once it expires (`release_expired`).

    grow()   reserve more for a lease (creating it): between `need` and `target`, at most a
             quarter of what is still free, so other workers and replicas keep room; 0 when
             the account's room (balance and the day's cap) is below `MIN_REQUESTS` times
             the request's hold (the caller holds per request, whose refusal is the 402), -1
             when the lease was released meanwhile (expired: start a new one). Trial accounts
             get no lease: their limits are counted per request.
    flush()  charge a batch of requests served from leases, each once and in full (one
             `usage` row per request, allowance first; idempotent by request id), and take
             what they cost out of the lease's reservation; `close` gives the rest back. A
             lease released meanwhile (swept) still charges: the sweep already gave back its
             whole reservation, so the charges are not taken out of `held` a second time.

Lock order as everywhere in the ledger: the hold (lease) row first, then the user row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam

from gatewayz.storage.ledger.holds import NO_CAP, SETTLED
from gatewayz.storage.ledger.money import UnknownUser, check_nanos
from gatewayz.storage.ledger.sql import MOMENTS, Conn, day_of, execute, fetch_all, first, sql
from gatewayz.storage.tables import UTCDateTime, utcnow

PREFIX = "lease."
# A lease is granted only while the account's free balance covers this many holds like the one
# in hand: near its end a balance is held per request, so none of it sits unused in one
# worker's lease while another worker refuses a request.
MIN_REQUESTS = 200

_TOUCH = sql(
    "UPDATE credit_holds SET expires_at = :expires "
    "WHERE request_id = :lease_id AND status = 'held' RETURNING amount_nanos",
    bindparam("expires", type_=UTCDateTime()),
)
_LOCK = sql(
    "UPDATE users SET updated_at = :moment WHERE id = :user_id RETURNING allowance_nanos, "
    "credits_nanos, held_nanos, plan, spend_day, spend_day_nanos",
    MOMENTS[0],
)
_NEW = sql(
    "INSERT INTO credit_holds (request_id, user_id, amount_nanos, status, created_at, expires_at) "
    "VALUES (:lease_id, :user_id, :amount, 'held', :moment, :expires)",
    *MOMENTS,
)
_SET = sql(
    "UPDATE credit_holds SET amount_nanos = :amount, status = :status "
    "WHERE request_id = :lease_id AND status = 'held'"
)
_HOLD_MORE = sql("UPDATE users SET held_nanos = held_nanos + :amount WHERE id = :user_id")


class LedgerConflict(RuntimeError):
    """A charge of the batch was written meanwhile by someone else: the batch is retried."""


@dataclass(frozen=True, slots=True)
class Charge:
    """One request served from a lease: what it cost."""

    request_id: str
    nanos: int
    tokens: int
    description: str


@dataclass(slots=True)
class Batch:
    """A lease's charges to write, and whether to give the rest of it back."""

    lease_id: str
    user_id: str
    charges: list[Charge] = field(default_factory=list)
    close: bool = False


def grow(
    conn: Conn,
    user_id: str,
    lease_id: str,
    need: int,
    target: int,
    *,
    exists: bool,
    hold: int,
    ttl: timedelta,
    daily_cap_nanos: int | None = None,
    trial_plan: str = "",
    now: datetime | None = None,
) -> int:
    """Reserve at least `need` and at most `target` more for the lease, whose requests hold
    `hold` each; what was granted."""
    check_nanos("need", need)
    check_nanos("target", target)
    moment = now or utcnow()
    expires = moment + ttl
    current = 0
    if exists:
        row = first(conn, _TOUCH, {"lease_id": lease_id, "expires": expires})
        if row is None:
            return -1
        current = int(row[0])
    money = first(conn, _LOCK, {"moment": moment, "user_id": user_id})
    if money is None:
        raise UnknownUser(user_id)
    allowance, purchased, held, plan, day, day_spend = money
    if trial_plan and plan == trial_plan:
        return 0
    spent_today = int(day_spend) if day == day_of(moment) else 0
    cap = NO_CAP if daily_cap_nanos is None else daily_cap_nanos
    room = min(int(allowance) + int(purchased) - int(held), cap - spent_today - int(held))
    if room < max(need, hold * MIN_REQUESTS):  # near its end a balance is held per request
        return 0
    grant = max(need, min(target, room // 4))
    execute(conn, _HOLD_MORE, {"amount": grant, "user_id": user_id})
    if exists:
        execute(conn, _SET, {"amount": current + grant, "status": "held", "lease_id": lease_id})
    else:
        params = {"lease_id": lease_id, "user_id": user_id, "amount": grant}
        execute(conn, _NEW, {**params, "moment": moment, "expires": expires})
    return grant


def flush(
    conn: Conn,
    batches: list[Batch],
    *,
    ttl: timedelta,
    trial_plan: str = "",
    now: datetime | None = None,
) -> list[int | None]:
    """Write each batch; per batch, what its lease still reserves (None: released meanwhile)."""
    moment = now or utcnow()
    left: list[int | None] = []
    for batch in batches:
        row = first(conn, _TOUCH, {"lease_id": batch.lease_id, "expires": moment + ttl})
        reserved = None if row is None else int(row[0])
        money = first(conn, _LOCK, {"moment": moment, "user_id": batch.user_id})
        if money is None:
            raise UnknownUser(batch.user_id)
        allowance, purchased, held = int(money[0]), int(money[1]), int(money[2])
        charged, from_allowance = _write_rows(
            conn, batch.user_id, batch.charges, allowance, allowance + purchased, moment
        )
        tokens = sum(charge.tokens for charge in batch.charges)
        requests = sum(1 for charge in batch.charges if charge.nanos or charge.tokens)
        unheld = 0
        if reserved is not None:
            consumed = min(charged, reserved)
            reserved -= consumed
            unheld = consumed + (reserved if batch.close else 0)
            if batch.close or consumed:
                status = "released" if batch.close else "held"
                execute(
                    conn, _SET, {"amount": reserved, "status": status, "lease_id": batch.lease_id}
                )
        execute(
            conn,
            SETTLED,
            {
                "allowance": allowance - from_allowance,
                "purchased": purchased - (charged - from_allowance),
                "held": held - unheld,
                "day": day_of(moment),
                "charged": charged,
                "trial_plan": trial_plan,
                "tokens": tokens,
                "requests": requests,
                "user_id": batch.user_id,
            },
        )
        left.append(None if reserved is None or batch.close else reserved)
    return left


def _write_rows(
    conn: Conn, user_id: str, charges: list[Charge], allowance: int, balance: int, moment: datetime
) -> tuple[int, int]:
    """One `usage` row per charge not written before (allowance first, the running balance
    after each), in a few multi-row statements; (nanos charged, of which from the allowance)."""
    for charge in charges:
        check_nanos("nanos", charge.nanos)
        check_nanos("tokens", charge.tokens)
    billable = [charge for charge in charges if charge.nanos]
    done = _charged_already(conn, [charge.request_id for charge in billable])
    rows: list[tuple[str, int, int, str]] = []
    charged = from_allowance = 0
    for charge in billable:
        if charge.request_id in done:  # a replay: never twice
            continue
        done.add(charge.request_id)
        take = min(max(allowance - from_allowance, 0), charge.nanos)
        split = f"allowance {take} + purchased {charge.nanos - take} nanos"
        text = f"{charge.description}; {split}" if charge.description else split
        rows.append((charge.request_id, -charge.nanos, balance - charged - charge.nanos, text))
        charged += charge.nanos
        from_allowance += take
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        params: dict[str, object] = {"user_id": user_id, "moment": moment}
        for i, (request_id, amount, after, text) in enumerate(chunk):
            params |= {f"r{i}": request_id, f"a{i}": amount, f"b{i}": after, f"d{i}": text}
        if len(fetch_all(conn, _insert_rows(len(chunk)), params)) != len(chunk):
            raise LedgerConflict(f"a charge of {user_id} was written meanwhile")
    return charged, from_allowance


def _charged_already(conn: Conn, request_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(request_ids), _CHUNK):
        chunk = request_ids[start : start + _CHUNK]
        params = {f"q{i}": request_id for i, request_id in enumerate(chunk)}
        found.update(str(row[0]) for row in fetch_all(conn, _select_charged(len(chunk)), params))
    return found


_CHUNK = 200


@lru_cache(maxsize=_CHUNK)
def _insert_rows(n: int) -> Any:
    values = ", ".join(
        f"(:user_id, 'usage', :a{i}, :b{i}, :r{i}, :d{i}, :moment)" for i in range(n)
    )
    return sql(
        "INSERT INTO credit_transactions (user_id, type, amount_nanos, balance_after_nanos, "
        f"request_id, description, created_at) VALUES {values} "
        "ON CONFLICT DO NOTHING RETURNING id",
        MOMENTS[0],
    )


@lru_cache(maxsize=_CHUNK)
def _select_charged(n: int) -> Any:
    marks = ", ".join(f":q{i}" for i in range(n))
    return sql(
        "SELECT request_id FROM credit_transactions "
        f"WHERE type = 'usage' AND request_id IN ({marks})"
    )
