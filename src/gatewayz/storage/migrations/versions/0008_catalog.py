"""Model catalog: the offers each provider's model list gave at its last successful sync
(`catalog_offers`, one row per provider × native id) and each provider's sync state
(`catalog_syncs`).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_offers",
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("native_id", sa.String(300), nullable=False),
        sa.Column("model_id", sa.String(300), nullable=False),
        sa.Column("name", sa.String(300), nullable=False),
        sa.Column("context_length", sa.Integer(), nullable=False),
        sa.Column("modality", sa.String(64), nullable=False),
        sa.Column("pricing", sa.JSON(), nullable=False),
        sa.Column("supports_streaming", sa.Boolean(), nullable=False),
        sa.Column("supports_tools", sa.Boolean(), nullable=False),
        sa.Column("supports_vision", sa.Boolean(), nullable=False),
        sa.Column("benchmarks", sa.JSON(), nullable=True),
        sa.Column("huggingface", sa.JSON(), nullable=True),
        sa.Column("synced_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("provider", "native_id", name="pk_catalog_offers"),
        sa.CheckConstraint("context_length > 0", name="ck_catalog_offers_context_length"),
    )
    op.create_index("ix_catalog_offers_model_id", "catalog_offers", ["model_id"])
    op.create_table(
        "catalog_syncs",
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("detail", sa.String(500), nullable=True),
        sa.Column("models", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("excluded", sa.JSON(), nullable=True),
        sa.Column("attempted_at", TS, nullable=False),
        sa.Column("succeeded_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("provider", name="pk_catalog_syncs"),
        sa.CheckConstraint(
            "status IN ('pending', 'ok', 'failed', 'skipped')", name="ck_catalog_syncs_status"
        ),
    )


def downgrade() -> None:
    op.drop_table("catalog_syncs")
    op.drop_index("ix_catalog_offers_model_id", "catalog_offers")
    op.drop_table("catalog_offers")
