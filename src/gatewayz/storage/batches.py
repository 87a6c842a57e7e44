"""Batches and their request lines, the storage side (tables: storage/batch_tables.py; the rules:
gatewayz.batches).

Claims are exclusive and leased, as the webhook deliveries' are (storage/webhooks.py): one
statement takes free lines and marks them running — PostgreSQL skipping rows another transaction
holds (`FOR UPDATE SKIP LOCKED`), SQLite under its single writer. A claimed line carries its
worker's id and a lease the worker renews while it runs; every later write of the line is
conditional on that claim, so one worker runs a line at a time, and the lines of a worker that
died are taken again once their lease lapses. Finishing a batch is claimed the same way, and its
final status is written in one transaction with its `batch.completed` event (the outbox).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.batch_tables import batch_lines, batches
from gatewayz.storage.files import insert_file
from gatewayz.storage.ledger.outbox import add_event_async
from gatewayz.storage.tables import credit_transactions

BATCH_COMPLETED = "batch.completed"  # the webhook event of a batch that ended, however it ended
ACTIVE = ("validating", "in_progress", "cancelling", "finalizing")
ENDED_AT = {
    "completed": "completed_at",
    "failed": "failed_at",
    "expired": "expired_at",
    "cancelled": "cancelled_at",
}
_OPEN = ("pending", "running")
_CHUNK = 1000
_b, _l = batches.c, batch_lines.c


def _picked(conn: AsyncConnection, query: Any, of: Any) -> Any:
    """The rows `query` picks, locked (skipping those others hold) and picked once: as a
    materialized CTE, since PostgreSQL may run an `IN (SELECT … LIMIT n)` again for every row of
    the statement around it, taking more than n."""
    if conn.dialect.name != "postgresql":
        cte = query.cte("picked")
    else:
        cte = query.with_for_update(skip_locked=True, of=of).cte("picked")
        cte = cte.prefix_with("MATERIALIZED")
    return select(*cte.c)


# ---- the API's side ------------------------------------------------------------------------
async def create_batch(
    conn: AsyncConnection, row: Mapping[str, Any], lines: Iterable[tuple[int, str, str]]
) -> None:
    """The batch and its lines, (line number, custom_id, body JSON), in the caller's
    transaction."""
    await conn.execute(insert(batches).values(**row))
    chunk: list[dict[str, Any]] = []
    for line_no, custom_id, body in lines:
        chunk.append({"batch_id": row["id"], "line_no": line_no, "custom_id": custom_id})
        chunk[-1].update(body=body, status="pending", attempts=0)
        if len(chunk) == _CHUNK:
            await conn.execute(insert(batch_lines), chunk)
            chunk = []
    if chunk:
        await conn.execute(insert(batch_lines), chunk)


async def get_batch(
    conn: AsyncConnection, user_id: str | None, batch_id: str
) -> dict[str, Any] | None:
    """One batch (of `user_id`, when given: another user's is None, like a missing one)."""
    query = select(batches).where(_b.id == batch_id)
    if user_id is not None:
        query = query.where(_b.user_id == user_id)
    found = (await conn.execute(query)).first()
    return None if found is None else dict(found._mapping)


async def list_batches(
    conn: AsyncConnection, user_id: str, limit: int, after: str | None
) -> list[dict[str, Any]]:
    """Newest first, up to `limit`, starting after the batch `after` (the last id of the previous
    page; an unknown one gives an empty page)."""
    query = select(batches).where(_b.user_id == user_id)
    if after is not None:
        mark = await get_batch(conn, user_id, after)
        if mark is None:
            return []
        query = query.where(tuple_(_b.created_at, _b.id) < tuple_(mark["created_at"], after))
    query = query.order_by(_b.created_at.desc(), _b.id.desc()).limit(limit)
    return [dict(r._mapping) for r in await conn.execute(query)]


async def cancel(conn: AsyncConnection, user_id: str, batch_id: str, now: datetime) -> None:
    """Cancel a batch that has not stopped taking lines: `cancelling`, and its lines not yet
    started never run (`unrun`); the lines running end as they end."""
    taken = await conn.execute(
        update(batches)
        .where(
            _b.id == batch_id,
            _b.user_id == user_id,
            _b.status.in_(("validating", "in_progress")),
            _b.ending.is_(None),
        )
        .values(status="cancelling", ending="cancelled", cancelling_at=now)
    )
    if taken.rowcount:
        await _unrun_pending(conn, select(_b.id).where(_b.id == batch_id))


async def _unrun_pending(conn: AsyncConnection, batch_ids: Any) -> None:
    await conn.execute(
        update(batch_lines)
        .where(_l.status == "pending", _l.batch_id.in_(batch_ids))
        .values(status="unrun", claimed_by=None, claimed_until=None)
    )


async def line_counts(conn: AsyncConnection, batch_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each batch's request counts and token usage from its lines (live batches; an ended one
    keeps them in `counts`)."""
    out = {i: _counts() for i in batch_ids}
    if not batch_ids:
        return out
    sums = [func.coalesce(func.sum(c), 0) for c in _TOKENS]
    query = (
        select(_l.batch_id, _l.status, func.count(), *sums)
        .where(_l.batch_id.in_(batch_ids))
        .group_by(_l.batch_id, _l.status)
    )
    for batch_id, status, n, *tokens in await conn.execute(query):
        counts = out[batch_id]
        if status in ("succeeded", "failed"):
            counts["completed" if status == "succeeded" else "failed"] += int(n)
        for name, value in zip(("input", "output", "cached", "reasoning"), tokens, strict=True):
            counts["usage"][name] += int(value)
    return out


_TOKENS = (_l.input_tokens, _l.output_tokens, _l.cached_tokens, _l.reasoning_tokens)


def _counts() -> dict[str, Any]:
    return {
        "completed": 0,
        "failed": 0,
        "usage": {"input": 0, "output": 0, "cached": 0, "reasoning": 0},
    }


# ---- the runner's side ---------------------------------------------------------------------
async def has_active(conn: AsyncConnection) -> bool:
    """Whether any batch is not yet ended: read first, so an idle round takes no write lock."""
    found = await conn.execute(select(_b.id).where(_b.status.in_(ACTIVE)).limit(1))
    return found.first() is not None


async def advance(conn: AsyncConnection, now: datetime) -> None:
    """New batches in progress; those past their window stop taking lines (`expired`); the
    pending lines of every batch that stopped taking lines never run."""
    await conn.execute(
        update(batches)
        .where(_b.status == "validating")
        .values(status="in_progress", in_progress_at=now)
    )
    await conn.execute(
        update(batches)
        .where(_b.status == "in_progress", _b.ending.is_(None), _b.expires_at <= now)
        .values(ending="expired")
    )
    stopped = select(_b.id).where(_b.status.in_(ACTIVE), _b.ending.is_not(None))
    await _unrun_pending(conn, stopped)


async def stop_batch(conn: AsyncConnection, batch_id: str, errors: list[dict[str, Any]]) -> None:
    """A batch that cannot go on (its key is gone): it takes no more lines and ends `failed`."""
    await conn.execute(
        update(batches)
        .where(_b.id == batch_id, _b.status.in_(("validating", "in_progress")))
        .where(_b.ending.is_(None))
        .values(ending="failed", errors={"object": "list", "data": errors})
    )
    await _unrun_pending(conn, select(_b.id).where(_b.id == batch_id))


async def claim_lines(
    conn: AsyncConnection,
    worker: str,
    limit: int,
    until: datetime,
    now: datetime,
    endpoints: Sequence[str],
    *,
    stale: bool = False,
) -> list[dict[str, Any]]:
    """Take up to `limit` lines for `worker` until `until`, oldest batch first: lines waiting to
    run, or (`stale`) lines still running under a lapsed claim (their worker died)."""
    if stale:
        state = and_(_l.status == "running", _l.claimed_until <= now)
        batch = _b.status.in_(ACTIVE)
    else:
        state = and_(
            _l.status == "pending", or_(_l.claimed_until.is_(None), _l.claimed_until <= now)
        )
        batch = and_(_b.status == "in_progress", _b.ending.is_(None))
    free = (
        select(_l.batch_id, _l.line_no)
        .select_from(batch_lines.join(batches, _b.id == _l.batch_id))
        .where(batch, _b.endpoint.in_(endpoints), state)
        .order_by(_b.created_at, _l.batch_id, _l.line_no)
        .limit(limit)
    )
    taken = (
        update(batch_lines)
        .where(tuple_(_l.batch_id, _l.line_no).in_(_picked(conn, free, batch_lines)))
        .where(state)
        .values(status="running", claimed_by=worker, claimed_until=until, attempts=_l.attempts + 1)
        .returning(_l.batch_id, _l.line_no, _l.custom_id, _l.body, _l.attempts)
    )
    return [dict(r._mapping) for r in await conn.execute(taken)]


async def renew(
    conn: AsyncConnection, worker: str, until: datetime, lines: Iterable[tuple[str, int]]
) -> None:
    """Extend `worker`'s claims of these lines (those it is running: a line whose outcome it
    could not write is left to lapse)."""
    keys = list(lines)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        await conn.execute(
            update(batch_lines)
            .where(_l.claimed_by == worker, _l.status == "running")
            .where(tuple_(_l.batch_id, _l.line_no).in_(chunk))
            .values(claimed_until=until)
        )


async def release(conn: AsyncConnection, worker: str) -> None:
    """A worker stopping: the lines it was running (and did not finish) wait to run again, the
    batches it was finishing are free to be finished."""
    await conn.execute(
        update(batch_lines)
        .where(_l.claimed_by == worker, _l.status == "running")
        .values(status="pending", claimed_by=None, claimed_until=None)
    )
    await conn.execute(
        update(batches)
        .where(_b.claimed_by == worker, _b.status.in_(ACTIVE))
        .values(claimed_by=None, claimed_until=None)
    )


async def finish_line(
    conn: AsyncConnection, batch_id: str, line_no: int, worker: str, values: Mapping[str, Any]
) -> bool:
    """Write a line `worker` holds (its outcome, or `pending` again); False when its claim is
    no longer that worker's."""
    done = await conn.execute(
        update(batch_lines)
        .where(_l.batch_id == batch_id, _l.line_no == line_no)
        .where(_l.claimed_by == worker, _l.status == "running")
        .values(claimed_by=None, **values)
    )
    return bool(done.rowcount)


