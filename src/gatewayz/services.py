"""Everything a running gateway holds, built once at startup and closed at shutdown.

Each component that needs stopping is entered on one `AsyncExitStack` the moment it exists
(its stop registered before anything else can fail), so shutdown is that stack closing, in the
reverse order of start-up: whatever uses a component stops before it. A failure at any point
of start-up closes the stack as far as it got, so nothing that started is left running (tasks,
connection pools, the simulator, the database engine), and the error goes on to the caller.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack
from typing import Any, Protocol

from gatewayz.batches.files import FileStore
from gatewayz.batches.lines import LineKind, LineRunner
from gatewayz.batches.runner import BatchRunner
from gatewayz.batches.service import BatchService
from gatewayz.billing.meter import Meter
from gatewayz.billing.settle_spool import SettleReplayer
from gatewayz.billing.sweep import Sweeper
from gatewayz.cache.response_cache import ResponseCache
from gatewayz.cache.response_setup import build_response_cache
from gatewayz.catalog.service import Catalog
from gatewayz.events import EventBus
from gatewayz.observability import error_reports
from gatewayz.observability.audit import AuditLog
from gatewayz.observability.metrics import Metrics
from gatewayz.observability.request_log import RequestLog
from gatewayz.observability.requests import ServedRequests
from gatewayz.observability.tracing import Tracing
from gatewayz.pipeline.chat import ChatPipeline
from gatewayz.pipeline.stored_responses import StoredResponses
from gatewayz.providers.registry import Registry, load_registry
from gatewayz.ratelimit import LimiterMetrics, RateLimiter
from gatewayz.reliability import CircuitBreakers
from gatewayz.reliability.incidents import IncidentTracker
from gatewayz.reliability.probes import Prober
from gatewayz.routing.resolve import Resolver
from gatewayz.security.auth import Authenticator
from gatewayz.security.fingerprint import check_secrets
from gatewayz.security.invalidation import AuthSync
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.simulators import Simulator
from gatewayz.state import StateBackend, build_state
from gatewayz.storage.db import Database
from gatewayz.storage.query_cache import QueryCache, build_query_cache
from gatewayz.webhooks.approaching import Approaching
from gatewayz.webhooks.dispatcher import Dispatcher

log = logging.getLogger("gatewayz")

SIMULATED_DESCRIPTION = (
    "Built-in simulated provider: deterministic text from a local simulator, no real model. "
    "For trying Gatewayz without provider keys."
)


class Services:
    settings: Settings
    db: Database
    keyring: KeyRing
    auth: Authenticator
    registry: Registry
    resolver: Resolver
    meter: Meter
    response_cache: ResponseCache
    sweeper: Sweeper
    settle_replayer: SettleReplayer
    events: EventBus
    incidents: IncidentTracker
    pipeline: ChatPipeline
    responses: StoredResponses
    tracing: Tracing
    request_log: RequestLog
    served: ServedRequests
    metrics: Metrics | None
    audit: AuditLog
    auth_sync: AuthSync
    query_cache: QueryCache
    webhooks: Dispatcher
    approaching: Approaching
    state: StateBackend
    limiter: RateLimiter
    breakers: CircuitBreakers
    prober: Prober | None
    catalog: Catalog
    simulator: Simulator | None
    batches: BatchService
    batch_runner: BatchRunner

    def __init__(
        self, settings: Settings, batch_lines: Mapping[str, LineKind] | None = None
    ) -> None:
        self.settings = settings
        # How a batch's lines are read and answered, by endpoint (the edge's dialects: without
        # them this worker runs no batch lines).
        self.batch_lines = dict(batch_lines or {})
        self.simulator = None
        self.prober = None
        # Here, not in `start`: the edge middleware is handed it when the app is built.
        self.tracing = Tracing(settings)
        self._stack = AsyncExitStack()

    async def start(self) -> None:
        async with AsyncExitStack() as stack:
            await self._start(stack)
            # Started in full: from now on the stack is closed by `stop`, not here.
            self._stack = stack.pop_all()
        served = ", ".join(p.slug for p in self.registry.enabled) or "none"
        log.info("providers served: %s", served)
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's full scans, which otherwise stall the event loop for tens of ms.
        gc.collect()
        gc.freeze()

    async def stop(self) -> None:
        await self._stack.aclose()

    async def _start(self, stack: AsyncExitStack) -> None:
        s = self.settings
        # Sentry (on with a DSN), once per process; stopped last, after everything it may report.
        if error_reports.init(s):
            stack.push_async_callback(error_reports.shutdown)
        # First in, last out: the spans of everything stopping after it are still exported.
        self.tracing.start()
        stack.push_async_callback(self.tracing.stop)
        self.db = Database(s.resolved_database_url)
        stack.push_async_callback(self.db.dispose)
        await check_secrets(self.db, s.secrets)  # every replica's must be the same: else refused
        self.keyring = KeyRing(*s.secrets)
        metrics = self.metrics = (
            Metrics(multiprocess_dir=s.metrics_multiprocess_dir) if s.metrics else None
        )
        limiter_metrics = LimiterMetrics(on_refused=metrics.refused if metrics else None)
        self.state = build_state(
            s.redis_url,
            s.redis_key_prefix,
            fallback_max_entries=s.fallback_max_entries,
            fallback_ttl_s=s.fallback_ttl_s,
            retry_after_s=s.state_fallback_retry_s,
            on_fallback=limiter_metrics.on_state_fallback,
        )
        stack.push_async_callback(self.state.close)
        self.limiter = RateLimiter(self.state, metrics=limiter_metrics)
        stack.push_async_callback(self.limiter.flush)
        self.breakers = CircuitBreakers(
            self.state, failure_threshold=s.breaker_failure_threshold, open_s=s.breaker_open_s
        )
        if s.simulated_provider:
            self.simulator = await stack.enter_async_context(Simulator())
        self.registry = load_registry(s, self.simulator.base_url if self.simulator else None)
        stack.push_async_callback(self.registry.close)
        self.resolver = Resolver(self.registry)
        self.meter = Meter(self.db, s)
        stack.push_async_callback(self.meter.close)
        if metrics is not None:
            self.meter.metrics.on_over_hold = metrics.charged_over_hold
            self.meter.metrics.on_spooled = metrics.settle_spooled
        await self.meter.reload_prices()
        if self.meter.leases is not None:
            _start_task(stack, self.meter.leases)
        self.response_cache = build_response_cache(s, self.state, self.registry)
        stack.push_async_callback(self.response_cache.close)
        self.audit = AuditLog(
            self.db,
            batch=s.request_log_batch,
            flush_s=s.request_log_flush_s,
            max_queued=s.request_log_queue_max,
            retry_max_s=s.request_log_retry_max_s,
        )
        _start_task(stack, self.audit)
        self.approaching = Approaching(self.db)
        stack.push_async_callback(self.approaching.stop)
        self.pipeline = ChatPipeline(
            s,
            self.resolver,
            self.meter,
            self.breakers,
            self.limiter,
            self.audit,
            cache=self.response_cache,
            tracing=self.tracing,
            approaching=self.approaching,
        )
        self.sweeper = Sweeper(self.db, s.billing_sweep_s)
        _start_task(stack, self.sweeper)
        self.settle_replayer = SettleReplayer(
            self.meter.spool, self.meter.ledger, s.billing_settle_retry_s
        )
        _start_task(stack, self.settle_replayer)
        self.events = EventBus()
        stack.push_async_callback(self.events.stop)
        self.incidents = IncidentTracker(
            self.db,
            self.pipeline.health,
            self.breakers,
            self.events,
            interval_s=s.incident_check_s,
            quiet_s=s.incident_quiet_s,
        )
        _start_task(stack, self.incidents)
        if s.health_probes:
            self.prober = Prober(
                self.db,
                self.registry.providers,
                self.pipeline.health,
                self.state,
                concurrency=s.health_probe_concurrency,
                tick_s=s.health_probe_tick_s,
                timeout_s=s.health_probe_timeout_s,
            )
            _start_task(stack, self.prober)
        # The model catalog: served from its caches and the database; synced in the background
        # (a never-synced catalog is synced before serving, for at most catalog_startup_wait_s).
        self.catalog = Catalog(
            self.db,
            s,
            self.registry,
            lambda: self.meter.book,
            self.pipeline.health,
            extra_models=self.model_list,
        )
        # Routes that resolution only guesses (an organisation's provider, an aggregator) need
        # what the synced catalog knows providers list and price (routing/known.py).
        self.resolver.known = self.catalog.known
        # Its stop first: a start that fails part way may already have started its tasks.
        stack.push_async_callback(self.catalog.stop)
        await self.catalog.start()
        self.auth = Authenticator(
            self.db,
            self.keyring,
            ttl_s=s.auth_cache_ttl_s,
            negative_ttl_s=s.auth_negative_cache_ttl_s,
        )
        self.request_log = RequestLog(
            self.db,
            batch=s.request_log_batch,
            flush_s=s.request_log_flush_s,
            max_queued=s.request_log_queue_max,
            retry_max_s=s.request_log_retry_max_s,
        )
        _start_task(stack, self.request_log)
        served_names = {m["id"] for m in self.model_list()}
        self.served = ServedRequests(
            self.request_log,
            metrics,
            lambda model: model in served_names or model in self.meter.book.models,
            self.tracing,
            access_log=s.access_log,
        )
        self.auth_sync = AuthSync(
            self.auth, self.state, poll_s=s.auth_invalidation_poll_s, workers=s.workers
        )
        _start_task(stack, self.auth_sync)
        self.query_cache = build_query_cache(s)
        stack.push_async_callback(self.query_cache.close)
        self.webhooks = Dispatcher(
            self.db,
            self.keyring,
            interval_s=s.webhook_dispatch_s,
            retry_base_s=s.webhook_retry_base_s,
            max_attempts=s.webhook_max_attempts,
            allow_private=s.webhooks_allow_private,
            on_disabled=lambda endpoint, reason: self.audit.event(
                "webhook_disabled",
                severity="warning",
                user_id=endpoint["user_id"],
                detail={"endpoint_id": endpoint["id"], "reason": reason},
            ),
            on_attempt=metrics.webhook_attempt if metrics is not None else None,
        )
        _start_task(stack, self.webhooks)
        # Batches: files under the data dir, lines run through the same steps as requests.
        files = FileStore(
            s.data_dir, max_bytes=s.batch_max_file_bytes, max_line_bytes=s.max_body_bytes
        )
        self.batches = BatchService(self.db, files)
        self.batch_runner = BatchRunner(
            self.db,
            LineRunner(self.pipeline, self.served, s.batch_discount),
            self.batch_lines,
            self.auth,
            files,
            concurrency=s.batch_concurrency,
            poll_s=s.batch_poll_s,
        )
        _start_task(stack, self.batch_runner)
        # Stored Responses-API responses: saved beside the answer, purged when they expire (a
        # continued conversation may be a few requests long: four bodies' worth).
        self.responses = StoredResponses(
            self.db, s.responses_retention_days, max_bytes=4 * s.max_body_bytes
        )
        _start_task(stack, self.responses)

    def model_list(self) -> list[dict[str, Any]]:
        """Models this gateway can serve by exact name, in OpenAI's model-object shape (the
        routers last)."""
        out: list[dict[str, Any]] = []
        if self.simulator is not None and self.registry.providers["simulated"].enabled:
            for mid in self.simulator.models:
                out.append(
                    {
                        "id": mid,
                        "object": "model",
                        "created": 0,
                        "owned_by": "gatewayz-simulated",
                        "provider": "simulated",
                        "simulated": True,
                        "description": SIMULATED_DESCRIPTION,
                    }
                )
        for p in self.registry.enabled:
            for mid in p.models:
                out.append(
                    {
                        "id": mid,
                        "object": "model",
                        "created": 0,
                        "owned_by": p.slug,
                        "provider": p.slug,
                    }
                )
        smart = self.pipeline.routes.smart
        return out if smart is None else out + smart.listed()


class _Background(Protocol):
    def start(self) -> None: ...

    async def stop(self) -> None: ...


def _start_task(stack: AsyncExitStack, component: _Background) -> None:
    """Start a component's background task, its stop on the stack."""
    component.start()
    stack.push_async_callback(component.stop)
