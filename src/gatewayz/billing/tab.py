"""One request's money tab (`Tab`), this worker's billing counters, and the rules the meter
applies to a failed request (`refundable`) and to a hold the ledger could not take."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from gatewayz.billing.leases import Lease
from gatewayz.billing.pricing import Price
from gatewayz.canonical.types import Usage
from gatewayz.errors import GatewayError, ServiceUnavailable, Unauthorized, UpstreamError
from gatewayz.storage.errors import DB_ERRORS
from gatewayz.storage.ledger.money import UnknownUser

log = logging.getLogger("gatewayz.billing")


@dataclass(slots=True)
class Tab:
    """One request's hold (`held_nanos` 0 and `metered` for an admin: nothing held)."""

    id: str
    user_id: str
    price: Price
    held_nanos: int
    description: str
    open: bool = True
    charged_nanos: int = 0
    metered: bool = False
    quoted: tuple[Usage, int] | None = None  # (usage, its cost) once quoted, for the settle
    lease: Lease | None = None  # held from a credit lease, not by a hold row of its own


@dataclass
class BillingMetrics:
    """This worker's counters (in `/health`), and Prometheus' hooks (observability/metrics.py)."""

    over_hold: int = 0  # settles whose cost exceeded the hold (charged in full)
    over_hold_nanos: int = 0
    spooled: int = 0  # settles the database could not take, written to the spool
    on_over_hold: Callable[[int], None] | None = None  # with the nanos over the hold
    on_spooled: Callable[[], None] | None = None

    def charged_over_hold(self, nanos: int) -> None:
        self.over_hold += 1
        self.over_hold_nanos += nanos
        if self.on_over_hold is not None:
            self.on_over_hold(nanos)

    def settle_spooled(self) -> None:
        self.spooled += 1
        if self.on_spooled is not None:
            self.on_spooled()


def refundable(exc: BaseException) -> bool:
    """Whether a failure releases the hold: the provider failed (5xx, timeout, no answer) or
    the request never completed (cancelled). A request the provider rejected as the caller's
    error (4xx) is not refunded."""
    if isinstance(exc, GatewayError):
        return isinstance(exc, UpstreamError) or exc.status >= 500
    return True


@contextmanager
def ledger_errors() -> Iterator[None]:
    """A hold the ledger could not take, in the caller's terms: 401 (the account is gone) or
    503 (the database failed; the provider is not called)."""
    try:
        yield
    except UnknownUser:
        raise Unauthorized("The account of this API key no longer exists.") from None
    except DB_ERRORS as exc:
        log.error("billing hold failed: %s", exc)
        raise ServiceUnavailable(
            "Billing is temporarily unavailable; the request was not sent. Retry shortly."
        ) from None
