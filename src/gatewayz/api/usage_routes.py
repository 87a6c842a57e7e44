"""`GET /user/usage`: the caller's requests, tokens, spend and latency per model, API key or UTC
day, as JSON or as a CSV download.

Query: `from` and `to` (inclusive UTC dates, YYYY-MM-DD; default the last 30 days, at most 366
days), `group_by` (model | key | day; default model), `format` (json | csv; default json).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from gatewayz.api.deps import caller, services_of
from gatewayz.errors import InvalidRequest
from gatewayz.money import usd_text as usd
from gatewayz.observability.request_log import user_usage
from gatewayz.security.auth import Principal
from gatewayz.storage.query_cache import USAGE, usage_from_json, usage_json
from gatewayz.storage.tables import utcnow
from gatewayz.storage.usage import GROUPS, PERCENTILES, UsageReport, UsageRow

router = APIRouter(prefix="/user", tags=["users"])

DEFAULT_DAYS = 30
MAX_DAYS = 366
FORMATS = ("json", "csv")
_GROUP_COLUMNS = {
    "model": ("model",),
    "key": ("api_key_id", "key_name", "key_prefix", "key_last_four"),
    "day": ("day",),
}
_FIGURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens")
_LATENCY = tuple(f"latency_{name}_ms" for name, _ in PERCENTILES)
_CSV_RISKY = ("=", "+", "-", "@", "\t", "\r")  # spreadsheet formula prefixes


def _date(value: str, name: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise InvalidRequest(
            f"'{name}' must be a date as YYYY-MM-DD; got {value!r}.", param=name
        ) from None


def date_range(start: str | None, end: str | None, today: date) -> tuple[date, date]:
    """Inclusive (from, to): the last 30 days by default; 400 for a bad or too long range."""
    last = _date(end, "to") if end is not None else today
    first = _date(start, "from") if start is not None else last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise InvalidRequest("'from' must not be after 'to'.", param="from")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidRequest(f"The range may span at most {MAX_DAYS} days.", param="from")
    return first, last


def row_json(report: UsageReport, row: UsageRow, *, total: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not total:
        columns = _GROUP_COLUMNS[report.group_by]
        out[columns[0]] = row.group
        out.update({c: row.label.get(c) for c in columns[1:]})
    out.update({f: getattr(row, f) for f in _FIGURES})
    out["spend"] = usd(row.spend_nanos)
    out.update(
        {f"latency_{name}_ms": row.latency_ms[name] for name, _ in PERCENTILES},
    )
    return out


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_CSV_RISKY):
        return "'" + value
    return "" if value is None else value


def to_csv(report: UsageReport) -> str:
    """A header row, then one row per group (no totals row: sum the columns)."""
    buffer = io.StringIO()
    header = [*_GROUP_COLUMNS[report.group_by], *_FIGURES, "spend_usd", *_LATENCY]
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    for row in report.groups:
        data = row_json(report, row)
        data["spend_usd"] = data.pop("spend")
        writer.writerow([_cell(data[h]) for h in header])
    return buffer.getvalue()


@router.get("/usage", response_model=None)
async def usage(
    request: Request,
    p: Annotated[Principal, Depends(caller)],
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    group_by: str = "model",
    format: str = "json",
) -> dict[str, Any] | Response:
    if group_by not in GROUPS:
        raise InvalidRequest(
            f"'group_by' must be one of {', '.join(GROUPS)}; got {group_by!r}.", param="group_by"
        )
    if format not in FORMATS:
        raise InvalidRequest(
            f"'format' must be one of {', '.join(FORMATS)}; got {format!r}.", param="format"
        )
    first, last = date_range(start, end, utcnow().date())
    since = datetime.combine(first, time.min, tzinfo=UTC)
    until = datetime.combine(last + timedelta(days=1), time.min, tzinfo=UTC)
    s = services_of(request)

    async def load() -> dict[str, Any]:
        return usage_json(await user_usage(s.db, p.user_id, since, until, group_by))

    key = f"{p.user_id}:{first.isoformat()}:{last.isoformat()}:{group_by}"
    report = usage_from_json(await s.query_cache.get(USAGE, key, load))
    if format == "csv":
        name = f"gatewayz-usage-{first.isoformat()}-{last.isoformat()}-by-{group_by}.csv"
        return Response(
            to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return {
        "object": "usage",
        "from": first.isoformat(),
        "to": last.isoformat(),
        "group_by": group_by,
        "currency": "USD",
        "data": [row_json(report, r) for r in report.groups],
        "totals": row_json(report, report.totals, total=True),
    }
