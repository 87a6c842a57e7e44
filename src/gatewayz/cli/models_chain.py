"""What `gatewayz models resolve` looks up: the resolution of a name with the synced catalog a
running gateway would use (read from its database, never written), and the failover chain a chat
request for it would try, made by the chat pipeline's own code: its routing step
(`ChatPipeline.routes.chain_of`: the resolver's served providers in the failover policy's order,
or exactly an override's order), the meter's prices (a candidate no price allows is left out:
`Meter.price_routes`), chat-priced routes only, each provider's proxy first (`through_proxies`).

Each candidate that is not tried says why: not served (no key, disabled), left out by the
failover policy, unpriced, not a chat model. What is decided per request is not applied: fields
a provider family cannot take, a prompt beyond a context window, load balancing (recent health,
traffic splits); breakers are shown when they are shared (Redis), as requests skip open ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from gatewayz.billing.meter import Meter
from gatewayz.catalog.known import Knowledge
from gatewayz.catalog.service import Catalog
from gatewayz.cli.breakers import board
from gatewayz.errors import GatewayError
from gatewayz.money import usd_text
from gatewayz.observability.audit import AuditLog
from gatewayz.pipeline.chat import ChatPipeline
from gatewayz.providers.registry import Registry, load_registry
from gatewayz.ratelimit import RateLimiter
from gatewayz.reliability import CircuitBreakers
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.routing.detect import parse_override
from gatewayz.routing.explanation import Explanation, Route, through_proxies
from gatewayz.routing.resolve import Resolver
from gatewayz.settings import Settings
from gatewayz.state import build_state
from gatewayz.storage.catalog import sync_states
from gatewayz.storage.db import Database, sqlite_file
from gatewayz.storage.errors import DB_ERRORS

# Without a database file the pipeline gets an empty one in memory: nothing is written to disk.
_NOWHERE = "sqlite+aiosqlite:///:memory:"


@dataclass(slots=True)
class Chain:
    tried: list[dict[str, Any]] = field(default_factory=list)  # in order
    left_out: list[dict[str, Any]] = field(default_factory=list)
    error: GatewayError | None = None  # what a request gets when nothing is tried
    notes: list[str] = field(default_factory=list)  # what a request may change

    def to_dict(self) -> dict[str, Any]:
        err = self.error
        return {
            "tried": self.tried,
            "left_out": self.left_out,
            "error": None
            if err is None
            else {"status": err.status, "code": err.code, "message": err.message},
            "notes": self.notes,
        }


async def look_up(
    settings: Settings, name: str, override: str | dict[str, Any] | None
) -> tuple[Explanation, str, Chain]:
    """(the resolution, which catalog it used, the failover chain)."""
    registry = load_registry(settings, simulated_base_url="http://127.0.0.1:0/v1")
    url = settings.resolved_database_url
    path = sqlite_file(url)
    exists = path is None or path.exists()
    db = Database(url if exists else _NOWHERE)
    meter = Meter(db, settings)
    state = build_state(settings.redis_url, settings.redis_key_prefix)
    try:
        knowledge, catalog = (
            await _knowledge(settings, registry, db, meter)
            if exists
            else (None, "none: resolved without it (no database yet)")
        )
        resolver = Resolver(registry, known=lambda: knowledge)
        exp = resolver.explain(name, override)  # a bad override: GatewayError, a clean exit
        breakers = board(settings, state)
        audit = AuditLog(db, batch=1, flush_s=1.0, max_queued=1, retry_max_s=1.0)  # unused
        pipeline = ChatPipeline(settings, resolver, meter, breakers, RateLimiter(state), audit)
        chain = await _chain(pipeline, exp, name, override)
        if state.name == "memory":
            chain.notes.append(
                "circuit breakers: not shown (GATEWAYZ_REDIS_URL is not set: each gateway "
                "process keeps its own); a request skips a provider whose breaker is open"
            )
        else:
            await _breakers(breakers, chain)
            if getattr(state, "degraded", False):  # what was read is the empty fallback's
                for step in chain.tried:
                    step["breaker"] = None
                chain.notes.append("circuit breakers: unknown (Redis is unreachable)")
    finally:
        await meter.close()
        await registry.close()
        await state.close()
        await db.dispose()
    return exp, catalog, chain


async def _knowledge(
    settings: Settings, registry: Registry, db: Database, meter: Meter
) -> tuple[Knowledge | None, str]:
    """What the gateway's synced catalog knows providers list and price, as `Services` reads
    it (prices with the database's overrides, into `meter`), and a line saying which catalog
    the resolution used."""
    try:
        async with db.begin() as conn:
            await sync_states(conn)  # a database without the catalog fails here
        await meter.reload_prices()
        configured = [{"id": m} for p in registry.enabled for m in p.models]
        catalog = Catalog(
            db,
            settings,
            registry,
            lambda: meter.book,
            PassiveHealth(),
            extra_models=lambda: configured,
        )
        await catalog.publish_known()
        knowledge = catalog.known()
    except DB_ERRORS as exc:
        return None, f"none: resolved without it (database: {exc.__class__.__name__})"
    if knowledge is None:
        return None, "none: resolved without it (the catalog could not be read)"
    if knowledge.synced:
        return knowledge, "synced: org and aggregator routes need a listing or a price"
    return knowledge, "not synced: org and aggregator routes are not checked"


def _out(route: Route, reason: str) -> dict[str, Any]:
    return {"provider": route.provider.slug, "native_id": route.native_id, "reason": reason}


async def _chain(pipeline: ChatPipeline, shown: Explanation, name: str, override: Any) -> Chain:
    chain = Chain()
    for c in shown.candidates:
        if not c.served:
            chain.left_out.append(
                {
                    "provider": c.provider.slug,
                    "native_id": c.native_id,
                    "reason": f"not served: {c.provider.reason}",
                }
            )
    step = pipeline.routes
    try:
        exp, routes = step.chain_of(name, parse_override(override))
    except GatewayError as err:
        chain.error = err
        return chain
    policy, meter = step.policy, step.meter
    org = exp.canonical.partition("/")[0]
    chained = {r.provider.slug for r in routes}
    for r in exp.routes:
        if r.provider.slug not in chained:
            chain.left_out.append(
                _out(
                    r, f"failover policy: {org}/* fails over only to {org}, then {policy.fallback}"
                )
            )
    try:
        prices = meter.price_routes(routes)
    except GatewayError as err:  # nothing priced: the first refusal is the answer
        prices, chain.error = {}, err
    for r in routes:
        if r.provider.slug not in prices:
            try:
                meter.lookup(r)
                reason = "unpriced"
            except GatewayError as err:
                reason = f"unpriced: {err.message}"
            chain.left_out.append(_out(r, reason))
    routes = tuple(r for r in routes if r.provider.slug in prices)
    if routes and any(p.mode is not None for p in prices.values()):
        kinds = {slug: p.kind for slug, p in prices.items()}
        try:
            chat = step._chat_only(routes, prices, name)
        except GatewayError as err:
            chat, chain.error = (), err
        kept = {r.provider.slug for r in chat}
        for r in routes:
            if r.provider.slug not in kept:
                chain.left_out.append(_out(r, f"priced as an {kinds[r.provider.slug]} model"))
        routes = chat
    tried = through_proxies(routes) if step.via_proxies else routes
    for r in tried:
        price, found = prices[r.provider.slug], meter.lookup(r)
        chain.tried.append(
            {
                "key": r.key,
                "provider": r.provider.slug,
                "native_id": r.native_id,
                "via": r.via,
                "price_per_1m_usd": {
                    "prompt": usd_text(price.prompt),
                    "completion": usd_text(price.completion),
                },
                "price_source": "default rate" if found.is_default else found.source,
                "breaker": None,
            }
        )
    weights = policy.splits.get(exp.canonical)
    if weights and len(tried) > 1:
        chain.notes.append(f"traffic split {weights}: a request draws its first provider by it")
    chain.notes.append(
        "per request: providers whose family cannot take a field it uses or whose context "
        "window its prompt exceeds are skipped; recent failures move a provider back"
    )
    return chain


async def _breakers(breakers: CircuitBreakers, chain: Chain) -> None:
    """Each tried route's breakers as a request checks them (the model's, the provider's)."""
    for step in chain.tried:
        for model in (step["native_id"], None):
            entry = await breakers.get(step["key"], model)
            if entry["state"] != "closed":
                retry = entry["retry_at"]
                step["breaker"] = {
                    "state": entry["state"],
                    "model": model,
                    "retry_at": datetime.fromtimestamp(retry, UTC).isoformat() if retry else None,
                }
                break
        else:
            step["breaker"] = {"state": "closed", "model": None, "retry_at": None}
