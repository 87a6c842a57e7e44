"""Credit ledger: subscription allowance, held amounts and credit holds.

Existing users whose purchased credits do not match their ledger get one opening `adjustment`
row, so that from here on a user's balance always equals the sum of their ledger rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)

_OPENING_BALANCES = """
INSERT INTO credit_transactions (user_id, type, amount_nanos, balance_after_nanos, description)
SELECT u.id, 'adjustment', u.credits_nanos - COALESCE(s.total, 0), u.credits_nanos,
       'opening balance (migration 0003)'
FROM users u
LEFT JOIN (
    SELECT user_id, SUM(amount_nanos) AS total FROM credit_transactions GROUP BY user_id
) s ON s.user_id = u.id
WHERE u.credits_nanos <> COALESCE(s.total, 0)
"""


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column("allowance_nanos", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column(
        "users",
        sa.Column("held_nanos", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.add_column("users", sa.Column("allowance_resets_at", TS, nullable=True))
    op.create_table(
        "credit_holds",
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="held"),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("request_id", name="pk_credit_holds"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_credit_holds_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_credit_holds_user_id", "credit_holds", ["user_id"])
    op.create_index("ix_credit_holds_expires_at", "credit_holds", ["expires_at"])
    op.execute(sa.text(_OPENING_BALANCES))


def downgrade() -> None:
    op.drop_table("credit_holds")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("allowance_resets_at")
        batch.drop_column("held_nanos")
        batch.drop_column("allowance_nanos")
