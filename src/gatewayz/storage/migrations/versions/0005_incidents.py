"""Incidents: opened and resolved automatically per provider (model '') or provider × model,
with at most one open incident per subject (a partial unique index).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
OPEN = sa.text("status = 'open'")


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False, server_default=""),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("resolved_at", TS, nullable=True),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
        sa.CheckConstraint(
            "severity IN ('critical', 'high', 'medium', 'low')", name="ck_incidents_severity"
        ),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_incidents_status"),
    )
    op.create_index("ix_incidents_started_at", "incidents", ["started_at"])
    op.create_index(
        "ix_incidents_open_subject",
        "incidents",
        ["provider", "model"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_incidents_open_subject", "incidents")
    op.drop_index("ix_incidents_started_at", "incidents")
    op.drop_table("incidents")
