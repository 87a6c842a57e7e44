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

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import String, bindparam

from gatewayz.storage.ledger import outbox
from gatewayz.storage.ledger.holds import NO_CAP
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
    replayed: bool = False,
    now: datetime | None = None,
) -> list[int | None]:
    """Write the batches; per batch, what its lease still reserves (None: released meanwhile).
    `replayed`: some charges may be written already (a retry after LedgerConflict): they are
    looked up first and skipped.

    Set-based, so a flush costs the same few statements whatever the number of accounts and
    leases in it: the leases touched, the accounts locked (in id order), the usage rows
    inserted, the leases and the accounts updated."""
    moment = now or utcnow()
    if not batches:
        return []
    for charge in (charge for batch in batches for charge in batch.charges):
        check_nanos("nanos", charge.nanos)
        check_nanos("tokens", charge.tokens)
    reserved = _touch(conn, [batch.lease_id for batch in batches], moment + ttl)
    accounts = _lock(conn, sorted({batch.user_id for batch in batches}), moment)
    done: set[str] = set()
    if replayed:  # else the usage rows' unique key finds a replay (LedgerConflict: retried so)
        done = _charged_already(
            conn, [c.request_id for batch in batches for c in batch.charges if c.nanos]
        )
    rows: list[tuple[str, str, int, int, str]] = []
    leases: list[tuple[str, int, str]] = []
    left: list[int | None] = []
    for batch in batches:
        account = accounts.get(batch.user_id)
        if account is None:
            raise UnknownUser(batch.user_id)
        charged = 0
        for charge in batch.charges:
            account.tokens += charge.tokens
            account.requests += 1 if charge.nanos or charge.tokens else 0
            if charge.nanos == 0 or charge.request_id in done:  # a replay: never twice
                continue
            done.add(charge.request_id)
            rows.append((batch.user_id, *account.charge(charge)))
            charged += charge.nanos
        amount = reserved.get(batch.lease_id)
        if amount is not None:
            consumed = min(charged, amount)
            amount -= consumed
            account.unheld += consumed + (amount if batch.close else 0)
            if batch.close or consumed:
                leases.append((batch.lease_id, amount, "released" if batch.close else "held"))
        left.append(None if amount is None or batch.close else amount)
    _insert_usage(conn, rows, moment)
    if leases:
        execute(conn, _set_leases(len(leases)), _numbered(leases, "l", "m", "s"))
    values = [account.values() for account in accounts.values() if account.changed]
    if values:
        params = _numbered(values, "u", "a", "p", "h", "c", "t", "r")
        params |= {"day": day_of(moment), "trial_plan": trial_plan, "moment": moment}
        execute(conn, _set_accounts(len(values)), params)
    for account in accounts.values():  # below an account's webhook watch: an event
        if account.charged:
            after = account.allowance + account.purchased - account.charged
            outbox.balance_fell(conn, account.id, account.watch, after, moment)
    return left


@dataclass(slots=True)
class _Account:
    """An account's money, read under its row lock, and what the flush does to it."""

    id: str
    allowance: int
    purchased: int
    held: int
    watch: int | None = None  # its webhook watch (storage/ledger/outbox.py)
    from_allowance: int = 0
    charged: int = 0
    tokens: int = 0
    requests: int = 0
    unheld: int = 0

    def charge(self, charge: Charge) -> tuple[str, int, int, str]:
        """The usage row of `charge` (allowance first): request id, amount, balance after,
        description."""
        take = min(max(self.allowance - self.from_allowance, 0), charge.nanos)
        self.charged += charge.nanos
        self.from_allowance += take
        split = f"allowance {take} + purchased {charge.nanos - take} nanos"
        text = f"{charge.description}; {split}" if charge.description else split
        after = self.allowance + self.purchased - self.charged
        return charge.request_id, -charge.nanos, after, text

    @property
    def changed(self) -> bool:
        return bool(self.charged or self.tokens or self.requests or self.unheld)

    def values(self) -> tuple[str, int, int, int, int, int, int]:
        return (
            self.id,
            self.allowance - self.from_allowance,
            self.purchased - (self.charged - self.from_allowance),
            self.held - self.unheld,
            self.charged,
            self.tokens,
            self.requests,
        )


def _touch(conn: Conn, lease_ids: list[str], expires: datetime) -> dict[str, int]:
    """Renew the open leases among `lease_ids`; what each reserves."""
    params: dict[str, object] = {f"q{i}": lease_id for i, lease_id in enumerate(lease_ids)}
    params["expires"] = expires
    return {str(r[0]): int(r[1]) for r in fetch_all(conn, _touch_many(len(lease_ids)), params)}


