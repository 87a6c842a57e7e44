"""Stored Responses-API responses: what `store` keeps, what `GET /v1/responses/{id}` answers
and what `previous_response_id` continues (its SQL: storage/responses.py).

- Saving leaves the request path: it starts once the answer is complete (the whole response
  rendered, or the stream's last event written) and runs beside the sending of it, so it adds no
  database round trip before any byte. A read of an id this worker is still saving waits for that
  save; a read of an id made within the last seconds that is not found yet (another worker may
  be saving it) is retried for a moment, so a client that continues a conversation at once never
  sees `response_not_found` for its own response. (Ids this worker made itself — saved, or
  answered with `store: false` — are settled here: no wait for them.)
- Only the owner reads or deletes a response; anyone else is told it does not exist.
- A response lives `responses_retention_days`: then it is unreadable, deleted when read, and
  deleted by the purge every worker runs (`Purge`, hourly).
- The conversation is kept as canonical messages (the request's, without its instructions, which
  a continuation does not inherit, then the answer), bounded in size (`max_bytes`): a
  conversation that grew past it is not continued (400), a larger one is not stored.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import orjson

from gatewayz.background import Periodic
from gatewayz.canonical.types import (
    DocumentPart,
    ImagePart,
    Message,
    OtherPart,
    Part,
    TextPart,
    ToolCall,
)
from gatewayz.errors import InvalidRequest, NotFound, ServiceUnavailable
from gatewayz.ids import unique_hex
from gatewayz.lru import LRU
from gatewayz.storage import responses as store
from gatewayz.storage.db import Database
from gatewayz.storage.errors import DB_ERRORS
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.responses")

_ID = re.compile(r"resp_[0-9a-f]{12,59}")
RECENT_S = 2.0  # a missing response this young may still be being saved by another worker
PURGE_INTERVAL_S = 3600.0
PURGE_BATCH = 1000
SETTLED_MAX = 10_000


def new_response_id() -> str:
    """`resp_` + the time it was made (ms, 12 hex digits) + 36 random hex digits."""
    return f"resp_{int(time.time() * 1000):012x}{unique_hex(18)}"


def not_found(response_id: str, param: str | None = None) -> NotFound:
    shown = response_id[:80]
    return NotFound(
        f"Response with id '{shown}' not found.", code="response_not_found", param=param
    )


class StoredResponses:
    def __init__(self, db: Database, retention_days: int, max_bytes: int) -> None:
        self.db = db
        self.retention = timedelta(days=retention_days)
        self.max_bytes = max_bytes
        self._saving: dict[str, asyncio.Task[None]] = {}
        self._mine: LRU[str, bool] = LRU(SETTLED_MAX)  # ids made here: nothing to wait for
        self.purge = Purge(db, PURGE_INTERVAL_S)

    # ---- writing ------------------------------------------------------------------------------
    def save(
        self,
        user_id: str,
        response_id: str,
        model: str,
        conversation: Sequence[Message],
        response: dict[str, Any],
    ) -> None:
        """Store a completed response, off the request path (see the module's docstring)."""
        self._mine.put(response_id, True)
        messages = encode_messages(conversation)
        if len(messages) > self.max_bytes:
            log.warning("response %s not stored: its conversation is too long", response_id)
            return
        now = utcnow()
        row = {
            "id": response_id,
            "user_id": user_id,
            "model": model,
            "created_at": now,
            "expires_at": now + self.retention,
            "conversation": messages.decode(),
            "response": orjson.dumps(response).decode(),
        }
        task = asyncio.create_task(self._insert(row), name="store response")
        self._saving[response_id] = task
        task.add_done_callback(lambda _t: self._saving.pop(response_id, None))

    def unstored(self, response_id: str) -> None:
        """A response this worker answered without storing it (`store: false`)."""
        self._mine.put(response_id, True)

    async def _insert(self, row: dict[str, Any]) -> None:
        try:
            async with self.db.begin() as conn:
                await store.insert_response(conn, row)
        except DB_ERRORS:
            log.warning("response %s could not be stored", row["id"], exc_info=True)

    # ---- reading ------------------------------------------------------------------------------
    async def get(self, user_id: str, response_id: str) -> dict[str, Any] | None:
        """The user's stored response row, or None (missing, someone else's, expired)."""
        if not user_id or not _ID.fullmatch(response_id):
            return None
        saving = self._saving.get(response_id)
        if saving is not None:
            await asyncio.shield(saving)
        # An id's time is the client's to forge: never waited on beyond RECENT_S from now.
        now = time.time()
        made = _made_at(response_id)
        young = response_id not in self._mine and now - RECENT_S <= made <= now
        deadline = min(made, now) + RECENT_S if young else 0.0
        while True:
            try:
                async with self.db.begin() as conn:
                    row = await store.get_response(conn, user_id, response_id)
            except DB_ERRORS:
                log.warning("stored responses unreadable", exc_info=True)
                raise ServiceUnavailable(
                    "Stored responses cannot be read right now; retry."
                ) from None
            if row is not None or time.time() >= deadline:
                return row
            await asyncio.sleep(0.05)

    async def conversation(self, user_id: str, response_id: str, adding: int) -> list[Message]:
        """The messages `previous_response_id` continues; 404 `response_not_found` when there
        is no such response of this user, 400 when it grew too long to continue."""
        row = await self.get(user_id, response_id)
        if row is None:
            raise not_found(response_id, "previous_response_id")
        if len(row["conversation"]) + adding > self.max_bytes:
            raise InvalidRequest(
                f"The conversation of '{response_id}' is too long to continue (more than "
                f"{self.max_bytes} bytes): start a new one.",
                param="previous_response_id",
            )
        return decode_messages(row["conversation"])

    async def delete(self, user_id: str, response_id: str) -> bool:
        if not user_id or not _ID.fullmatch(response_id):
            return False
        saving = self._saving.get(response_id)
        if saving is not None:
            await asyncio.shield(saving)
        try:
            async with self.db.begin() as conn:
                return await store.delete_response(conn, user_id, response_id)
        except DB_ERRORS:
            log.warning("stored responses unwritable", exc_info=True)
            raise ServiceUnavailable(
                "Stored responses cannot be changed right now; retry."
            ) from None

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        self.purge.start()

    async def stop(self) -> None:
        await self.purge.stop()
        pending = list(self._saving.values())
        if pending:  # what was promised stored is written before the database closes
            await asyncio.wait(pending, timeout=10)


def _made_at(response_id: str) -> float:
    return int(response_id[5:17], 16) / 1000


class Purge(Periodic):
    """Deletes expired responses, a batch at a time (at most 10 batches a round)."""

    name = "responses purge"

    def __init__(self, db: Database, interval_s: float) -> None:
        super().__init__(interval_s)
        self.db = db

    async def run_once(self) -> None:
        await self.purge_once()

    async def purge_once(self) -> int:
        total = 0
        for _ in range(10):
            async with self.db.begin() as conn:
                done = await store.delete_expired(conn, PURGE_BATCH)
            total += done
            if done < PURGE_BATCH:
                break
        if total:
            log.info("responses purge: %d expired responses deleted", total)
        return total


# ---------------------------------------------------------------- canonical messages as JSON
def encode_messages(messages: Sequence[Message]) -> bytes:
    return orjson.dumps([_message_out(m) for m in messages])


def decode_messages(data: str | bytes) -> list[Message]:
    return [_message_in(m) for m in orjson.loads(data)]


def _message_out(m: Message) -> dict[str, Any]:
    content = m.content
    out: dict[str, Any] = {
        "role": m.role,
        "content": [_part_out(p) for p in content] if isinstance(content, list) else content,
    }
    if m.tool_calls:
        out["tool_calls"] = [[tc.id, tc.name, tc.arguments] for tc in m.tool_calls]
    for name in ("name", "tool_call_id", "reasoning", "reasoning_signature", "refusal"):
        value = getattr(m, name)
        if value is not None:
            out[name] = value
    if m.is_error:
        out["is_error"] = True
    return out


def _message_in(d: dict[str, Any]) -> Message:
    content = d["content"]
    calls = d.get("tool_calls")
    return Message(
        role=d["role"],
        content=[_part_in(p) for p in content] if isinstance(content, list) else content,
        name=d.get("name"),
        tool_calls=[ToolCall(*c) for c in calls] if calls else None,
        tool_call_id=d.get("tool_call_id"),
        reasoning=d.get("reasoning"),
        reasoning_signature=d.get("reasoning_signature"),
        refusal=d.get("refusal"),
        is_error=bool(d.get("is_error")),
    )


def _part_out(p: Part) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"t": "text", "text": p.text}
    if isinstance(p, ImagePart):
        return {"t": "image", "url": p.url, "detail": p.detail}
    if isinstance(p, DocumentPart):
        return {"t": "doc", "media_type": p.media_type, "data": p.data, "url": p.url,
                "title": p.title}  # fmt: skip
    return {"t": "other", "type": p.type, "data": p.data}


def _part_in(p: dict[str, Any]) -> Part:
    kind = p["t"]
    if kind == "text":
        return TextPart(p["text"])
    if kind == "image":
        return ImagePart(p["url"], p["detail"])
    if kind == "doc":
        return DocumentPart(p["media_type"], p["data"], p["url"], p["title"])
    return OtherPart(p["type"], p["data"])
