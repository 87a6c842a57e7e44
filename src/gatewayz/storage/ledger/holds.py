"""Holds, the request path's ledger operations: reserve, settle, release.

Synchronous, on a `Connection` inside the caller's transaction, so one implementation serves
both paths: the async API in `gatewayz.billing.ledger` runs these on an async connection
(`run_sync`), and the request path runs them on SQLite in one dedicated thread — one thread
hop per operation instead of one per statement (`storage.ledger.runner`), on the stdlib sqlite3
connection itself. The statements are plain SQL, valid on SQLite and PostgreSQL and written
once: building SQLAlchemy expressions per request cost milliseconds, and even executing
prepared ones through SQLAlchemy costs several times what SQLite does. See
`gatewayz.billing.ledger` for the model and `gatewayz.storage.ledger` for the concurrency
argument (a hold is one conditional UPDATE; lock order is hold row, then user row).

The plan rules come in as arguments (`trial`, `trial_plan`, `daily_cap_nanos`): the plans are
billing's (`billing.plans`), the SQL that enforces them is here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import BigInteger, String, bindparam

from gatewayz.storage.ledger import outbox
from gatewayz.storage.ledger.money import WRITE_ROW, UnknownUser, check_nanos
from gatewayz.storage.ledger.sql import MOMENTS, Conn, day_of, execute, first, sql
from gatewayz.storage.tables import utcnow

DEFAULT_HOLD_TTL = timedelta(minutes=15)
NO_CAP = 2**62  # nano-dollars: no daily cap


class TrialLimits(Protocol):
    """The trial's terms a hold enforces (`billing.plans.TrialTerms`)."""

    @property
    def plan(self) -> str: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def max_requests(self) -> int: ...


# The reservation: balance, daily cap and trial limits checked by the one atomic UPDATE.
_RESERVE = sql(
    """
    UPDATE users SET held_nanos = held_nanos + :amount, updated_at = :moment
    WHERE id = :user_id
      AND allowance_nanos + credits_nanos - held_nanos >= :amount
      AND (CASE WHEN spend_day = :day THEN spend_day_nanos ELSE 0 END) + held_nanos + :amount
          <= :cap
      AND (plan <> :trial_plan OR (
            (trial_ends_at IS NULL OR trial_ends_at > :moment)
            AND trial_tokens_used < :trial_tokens AND trial_requests_used < :trial_requests))
    RETURNING id
    """,
    MOMENTS[0],
    bindparam("cap", type_=BigInteger()),
    bindparam("day", type_=String()),
)
_INSERT_HOLD = sql(
    """
    INSERT INTO credit_holds (request_id, user_id, amount_nanos, status, created_at, expires_at)
    VALUES (:request_id, :user_id, :amount, 'held', :moment, :expires)
    ON CONFLICT DO NOTHING
    RETURNING request_id
    """,
    *MOMENTS,
)
_CLOSE_HOLD = sql(
    """
    UPDATE credit_holds SET status = :status
    WHERE request_id = :request_id AND status = 'held'
    RETURNING user_id, amount_nanos
    """
)
_CLOSE_USER_HOLD = sql(
    """
    UPDATE credit_holds SET status = :status
    WHERE request_id = :request_id AND status = 'held' AND user_id = :user_id
    RETURNING user_id, amount_nanos
    """
)
# After a settle: the money, the day's spend and (on the trial plan) the trial's counters.
SETTLED = sql(
    """
    UPDATE users SET
      allowance_nanos = :allowance, credits_nanos = :purchased, held_nanos = :held,
      spend_day_nanos = (CASE WHEN spend_day = :day THEN spend_day_nanos ELSE 0 END) + :charged,
      spend_day = :day,
      trial_tokens_used = trial_tokens_used
        + (CASE WHEN plan = :trial_plan THEN :tokens ELSE 0 END),
      trial_requests_used = trial_requests_used
        + (CASE WHEN plan = :trial_plan THEN :requests ELSE 0 END)
    WHERE id = :user_id
    """,
    bindparam("day", type_=String()),
)
_STATUS = sql("SELECT status FROM credit_holds WHERE request_id = :request_id")
_MARK_SETTLED = sql(
    "UPDATE credit_holds SET status = 'settled' WHERE request_id = :request_id "
    "AND status <> 'settled'"
)
_USER_EXISTS = sql("SELECT id FROM users WHERE id = :user_id")
_LOCK_MONEY = sql(
    "UPDATE users SET updated_at = :moment WHERE id = :user_id "
    "RETURNING allowance_nanos, credits_nanos, held_nanos, webhook_watch_nanos",
    MOMENTS[0],
)
_UNHOLD = sql(
    "UPDATE users SET held_nanos = held_nanos - :amount, updated_at = :moment WHERE id = :user_id",
    MOMENTS[0],
)


