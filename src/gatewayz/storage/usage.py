"""A user's usage report from `request_logs`: per model, API key or UTC day, and in total.

Counts, token sums and spend are SQL aggregates. Latency percentiles are linear-interpolation
percentiles (PostgreSQL's `percentile_cont`, numpy's default): computed by PostgreSQL itself
there, and in Python on SQLite (which has no ordered-set aggregates) from the group's values
streamed in order, so both backends give the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.tables import api_keys, request_logs

GROUPS: tuple[str, ...] = ("model", "key", "day")
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
_DIGITS = 3  # latency is reported in ms to the microsecond


@dataclass
class UsageRow:
    """One group's (or the totals') figures; `spend_nanos` is what was charged."""

    group: str | None
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    spend_nanos: int = 0
    latency_ms: dict[str, float | None] = field(
        default_factory=lambda: dict.fromkeys(n for n, _ in PERCENTILES)
    )
    label: dict[str, Any] = field(default_factory=dict)  # an API key's name, prefix, last four


@dataclass
class UsageReport:
    group_by: str
    groups: list[UsageRow]
    totals: UsageRow


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The `q` percentile (0 ≤ q ≤ 1) of sorted values, interpolating linearly between the two
    nearest ranks (as `percentile_cont`); None for no values."""
    if not ordered:
        return None
    rank = q * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def _group_expr(conn: AsyncConnection, group_by: str) -> ColumnElement[Any]:
    c = request_logs.c
    if group_by == "model":
        return c.model
    if group_by == "key":
        return c.api_key_id
    if group_by == "day":  # the UTC calendar day, as YYYY-MM-DD
        if conn.dialect.name == "postgresql":
            return func.to_char(func.timezone("UTC", c.created_at), "YYYY-MM-DD")
        return func.strftime("%Y-%m-%d", c.created_at)  # SQLite stores naive UTC
    raise ValueError(f"group_by must be one of {', '.join(GROUPS)}; got {group_by!r}")


def _rounded(value: Any) -> float | None:
    return None if value is None else round(float(value), _DIGITS)


async def usage_report(
    conn: AsyncConnection, user_id: str, start: datetime, end: datetime, group_by: str
) -> UsageReport:
    """The user's requests logged in [start, end), grouped by `group_by` (model | key | day).

    Groups come busiest first (model, key) or in date order (day)."""
    c = request_logs.c
    group = _group_expr(conn, group_by).label("grp")
    where = (c.user_id == user_id, c.created_at >= start, c.created_at < end)
    sums = (
        func.count().label("requests"),
        func.coalesce(func.sum(case((c.status_code >= 400, 1), else_=0)), 0).label("errors"),
        func.coalesce(func.sum(c.prompt_tokens), 0).label("prompt_tokens"),
        func.coalesce(func.sum(c.completion_tokens), 0).label("completion_tokens"),
        func.coalesce(func.sum(c.total_tokens), 0).label("total_tokens"),
        func.coalesce(func.sum(c.cost_nanos), 0).label("spend_nanos"),
    )
    postgres = conn.dialect.name == "postgresql"
    pcts = (
        tuple(
            func.percentile_cont(q).within_group(c.latency_ms).label(name)
            for name, q in PERCENTILES
        )
        if postgres
        else ()
    )
    grouped = await conn.execute(select(group, *sums, *pcts).where(*where).group_by(group))
    totals_row = (await conn.execute(select(*sums, *pcts).where(*where))).one()

    groups: dict[str | None, UsageRow] = {}
    for r in grouped:
        groups[r.grp] = _row(r.grp, r)
    totals = _row(None, totals_row)
    if not postgres:
        await _python_percentiles(conn, group, where, groups, totals)
    if group_by == "key":
        await _label_keys(conn, user_id, groups)
    if group_by == "day":
        ordered = sorted(groups.values(), key=lambda g: g.group or "")
    else:
        ordered = sorted(groups.values(), key=lambda g: (-g.requests, g.group or ""))
    return UsageReport(group_by=group_by, groups=ordered, totals=totals)


def _row(key: str | None, r: Any) -> UsageRow:
    out = UsageRow(
        group=key,
        requests=int(r.requests),
        errors=int(r.errors),
        prompt_tokens=int(r.prompt_tokens),
        completion_tokens=int(r.completion_tokens),
        total_tokens=int(r.total_tokens),
        spend_nanos=int(r.spend_nanos),
    )
    for name, _ in PERCENTILES:
        if hasattr(r, name):
            out.latency_ms[name] = _rounded(getattr(r, name))
    return out


async def _python_percentiles(
    conn: AsyncConnection,
    group: ColumnElement[Any],
    where: tuple[ColumnElement[bool], ...],
    groups: dict[str | None, UsageRow],
    totals: UsageRow,
) -> None:
    """Percentiles from the latencies, streamed one group at a time in sorted order."""
    c = request_logs.c
    everything: list[float] = []
    current: str | None = None
    values: list[float] = []
    started = False

    def finish(key: str | None, ordered: list[float]) -> None:
        row = groups.get(key)
        if row is not None:
            for name, q in PERCENTILES:
                row.latency_ms[name] = _rounded(percentile(ordered, q))

    result = await conn.stream(
        select(group, c.latency_ms).where(*where).order_by(group, c.latency_ms)
    )
    async for grp, latency in result:
        if started and grp != current:
            finish(current, values)
            values = []
        started, current = True, grp
        values.append(float(latency))
        everything.append(float(latency))
    if started:
        finish(current, values)
    everything.sort()
    for name, q in PERCENTILES:
        totals.latency_ms[name] = _rounded(percentile(everything, q))


async def _label_keys(
    conn: AsyncConnection, user_id: str, groups: dict[str | None, UsageRow]
) -> None:
    """Name and display prefix of each API key group (keys since deleted keep their id only)."""
    ids = [k for k in groups if k is not None]
    found: dict[str, Any] = {}
    if ids:
        rows = await conn.execute(
            select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.last_four).where(
                api_keys.c.user_id == user_id, api_keys.c.id.in_(ids)
            )
        )
        found = {r.id: r for r in rows}
    for key_id, row in groups.items():
        r = found.get(key_id) if key_id is not None else None
        row.label = {
            "key_name": r.name if r is not None else None,
            "key_prefix": r.prefix if r is not None else None,
            "key_last_four": r.last_four if r is not None else None,
        }
