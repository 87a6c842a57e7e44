"""Initial schema: users, api_keys, credit_transactions, request_logs.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Written out here, not imported from tables.py: a migration must not change when the app does.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TS = sa.DateTime(timezone=True)


def _created_at() -> sa.Column:
    return sa.Column("created_at", TS, nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False, server_default="free"),
        sa.Column("plan", sa.String(32), nullable=False, server_default="trial"),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("credits_nanos", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
        sa.Column("referred_by_code", sa.String(64), nullable=True),
        sa.Column("trial_ends_at", TS, nullable=True),
        _created_at(),
        sa.Column("updated_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("email", name="uq_users_email"),
    )

    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(100), nullable=False, server_default="default"),
        sa.Column("env", sa.String(16), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("encrypted_key", sa.Text(), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("last_four", sa.String(4), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("is_primary", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("scopes", sa.JSON(), nullable=True),
        sa.Column("ip_allowlist", sa.JSON(), nullable=True),
        sa.Column("domain_allowlist", sa.JSON(), nullable=True),
        sa.Column("limits", sa.JSON(), nullable=True),
        _created_at(),
        sa.Column("expires_at", TS, nullable=True),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_keys"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_api_keys_user_id_users", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_api_keys_user_id", "api_keys", ["user_id"])
    op.create_index("ix_api_keys_key_hash", "api_keys", ["key_hash"], unique=True)

    op.create_table(
        "credit_transactions",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("amount_nanos", sa.BigInteger(), nullable=False),
        sa.Column("balance_after_nanos", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_credit_transactions"),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="fk_credit_transactions_user_id_users",
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint("request_id", "type", name="uq_credit_transactions_request_id_type"),
    )
    op.create_index("ix_credit_transactions_user_id", "credit_transactions", ["user_id"])

    op.create_table(
        "request_logs",
        sa.Column("id", BIG_ID, nullable=False, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=True),
        sa.Column("api_key_id", sa.String(40), nullable=True),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(64), nullable=True),
        sa.Column("native_model", sa.String(200), nullable=True),
        sa.Column("stream", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("completion_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("total_tokens", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("usage_estimated", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("latency_ms", sa.Float(), nullable=False, server_default=sa.text("0")),
        sa.Column("upstream_ms", sa.Float(), nullable=False, server_default=sa.text("0")),
        sa.Column("overhead_ms", sa.Float(), nullable=False, server_default=sa.text("0")),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        _created_at(),
        sa.PrimaryKeyConstraint("id", name="pk_request_logs"),
    )
    op.create_index("ix_request_logs_request_id", "request_logs", ["request_id"])
    op.create_index("ix_request_logs_created_at", "request_logs", ["created_at"])


def downgrade() -> None:
    op.drop_table("request_logs")
    op.drop_table("credit_transactions")
    op.drop_table("api_keys")
    op.drop_table("users")
