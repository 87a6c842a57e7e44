"""Background money jobs, every `billing_sweep_s` in every worker (each step is idempotent):

- release holds whose request died with its worker (expired: older than `billing_hold_ttl_s`);
- reset due monthly allowances of plans assigned by an administrator (`allowance_resets_at`
  reached, no Stripe subscription: Stripe renewals reset on `invoice.paid`).
"""

from __future__ import annotations

import logging
from datetime import datetime

from gatewayz.background import Periodic
from gatewayz.billing import ledger
from gatewayz.billing.plans import load_plans
from gatewayz.storage.db import Database
from gatewayz.storage.ledger.money import due_allowance_resets
from gatewayz.storage.tables import utcnow

log = logging.getLogger("gatewayz.billing")


async def sweep(db: Database, now: datetime | None = None) -> tuple[int, int]:
    """One pass: (holds released, allowances reset)."""
    moment = now or utcnow()
    async with db.connect() as conn:
        released = await ledger.release_expired(conn, moment)
        due = await due_allowance_resets(conn, moment)
        await conn.commit()
        plans = load_plans()
        resets = 0
        for user_id, plan in due:
            amount = plans.tier(plan).allowance_nanos
            resets += await ledger.reset_allowance(conn, user_id, amount, moment)
    return released, resets


class Sweeper(Periodic):
    name = "billing sweep"

    def __init__(self, db: Database, interval_s: float) -> None:
        super().__init__(interval_s)
        self.db = db

    async def run_once(self) -> None:
        released, resets = await sweep(self.db)
        if released or resets:
            log.info("billing sweep: %d expired holds released, %d resets", released, resets)
