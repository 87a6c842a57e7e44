"""All configuration. Nothing else in Gatewayz reads the environment.

Settings come from `GATEWAYZ_*` variables (pydantic-settings). Provider endpoints and keys come
from `GATEWAYZ_PROVIDER_<SLUG>_{BASE_URL,API_KEY,MODELS}` and from each provider's conventional
key variable (`OPENAI_API_KEY`, ...), as named in the providers file. Unknown `GATEWAYZ_*`
variables are errors: a typo must fail loudly at startup, not be silently ignored.
"""

from __future__ import annotations

import os
import re
import shutil
import tomllib
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from cryptography.fernet import Fernet
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gatewayz.secrets_file import data_dir_secrets

PROVIDERS_FILE = Path(__file__).parent / "providers" / "providers.toml"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's multiprocess directory
OTLP_ENV = "OTEL_EXPORTER_OTLP"  # the OpenTelemetry exporter's variables (`…_ENDPOINT`, …)
# https://<public key>[:<secret>]@<host>[:<port>][/<path>]/<project id>
_SENTRY_DSN = re.compile(
    r"^https?://[^@/\s:]+(?::[^@/\s]*)?@[A-Za-z0-9.\-]+(?::\d{1,5})?(?:/[^\s?#]*)?/\d+/?$"
)
_PROVIDER_VAR = re.compile(r"^GATEWAYZ_PROVIDER_([A-Z0-9_]+)_(BASE_URL|API_KEY|MODELS)$")


class ConfigError(ValueError):
    """Bad configuration; raised at startup."""


class ProviderEnv(dict[str, str]):
    """Per-provider values read from the environment: base_url, api_key, models, and vars."""


def provider_env_var(slug: str, field: str) -> str:
    return f"GATEWAYZ_PROVIDER_{slug.upper().replace('-', '_')}_{field}"


