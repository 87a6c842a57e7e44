"""The webhook dispatcher: a background job in every worker, off the request path.

Each round it (1) fans new outbox events out into deliveries, in one transaction with the events
locked (`FOR UPDATE SKIP LOCKED` on PostgreSQL: each event is taken by one worker), and (2) sends
the deliveries that are due, claimed for `CLAIM_S` so no other worker sends them meanwhile.

A delivery is a signed POST (`signing.py`: `X-Gatewayz-Signature`, `X-Gatewayz-Event`,
`X-Gatewayz-Delivery`, the same body every attempt) to an address checked at each attempt
(`send.py`). 2xx: delivered. 410: the endpoint is disabled. Anything else is retried after an
exponential backoff with full jitter — a random wait up to `retry_base_s` × 2^(attempt − 1),
capped at 6 h — until `max_attempts`; an endpoint that has failed for a day without a success
is disabled and its owner told (an audit event, and `disabled_reason` on the endpoint).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from gatewayz.background import Periodic
from gatewayz.security.keys import KeyRing
from gatewayz.storage import webhooks as store
from gatewayz.storage.db import Database
from gatewayz.storage.tables import utcnow
from gatewayz.webhooks import events
from gatewayz.webhooks.send import post
from gatewayz.webhooks.signing import signature

log = logging.getLogger("gatewayz.webhooks")

CLAIM_S = 60.0  # a claimed delivery is another worker's to take after this long
MAX_WAIT_S = 6 * 3600.0
FAILING_LIMIT = timedelta(days=1)
BATCH = 50
CONCURRENCY = 16

Disabled = Callable[[dict[str, Any], str], None]  # (endpoint, reason): the owner is told


class Dispatcher(Periodic):
    name = "webhook dispatcher"

    def __init__(
        self,
        db: Database,
        keyring: KeyRing,
        *,
        interval_s: float,
        retry_base_s: float,
        max_attempts: int,
        allow_private: bool,
        on_disabled: Disabled | None = None,
        on_attempt: Callable[[str], None] | None = None,
        send: Callable[..., Any] = post,
    ) -> None:
        super().__init__(interval_s)
        self.db = db
        self.keyring = keyring
        self.retry_base_s = retry_base_s
        self.max_attempts = max_attempts
        self.allow_private = allow_private
        self.on_disabled = on_disabled
        self.on_attempt = on_attempt  # with "delivered", "retried" or "failed" (metrics)
        self.send = send

    async def run_once(self) -> None:
        async with self.db.connect() as conn:
            events_waiting, deliveries_due = await store.work_waiting(conn)
        while events_waiting and await self.fan_out():
            deliveries_due = True
        while deliveries_due and await self.deliver_due():
            pass

    # ---- events into deliveries ---------------------------------------------------------------
    async def fan_out(self) -> int:
        """One batch of outbox events into deliveries; how many events it took."""
        async with self.db.begin() as conn:
            batch = await store.claim_events(conn, BATCH)
            rows: list[dict[str, Any]] = []
            for event in batch:
                for out in await events.fan_out(conn, event):
                    rows.append(
                        {
                            "id": store.new_id("dlv"),
                            "endpoint_id": out.endpoint_id,
                            "event_id": out.event_id,
                            "event_type": out.event_type,
                            "payload": out.payload,
                        }
                    )
            await store.add_deliveries(conn, rows)
        return len(batch)

    # ---- sending -----------------------------------------------------------------------------
    async def deliver_due(self) -> int:
        """Send one batch of due deliveries; how many."""
        async with self.db.begin() as conn:
            due = await store.claim_due(conn, BATCH, timedelta(seconds=CLAIM_S))
        if not due:
            return 0
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(delivery: dict[str, Any]) -> None:
            async with gate:
                await self._attempt(delivery)

        await asyncio.gather(*(one(d) for d in due))
        return len(due)

    async def _attempt(self, delivery: dict[str, Any]) -> None:
        async with self.db.begin() as conn:
            endpoint = await store.get_endpoint(conn, None, delivery["endpoint_id"])
        moment = utcnow()
        if endpoint is None or not endpoint["enabled"]:
            note = {"at": moment.isoformat(), "status": None, "error": "endpoint disabled"}
            async with self.db.begin() as conn:
                await store.record_attempt(
                    conn, delivery, note, status="failed", next_attempt_at=None
                )
            return
        body = delivery["payload"].encode()
        secret = self.keyring.decrypt(endpoint["secret_enc"])
        headers = {
            "X-Gatewayz-Signature": signature(secret, body, int(time.time())),
            "X-Gatewayz-Event": delivery["event_type"],
            "X-Gatewayz-Delivery": delivery["id"],
        }
        result = await self.send(endpoint["url"], body, headers, allow_private=self.allow_private)
        note = {
            "at": moment.isoformat(),
            "status": result.status,
            "error": result.error,
            "ms": round(result.duration_ms, 1),
        }
        ok = result.status is not None and 200 <= result.status < 300
        attempts = delivery["attempts"] + 1
        gone = result.status == 410
        last = gone or attempts >= self.max_attempts
        if self.on_attempt is not None:
            self.on_attempt("delivered" if ok else "failed" if last else "retried")
        async with self.db.begin() as conn:
            if ok:
                await store.record_attempt(
                    conn, delivery, note, status="delivered", next_attempt_at=None
                )
                if endpoint["failing_since"] is not None:
                    await store.update_endpoint(conn, endpoint["id"], failing_since=None)
                return
            retry_at = None if last else moment + timedelta(seconds=self._backoff(attempts))
            status = "failed" if last else "pending"
            await store.record_attempt(
                conn, delivery, note, status=status, next_attempt_at=retry_at
            )
            reason = _disable_reason(endpoint, moment, gone)
            if reason is not None:
                await store.update_endpoint(
                    conn, endpoint["id"], enabled=False, disabled_reason=reason
                )
            elif endpoint["failing_since"] is None:
                await store.update_endpoint(conn, endpoint["id"], failing_since=moment)
        if reason is not None:
            log.warning("webhook endpoint %s disabled: %s", endpoint["id"], reason)
            if self.on_disabled is not None:
                self.on_disabled(endpoint, reason)

    def _backoff(self, attempts: int) -> float:
        """Full jitter: a random wait up to base × 2^(attempts − 1), at most 6 h."""
        ceiling = min(MAX_WAIT_S, self.retry_base_s * 2 ** min(attempts - 1, 30))
        return random.uniform(0, ceiling)


def _disable_reason(endpoint: dict[str, Any], moment: datetime, gone: bool) -> str | None:
    if gone:
        return "the endpoint answered 410 Gone"
    since = endpoint["failing_since"]
    if since is not None and moment - since >= FAILING_LIMIT:
        return "every delivery failed for 24 hours"
    return None
