"""Customer webhooks' tables (migration 0011; see gatewayz.webhooks), on the schema's `metadata`.

- `webhook_endpoints`: a user's endpoints: URL, the event types it wants, its signing secret
  (encrypted with the key ring), the `credits.low` threshold and whether the low and depleted
  events are armed (each fires once per crossing), enabled or disabled (and why).
- `webhook_events`: the outbox. An event row is written in the same transaction as the change
  that causes it (a ledger row, an incident), so a crash never loses or invents one; the
  dispatcher fans it out into deliveries (`dispatched`). `user_id` NULL: an event for every
  endpoint that wants the type (`model.degraded`).
- `webhook_deliveries`: one per (endpoint, event): status, attempts, when the next attempt is
  due (also the claim: a worker sending it pushes it forward), and the log of its attempts.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)

from gatewayz.storage.tables import NullableJSON, UTCDateTime, _created_at, metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("description", String(200), nullable=True),
    Column("events", NullableJSON, nullable=False),
    Column("secret_enc", Text(), nullable=False),
    Column("low_threshold_nanos", BigInteger(), nullable=False),
    Column("low_armed", Boolean(), nullable=False, default=True, server_default=true()),
    Column("depleted_armed", Boolean(), nullable=False, default=True, server_default=true()),
    Column("enabled", Boolean(), nullable=False, default=True, server_default=true()),
    Column("disabled_reason", String(200), nullable=True),
    Column("failing_since", UTCDateTime(), nullable=True),
    _created_at(),
    Column("updated_at", UTCDateTime(), nullable=False),
    Index(None, "user_id"),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", String(40), nullable=True),
    Column("type", String(64), nullable=False),
    Column("data", Text(), nullable=False),  # the event's JSON `data`, as written
    Column("dispatched", Boolean(), nullable=False, default=False, server_default=false()),
    _created_at(),
    Index(
        "ix_webhook_events_undispatched",
        "created_at",
        sqlite_where=text("dispatched = 0"),
        postgresql_where=text("NOT dispatched"),
    ),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "endpoint_id",
        String(40),
        ForeignKey("webhook_endpoints.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("event_id", String(40), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("payload", Text(), nullable=False),  # the exact JSON body every attempt sends
    Column("status", String(16), nullable=False, default="pending", server_default="pending"),
    Column("attempts", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("next_attempt_at", UTCDateTime(), nullable=True),
    Column("last_status", Integer(), nullable=True),
    Column("last_error", String(300), nullable=True),
    Column("log", NullableJSON, nullable=False),  # [{at, status, error, ms}], the last 20
    Column("delivered_at", UTCDateTime(), nullable=True),
    _created_at(),
    CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
    UniqueConstraint("endpoint_id", "event_id"),
    Index(None, "endpoint_id", "created_at"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)
