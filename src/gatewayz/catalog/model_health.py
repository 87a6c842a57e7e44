"""Health data for the catalog's `health_status`: operational, degraded or down per offer
(provider × native id), from the open incidents (shared by every worker, in the database) and
this worker's passive health window.

An offer is down under a Critical (provider) or High (model) incident, or when ≥ 50 % of its
recent attempts failed; degraded under a Medium or Low incident or at ≥ 10 %; else
operational (no incident and no failing traffic: what `/status` says too). A model's status is
its best offer's: a model is operational while any provider serves it well.

Built at most once per cache period (6 min); when the incidents cannot be read the data is built
from passive health alone and kept only briefly.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from gatewayz.reliability.incident_store import PROVIDER_WIDE, Incident, open_incidents
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.storage.db import Database
from gatewayz.storage.errors import DB_ERRORS

log = logging.getLogger("gatewayz.catalog")

OPERATIONAL, DEGRADED, DOWN = "operational", "degraded", "down"
RANK = {OPERATIONAL: 0, DEGRADED: 1, DOWN: 2}
_SEVERITY = {"critical": DOWN, "high": DOWN, "medium": DEGRADED, "low": DEGRADED}
BRIEF_TTL_S = 30.0  # how long data built without the incidents is kept


@dataclass(frozen=True, slots=True)
class HealthData:
    providers: dict[str, str] = field(default_factory=dict)
    offers: dict[tuple[str, str], str] = field(default_factory=dict)
    complete: bool = True  # the incidents were read

    def status(self, provider: str, native_id: str) -> str:
        a = self.providers.get(provider, OPERATIONAL)
        b = self.offers.get((provider, native_id), OPERATIONAL)
        return a if RANK[a] >= RANK[b] else b

    def best(self, pairs: Iterable[tuple[str, str]]) -> str:
        statuses = [self.status(p, n) for p, n in pairs]
        return min(statuses, key=RANK.__getitem__) if statuses else OPERATIONAL


def _worse(current: str | None, new: str) -> str:
    if current is None or RANK[new] > RANK[current]:
        return new
    return current


def health_data(incidents: list[Incident] | None, passive: PassiveHealth) -> HealthData:
    providers: dict[str, str] = {}
    offers: dict[tuple[str, str], str] = {}
    for inc in incidents or ():
        status = _SEVERITY.get(inc.severity, DEGRADED)
        if inc.model == PROVIDER_WIDE:
            providers[inc.provider] = _worse(providers.get(inc.provider), status)
        else:
            key = (inc.provider, inc.model)
            offers[key] = _worse(offers.get(key), status)
    for row in passive.models():
        key = (row["provider"], row["model"])
        offers[key] = _worse(offers.get(key), row["status"])
    return HealthData(providers, offers, complete=incidents is not None)


async def load_health(db: Database, passive: PassiveHealth) -> HealthData:
    try:
        async with db.begin() as conn:
            found: list[Incident] | None = await open_incidents(conn)
    except DB_ERRORS as exc:
        log.warning("catalog health: incidents unreadable (%s); passive health only", exc)
        found = None
    return health_data(found, passive)


def health_ttl(data: HealthData, ttl_s: float) -> float:
    return ttl_s if data.complete else min(ttl_s, BRIEF_TTL_S)