async def charged(conn: AsyncConnection, request_id_prefix: str) -> bool:
    """Whether a charge was written for a request whose id starts with the prefix."""
    t = credit_transactions.c
    query = select(t.id).where(
        t.type == "usage", t.request_id.startswith(request_id_prefix, autoescape=True)
    )
    return (await conn.execute(query.limit(1))).first() is not None


async def batch_rows(conn: AsyncConnection, batch_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(select(batches).where(_b.id.in_(set(batch_ids))))
    return {r.id: dict(r._mapping) for r in rows}


# ---- finishing -----------------------------------------------------------------------------
async def claim_finished(
    conn: AsyncConnection, worker: str, until: datetime, now: datetime, limit: int
) -> list[dict[str, Any]]:
    """Batches none of whose lines is waiting or running (and no other worker is finishing),
    claimed by `worker` until `until`: `finalizing` (a cancelled batch stays `cancelling`)."""
    open_line = select(_l.line_no).where(_l.batch_id == _b.id, _l.status.in_(_OPEN)).exists()
    ready = (
        select(_b.id)
        .where(_b.status.in_(("in_progress", "cancelling", "finalizing")), ~open_line)
        .where(or_(_b.claimed_until.is_(None), _b.claimed_until <= now))
        .limit(limit)
    )
    running = _b.status == "in_progress"
    taken = (
        update(batches)
        .where(_b.id.in_(_picked(conn, ready, batches)))
        .values(
            claimed_by=worker,
            claimed_until=until,
            status=case((running, "finalizing"), else_=_b.status),
            finalizing_at=case((running, now), else_=_b.finalizing_at),
        )
        .returning(*batches.c)
    )
    return [dict(r._mapping) for r in await conn.execute(taken)]


async def lines_page(
    conn: AsyncConnection, batch_id: str, after: int, limit: int
) -> list[dict[str, Any]]:
    """Lines after line number `after`, in order: what the output and error files are made of."""
    query = (
        select(_l.line_no, _l.custom_id, _l.status, _l.result)
        .where(_l.batch_id == batch_id, _l.line_no > after)
        .order_by(_l.line_no)
        .limit(limit)
    )
    return [dict(r._mapping) for r in await conn.execute(query)]


async def end_batch(
    conn: AsyncConnection,
    batch: Mapping[str, Any],
    worker: str,
    status: str,
    now: datetime,
    *,
    output: Mapping[str, Any] | None,
    error: Mapping[str, Any] | None,
    counts: Mapping[str, Any],
    event: Mapping[str, Any],
) -> bool:
    """The batch's final status, the rows of its output and error files (None: no such lines)
    and its `batch.completed` event, in the caller's transaction; False (nothing written) when
    `worker` no longer holds the batch."""
    done = await conn.execute(
        update(batches)
        .where(_b.id == batch["id"], _b.claimed_by == worker)
        .where(_b.status.in_(("finalizing", "cancelling")))
        .values(
            status=status,
            output_file_id=output["id"] if output else None,
            error_file_id=error["id"] if error else None,
            counts=dict(counts),
            claimed_by=None,
            claimed_until=None,
            **{ENDED_AT[status]: now},
        )
    )
    if not done.rowcount:
        return False
    for row in (output, error):
        if row is not None:
            await insert_file(conn, row)
    await add_event_async(conn, BATCH_COMPLETED, event, user_id=batch["user_id"])
    return True
