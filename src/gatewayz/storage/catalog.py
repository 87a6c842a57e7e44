"""Catalog rows in the database: each provider's offers (`catalog_offers`) and sync state
(`catalog_syncs`). A provider's offers are replaced whole, in one transaction, by a successful
sync; nothing else writes them. Offers pass here as rows (`catalog.offers.Offer` reads and
writes them: `load_offers`, `replace_offers`).

Claiming a sync: a worker may sync a provider when its last success is older than the sync
interval (or it never succeeded) and its last attempt is older than the retry interval; the
claim is one conditional UPDATE of `attempted_at`, so of several workers or replicas exactly
one wins, and a worker that died mid-sync is replaced after the retry interval.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gatewayz.storage.db import dialect_insert
from gatewayz.storage.tables import catalog_offers, catalog_syncs

T = TypeVar("T")
NEVER = datetime(1970, 1, 1, tzinfo=UTC)
INSERT_CHUNK = 500
LOAD_SLICE = 1000


@dataclass(frozen=True, slots=True)
class SyncState:
    provider: str
    status: str  # pending | ok | failed | skipped
    detail: str | None
    models: int
    excluded: dict[str, int]
    attempted_at: datetime
    succeeded_at: datetime | None
    updated_at: datetime

    def public(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "detail": self.detail,
            "models": self.models,
            "excluded": self.excluded,
            "attempted_at": None if self.attempted_at == NEVER else self.attempted_at.isoformat(),
            "succeeded_at": self.succeeded_at.isoformat() if self.succeeded_at else None,
        }


def succeeded(state: SyncState | None) -> bool:
    """Whether the provider's list was ever read (its offers come from its API)."""
    return state is not None and state.succeeded_at is not None


_OFFER_COLUMNS = [c for c in catalog_offers.c if c.name != "synced_at"]


async def offer_rows(
    conn: AsyncConnection, provider: str, read: Callable[[Mapping[str, Any]], T]
) -> list[T]:
    """`read(row)` of each of the provider's stored offers, read in slices that let other
    requests run between them."""
    query = select(*_OFFER_COLUMNS).where(catalog_offers.c.provider == provider)
    result = await conn.stream(query)
    out: list[T] = []
    async for rows in result.partitions(LOAD_SLICE):
        out += [read(r._mapping) for r in rows]
    return out


async def replace_offer_rows(
    conn: AsyncConnection, provider: str, rows: Sequence[Mapping[str, Any]]
) -> None:
    """The provider's offers become `rows` (inserted in chunks)."""
    await conn.execute(delete(catalog_offers).where(catalog_offers.c.provider == provider))
    for i in range(0, len(rows), INSERT_CHUNK):
        await conn.execute(insert(catalog_offers), rows[i : i + INSERT_CHUNK])


async def sync_states(conn: AsyncConnection) -> dict[str, SyncState]:
    rows = await conn.execute(select(catalog_syncs))
    out = {}
    for r in rows:
        m = r._mapping
        out[m["provider"]] = SyncState(**{**m, "excluded": dict(m["excluded"] or {})})
    return out


async def ensure_state(conn: AsyncConnection, provider: str, now: datetime) -> None:
    stmt = dialect_insert(conn, catalog_syncs).values(
        provider=provider, status="pending", models=0, attempted_at=NEVER, updated_at=now
    )
    await conn.execute(stmt.on_conflict_do_nothing(index_elements=["provider"]))


async def claim(
    conn: AsyncConnection, provider: str, now: datetime, interval_s: float, retry_s: float
) -> bool:
    """Take the provider's sync if it is due and nobody attempted it lately."""
    await ensure_state(conn, provider, now)
    c = catalog_syncs.c
    result = await conn.execute(
        update(catalog_syncs)
        .where(
            c.provider == provider,
            or_(c.succeeded_at.is_(None), c.succeeded_at <= now - timedelta(seconds=interval_s)),
            c.attempted_at <= now - timedelta(seconds=retry_s),
        )
        .values(attempted_at=now, updated_at=now)
    )
    return result.rowcount == 1


async def mark_attempt(conn: AsyncConnection, provider: str, now: datetime) -> None:
    """An unconditional attempt (a sync run by hand)."""
    await ensure_state(conn, provider, now)
    await conn.execute(
        update(catalog_syncs)
        .where(catalog_syncs.c.provider == provider)
        .values(attempted_at=now, updated_at=now)
    )


async def record(
    conn: AsyncConnection,
    provider: str,
    status: str,
    now: datetime,
    *,
    detail: str | None = None,
    models: int | None = None,
    excluded: Mapping[str, int] | None = None,
) -> None:
    """The outcome of an attempt. A failure keeps the last success's model count."""
    await ensure_state(conn, provider, now)
    values: dict[str, Any] = {
        "status": status,
        "detail": detail[:500] if detail else None,
        "updated_at": now,
    }
    if status == "ok":
        values["succeeded_at"] = now
    if models is not None:
        values["models"] = models
    if excluded is not None:
        values["excluded"] = dict(excluded)
    await conn.execute(
        update(catalog_syncs).where(catalog_syncs.c.provider == provider).values(**values)
    )


async def prune(conn: AsyncConnection, keep: Iterable[str]) -> int:
    """Drop the rows of providers no longer registered; the number of offers dropped."""
    names = list(keep)
    gone = await conn.execute(delete(catalog_offers).where(catalog_offers.c.provider.not_in(names)))
    await conn.execute(delete(catalog_syncs).where(catalog_syncs.c.provider.not_in(names)))
    return int(gone.rowcount or 0)
