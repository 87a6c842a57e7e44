"""`gateway_meta` (migration 0014): facts about the deployment itself, one row per name — the
fingerprint of its secrets (security/fingerprint.py), so a replica started with other secrets
is refused before it answers a single request with a wrong 401."""

from __future__ import annotations

from sqlalchemy import Column, String, Table

from gatewayz.storage.tables import UTCDateTime, metadata

gateway_meta = Table(
    "gateway_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
