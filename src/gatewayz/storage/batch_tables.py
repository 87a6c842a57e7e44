"""The Batch API's tables (migration 0013; see gatewayz.batches), on the schema's `metadata`.

- `files`: uploaded files (purpose `batch`) and the files batches write (`batch_output`); the
  bytes live on disk under the data dir, named by the row's id (never by the client).
- `batches`: one per batch: its owner and the API key it runs as, endpoint, status and the
  OpenAI timestamps; `ending` says why a batch stops taking lines before it ends (`cancelled`,
  `expired`, `failed`); `claimed_by` / `claimed_until` is the claim of the worker finalizing it;
  `counts` the request counts and usage, written once it ended.
- `batch_lines`: one per request line: its body, its state (pending → running → succeeded |
  failed, or unrun when the batch ended first), the claim of the worker running it (a lease,
  renewed while it runs: a dead worker's line is taken again once it lapses), its attempts and
  its output line once done.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    text,
)

from gatewayz.storage.tables import NullableJSON, UTCDateTime, _created_at, metadata

BATCH_STATUSES = (
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
)
LINE_STATUSES = ("pending", "running", "succeeded", "failed", "unrun")
OPEN_LINES = "status IN ('pending', 'running')"


def _in(values: tuple[str, ...]) -> str:
    return "status IN (" + ", ".join(f"'{v}'" for v in values) + ")"


files = Table(
    "files",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("purpose", String(32), nullable=False),
    Column("filename", String(256), nullable=False),
    Column("bytes", BigInteger(), nullable=False),
    _created_at(),
    Index(None, "user_id", "created_at"),
)

batches = Table(
    "batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("api_key_id", String(40), nullable=False),
    Column("endpoint", String(64), nullable=False),
    Column("input_file_id", String(40), nullable=False),
    Column("completion_window", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("ending", String(16), nullable=True),
    Column("meta", NullableJSON, nullable=True),
    Column("errors", NullableJSON, nullable=True),
    Column("total", Integer(), nullable=False),
    Column("counts", NullableJSON, nullable=True),
    Column("output_file_id", String(40), nullable=True),
    Column("error_file_id", String(40), nullable=True),
    Column("claimed_by", String(40), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    _created_at(),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("in_progress_at", UTCDateTime(), nullable=True),
    Column("finalizing_at", UTCDateTime(), nullable=True),
    Column("completed_at", UTCDateTime(), nullable=True),
    Column("failed_at", UTCDateTime(), nullable=True),
    Column("expired_at", UTCDateTime(), nullable=True),
    Column("cancelling_at", UTCDateTime(), nullable=True),
    Column("cancelled_at", UTCDateTime(), nullable=True),
    CheckConstraint(_in(BATCH_STATUSES), name="status"),
    Index(None, "user_id", "created_at"),
    Index(None, "status"),
)

batch_lines = Table(
    "batch_lines",
    metadata,
    Column(
        "batch_id",
        String(40),
        ForeignKey("batches.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("line_no", Integer(), primary_key=True),
    Column("custom_id", String(512), nullable=False),
    Column("body", Text(), nullable=False),
    Column("status", String(16), nullable=False, default="pending", server_default="pending"),
    Column("attempts", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("claimed_by", String(40), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("result", Text(), nullable=True),  # the output line, as written to the files
    Column("cost_nanos", BigInteger(), nullable=True),
    Column("input_tokens", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("output_tokens", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("cached_tokens", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("reasoning_tokens", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("finished_at", UTCDateTime(), nullable=True),
    CheckConstraint(_in(LINE_STATUSES), name="status"),
    Index(
        "ix_batch_lines_open",
        "batch_id",
        "line_no",
        sqlite_where=text(OPEN_LINES),
        postgresql_where=text(OPEN_LINES),
    ),
)
