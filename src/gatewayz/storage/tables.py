"""The schema, as SQLAlchemy Core tables (no ORM on the hot path).

Identical on SQLite and PostgreSQL. Ids are prefixed strings (`usr_<hex>`, `key_<hex>`), except
the two append-only tables, which use 64-bit integers (plain INTEGER on SQLite so it is the
rowid). Money is integer nano-dollars. Timestamps are timezone-aware UTC on both backends: see
`UTCDateTime`. The migration in `migrations/versions` creates exactly these tables.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ROLES: tuple[str, ...] = ("admin", "team", "dev", "free")
CREDIT_TYPES: tuple[str, ...] = (
    "grant",
    "purchase",
    "usage",
    "refund",
    "reset",
    "adjustment",
    "hold",
    "release",
)

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Every column that stores a request id holds this many characters: the edge accepts a caller's
# X-Request-ID up to this length (api/middleware.py), so an accepted id is always stored whole.
REQUEST_ID_LENGTH = 128


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """`DateTime(timezone=True)` that always binds and returns aware UTC datetimes.

    PostgreSQL stores `timestamptz`; SQLite has no time zones, so values are normalised to UTC
    before storage and tagged UTC when read. A naive datetime is taken to be UTC already.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# 64-bit autoincrement ids; SQLite only auto-assigns an "INTEGER PRIMARY KEY" (the rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")
# JSON columns store SQL NULL (not the JSON literal `null`) for Python None.
NullableJSON = JSON(none_as_null=True)


def _created_at(*, index: bool = False) -> Column[datetime]:
    return Column(
        "created_at",
        UTCDateTime(),
        nullable=False,
        default=utcnow,
        server_default=func.now(),
        index=index,
    )


