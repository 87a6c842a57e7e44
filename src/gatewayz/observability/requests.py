"""What happens when an inference call ends, whatever ended it: its request-log row is queued
for the database (off the request path), its metrics are counted, its outcome goes on its
trace's server span (tracing on), and — with the access log on
(`GATEWAYZ_ACCESS_LOG`, the default) — one line is logged: request id, key id (never the key),
user id, model, provider, status, latency, overhead, tokens, cost, cache result and attempts.
With `GATEWAYZ_LOG_FORMAT=json` that line is one JSON object with those fields
(`log_config.JsonFormatter` merges a record's `fields`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gatewayz.money import usd_text
from gatewayz.observability.metrics import Metrics
from gatewayz.observability.request_log import RequestLog
from gatewayz.observability.tracing import Tracing

access_log = logging.getLogger("gatewayz.access")

OTHER = "other"  # the model label of a name the gateway does not know (bounded labels)


@dataclass(slots=True)
class Served:
    """An inference call as it ended (`pipeline.call.Call.served`)."""

    row: dict[str, Any]  # the request-log row
    model: str  # the canonical model id (the name asked for, before it was resolved)
    attempts: int  # upstream attempts (0: answered from the cache, or refused before)
    cache: str | None  # "hit", "semantic", "miss"; None when the cache was not consulted
    cached_tokens: int = 0
    reasoning_tokens: int = 0
    end_user: str | None = None  # the request's `user` (`metadata.user_id`): for abuse tracing


class ServedRequests:
    def __init__(
        self,
        request_log: RequestLog,
        metrics: Metrics | None,
        known_model: Callable[[str], bool],
        tracing: Tracing,
        *,
        access_log: bool = True,
    ) -> None:
        self.request_log = request_log
        self.metrics = metrics
        self.tracing = tracing
        self.known_model = known_model
        self.access_log = access_log

    def record(self, served: Served) -> None:
        self.request_log.record(served.row)
        if self.metrics is not None:
            self._count(self.metrics, served)
        if self.tracing.on:
            self.tracing.chat_done(served.row)
        if self.access_log and access_log.isEnabledFor(logging.INFO):
            _log_access(served)

    def _count(self, m: Metrics, served: Served) -> None:
        row = served.row
        provider = row["provider"] or "none"
        model = served.model if served.model and self.known_model(served.model) else OTHER
        m.requests(provider, model, str(row["status_code"])).inc()
        m.duration(provider, model).observe(row["latency_ms"] / 1000)
        m.overhead.observe(row["overhead_ms"] / 1000)
        if row["ttft_ms"] is not None:
            m.first_chunk(provider, model).observe(row["ttft_ms"] / 1000)
        for kind, count in (
            ("prompt", row["prompt_tokens"]),
            ("completion", row["completion_tokens"]),
            ("cached", served.cached_tokens),
            ("reasoning", served.reasoning_tokens),
        ):
            if count > 0:
                m.tokens(provider, model, kind).inc(count)
        cost = row["cost_nanos"]
        if cost:
            m.credits(provider, model).inc(cost / 1e9)
        if served.cache is not None:
            m.cache(served.cache).inc()
        if served.attempts > 1:
            m.failovers(provider).inc(served.attempts - 1)


def _log_access(served: Served) -> None:
    row = served.row
    cost = row["cost_nanos"]
    fields = {
        "request_id": row["request_id"],
        "key_id": row["api_key_id"],
        "user_id": row["user_id"],
        "endpoint": row["endpoint"],
        "model": row["model"],
        "provider": row["provider"],
        "stream": row["stream"],
        "status": row["status_code"],
        "error_code": row["error_code"],
        "latency_ms": round(row["latency_ms"], 3),
        "overhead_ms": round(row["overhead_ms"], 3),
        "prompt_tokens": row["prompt_tokens"],
        "completion_tokens": row["completion_tokens"],
        "cost_usd": None if cost is None else usd_text(cost),
        "cache": served.cache,
        "attempts": served.attempts,
        "end_user": served.end_user,
    }
    access_log.info(
        "%s %s %s via %s: %.1f ms (overhead %.2f ms), %d+%d tokens, $%s, cache %s, %d attempts",
        row["endpoint"],
        row["status_code"],
        row["model"],
        row["provider"] or "-",
        row["latency_ms"],
        row["overhead_ms"],
        row["prompt_tokens"],
        row["completion_tokens"],
        fields["cost_usd"] or "0",
        served.cache or "-",
        served.attempts,
        extra={"fields": fields},
    )