def hold(
    conn: Conn,
    user_id: str,
    request_id: str,
    max_nanos: int,
    *,
    now: datetime | None = None,
    ttl: timedelta = DEFAULT_HOLD_TTL,
    daily_cap_nanos: int | None = None,
    trial: TrialLimits | None = None,
    fresh: bool = False,
) -> bool:
    """Reserve `max_nanos` for a request; False when the available balance is insufficient.

    The same atomic UPDATE also enforces, when given, the daily spend cap (today's settled
    spend + open holds + this one ≤ cap) and, for a user on `trial.plan`, the trial's end and
    token and request limits. Retrying with the same request id returns True while that hold
    is open and False once it has been settled or released (request ids are single-use).
    `fresh`: the id was just generated, skip the look-up of an earlier hold with it (a
    collision is still caught by the hold's primary key).
    """
    check_nanos("max_nanos", max_nanos)
    moment = now or utcnow()
    if not fresh:
        status = _status(conn, request_id)
        if status is not None:
            return status == "held"
    reserved = first(
        conn,
        _RESERVE,
        {
            "amount": max_nanos,
            "moment": moment,
            "user_id": user_id,
            "day": day_of(moment),
            "cap": NO_CAP if daily_cap_nanos is None else daily_cap_nanos,
            "trial_plan": trial.plan if trial is not None else "",
            "trial_tokens": trial.max_tokens if trial is not None else 0,
            "trial_requests": trial.max_requests if trial is not None else 0,
        },
    )
    if reserved is None:
        if first(conn, _USER_EXISTS, {"user_id": user_id}) is None:
            raise UnknownUser(user_id)
        return False
    params = {
        "request_id": request_id,
        "user_id": user_id,
        "amount": max_nanos,
        "moment": moment,
        "expires": moment + ttl,
    }
    if first(conn, _INSERT_HOLD, params) is None:
        # Lost a race with the same request id: undo our reservation.
        execute(conn, _UNHOLD, {"amount": max_nanos, "moment": moment, "user_id": user_id})
        return _status(conn, request_id) == "held"
    return True


def _status(conn: Conn, request_id: str) -> str | None:
    found = first(conn, _STATUS, {"request_id": request_id})
    return None if found is None else str(found[0])


def close_hold(
    conn: Conn, request_id: str, status: str, user_id: str | None = None
) -> tuple[str, int] | None:
    """Move an open hold to `status`; its (user id, amount), or None if it was not open."""
    params = {"status": status, "request_id": request_id}
    if user_id is None:
        row = first(conn, _CLOSE_HOLD, params)
    else:
        row = first(conn, _CLOSE_USER_HOLD, {**params, "user_id": user_id})
    return None if row is None else (str(row[0]), int(row[1]))