def _provider_file_entries(path: Path) -> dict[str, dict[str, Any]]:
    with path.open("rb") as f:
        return tomllib.load(f)["providers"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAYZ_", extra="forbid", frozen=True)

    env: Literal["live", "test", "staging", "dev"] = "live"
    data_dir: Path = Path(".gatewayz")
    database_url: str | None = None
    redis_url: str | None = None
    redis_key_prefix: str = "gw:"
    fernet_key: SecretStr | None = None
    hmac_key: SecretStr | None = None

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Logging (observability/log_config.py): the level of gatewayz.* and uvicorn's loggers (other
    # libraries: warnings and errors); lines as text or as one JSON object each, on stderr.
    log_level: Literal["critical", "error", "warning", "info", "debug"] = "info"
    log_format: Literal["text", "json"] = "text"
    # One line per inference request on the `gatewayz.access` logger (observability/requests.py).
    access_log: bool = True
    # Prometheus metrics at GET /metrics (observability/metrics.py); with a token set, a scrape
    # must send `Authorization: Bearer <token>`.
    metrics: bool = True
    metrics_token: SecretStr | None = None
    # OpenTelemetry traces (observability/tracing.py): on when an OTLP endpoint is set
    # (`otlp_endpoint_set`). Provider requests carry the W3C `traceparent` only with this on.
    trace_propagate_upstream: bool = False
    # asyncio: fair under overload (p99 stays near p50). uvloop: ~15% more requests/s below
    # saturation, but starves in-flight requests once saturated (p99 of seconds). See README.
    event_loop: Literal["asyncio", "uvloop"] = "asyncio"

    max_body_bytes: int = 10 * 1024 * 1024
    # Slow clients (api/http_protocol.py): a request head not complete this long after its
    # first byte gets 408 and the connection is closed (a new connection that sent nothing by
    # then is closed without an answer); a body with no byte arriving for `body_read_timeout_s`
    # likewise. The body's bound is on silence, not on the whole upload: a 10 MiB body on a slow
    # link keeps making progress, while 30 s without a byte outlasts TCP's retransmission
    # backoff on a lossy but live link and still frees a stalled connection soon.
    head_read_timeout_s: float = Field(default=10.0, gt=0)
    body_read_timeout_s: float = Field(default=30.0, gt=0)
    upstream_connect_timeout_s: float = 10.0
    upstream_read_timeout_s: float = 300.0
    upstream_max_connections: int = 512
    # A provider's 429 is retried on the same provider this many times (never failed over),
    # waiting its Retry-After, or exponential backoff with jitter; a Retry-After longer than
    # the max wait goes back to the caller at once.
    upstream_429_retries: int = 2
    upstream_429_max_wait_s: float = 5.0
    # A request's whole budget across failover attempts and 429 retries (for a stream: until
    # it starts); an attempt still running then is cancelled and the caller gets a 504.
    request_deadline_s: float = 600.0
    # Load balancing: a provider whose recent success rate is below this is demoted behind
    # healthier ones serving the same model.
    balance_healthy_rate: float = 0.9
    auth_cache_ttl_s: float = 300.0
    auth_negative_cache_ttl_s: float = 5.0
    # How often each worker checks for key changes made elsewhere (revocation, rotation, ...).
    auth_invalidation_poll_s: float = 0.25
    request_log_batch: int = 500
    request_log_flush_s: float = 0.5
    request_log_queue_max: int = 100_000
    # While the database is unavailable the log writers keep their rows and retry, waiting
    # `request_log_flush_s` at first, twice as long after each failure, at most this long.
    request_log_retry_max_s: float = Field(default=30.0, gt=0)
    chars_per_token: int = 4
    simulated_provider: bool = True
    state_fallback_retry_s: float = 5.0
    providers_file: Path = PROVIDERS_FILE

    # ---- identity and protection ---------------------------------------------------
    # Privy login: the app id is the token audience; the key is the ES256 public key (PEM).
    privy_app_id: str | None = None
    privy_verification_key: SecretStr | None = None
    privy_issuer: str = "privy.io"
    # Client IPs come from the socket unless the peer is one of these proxies (comma-separated
    # IPs or CIDRs); then from the right-most X-Forwarded-For hop that is not a trusted proxy.
    trusted_proxies: str = ""
    # IP layer (before authentication), per IP per minute; velocity mode tightens it.
    ip_rate_limit_rpm: int = 300
    velocity_min_requests: int = 100
    velocity_error_ratio: float = 0.25
    velocity_factor: float = 0.5
    velocity_cooldown_s: float = 180.0
    # Auth endpoints, per IP.
    login_rate_limit: int = 10
    login_rate_window_s: float = 900.0
    register_rate_limit: int = 3
    register_rate_window_s: float = 3600.0
    # In-memory fallback when Redis is down: LRU entries and TTL.
    fallback_max_entries: int = 500
    fallback_ttl_s: float = 900.0
    # DB query cache (storage/query_cache.py): per-user reads served a little stale, with
    # their TTLs; the entry bound applies without Redis (with Redis the entries live there).
    query_cache: bool = True
    query_cache_keys_ttl_s: float = Field(default=300.0, gt=0)
    query_cache_usage_ttl_s: float = Field(default=60.0, gt=0)
    query_cache_max_entries: int = Field(default=10_000, ge=1)
    # Circuit breakers (per provider): consecutive failures that open one; seconds it stays open
    # before one half-open probe is let through.
    breaker_failure_threshold: int = 5
    breaker_open_s: float = 300.0
    # Incidents (reliability/incidents.py): how often each worker checks passive health and the
    # breakers against the open incidents; an incident with no traffic since (no failures, no
    # confirmation by any worker) for `incident_quiet_s` is resolved.
    incident_check_s: float = 30.0
    incident_quiet_s: float = 900.0
    # Active health probes (reliability/probes.py): every tick each worker looks at the provider
    # × model pairs due by usage tier (top 5 % every 5 min, next 20 % every 30 min, the rest
    # every 2-4 h) that real requests did not measure lately; at most `concurrency` probes in
    # flight, each within the timeout.
    health_probes: bool = True
    health_probe_concurrency: int = Field(default=4, ge=1)
    health_probe_tick_s: float = Field(default=30.0, gt=0)
    health_probe_timeout_s: float = Field(default=30.0, gt=0)

    # ---- model catalog (catalog/) -----------------------------------------------------------
    # Background sync of each served provider's model list: every interval, and at startup when
    # the catalog was never synced (startup waits at most `catalog_startup_wait_s` for it); a
    # failed provider is retried after `catalog_sync_retry_s`; one provider's whole list must
    # arrive within `catalog_sync_timeout_s`. Each worker checks every `catalog_check_s` whether
    # a sync is due and whether another worker (or `gatewayz models sync`) changed the catalog.
    catalog_sync: bool = True
    catalog_sync_interval_s: float = Field(default=21_600.0, gt=0)
    catalog_sync_retry_s: float = Field(default=300.0, gt=0)
    catalog_sync_timeout_s: float = Field(default=30.0, gt=0)
    catalog_startup_wait_s: float = Field(default=10.0, ge=0)
    catalog_check_s: float = Field(default=30.0, gt=0)
    catalog_max_offers_per_provider: int = Field(default=20_000, ge=1)
    # Caches: L1 whole responses (TTL, entries, bytes), L2 per-provider lists (a random TTL in
    # [min, max] per load), per-model health data.
    catalog_l1_ttl_s: float = Field(default=300.0, gt=0)
    catalog_l1_max_entries: int = Field(default=2_000, ge=1)
    catalog_l1_max_bytes: int = Field(default=256 << 20, ge=1)
    catalog_l2_ttl_min_s: float = Field(default=900.0, gt=0)
    catalog_l2_ttl_max_s: float = Field(default=1_800.0, gt=0)
    catalog_health_ttl_s: float = Field(default=360.0, gt=0)

    # ---- money -----------------------------------------------------------------------
    # A request without max_tokens reserves this many output tokens before the provider call.
    billing_default_max_tokens: int = 4096
    # An open hold whose worker died is released after this long (longer than any request).
    billing_hold_ttl_s: float = 3600.0
    # Background sweeps: expired holds, due monthly allowance resets.
    billing_sweep_s: float = 60.0
    # How often settles the database could not take (spooled to DATA_DIR/settle-spool) are
    # retried.
    billing_settle_retry_s: float = Field(default=5.0, gt=0)
    # Credit leases (billing/leases.py): each worker reserves a slice of a busy account's
    # balance once and serves its requests' holds from it; off: one hold row per request.
    billing_leases: bool = True
    # An unused lease is given back after this long; a lease its worker stopped touching (the
    # worker died) is released by the sweep after its TTL.
    billing_lease_idle_s: float = Field(default=2.0, gt=0)
    billing_lease_ttl_s: float = Field(default=60.0, ge=10)
    # How often each worker re-reads admin price overrides made elsewhere.
    price_refresh_s: float = 30.0
    # Stripe: API key (sk_...), webhook signing secret (whsec_...); the API base is only for
    # pointing the official library at a local Stripe-compatible server in tests.
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str | None = None

    # ---- response caches (cache/) ----------------------------------------------------------
    # Exact-match cache of complete answers: in Redis when configured (shared), else in memory;
    # LRU-bounded, each entry with its own TTL (a request or key may ask for 1 s .. the max).
    response_cache: bool = True
    response_cache_max_entries: int = Field(default=20_000, ge=1)
    response_cache_ttl_s: float = Field(default=3600.0, gt=0)
    response_cache_max_ttl_s: float = Field(default=86_400.0, ge=1)
    response_cache_max_entry_bytes: int = Field(default=1 << 20, ge=1)
    # What a cache hit costs, as a fraction of what the cached answer costs (0: free, no hold).
    response_cache_billed_fraction: Decimal = Field(default=Decimal(0), ge=0, le=1)
    # Semantic cache (opt-in per key or request): cosine similarity above the threshold, same
    # model, parameters and conversation. Embedder: "local" (all-MiniLM-L6-v2, int8 ONNX) or
    # "<provider slug>/<embedding model>" for an OpenAI-compatible provider's /embeddings.
    semantic_cache_threshold: float = Field(default=0.95, gt=0, lt=1)
    semantic_cache_embedder: str = "local"
    semantic_cache_bucket_entries: int = Field(default=1000, ge=1)
    semantic_cache_timeout_s: float = Field(default=2.0, gt=0)
    # External cache layer: a Butter-compatible caching proxy (butter.dev) in front of the
    # OpenAI-compatible providers listed (comma-separated slugs); on only with its API key.
    butter_api_key: SecretStr | None = None
    butter_base_url: str = "https://proxy.butter.dev/v1"
    butter_providers: str = "openai"

    # Customer webhooks (gatewayz/webhooks): retries up to ~24 h; `webhooks_allow_private` lets
    # endpoints be http:// and resolve to private or loopback addresses (tests, private setups).
    webhooks_allow_private: bool = False
    webhook_retry_base_s: float = Field(default=30.0, gt=0)
    webhook_max_attempts: int = Field(default=12, ge=1, le=50)
    webhook_dispatch_s: float = Field(default=1.0, gt=0)
    # Batches (gatewayz/batches): an input file's limit, lines in flight per worker, the share
    # taken off what a line costs (0: none), how often each worker looks for work.
    batch_max_file_bytes: int = Field(default=200 << 20, ge=1)
    batch_concurrency: int = Field(default=8, ge=1)
    batch_discount: Decimal = Field(default=Decimal(0), ge=0, lt=1)
    batch_poll_s: float = Field(default=1.0, gt=0)
    # Stored Responses-API responses (`store`, the default) are kept this long, then deleted.
    responses_retention_days: int = Field(default=30, ge=1, le=3650)

    # ---- error reports (observability/error_reports.py) ---------------------------------------
    # Sentry: unexpected errors (500s, failing background jobs) with their request id, route and
    # provider; never bodies, prompts or keys. Off unless a DSN is set; the share of errors sent.
    sentry_dsn: SecretStr | None = None
    sentry_sample_rate: float = Field(default=1.0, ge=0, le=1)

    # Filled from the environment by `from_env`; tests pass it explicitly.
    provider_env: dict[str, dict[str, str]] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, **_sources):  # type: ignore[no-untyped-def,override]
        # Only explicit values: `from_env` is the one place that reads the environment.
        return (init_settings,)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("sentry_dsn", mode="before")
    @classmethod
    def _sentry_dsn(cls, value: Any) -> Any:
        dsn = value.get_secret_value() if isinstance(value, SecretStr) else value
        if dsn is None or dsn == "":
            return None  # set but empty: off
        if not isinstance(dsn, str) or not _SENTRY_DSN.match(dsn):
            # Not quoted back: a DSN is a credential.
            raise ValueError("not a Sentry DSN (https://<public key>@<host>/<project id>)")
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.workers < 1:
            raise ConfigError("GATEWAYZ_WORKERS must be >= 1")
        if self.catalog_l2_ttl_min_s > self.catalog_l2_ttl_max_s:
            raise ConfigError(
                "GATEWAYZ_CATALOG_L2_TTL_MIN_S must be <= GATEWAYZ_CATALOG_L2_TTL_MAX_S"
            )
        if self.database_url and not self.database_url.startswith(
            ("sqlite+aiosqlite://", "postgresql+asyncpg://")
        ):
            raise ConfigError(
                "GATEWAYZ_DATABASE_URL must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        if self.fernet_key is not None:
            try:
                Fernet(self.fernet_key.get_secret_value().encode())
            except ValueError:
                raise ConfigError(
                    "GATEWAYZ_FERNET_KEY is not a valid Fernet key (32 url-safe base64 bytes)"
                ) from None
        return self

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the process environment, with provider variables collected."""
        env = dict(os.environ if environ is None else environ)
        path = Path(
            overrides.get("providers_file") or env.get("GATEWAYZ_PROVIDERS_FILE") or PROVIDERS_FILE
        )
        entries = _provider_file_entries(path)
        slugs = {s.upper().replace("-", "_"): s for s in entries}
        known = {f"GATEWAYZ_{name.upper()}" for name in cls.model_fields} - {
            "GATEWAYZ_PROVIDER_ENV"
        }
        unknown = []
        collected: dict[str, dict[str, str]] = {}
        for name, value in env.items():
            if not name.startswith("GATEWAYZ_") or name in known:
                continue
            m = _PROVIDER_VAR.match(name)
            if m and m.group(1) in slugs:
                collected.setdefault(slugs[m.group(1)], {})[m.group(2).lower()] = value
            else:
                unknown.append(name)
        if unknown:
            raise ConfigError(f"unknown configuration variables: {', '.join(sorted(unknown))}")
        for slug, entry in entries.items():
            for var in [entry.get("key_env", ""), *entry.get("env_vars", [])]:
                if var and env.get(var):
                    collected.setdefault(slug, {}).setdefault(f"var:{var}", env[var])
        values = {k[len("GATEWAYZ_") :].lower(): v for k, v in env.items() if k in known}
        values.update(overrides)
        values["provider_env"] = {**collected, **overrides.get("provider_env", {})}
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"GATEWAYZ_{'_'.join(map(str, e['loc'])).upper() or '?'}: {e['msg']}"
                for e in exc.errors(include_url=False)
            )
            raise ConfigError(f"invalid configuration: {problems}") from None

    # ---- derived values -------------------------------------------------------------
    @property
    def otlp_endpoint_set(self) -> bool:
        """Whether traces have an OTLP endpoint to go to (the OTel SDK reads it itself)."""
        return bool(_otlp("ENDPOINT"))

    @property
    def otlp_protocol(self) -> str:
        """The OTLP protocol asked for (default `http/protobuf`, the only one exported with)."""
        return (_otlp("PROTOCOL") or "http/protobuf").strip().lower()

    @cached_property
    def metrics_multiprocess_dir(self) -> str | None:
        """Where workers write metric values (`share_metrics_directory`); None: one process."""
        return os.environ.get(MULTIPROC_ENV) or None

    def share_metrics_directory(self) -> None:
        """For `gatewayz serve --workers N`: `DATA_DIR/metrics`, emptied (a previous run's
        counts gone), named in the environment the workers inherit; any worker's scrape sums
        the values every worker writes there (observability/metrics.py)."""
        directory = (self.data_dir / "metrics").resolve()
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(directory)

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'gatewayz.db').resolve()}"

    @cached_property
    def secrets(self) -> tuple[bytes, bytes]:
        """(fernet_key, hmac_key): from settings, else generated once into the data dir (0600)."""
        if self.fernet_key and self.hmac_key:
            return (
                self.fernet_key.get_secret_value().encode(),
                self.hmac_key.get_secret_value().encode(),
            )
        if self.fernet_key or self.hmac_key:
            raise ConfigError("set both GATEWAYZ_FERNET_KEY and GATEWAYZ_HMAC_KEY, or neither")
        return data_dir_secrets(self.data_dir)


def _otlp(name: str) -> str | None:
    """An OTLP exporter variable: the traces-specific one, else the general one."""
    return os.environ.get(f"{OTLP_ENV}_TRACES_{name}") or os.environ.get(f"{OTLP_ENV}_{name}")
