"""Prometheus metrics: what the gateway serves, what it costs, how fast, and where it refuses.

Every chat call is counted once, when it ends (`observe`, fed by `observability.requests`), from
the same facts as its request-log row; the other counters are fed by hooks where their events
happen (rate-limit refusals, charges over the hold, spooled settles). Labels are bounded: a
provider slug, a catalog model id (a model the catalog does not know is `other`), an HTTP status,
a token type, a limit layer — never a user, a key, a request id or free text.

A child metric is looked up once per label set and kept (`_Children`): an increment on the request
path is a dict lookup and the child's own increment, not `labels()`' lock and validation.

With several workers (`gatewayz serve --workers N`) each writes its values to files in the
directory named by `PROMETHEUS_MULTIPROC_DIR` (set by the CLI, under the data dir, emptied at
start) and a scrape of any worker sums them all (`prometheus_client` multiprocess mode); the
process metrics are then left out (they are per process). One worker keeps its values in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Generic, TypeVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

M = TypeVar("M", Counter, Histogram)

# Seconds: a cached answer in a millisecond to a long reasoning call.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
FIRST_CHUNK_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
# The gateway's own time: tens of microseconds to a database or Redis stall.
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}


class _Children(Generic[M]):
    """A metric's children by label values, each looked up once."""

    __slots__ = ("_children", "metric")

    def __init__(self, metric: M) -> None:
        self.metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self.metric.labels(*labels)
        return child


class Metrics:
    def __init__(self, *, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        if multiprocess_dir is None:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        # In multiprocess mode values go to files whatever the registry: none is needed.
        reg = None if multiprocess_dir else self.registry
        self.requests = _Children(
            Counter(
                "model_inference_requests",
                "Inference requests that reached a model, by provider, model and HTTP status.",
                ("provider", "model", "status"),
                registry=reg,
            )
        )
        self.duration = _Children(
            Histogram(
                "model_inference_duration_seconds",
                "Inference request duration, arrival to the last byte (streams included).",
                ("provider", "model"),
                buckets=DURATION_BUCKETS,
                registry=reg,
            )
        )
        self.tokens = _Children(
            Counter(
                "tokens_used",
                "Tokens used, by type: prompt, completion, cached (prompt tokens read from the "
                "provider's cache) and reasoning (part of completion).",
                ("provider", "model", "token_type"),
                registry=reg,
            )
        )
        self.credits = _Children(
            Counter(
                "credits_used",
                "Credits charged to balances, in USD.",
                ("provider", "model"),
                registry=reg,
            )
        )
        self.first_chunk = _Children(
            Histogram(
                "time_to_first_chunk_seconds",
                "Streams: arrival to the first content chunk sent to the client.",
                ("provider", "model"),
                buckets=FIRST_CHUNK_BUCKETS,
                registry=reg,
            )
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time spent in the gateway itself per inference request (duration minus the time "
            "spent waiting for providers).",
            buckets=OVERHEAD_BUCKETS,
            registry=reg,
        )
        self.cache = _Children(
            Counter(
                "gatewayz_response_cache_lookups",
                "Response-cache lookups by result: hit (exact), semantic (a similar prompt's "
                "answer) or miss.",
                ("result",),
                registry=reg,
            )
        )
        self.rate_limited = _Children(
            Counter(
                "gatewayz_rate_limit_rejections",
                "Requests refused by a rate limit, by layer (ip, rpm, tokens_per_day, "
                "tokens_per_month, anonymous).",
                ("layer",),
                registry=reg,
            )
        )
        self.failovers = _Children(
            Counter(
                "gatewayz_failover_attempts",
                "Upstream attempts after the first one of a request (failover to another "
                "provider, or a 429 retried), by the provider that answered last.",
                ("provider",),
                registry=reg,
            )
        )
        self.over_hold = Counter(
            "gatewayz_charges_over_hold",
            "Charges above their hold (charged in full; the hold's bound was wrong).",
            registry=reg,
        )
        self.over_hold_usd = Counter(
            "gatewayz_charges_over_hold_usd",
            "USD charged above the holds.",
            registry=reg,
        )
        self.webhooks = _Children(
            Counter(
                "gatewayz_webhook_deliveries",
                "Webhook delivery attempts by result: delivered, retried (to be tried again), "
                "failed (given up, or the endpoint answered 410).",
                ("result",),
                registry=reg,
            )
        )
        self.spooled = Counter(
            "gatewayz_settles_spooled",
            "Charges the database could not take, written to the disk spool for replay.",
            registry=reg,
        )

    # ---- hooks -------------------------------------------------------------------------------
    def refused(self, layer: str) -> None:
        self.rate_limited(layer).inc()

    def charged_over_hold(self, over_nanos: int) -> None:
        self.over_hold.inc()
        self.over_hold_usd.inc(over_nanos / 1e9)

    def settle_spooled(self) -> None:
        self.spooled.inc()

    def webhook_attempt(self, result: str) -> None:
        self.webhooks(result).inc()

    # ---- the scrape --------------------------------------------------------------------------
    def scrape(self, breakers: Iterable[dict[str, Any]] = ()) -> bytes:
        """The exposition text: every metric (summed over workers in multiprocess mode) and the
        circuit breakers' states (`CircuitBreakers.snapshot()`, shared by every worker)."""
        if self.multiprocess_dir is None:
            registry = self.registry
        else:
            registry = CollectorRegistry()
            MultiProcessCollector(registry, path=self.multiprocess_dir)
        text = generate_latest(registry)
        states = _Snapshot(breakers)
        if states.entries:
            text += generate_latest(states.registry())
        return text


class _Snapshot:
    """The circuit breakers' states as a gauge (0 closed, 1 half-open, 2 open)."""

    def __init__(self, breakers: Iterable[dict[str, Any]]) -> None:
        self.entries = list(breakers)

    def registry(self) -> CollectorRegistry:
        registry = CollectorRegistry()
        registry.register(self)  # type: ignore[arg-type]
        return registry

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "gatewayz_circuit_breaker_state",
            "Circuit breaker state per provider (and provider x model): 0 closed, 1 half-open, "
            "2 open.",
            labels=("provider", "model"),
        )
        for entry in self.entries:
            state = BREAKER_STATES.get(str(entry.get("state")), 0)
            family.add_metric((str(entry["provider"]), str(entry.get("model") or "")), state)
        yield family