users = Table(
    "users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("role", String(16), nullable=False, default="free", server_default="free"),
    Column("plan", String(32), nullable=False, default="trial", server_default="trial"),
    Column("is_active", Boolean(), nullable=False, default=True, server_default=true()),
    Column("credits_nanos", BigInteger(), nullable=False, default=0, server_default=text("0")),
    Column("referred_by_code", String(64), nullable=True),
    Column("trial_ends_at", UTCDateTime(), nullable=True),
    Column("tier", String(32), nullable=True),
    Column("privy_user_id", String(128), nullable=True),
    Column("webhook_watch_nanos", BigInteger(), nullable=True),  # storage/webhooks.py
    _created_at(),
    Column(
        "updated_at",
        UTCDateTime(),
        nullable=False,
        default=utcnow,
        onupdate=utcnow,
        server_default=func.now(),
    ),
    Index(None, "privy_user_id", unique=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "user_id",
        String(40),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(100), nullable=False, default="default", server_default="default"),
    Column("env", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("encrypted_key", Text(), nullable=False),
    Column("prefix", String(32), nullable=False),
    Column("last_four", String(4), nullable=False),
    Column("is_active", Boolean(), nullable=False, default=True, server_default=true()),
    Column("is_primary", Boolean(), nullable=False, default=False, server_default=false()),
    Column("scopes", NullableJSON, nullable=True),
    Column("ip_allowlist", NullableJSON, nullable=True),
    Column("domain_allowlist", NullableJSON, nullable=True),
    Column("limits", NullableJSON, nullable=True),
    _created_at(),
    Column("expires_at", UTCDateTime(), nullable=True),
    Column("last_used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    # Defaults of the request field `provider` for this key's requests (routing/balance.py).
    Column("provider_preferences", NullableJSON, nullable=True),
    # Defaults of the request field `cache` for this key's requests (cache/response_policy.py).
    Column("cache_policy", NullableJSON, nullable=True),
    Index(None, "key_hash", unique=True),
)

credit_transactions = Table(
    "credit_transactions",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column(
        "user_id",
        String(40),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("type", String(16), nullable=False),
    Column("amount_nanos", BigInteger(), nullable=False),
    Column("balance_after_nanos", BigInteger(), nullable=False),
    Column("request_id", String(REQUEST_ID_LENGTH), nullable=True),
    Column("description", Text(), nullable=True),
    _created_at(),
    # Idempotency: one charge (or refund, ...) per request. NULL request ids never collide.
    UniqueConstraint("request_id", "type"),
)

request_logs = Table(
    "request_logs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("request_id", String(REQUEST_ID_LENGTH), nullable=False, index=True),
    # No foreign keys: logs are written in bulk off the request path and outlive their users.
    Column("user_id", String(40), nullable=True),
    Column("api_key_id", String(40), nullable=True),
    Column("endpoint", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("provider", String(64), nullable=True),
    Column("native_model", String(200), nullable=True),
    Column("stream", Boolean(), nullable=False, default=False, server_default=false()),
    Column("status_code", Integer(), nullable=False),
    Column("error_code", String(64), nullable=True),
    Column("prompt_tokens", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("completion_tokens", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("total_tokens", Integer(), nullable=False, default=0, server_default=text("0")),
    Column("usage_estimated", Boolean(), nullable=False, default=False, server_default=false()),
    Column("latency_ms", Float(), nullable=False, default=0.0, server_default=text("0")),
    Column("upstream_ms", Float(), nullable=False, default=0.0, server_default=text("0")),
    Column("overhead_ms", Float(), nullable=False, default=0.0, server_default=text("0")),
    Column("ttft_ms", Float(), nullable=True),
    _created_at(index=True),
)

audit_logs = Table(
    "audit_logs",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("event", String(64), nullable=False, index=True),
    Column("severity", String(16), nullable=False, default="info", server_default="info"),
    Column("user_id", String(40), nullable=True),
    Column("api_key_id", String(40), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("path", String(256), nullable=True),
    Column("detail", NullableJSON, nullable=True),
    _created_at(index=True),
)

# Partner trials are data rows (SPEC §7): a sign-up code selects a longer or larger trial.
partner_trials = Table(
    "partner_trials",
    metadata,
    Column("code", String(32), primary_key=True),
    Column("trial_days", Integer(), nullable=False),
    Column("credits_nanos", BigInteger(), nullable=False),
    Column("plan", String(32), nullable=False, default="trial", server_default="trial"),
    Column("is_active", Boolean(), nullable=False, default=True, server_default=true()),
)

# ---- Credit ledger (migration 0003; see gatewayz.billing.ledger) ------------------------------
# Balance = subscription allowance (spent first, reset monthly) + purchased credits
# (`credits_nanos`, never expire). `held_nanos` is the sum of this user's open `credit_holds`,
# kept on the user row so a hold is one conditional UPDATE.
users.append_column(
    Column("allowance_nanos", BigInteger(), nullable=False, default=0, server_default=text("0"))
)
users.append_column(
    Column("held_nanos", BigInteger(), nullable=False, default=0, server_default=text("0"))
)
users.append_column(Column("allowance_resets_at", UTCDateTime(), nullable=True))

HOLD_STATUSES: tuple[str, ...] = ("held", "settled", "released")

# One reservation per request id; the row stays after settle/release so retries are no-ops.
credit_holds = Table(
    "credit_holds",
    metadata,
    Column("request_id", String(REQUEST_ID_LENGTH), primary_key=True),
    Column(
        "user_id",
        String(40),
        ForeignKey("users.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("amount_nanos", BigInteger(), nullable=False),
    Column("status", String(16), nullable=False, default="held", server_default="held"),
    _created_at(),
    Column("expires_at", UTCDateTime(), nullable=False, index=True),
    # The sweep's look-up of open holds past their expiry (migration 0010): settled holds keep
    # their old expiry, so the plain index would walk the whole history.
    Index(
        "ix_credit_holds_open_expires",
        "expires_at",
        sqlite_where=text("status = 'held'"),
        postgresql_where=text("status = 'held'"),
    ),
)

# ---- Metering, payments and prices (migration 0004) ------------------------------------------
# Trial usage counters and the day's spend (the daily cap), updated when a request is settled.
users.append_column(
    Column("trial_tokens_used", BigInteger(), nullable=False, default=0, server_default=text("0"))
)
users.append_column(
    Column("trial_requests_used", BigInteger(), nullable=False, default=0, server_default=text("0"))
)
users.append_column(Column("spend_day", String(10), nullable=True))  # ISO date (UTC)
users.append_column(
    Column("spend_day_nanos", BigInteger(), nullable=False, default=0, server_default=text("0"))
)
users.append_column(Column("stripe_customer_id", String(64), nullable=True, index=True))
users.append_column(Column("stripe_subscription_id", String(64), nullable=True))
users.append_column(Column("referral_code", String(32), nullable=True, unique=True, index=True))

# What the request cost (nano-dollars charged); NULL when the request was not billed.
request_logs.append_column(Column("cost_nanos", BigInteger(), nullable=True))
# Which response cache answered (`hit` exact, `semantic`); NULL when a provider did.
request_logs.append_column(Column("cache", String(16), nullable=True))

# Admin price overrides (`/admin/pricing`): they win over the packaged price book from their
# effective date. `price` holds decimal strings (billing.pricing.Price.as_row()).
price_overrides = Table(
    "price_overrides",
    metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("model", String(200), nullable=False, index=True),
    Column("provider", String(64), nullable=True),
    Column("price", JSON(), nullable=False),
    Column("effective_from", String(10), nullable=True),  # ISO date; NULL: already effective
    Column("created_by", String(40), nullable=True),
    _created_at(),
)

# Every Stripe webhook event we accepted, by Stripe's event id: a replay is recognised and
# grants nothing twice.
stripe_events = Table(
    "stripe_events",
    metadata,
    Column("id", String(255), primary_key=True),
    Column("type", String(64), nullable=False),
    Column("status", String(16), nullable=False),  # processed | ignored | failed
    Column("user_id", String(40), nullable=True),
    Column("detail", NullableJSON, nullable=True),
    _created_at(),
)

# ---- Incidents (migration 0005; see gatewayz.reliability.incidents) -------------------------
# Opened and resolved automatically from passive health and the circuit breakers; `model` is ''
# for a provider-wide incident. At most one open incident per (provider, model), enforced here
# (a partial unique index) so concurrent workers and replicas never open duplicates.
incidents = Table(
    "incidents",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False, default="", server_default=""),
    Column("severity", String(16), nullable=False),  # critical | high | medium | low
    Column("status", String(16), nullable=False, default="open", server_default="open"),
    Column("title", String(300), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False, index=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("details", NullableJSON, nullable=True),
    CheckConstraint("severity IN ('critical', 'high', 'medium', 'low')", name="severity"),
    CheckConstraint("status IN ('open', 'resolved')", name="status"),
    Index(
        "ix_incidents_open_subject",
        "provider",
        "model",
        unique=True,
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
)

# ---- Model catalog (migration 0008; see gatewayz.catalog) -----------------------------------
# One row per (provider, native id) a provider's model list offered at its last successful sync,
# merged with the pricing data (models without a price are never stored). A sync replaces one
# provider's rows in one transaction; a failed sync leaves them as they were. `pricing` holds
# decimal strings in USD per 1M tokens (billing.pricing.Price.as_row()).
catalog_offers = Table(
    "catalog_offers",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("native_id", String(300), primary_key=True),
    Column("model_id", String(300), nullable=False, index=True),
    Column("name", String(300), nullable=False),
    Column("context_length", Integer(), nullable=False),
    Column("modality", String(64), nullable=False),
    Column("pricing", JSON(), nullable=False),
    Column("supports_streaming", Boolean(), nullable=False),
    Column("supports_tools", Boolean(), nullable=False),
    Column("supports_vision", Boolean(), nullable=False),
    Column("benchmarks", NullableJSON, nullable=True),
    Column("huggingface", NullableJSON, nullable=True),
    Column("synced_at", UTCDateTime(), nullable=False),
    CheckConstraint("context_length > 0", name="context_length"),
)

# Each provider's last sync: when it was attempted (also the claim that keeps several workers
# from syncing the same provider at once), when it last succeeded, and what it found.
catalog_syncs = Table(
    "catalog_syncs",
    metadata,
    Column("provider", String(64), primary_key=True),
    Column("status", String(16), nullable=False),  # pending | ok | failed | skipped
    Column("detail", String(500), nullable=True),
    Column("models", Integer(), nullable=False, default=0, server_default="0"),
    Column("excluded", NullableJSON, nullable=True),
    Column("attempted_at", UTCDateTime(), nullable=False),
    Column("succeeded_at", UTCDateTime(), nullable=True),
    Column("updated_at", UTCDateTime(), nullable=False),
    CheckConstraint("status IN ('pending', 'ok', 'failed', 'skipped')", name="status"),
)
