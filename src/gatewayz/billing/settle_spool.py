"""Durable settles: the charge of a delivered answer that the database could not take.

When settling fails (the database is down between the hold and the settle), the meter writes
the settle to a file of its own in `DATA_DIR/settle-spool/` (written whole, fsynced, then
renamed into place) before the answer completes, and the `SettleReplayer` job retries every
spooled settle until the database takes it (`storage.ledger.holds.settle_late`: the hold is
settled if still open, else the answer is charged all the same). A replayed settle is
idempotent, so workers sharing the data dir may replay the same file: one charges, the others
find it done. Nothing delivered is lost from the ledger, whatever the outage's length, as long
as the data dir lives.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from gatewayz.background import Periodic
from gatewayz.billing.plans import load_plans
from gatewayz.storage.errors import DB_ERRORS
from gatewayz.storage.ledger import holds
from gatewayz.storage.ledger.money import UnknownUser

if TYPE_CHECKING:
    from gatewayz.storage.ledger.runner import LedgerRunner

log = logging.getLogger("gatewayz.billing")


@dataclass(frozen=True, slots=True)
class PendingSettle:
    user_id: str
    hold_id: str
    cost_nanos: int
    tokens: int
    description: str


class SettleSpool:
    """Settles waiting for the database, one file each."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def put(self, settle: PendingSettle) -> Path:
        """Write `settle` durably (raises OSError when the disk cannot take it)."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = f"{secrets.token_hex(8)}.json"
        tmp = self.directory / f".{name}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, orjson.dumps(asdict(settle)))
            os.fsync(fd)
        finally:
            os.close(fd)
        path = self.directory / name
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return path

    def pending(self) -> list[tuple[Path, PendingSettle]]:
        """Every spooled settle, oldest first (unreadable files are logged and left alone)."""
        try:
            paths = sorted(self.directory.glob("*.json"), key=_mtime)
        except OSError:
            return []
        out = []
        for path in paths:
            try:
                out.append((path, PendingSettle(**orjson.loads(path.read_bytes()))))
            except FileNotFoundError:
                continue  # replayed by another worker meanwhile
            except (OSError, ValueError, TypeError) as exc:
                log.error("settle spool file %s is unreadable, left for an operator: %s", path, exc)
        return out

    def done(self, path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def count(self) -> int:
        try:
            return sum(1 for _ in self.directory.glob("*.json"))
        except OSError:
            return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


async def replay(spool: SettleSpool, ledger: LedgerRunner) -> int:
    """Settle what the spool holds until the database refuses; how many were recorded."""
    recorded = 0
    for path, s in spool.pending():
        try:
            charged = await ledger.run(
                holds.settle_late,
                s.user_id,
                s.hold_id,
                s.cost_nanos,
                tokens=s.tokens,
                description=s.description,
                trial_plan=load_plans().trial.plan,
                account=s.user_id,
            )
        except UnknownUser:
            log.error("spooled settle of %s: its user no longer exists; kept for an operator", path)
            with contextlib.suppress(OSError):
                path.rename(path.with_suffix(".unknown-user"))
            continue
        spool.done(path)
        recorded += 1
        log.info("spooled settle of %s recorded (%d nanos charged)", s.hold_id, charged)
    return recorded


class SettleReplayer(Periodic):
    name = "settle replay"

    def __init__(self, spool: SettleSpool, ledger: LedgerRunner, interval_s: float) -> None:
        super().__init__(interval_s)
        self.spool = spool
        self.ledger = ledger

    async def run_once(self) -> None:
        try:
            await replay(self.spool, self.ledger)
        except DB_ERRORS as exc:  # still down: one line per round, no traceback
            log.warning("%d settles wait for the database: %s", self.spool.count(), exc)
