"""A partial index on the open holds' expiry: the sweep looks for open holds (and leases) whose
expiry has passed, and settled holds keep their old expiry dates, so the plain `expires_at`
index matched the whole history and the planner read the table (45 ms at 1M settled holds,
every sweep, in every worker).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OPEN = sa.text("status = 'held'")


def upgrade() -> None:
    op.create_index(
        "ix_credit_holds_open_expires",
        "credit_holds",
        ["expires_at"],
        sqlite_where=_OPEN,
        postgresql_where=_OPEN,
    )


def downgrade() -> None:
    op.drop_index("ix_credit_holds_open_expires", table_name="credit_holds")
