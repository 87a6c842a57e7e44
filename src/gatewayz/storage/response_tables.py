"""Stored Responses-API responses (migration 0012; see api/responses_routes.py), on the schema's
`metadata`.

- `responses`: one per response created with `store` (the default): its owner, the model name the
  client used, when it was made and when it expires (`GATEWAYZ_RESPONSES_RETENTION_DAYS`), the
  canonical conversation a `previous_response_id` continues (the request's messages, without its
  instructions, and the answer) and the rendered `response` object `GET /v1/responses/{id}`
  answers. Both are JSON kept as text, exactly as written (no re-encoding on the way out).
"""

from __future__ import annotations

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text

from gatewayz.storage.tables import UTCDateTime, _created_at, metadata

RESPONSE_ID_LENGTH = 64

responses = Table(
    "responses",
    metadata,
    Column("id", String(RESPONSE_ID_LENGTH), primary_key=True),
    Column("user_id", String(40), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("model", String(200), nullable=False),
    _created_at(),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("conversation", Text(), nullable=False),  # canonical messages, JSON
    Column("response", Text(), nullable=False),  # the response object, JSON
    Index(None, "user_id"),
    Index(None, "expires_at"),
)
