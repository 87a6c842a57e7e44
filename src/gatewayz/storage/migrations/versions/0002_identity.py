"""Identity and protection: user tier and login identity, audit log, partner trials.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("users", sa.Column("tier", sa.String(32), nullable=True))
    op.add_column("users", sa.Column("privy_user_id", sa.String(128), nullable=True))
    op.create_index("ix_users_privy_user_id", "users", ["privy_user_id"], unique=True)
    op.create_table(
        "audit_logs",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False, server_default="info"),
        sa.Column("user_id", sa.String(40), nullable=True),
        sa.Column("api_key_id", sa.String(40), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("path", sa.String(256), nullable=True),
        sa.Column("detail", sa.JSON(none_as_null=True), nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_audit_logs"),
    )
    op.create_index("ix_audit_logs_event", "audit_logs", ["event"])
    op.create_index("ix_audit_logs_created_at", "audit_logs", ["created_at"])
    partner_trials = op.create_table(
        "partner_trials",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("trial_days", sa.Integer(), nullable=False),
        sa.Column("credits_nanos", sa.BigInteger(), nullable=False),
        sa.Column("plan", sa.String(32), nullable=False, server_default="trial"),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.PrimaryKeyConstraint("code", name="pk_partner_trials"),
    )
    # SPEC §7: REDBEARD — 14 days, $20 (nano-dollars).
    op.bulk_insert(
        partner_trials,
        [{"code": "REDBEARD", "trial_days": 14, "credits_nanos": 20_000_000_000, "plan": "trial"}],
    )


def downgrade() -> None:
    op.drop_table("partner_trials")
    op.drop_table("audit_logs")
    op.drop_index("ix_users_privy_user_id", table_name="users")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("privy_user_id")
        batch.drop_column("tier")
