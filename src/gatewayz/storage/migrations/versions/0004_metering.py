"""Metering, payments and prices: trial counters, daily spend, Stripe ids, referral codes,
request cost, admin price overrides and processed Stripe events.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _zero(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.BigInteger(), nullable=False, server_default=sa.text("0"))


def upgrade() -> None:
    op.add_column("users", _zero("trial_tokens_used"))
    op.add_column("users", _zero("trial_requests_used"))
    op.add_column("users", sa.Column("spend_day", sa.String(10), nullable=True))
    op.add_column("users", _zero("spend_day_nanos"))
    op.add_column("users", sa.Column("stripe_customer_id", sa.String(64), nullable=True))
    op.add_column("users", sa.Column("stripe_subscription_id", sa.String(64), nullable=True))
    op.add_column("users", sa.Column("referral_code", sa.String(32), nullable=True))
    op.create_index("ix_users_stripe_customer_id", "users", ["stripe_customer_id"])
    op.create_index("ix_users_referral_code", "users", ["referral_code"], unique=True)
    op.add_column("request_logs", sa.Column("cost_nanos", sa.BigInteger(), nullable=True))
    op.create_table(
        "price_overrides",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("price", sa.JSON(), nullable=False),
        sa.Column("effective_from", sa.String(10), nullable=True),
        sa.Column("created_by", sa.String(40), nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_price_overrides"),
    )
    op.create_index("ix_price_overrides_model", "price_overrides", ["model"])
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_stripe_events"),
    )


def downgrade() -> None:
    op.drop_table("stripe_events")
    op.drop_table("price_overrides")
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("cost_nanos")
    op.drop_index("ix_users_referral_code", "users")
    op.drop_index("ix_users_stripe_customer_id", "users")
    with op.batch_alter_table("users") as batch:
        for name in (
            "referral_code",
            "stripe_subscription_id",
            "stripe_customer_id",
            "spend_day_nanos",
            "spend_day",
            "trial_requests_used",
            "trial_tokens_used",
        ):
            batch.drop_column(name)
