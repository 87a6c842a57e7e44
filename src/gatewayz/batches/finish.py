"""Finishing a batch none of whose lines is left to run: its output file (the lines that
succeeded) and error file (those that failed, and those that never ran: `batch_cancelled`,
`batch_expired`, `batch_failed`), in line order; then, in one transaction, the final status, the
files' rows and the `batch.completed` webhook event. The batch is claimed for this
(storage/batches.py): a worker that lost its claim writes nothing and removes its files."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import IO, Any

from gatewayz.batches.files import FileStore, new_file_id
from gatewayz.batches.lines import error_line
from gatewayz.storage import batches as store
from gatewayz.storage.db import Database
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.batches")

PAGE = 1000
FINAL = {None: "completed", "cancelled": "cancelled", "expired": "expired", "failed": "failed"}
UNRUN = {
    "cancelled": ("batch_cancelled", "The batch was cancelled before this request ran."),
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "failed": ("batch_failed", "The batch failed before this request ran."),
    "completed": ("batch_failed", "This request did not run."),
}


class _Out:
    """One of the two files, opened only when it gets its first line."""

    def __init__(self, files: FileStore, batch_id: str, kind: str) -> None:
        self.files, self.kind = files, kind
        self.id = new_file_id()
        self.name = f"{batch_id}_{kind}.jsonl"
        self.size = 0
        self._cm: Any = None
        self._f: IO[bytes] | None = None

    async def write(self, lines: list[str]) -> None:
        if not lines:
            return
        if self._f is None:
            self._cm = self.files.writing(self.id)
            self._f = await asyncio.to_thread(self._cm.__enter__)
        data = ("\n".join(lines) + "\n").encode()
        self.size += len(data)
        await asyncio.to_thread(self._f.write, data)

    async def close(self, failed: BaseException | None = None) -> None:
        if self._cm is not None:
            exc = (type(failed), failed, failed.__traceback__) if failed else (None, None, None)
            await asyncio.to_thread(self._cm.__exit__, *exc)
            self._cm = None

    def row(self, user_id: str) -> dict[str, Any] | None:
        if not self.size:
            return None
        return {
            "id": self.id,
            "user_id": user_id,
            "purpose": "batch_output",
            "filename": self.name,
            "bytes": self.size,
            "created_at": utcnow(),
        }


async def finish_batch(
    db: Database, files: FileStore, batch: Mapping[str, Any], worker: str
) -> None:
    status = FINAL[batch["ending"]]
    code, message = UNRUN[status]
    output, errors = _Out(files, batch["id"], "output"), _Out(files, batch["id"], "error")
    try:
        after = 0
        while True:
            async with db.connect() as conn:
                page = await store.lines_page(conn, batch["id"], after, PAGE)
            if not page:
                break
            good = [r["result"] for r in page if r["status"] == "succeeded"]
            bad = [
                r["result"] or error_line(r["custom_id"], code, message)
                for r in page
                if r["status"] != "succeeded"
            ]
            await output.write(good)
            await errors.write(bad)
            after = page[-1]["line_no"]
    except BaseException as exc:
        await output.close(exc)
        await errors.close(exc)
        raise
    await output.close()
    await errors.close()
    ended = False
    try:
        async with db.begin() as conn:
            counts = (await store.line_counts(conn, [batch["id"]]))[batch["id"]]
            out_row, err_row = output.row(batch["user_id"]), errors.row(batch["user_id"])
            event = _event(batch, status, counts, out_row, err_row)
            ended = await store.end_batch(
                conn,
                batch,
                worker,
                status,
                utcnow(),
                output=out_row,
                error=err_row,
                counts=counts,
                event=event,
            )
    finally:
        if not ended:
            files.delete(output.id)
            files.delete(errors.id)
    if ended:
        log.info("batch %s %s", batch["id"], status)


def _event(
    batch: Mapping[str, Any],
    status: str,
    counts: Mapping[str, Any],
    output: Mapping[str, Any] | None,
    error: Mapping[str, Any] | None,
) -> dict[str, Any]:
    return {
        "batch_id": batch["id"],
        "status": status,
        "endpoint": batch["endpoint"],
        "request_counts": {
            "total": batch["total"],
            "completed": counts["completed"],
            "failed": counts["failed"],
        },
        "output_file_id": output["id"] if output else None,
        "error_file_id": error["id"] if error else None,
        "metadata": batch["meta"] or {},
    }