def settle(
    conn: Conn,
    user_id: str,
    request_id: str,
    actual_nanos: int,
    *,
    tokens: int = 0,
    now: datetime | None = None,
    description: str = "",
    trial_plan: str = "",
) -> int:
    """Charge the actual cost of a held request, in full, and release the hold; the nanos
    charged.

    Allowance is spent first, then purchased credits. A cost the balance cannot cover (a
    provider that billed more than the hold's bound) is still charged whole, never capped:
    purchased credits go negative by the difference (the meter counts and logs it). No open
    hold (already settled or released, or never held) → no-op, 0. If the request id was
    already charged with `charge`, the hold is only released. The charge counts towards the
    day's spend (UTC); a request that produced tokens counts towards the trial's limits when
    the user is on the trial plan (`trial_plan`; '': no trial counting).
    """
    check_nanos("actual_nanos", actual_nanos)
    check_nanos("tokens", tokens)
    moment = now or utcnow()
    closed = close_hold(conn, request_id, "settled", user_id)
    if closed is None:
        return 0
    return _charge(
        conn, user_id, request_id, actual_nanos, closed[1], tokens, moment, description, trial_plan
    )


def settle_late(
    conn: Conn,
    user_id: str,
    request_id: str,
    actual_nanos: int,
    *,
    tokens: int = 0,
    now: datetime | None = None,
    description: str = "",
    trial_plan: str = "",
) -> int:
    """A settle the database could not take when the answer was delivered, replayed later:
    the hold is settled if it is still open; if the sweep released it meanwhile (its TTL
    passed during a long outage), the delivered answer is charged all the same, once (the
    ledger row's `(request_id, type)` key), and the hold marked settled."""
    check_nanos("actual_nanos", actual_nanos)
    check_nanos("tokens", tokens)
    moment = now or utcnow()
    status = _status(conn, request_id)
    if status == "held":
        return settle(
            conn,
            user_id,
            request_id,
            actual_nanos,
            tokens=tokens,
            now=now,
            description=description,
            trial_plan=trial_plan,
        )
    if status == "settled":
        return 0  # done already (by another worker replaying the same settle)
    execute(conn, _MARK_SETTLED, {"request_id": request_id})
    return _charge(
        conn, user_id, request_id, actual_nanos, 0, tokens, moment, description, trial_plan
    )


def _charge(
    conn: Conn,
    user_id: str,
    request_id: str,
    actual_nanos: int,
    released: int,
    tokens: int,
    moment: datetime,
    description: str,
    trial_plan: str,
) -> int:
    """Write the usage row (allowance first) and the user's money, `released` nanos of holds
    given back; the nanos charged (0 when the row existed)."""
    money = first(conn, _LOCK_MONEY, {"moment": moment, "user_id": user_id})
    if money is None:
        raise UnknownUser(user_id)
    allowance, purchased, held = (int(v) for v in money[:3])
    others_held = held - released
    charged = actual_nanos
    from_allowance = min(max(allowance, 0), charged)
    if charged > 0:
        split = f"allowance {from_allowance} + purchased {charged - from_allowance} nanos"
        row = {
            "user_id": user_id,
            "type": "usage",
            "amount": -charged,
            "after": allowance + purchased - charged,
            "request_id": request_id,
            "description": f"{description}; {split}" if description else split,
            "moment": moment,
        }
        if first(conn, WRITE_ROW, row) is None:  # already charged with `charge`
            charged = from_allowance = 0
    execute(
        conn,
        SETTLED,
        {
            "allowance": allowance - from_allowance,
            "purchased": purchased - (charged - from_allowance),
            "held": others_held,
            "day": day_of(moment),
            "charged": charged,
            "trial_plan": trial_plan,
            "tokens": tokens,
            "requests": 1 if charged or tokens else 0,
            "user_id": user_id,
        },
    )
    if charged:  # below the account's webhook watch: an event for the dispatcher
        outbox.balance_fell(conn, user_id, money[3], allowance + purchased - charged, moment)
    return charged


def release(conn: Conn, request_id: str) -> bool:
    """Drop an open hold with nothing charged (refund path); False if it was not open."""
    closed = close_hold(conn, request_id, "released")
    if closed is None:
        return False
    execute(conn, _UNHOLD, {"amount": closed[1], "moment": utcnow(), "user_id": closed[0]})
    return True
