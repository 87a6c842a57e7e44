"""Incident rows (the `incidents` table), shared by every worker and replica.

Rows come back as dicts (`reliability.incident_store.Incident` reads them). Writers never
overwrite one another: an incident is opened by an insert that does nothing when its subject
already has an open one (another worker opened it first), and changed by a conditional update
that only applies while it is still open at the severity the writer read.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.db import dialect_insert
from gatewayz.storage.tables import incidents


async def open_incidents(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(select(incidents).where(incidents.c.status == "open"))
    return [dict(r) for r in rows.mappings()]


async def list_incidents(
    conn: AsyncConnection, status: str | None, limit: int
) -> list[dict[str, Any]]:
    """Newest first; only `status` (open | resolved) when given."""
    query = select(incidents).order_by(incidents.c.started_at.desc(), incidents.c.id.desc())
    if status is not None:
        query = query.where(incidents.c.status == status)
    return [dict(r) for r in (await conn.execute(query.limit(limit))).mappings()]


async def incidents_since(conn: AsyncConnection, since: datetime) -> list[dict[str, Any]]:
    """Every incident open at some moment after `since`."""
    query = select(incidents).where(
        or_(incidents.c.resolved_at.is_(None), incidents.c.resolved_at > since)
    )
    return [dict(r) for r in (await conn.execute(query)).mappings()]


async def open_incident(conn: AsyncConnection, row: Mapping[str, Any]) -> bool:
    """Insert a new open incident; False when its subject has an open one already."""
    stmt = dialect_insert(conn, incidents).values(**row).on_conflict_do_nothing()
    inserted = (await conn.execute(stmt.returning(incidents.c.id))).first()
    return inserted is not None


async def update_open_incident(
    conn: AsyncConnection,
    incident_id: str,
    severity: str,
    values: Mapping[str, Any],
    *,
    not_after: datetime | None = None,
) -> bool:
    """Set `values` on the incident if it is still open at `severity` (and, with `not_after`,
    nobody updated it since); whether it did."""
    stmt = update(incidents).where(
        incidents.c.id == incident_id,
        incidents.c.status == "open",
        incidents.c.severity == severity,
    )
    if not_after is not None:
        stmt = stmt.where(incidents.c.updated_at <= not_after)
    done = await conn.execute(stmt.values(**values).returning(incidents.c.id))
    return done.first() is not None
