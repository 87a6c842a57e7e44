"""The Files and Batches APIs' work, in OpenAI's shapes (the routes: api/batch_routes.py).

Files: an input file is checked and stored as it is uploaded (files.py); a user sees, reads and
deletes their own files only (another user's is a 404, like a missing one). Batches: created from
an input file whose every line uses the batch's endpoint; its lines go into the database with it
(`validating` until a worker takes it up: runner.py), read back with their request counts.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from gatewayz.batches.files import ENDPOINTS, FileStore, new_file_id
from gatewayz.errors import InvalidRequest, NotFound
from gatewayz.ids import unique_hex
from gatewayz.security.auth import Principal
from gatewayz.storage import batches as store
from gatewayz.storage import files as file_rows
from gatewayz.storage.db import Database
from gatewayz.storage.tables import utcnow

WINDOWS = {"24h": timedelta(hours=24)}
MAX_METADATA = 16  # OpenAI's metadata: up to 16 pairs, keys ≤ 64 and values ≤ 512 characters
TIMES = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)
ENDED = ("completed", "failed", "expired", "cancelled")


def _unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def file_object(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "file",
        "bytes": row["bytes"],
        "created_at": _unix(row["created_at"]),
        "filename": row["filename"],
        "purpose": row["purpose"],
        "status": "processed",
    }  # no `status_details`: OpenAI's schema types it a string, so an absent one is left out


def batch_object(row: dict[str, Any], counts: dict[str, Any]) -> dict[str, Any]:
    usage = counts["usage"]
    out: dict[str, Any] = {
        "id": row["id"],
        "object": "batch",
        "endpoint": row["endpoint"],
        "errors": row["errors"],
        "input_file_id": row["input_file_id"],
        "completion_window": row["completion_window"],
        "status": row["status"],
        "output_file_id": row["output_file_id"],
        "error_file_id": row["error_file_id"],
    }
    out.update({name: _unix(row[name]) for name in TIMES})
    # What a batch does not have yet (an output file, a finishing time, ...) is left out, not
    # null: OpenAI's schema types these fields string / integer / object, not nullable, and the
    # SDKs read a missing one as None.
    out = {k: v for k, v in out.items() if v is not None}
    out["request_counts"] = {
        "total": row["total"],
        "completed": counts["completed"],
        "failed": counts["failed"],
    }
    out["usage"] = {
        "input_tokens": usage["input"],
        "input_tokens_details": {"cached_tokens": usage["cached"]},
        "output_tokens": usage["output"],
        "output_tokens_details": {"reasoning_tokens": usage["reasoning"]},
        "total_tokens": usage["input"] + usage["output"],
    }
    out["metadata"] = row["meta"]
    return out


class BatchService:
    def __init__(self, db: Database, files: FileStore) -> None:
        self.db = db
        self.files = files

    # ---- files -------------------------------------------------------------------------------
    async def upload(
        self, user_id: str, source: BinaryIO, filename: str, purpose: str
    ) -> dict[str, Any]:
        if purpose != "batch":
            raise InvalidRequest(
                f"Only files for batches are accepted here: 'purpose' must be 'batch', not "
                f"{purpose[:64]!r}.",
                param="purpose",
            )
        file_id = new_file_id()
        size = await asyncio.to_thread(self.files.save_input, file_id, source)
        row = {"id": file_id, "user_id": user_id, "purpose": purpose}
        row.update(filename=filename[:256] or "batch.jsonl", bytes=size, created_at=utcnow())
        try:
            async with self.db.begin() as conn:
                await file_rows.insert_file(conn, row)
        except BaseException:
            self.files.delete(file_id)
            raise
        return file_object(row)

    async def file(self, user_id: str, file_id: str) -> dict[str, Any]:
        async with self.db.begin() as conn:
            row = await file_rows.get_file(conn, user_id, file_id)
        if row is None:
            raise NotFound(f"No such file: {file_id!r}.", param="file_id")
        return row

    def content(self, row: dict[str, Any]) -> Path:
        path = self.files.path(row["id"])
        if not path.exists():
            raise NotFound(f"The content of file {row['id']!r} is missing.", param="file_id")
        return path

    async def list_files(
        self, user_id: str, limit: int, order: str, purpose: str | None, after: str | None
    ) -> dict[str, Any]:
        async with self.db.begin() as conn:
            rows = await file_rows.list_files(
                conn,
                user_id,
                limit=limit + 1,
                newest_first=order == "desc",
                purpose=purpose,
                after=after,
            )
        return _page([file_object(r) for r in rows[:limit]], len(rows) > limit)

    async def delete_file(self, user_id: str, file_id: str) -> dict[str, Any]:
        async with self.db.begin() as conn:
            deleted = await file_rows.delete_file(conn, user_id, file_id)
        if not deleted:
            raise NotFound(f"No such file: {file_id!r}.", param="file_id")
        self.files.delete(file_id)
        return {"id": file_id, "object": "file", "deleted": True}

    # ---- batches -----------------------------------------------------------------------------
    async def create(self, principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
        endpoint = _choice(body, "endpoint", ENDPOINTS)
        window = _choice(body, "completion_window", tuple(WINDOWS))
        metadata = _metadata(body.get("metadata"))
        file_id = body.get("input_file_id")
        if not isinstance(file_id, str) or not file_id:
            raise InvalidRequest("'input_file_id' is required: a file id.", param="input_file_id")
        try:
            source = await self.file(principal.user_id, file_id)
        except NotFound:
            raise NotFound(f"No such file: {file_id!r}.", param="input_file_id") from None
        if source["purpose"] != "batch":
            raise InvalidRequest(
                f"File {file_id!r} is not an input file (its purpose is {source['purpose']!r}).",
                param="input_file_id",
            )
        requests = await asyncio.to_thread(self.files.requests, file_id)
        for r in requests:
            if r.url != endpoint:
                raise InvalidRequest(
                    f"Line {r.line_no} of the input file is for {r.url}, but the batch's "
                    f"endpoint is {endpoint}: every line must use the batch's endpoint.",
                    param="input_file_id",
                )
        now = utcnow()
        row = {
            "id": f"batch_{unique_hex(12)}",
            "user_id": principal.user_id,
            "api_key_id": principal.api_key_id,
            "endpoint": endpoint,
            "input_file_id": file_id,
            "completion_window": window,
            "status": "validating",
            "meta": metadata,
            "total": len(requests),
            "created_at": now,
            "expires_at": now + WINDOWS[window],
        }
        lines = ((r.line_no, r.custom_id, r.body) for r in requests)
        async with self.db.begin() as conn:
            await store.create_batch(conn, row, lines)
            created = await store.get_batch(conn, None, row["id"])
        assert created is not None
        return (await self._objects([created]))[0]

    async def get(self, user_id: str, batch_id: str) -> dict[str, Any]:
        async with self.db.begin() as conn:
            row = await store.get_batch(conn, user_id, batch_id)
        if row is None:
            raise NotFound(f"No such batch: {batch_id!r}.", param="batch_id")
        return (await self._objects([row]))[0]

    async def list(self, user_id: str, limit: int, after: str | None) -> dict[str, Any]:
        async with self.db.begin() as conn:
            rows = await store.list_batches(conn, user_id, limit + 1, after)
        return _page(await self._objects(rows[:limit]), len(rows) > limit)

    async def cancel(self, user_id: str, batch_id: str) -> dict[str, Any]:
        async with self.db.begin() as conn:
            await store.cancel(conn, user_id, batch_id, utcnow())
            row = await store.get_batch(conn, user_id, batch_id)
        if row is None:
            raise NotFound(f"No such batch: {batch_id!r}.", param="batch_id")
        if row["status"] in ("completed", "failed", "expired"):
            raise InvalidRequest(
                f"Batch {batch_id!r} has already ended ({row['status']}): it cannot be cancelled.",
                status=409,
                code="batch_not_cancellable",
            )
        return (await self._objects([row]))[0]

    async def _objects(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        live = [r["id"] for r in rows if r["counts"] is None]
        async with self.db.begin() as conn:
            counts = await store.line_counts(conn, live)
        return [batch_object(r, r["counts"] or counts[r["id"]]) for r in rows]


def _page(data: list[dict[str, Any]], more: bool) -> dict[str, Any]:
    """A list page; an empty one has no `first_id` / `last_id` (typed strings, not null)."""
    page: dict[str, Any] = {"object": "list", "data": data}
    if data:
        page.update(first_id=data[0]["id"], last_id=data[-1]["id"])
    page["has_more"] = more
    return page


def _choice(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str:
    value = body.get(name)
    if value not in allowed:
        raise InvalidRequest(
            f"'{name}' must be one of {', '.join(allowed)}, not {value!r}.", param=name
        )
    return str(value)


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, dict)
        or len(value) > MAX_METADATA
        or not all(isinstance(k, str) and len(k) <= 64 for k in value)
        or not all(isinstance(v, str) and len(v) <= 512 for v in value.values())
    ):
        raise InvalidRequest(
            "'metadata' must be an object of at most 16 string values (keys up to 64 "
            "characters, values up to 512).",
            param="metadata",
        )
    return dict(value)