def _lock(conn: Conn, user_ids: list[str], moment: datetime) -> dict[str, _Account]:
    """Lock the accounts' rows in id order (every worker's flush takes them in one order, so
    flushes never deadlock) and read their money."""
    params = {f"q{i}": user_id for i, user_id in enumerate(user_ids)}
    postgres = not isinstance(conn, sqlite3.Connection) and conn.dialect.name == "postgresql"
    found = fetch_all(conn, _lock_many(len(user_ids), postgres), params)
    return {str(r[0]): _Account(str(r[0]), int(r[1]), int(r[2]), int(r[3]), r[4]) for r in found}


def _insert_usage(conn: Conn, rows: list[tuple[str, str, int, int, str]], moment: datetime) -> None:
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        params = _numbered(chunk, "u", "r", "a", "b", "d") | {"moment": moment}
        if len(fetch_all(conn, _insert_rows(len(chunk)), params)) != len(chunk):
            raise LedgerConflict("a charge of the batch was written meanwhile")


def _numbered(rows: list[tuple[object, ...]], *names: str) -> dict[str, object]:
    """`{name}{i}` parameters for row i's values, in `names`' order."""
    return {
        f"{name}{i}": value
        for i, row in enumerate(rows)
        for name, value in zip(names, row, strict=True)
    }


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
    values = ", ".join(f"(:u{i}, 'usage', :a{i}, :b{i}, :r{i}, :d{i}, :moment)" for i in range(n))
    return sql(
        "INSERT INTO credit_transactions (user_id, type, amount_nanos, balance_after_nanos, "
        f"request_id, description, created_at) VALUES {values} "
        "ON CONFLICT DO NOTHING RETURNING id",
        MOMENTS[0],
    )


@lru_cache(maxsize=64)
def _touch_many(n: int) -> Any:
    marks = ", ".join(f":q{i}" for i in range(n))
    return sql(
        "UPDATE credit_holds SET expires_at = :expires "
        f"WHERE request_id IN ({marks}) AND status = 'held' RETURNING request_id, amount_nanos",
        bindparam("expires", type_=UTCDateTime()),
    )


@lru_cache(maxsize=128)
def _lock_many(n: int, postgres: bool) -> Any:
    marks = ", ".join(f":q{i}" for i in range(n))
    # SQLite: the ledger thread's BEGIN IMMEDIATE already holds the database's write lock.
    lock = " ORDER BY id FOR UPDATE" if postgres else ""
    return sql(
        "SELECT id, allowance_nanos, credits_nanos, held_nanos, webhook_watch_nanos FROM users "
        f"WHERE id IN ({marks}){lock}"
    )


@lru_cache(maxsize=64)
def _set_leases(n: int) -> Any:
    values = ", ".join(
        f"(CAST(:l{i} AS TEXT), CAST(:m{i} AS BIGINT), CAST(:s{i} AS TEXT))" for i in range(n)
    )
    return sql(
        "UPDATE credit_holds SET amount_nanos = v.column2, status = v.column3 "
        f"FROM (VALUES {values}) AS v "
        "WHERE credit_holds.request_id = v.column1 AND credit_holds.status = 'held'"
    )


@lru_cache(maxsize=64)
def _set_accounts(n: int) -> Any:
    values = ", ".join(
        f"(CAST(:u{i} AS TEXT), CAST(:a{i} AS BIGINT), CAST(:p{i} AS BIGINT), "
        f"CAST(:h{i} AS BIGINT), CAST(:c{i} AS BIGINT), CAST(:t{i} AS BIGINT), "
        f"CAST(:r{i} AS BIGINT))"
        for i in range(n)
    )
    return sql(
        f"""
        UPDATE users SET
          allowance_nanos = v.column2, credits_nanos = v.column3, held_nanos = v.column4,
          spend_day_nanos =
            (CASE WHEN users.spend_day = :day THEN users.spend_day_nanos ELSE 0 END) + v.column5,
          spend_day = :day,
          trial_tokens_used = users.trial_tokens_used
            + (CASE WHEN users.plan = :trial_plan THEN v.column6 ELSE 0 END),
          trial_requests_used = users.trial_requests_used
            + (CASE WHEN users.plan = :trial_plan THEN v.column7 ELSE 0 END),
          updated_at = :moment
        FROM (VALUES {values}) AS v
        WHERE users.id = v.column1
        """,
        bindparam("day", type_=String()),
        MOMENTS[0],
    )


@lru_cache(maxsize=_CHUNK)
def _select_charged(n: int) -> Any:
    marks = ", ".join(f":q{i}" for i in range(n))
    return sql(
        "SELECT request_id FROM credit_transactions "
        f"WHERE type = 'usage' AND request_id IN ({marks})"
    )
