"""Per-key provider preferences: the defaults of the request field `provider` for every request
made with the key (order, only, ignore, allow_fallbacks, sort, max_latency_ms).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("provider_preferences", sa.JSON(none_as_null=True), nullable=True),
    )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("provider_preferences")
