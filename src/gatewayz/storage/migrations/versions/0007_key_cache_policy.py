"""Response caching: per-key cache defaults (`api_keys.cache_policy`, the defaults of the request
field `cache`: ttl, no_store, no_cache, nondeterministic, semantic), and which cache answered a
request (`request_logs.cache`: `hit` or `semantic`; NULL when a provider answered).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("cache_policy", sa.JSON(none_as_null=True), nullable=True))
    op.add_column("request_logs", sa.Column("cache", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_logs") as batch:
        batch.drop_column("cache")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("cache_policy")
