"""The batch runner: a background job in every worker, off the request path.

Each round (every `batch_poll_s`, and as soon as a line ends) it starts new batches, stops those
past their window (`expired`), takes free lines up to `batch_concurrency` in flight — claimed in
the database with a lease it renews while they run (storage/batches.py), so a line runs in one
worker at a time — runs each through the request steps (`lines.py`) as the key that created the
batch, writes its outcome, and finishes the batches none of whose lines is left
(`finish.py`: the output and error files, the final status and the `batch.completed` event).

A worker stopping cancels the lines still waiting for their answer (their holds are released:
nothing is charged) and puts them back to run again; a line whose answer is in is charged and
written first. A worker that dies leaves its lines claimed until their lease lapses; another
worker then takes them, and runs one again only if no charge of it was written (a charge whose
outcome was lost ends the line as an error, never as a second charge).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Mapping
from datetime import datetime, timedelta
from time import monotonic
from typing import Any

from gatewayz import background
from gatewayz.batches.files import FileStore
from gatewayz.batches.finish import finish_batch
from gatewayz.batches.lines import LineKind, LineRunner, Outcome, error_line, output_line
from gatewayz.errors import GatewayError, Unauthorized
from gatewayz.security.auth import Authenticator, Principal
from gatewayz.security.roles import load_roles
from gatewayz.storage import batches as store
from gatewayz.storage.db import Database
from gatewayz.storage.errors import DB_ERRORS
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.batches")

CLAIM_S = 60.0  # a claim not renewed for this long is another worker's to take
PRINCIPAL_TTL_S = 5.0  # a batch's key is read again this often (revocations apply within it)
FINISH_BATCH = 4
LOST = "The worker running this request stopped after it was charged; its answer was lost."

Key = tuple[str, int]  # (batch id, line number)


class BatchRunner:
    name = "batch runner"

    def __init__(
        self,
        db: Database,
        lines: LineRunner,
        kinds: Mapping[str, LineKind],
        auth: Authenticator,
        files: FileStore,
        *,
        concurrency: int,
        poll_s: float,
        claim_s: float = CLAIM_S,
    ) -> None:
        self.db = db
        self.lines = lines
        self.kinds = dict(kinds)
        self.auth = auth
        self.files = files
        self.concurrency = concurrency
        self.poll_s = poll_s
        self.claim = timedelta(seconds=claim_s)
        self.worker = f"bw_{secrets.token_hex(8)}"
        self._task: asyncio.Task[None] | None = None
        self._running: dict[Key, asyncio.Task[None]] = {}
        self._waiting: set[Key] = set()  # running lines with no answer yet: cancelled on stop
        self._wake = asyncio.Event()
        self._renewed = self._advanced = 0.0
        self._principals: dict[str, tuple[float, Principal | GatewayError]] = {}

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Take nothing more; cancel the lines still waiting for an answer, let those answered
        finish (charged, written), and give back what did not."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for key in self._waiting:
            self._running[key].cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        try:
            async with self.db.begin() as conn:
                await store.release(conn, self.worker)
        except DB_ERRORS as exc:  # their claims lapse: another worker takes them
            log.warning("batch lines could not be given back at stop: %s", exc)

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:
                log.warning("%s failed (retried in %g s)", self.name, self.poll_s, exc_info=True)
                if background.report_failure is not None:
                    background.report_failure(exc, job=self.name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_s)
            self._wake.clear()

    async def run_once(self) -> None:
        async with self.db.connect() as conn:
            if not await store.has_active(conn):
                return
        now = utcnow()
        if monotonic() - self._advanced >= self.poll_s:  # not at every line's end
            async with self.db.begin() as conn:
                await store.advance(conn, now)
            self._advanced = monotonic()
        if self._running and monotonic() - self._renewed >= self.claim.total_seconds() / 3:
            async with self.db.begin() as conn:
                await store.renew(conn, self.worker, now + self.claim, self._running)
            self._renewed = monotonic()
        free = self.concurrency - len(self._running)
        if free > 0 and self.kinds:
            await self._take(free, now)
        async with self.db.begin() as conn:
            ready = await store.claim_finished(
                conn, self.worker, now + self.claim, now, FINISH_BATCH
            )
        for batch in ready:
            await finish_batch(self.db, self.files, batch, self.worker)

    async def _take(self, free: int, now: datetime) -> None:
        until, endpoints = now + self.claim, list(self.kinds)
        async with self.db.begin() as conn:
            stale = await store.claim_lines(
                conn, self.worker, free, until, now, endpoints, stale=True
            )
            fresh = []
            if len(stale) < free:
                fresh = await store.claim_lines(
                    conn, self.worker, free - len(stale), until, now, endpoints
                )
            taken = stale + fresh
            batches = await store.batch_rows(conn, {line["batch_id"] for line in taken})
        if taken:
            self._renewed = monotonic()
        recovered = {(line["batch_id"], line["line_no"]) for line in stale}
        for line in taken:
            key = (line["batch_id"], line["line_no"])
            work = self._line(line, batches[key[0]], key in recovered)
            self._running[key] = asyncio.create_task(work, name=f"batch line {key[0]}:{key[1]}")
            self._waiting.add(key)
            self._running[key].add_done_callback(lambda _t, key=key: self._ended(key))

    def _ended(self, key: Key) -> None:
        self._running.pop(key, None)
        self._waiting.discard(key)
        self._wake.set()

    async def _line(self, line: dict[str, Any], batch: dict[str, Any], stale: bool) -> None:
        try:
            await self._run_line(line, batch, stale)
        except Exception:  # its claim lapses: another round (or worker) settles it
            log.exception("batch line %s:%d failed", line["batch_id"], line["line_no"])

    async def _run_line(self, line: dict[str, Any], batch: dict[str, Any], stale: bool) -> None:
        key: Key = (line["batch_id"], line["line_no"])
        prefix = f"{key[0]}-{key[1]}-"
        if stale:  # its worker died while running it: was it charged?
            async with self.db.begin() as conn:
                was_charged = await store.charged(conn, prefix)
            if was_charged:
                lost = error_line(line["custom_id"], "batch_request_interrupted", LOST)
                await self._write(key, {"status": "failed", "result": lost})
                return
        if batch["status"] != "in_progress" or batch["ending"] is not None:
            await self._write(key, {"status": "unrun"})
            return
        try:
            principal = await self._principal(batch)
        except GatewayError as err:
            async with self.db.begin() as conn:
                await store.stop_batch(conn, batch["id"], [_batch_error(err)])
            await self._write(key, {"status": "unrun"})
            return
        kind = self.kinds[batch["endpoint"]]
        outcome = await self.lines.run(
            kind,
            principal,
            f"{prefix}{line['attempts']}",
            line["body"].encode(),
            answered=lambda: self._waiting.discard(key),
        )
        if outcome.retry_after_s is not None:  # the key's rate limit: later, not failed
            later = utcnow() + timedelta(seconds=outcome.retry_after_s)
            await self._write(key, {"status": "pending", "claimed_until": later})
            return
        await self._write(key, _values(line["custom_id"], outcome))

    async def _principal(self, batch: dict[str, Any]) -> Principal:
        """The principal of the key that created the batch, read again every few seconds;
        a key revoked (or a role that no longer may chat) stops the batch."""
        key_id = batch["api_key_id"]
        cached = self._principals.get(key_id)
        if cached is None or cached[0] <= monotonic():
            try:
                found: Principal | GatewayError = await self.auth.principal_of(key_id)
                if not load_roles().allows(found.role, "chat"):
                    found = Unauthorized(
                        f"The key's role ({found.role}) no longer has the 'chat' permission.",
                        code="insufficient_permissions",
                    )
            except Unauthorized as err:
                found = err
            cached = self._principals[key_id] = (monotonic() + PRINCIPAL_TTL_S, found)
        if isinstance(cached[1], GatewayError):
            raise cached[1]
        return cached[1]

    async def _write(self, key: Key, values: dict[str, Any]) -> None:
        """A line's outcome, retried while the database fails (past that its claim lapses and
        another worker settles it)."""
        values.setdefault("claimed_until", None)
        if values["status"] != "pending":
            values["finished_at"] = utcnow()
        for attempt in range(5):
            try:
                async with self.db.begin() as conn:
                    if not await store.finish_line(conn, key[0], key[1], self.worker, values):
                        log.warning("batch line %s:%d was taken by another worker", *key)
                return
            except DB_ERRORS as exc:
                log.warning("batch line %s:%d not written (%s); retrying", *key, exc)
                await asyncio.sleep(min(self.poll_s * 2**attempt, 10.0))
        log.error("batch line %s:%d not written; its claim will lapse", *key)


def _values(custom_id: str, outcome: Outcome) -> dict[str, Any]:
    usage = outcome.usage
    values: dict[str, Any] = {
        "status": "succeeded" if outcome.succeeded else "failed",
        "result": output_line(custom_id, outcome),
        "cost_nanos": outcome.cost_nanos,
    }
    if usage is not None:
        values.update(
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens or 0,
            reasoning_tokens=usage.reasoning_tokens or 0,
        )
    return values


def _batch_error(err: GatewayError) -> dict[str, Any]:
    return {"code": err.code, "message": err.message, "param": None, "line": None}
