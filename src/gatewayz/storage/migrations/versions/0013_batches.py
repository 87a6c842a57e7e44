"""The Batch API: uploaded and generated files, batches and their request lines
(storage/batch_tables.py).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)
OPEN_LINES = sa.text("status IN ('pending', 'running')")
BATCH_STATUSES = (
    "status IN ('validating', 'failed', 'in_progress', 'finalizing', 'completed', 'expired', "
    "'cancelling', 'cancelled')"
)
LINE_STATUSES = "status IN ('pending', 'running', 'succeeded', 'failed', 'unrun')"


def _user_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["user_id"], ["users.id"], name=f"fk_{table}_user_id_users", ondelete="CASCADE"
    )


def _tokens(name: str) -> sa.Column[int]:
    return sa.Column(name, sa.Integer(), nullable=False, server_default=sa.text("0"))


def upgrade() -> None:
    op.create_table(
        "files",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("filename", sa.String(256), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", name="pk_files"),
        _user_fk("files"),
    )
    op.create_index("ix_files_user_id_created_at", "files", ["user_id", "created_at"])
    op.create_table(
        "batches",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("api_key_id", sa.String(40), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("input_file_id", sa.String(40), nullable=False),
        sa.Column("completion_window", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("ending", sa.String(16), nullable=True),
        sa.Column("meta", sa.JSON(), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=True),
        sa.Column("output_file_id", sa.String(40), nullable=True),
        sa.Column("error_file_id", sa.String(40), nullable=True),
        sa.Column("claimed_by", sa.String(40), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
        sa.Column("expires_at", TS, nullable=False),
        *(
            sa.Column(f"{moment}_at", TS, nullable=True)
            for moment in (
                "in_progress",
                "finalizing",
                "completed",
                "failed",
                "expired",
                "cancelling",
                "cancelled",
            )
        ),
        sa.PrimaryKeyConstraint("id", name="pk_batches"),
        _user_fk("batches"),
        sa.CheckConstraint(BATCH_STATUSES, name="ck_batches_status"),
    )
    op.create_index("ix_batches_user_id_created_at", "batches", ["user_id", "created_at"])
    op.create_index("ix_batches_status", "batches", ["status"])
    op.create_table(
        "batch_lines",
        sa.Column("batch_id", sa.String(40), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("custom_id", sa.String(512), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("claimed_by", sa.String(40), nullable=True),
        sa.Column("claimed_until", TS, nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("cost_nanos", sa.BigInteger(), nullable=True),
        _tokens("input_tokens"),
        _tokens("output_tokens"),
        _tokens("cached_tokens"),
        _tokens("reasoning_tokens"),
        sa.Column("finished_at", TS, nullable=True),
        sa.PrimaryKeyConstraint("batch_id", "line_no", name="pk_batch_lines"),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["batches.id"],
            name="fk_batch_lines_batch_id_batches",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(LINE_STATUSES, name="ck_batch_lines_status"),
    )
    op.create_index(
        "ix_batch_lines_open",
        "batch_lines",
        ["batch_id", "line_no"],
        sqlite_where=OPEN_LINES,
        postgresql_where=OPEN_LINES,
    )


def downgrade() -> None:
    op.drop_table("batch_lines")
    op.drop_table("batches")
    op.drop_table("files")
