"""Request ids of up to 128 characters: the edge accepts a caller's X-Request-ID that long, so
every column that stores a request id (`request_logs`, `credit_transactions`, `credit_holds`)
holds it whole. Widening a VARCHAR is a catalog-only change on PostgreSQL (no table rewrite, the
indexes stay); SQLite copies each table (batch mode). The downgrade fails on an id longer than
64 characters rather than cut it (cut ids could collide).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, request_id nullable)
_COLUMNS = (("request_logs", False), ("credit_transactions", True), ("credit_holds", False))


def _resize(old: int, new: int) -> None:
    for table, nullable in _COLUMNS:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "request_id",
                type_=sa.String(new),
                existing_type=sa.String(old),
                existing_nullable=nullable,
            )


def upgrade() -> None:
    _resize(64, 128)


def downgrade() -> None:
    _resize(128, 64)
