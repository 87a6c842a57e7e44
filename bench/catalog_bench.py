"""Catalog benchmark (SPEC §9 scale target): 10,000+ models loaded, then latency through a real
HTTP server of an L1 hit (target < 10 ms) and of a filtered query that misses L1 (target
< 50 ms), and the server's memory as distinct queries pile up (bounded by the L1 limits).

    .venv/bin/python bench/catalog_bench.py [--models 12000] [--requests 2000] [--json]

Setup, in this process: a fresh SQLite database (or `--database-url`), migrated; synthetic
offers written straight into the catalog tables (`--models` models across five providers, about
half of them offered by two providers) with each provider marked as synced; a user and an API
key (for `GET /v1/models`). The gateway then runs in a child process (`gatewayz.app` under
uvicorn, one worker, background sync off so the synthetic rows stay), and this process sends
sequential requests over one keep-alive connection (http.client), so the figures are server
time plus loopback. Cold paths (an L2 load of every provider from the database and the
snapshot build) are timed in this process, directly on a `Catalog`.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing
import os
import random
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from gatewayz.accounts.api_keys import create_api_key
from gatewayz.billing.pricing import Price, PriceBook
from gatewayz.catalog import views
from gatewayz.catalog.offers import Offer, replace_offers
from gatewayz.catalog.query import Query
from gatewayz.catalog.service import Catalog
from gatewayz.providers.registry import load_registry
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.storage.catalog import record
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.tables import utcnow
from gatewayz.storage.users import create_user

PROVIDERS = ("openrouter", "together", "deepinfra", "fireworks", "groq")
ORGS = [f"org{i:02d}" for i in range(40)]
MODALITIES = ["text->text"] * 6 + ["text+image->text"] * 3 + ["text->image", "audio->text"]
CONTEXTS = [4096, 8192, 32768, 131072, 200000, 1000000]


# ---------------------------------------------------------------- setup
def settings_values(data_dir: Path, database_url: str) -> dict[str, Any]:
    return {
        "env": "test",
        "data_dir": str(data_dir),
        "database_url": database_url,
        "fernet_key": Fernet.generate_key().decode(),
        "hmac_key": secrets.token_urlsafe(32),
        "simulated_provider": False,
        "health_probes": False,
        "catalog_sync": False,  # the synthetic rows are the catalog
        "ip_rate_limit_rpm": 10_000_000,
        "log_level": "warning",
        "provider_env": {
            slug: {"base_url": "http://127.0.0.1:9/v1", "api_key": "bench"} for slug in PROVIDERS
        },
    }


def synthetic_offers(models: int, rng: random.Random) -> dict[str, list[Offer]]:
    out: dict[str, list[Offer]] = {slug: [] for slug in PROVIDERS}
    for i in range(models):
        model_id = f"{rng.choice(ORGS)}/model-{i:05d}"
        modality = rng.choice(MODALITIES)
        context = rng.choice(CONTEXTS)
        tools, vision = rng.random() < 0.5, "image" in modality.split("->")[0]
        offered_by = rng.sample(PROVIDERS, 2 if rng.random() < 0.5 else 1)
        for slug in offered_by:
            prompt = Decimal(rng.randint(1, 20_000)) / 1000
            price = Price(prompt=prompt, completion=prompt * rng.choice([1, 2, 4, 5]))
            out[slug].append(
                Offer(
                    model_id=model_id,
                    provider=slug,
                    native_id=f"{slug}-native-{i:05d}",
                    name=f"Model {i}",
                    context_length=context,
                    modality=modality,
                    price=price,
                    tools=tools,
                    vision=vision,
                )
            )
    return out


async def write_synthetic_catalog(conn: Any, models: int) -> tuple[int, set[str]]:
    """`synthetic_offers` written as a successful sync writes them (replace_offers, then the
    provider recorded synced now); (offers written, model ids)."""
    now, written, ids = utcnow(), 0, set()
    for slug, offers in synthetic_offers(models, random.Random(42)).items():
        await replace_offers(conn, slug, offers, now)
        await record(conn, slug, "ok", now, models=len(offers))
        written += len(offers)
        ids.update(o.model_id for o in offers)
    return written, ids


async def load(values: dict[str, Any], models: int) -> tuple[str, int, list[str]]:
    """Migrate, write the synthetic catalog, create a key; (API key, offers written, model
    ids)."""
    settings = Settings(**values)
    url = settings.resolved_database_url
    await upgrade(url)
    db = Database(url)
    try:
        async with db.begin() as conn:
            written, ids = await write_synthetic_catalog(conn, models)
            user = await create_user(conn, "bench@example.com", role="dev", plan="dev")
            _, key = await create_api_key(
                conn, KeyRing(*settings.secrets), user["id"], settings.env, "bench"
            )
    finally:
        await db.dispose()
    return key, written, sorted(ids)


async def cold_figures(values: dict[str, Any], rounds: int) -> dict[str, list[float]]:
    """In-process: the database → L2 → snapshot path, and a filtered build on a warm snapshot."""
    settings = Settings(**values)
    db = Database(settings.resolved_database_url)
    registry = load_registry(settings)
    catalog = Catalog(db, settings, registry, PriceBook.load, PassiveHealth())
    figures: dict[str, list[float]] = {
        "cold (DB → L2 → snapshot → page)": [],
        "snapshot (merge of the L2 lists)": [],
    }
    try:
        for _ in range(rounds):
            catalog.invalidate()
            started = time.perf_counter()
            await catalog.models_body(Query())
            figures["cold (DB → L2 → snapshot → page)"].append(_ms(started))
            lists = {p.slug: catalog.l2.fresh(p.slug) or [] for p in registry.enabled}
            started = time.perf_counter()  # the merge alone, from the lists in L2
            views.Snapshot.build(lists, {slug: (i, ()) for i, slug in enumerate(PROVIDERS)})
            figures["snapshot (merge of the L2 lists)"].append(_ms(started))
    finally:
        await registry.close()
        await db.dispose()
    return figures


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


# ---------------------------------------------------------------- the server
def serve(values: dict[str, Any], port: int) -> None:
    import uvicorn

    from gatewayz.app import create_app

    app = create_app(Settings(**values))
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="asyncio",
        http="gatewayz.api.http_protocol:LimitedHttpToolsProtocol",
        log_level="warning",
        access_log=False,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Client:
    def __init__(self, port: int, key: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {key}", "Connection": "keep-alive"}

    def get(self, path: str) -> tuple[int, int, float]:
        """(status, body bytes, milliseconds from request to the last body byte)."""
        started = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        resp = self.conn.getresponse()
        body = resp.read()
        return resp.status, len(body), _ms(started)


def wait_ready(port: int, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/ready")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the gateway did not start")


def measure(client: Client, paths: Callable[[int], str], n: int) -> dict[str, Any]:
    times, size = [], 0
    for i in range(n):
        status, size, ms = client.get(paths(i))
        if status != 200:
            raise RuntimeError(f"{paths(i)} answered {status}")
        times.append(ms)
    return summary(times) | {"bytes": size}


def summary(times: list[float]) -> dict[str, Any]:
    ordered = sorted(times)
    cut = statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1 else None
    return {
        "n": len(ordered),
        "p50_ms": round(cut[49] if cut else ordered[0], 3),
        "p90_ms": round(cut[89] if cut else ordered[0], 3),
        "p99_ms": round(cut[98] if cut else ordered[0], 3),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


# ---------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=12_000)
    parser.add_argument("--requests", type=int, default=2000, help="per L1-hit scenario")
    parser.add_argument("--misses", type=int, default=500, help="per L1-miss scenario")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="catalog-bench-"))
    url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'gatewayz.db'}"
    values = settings_values(workdir / "data", url)
    key, offers, ids = asyncio.run(load(values, args.models))
    cold = asyncio.run(cold_figures(values, rounds=5))

    port = free_port()
    child = multiprocessing.get_context("spawn").Process(target=serve, args=(values, port))
    child.start()
    results: dict[str, Any] = {"models": args.models, "offers": offers}
    try:
        wait_ready(port)
        client = Client(port, key)
        pid = child.pid or os.getpid()
        results["rss_mb_started"] = round(rss_mb(pid), 1)
        rng = random.Random(1)
        scenarios: dict[str, tuple[Callable[[int], str], int]] = {
            "L1 hit: /catalog/models?limit=100": (
                lambda i: "/catalog/models?limit=100",
                args.requests,
            ),
            "L1 hit: /catalog/models?view=full&limit=500": (
                lambda i: "/catalog/models?view=full&limit=500",
                args.requests,
            ),
            "L1 hit: /catalog/models/{id}": (lambda i: f"/catalog/models/{ids[42]}", args.requests),
            "L1 hit: /v1/models (every model)": (lambda i: "/v1/models", args.requests // 10),
            "L1 miss: filtered unique view": (
                lambda i: (
                    "/catalog/models?capability=function_calling"
                    f"&min_context={rng.choice(CONTEXTS)}&max_prompt_price={i % 20 + 1}.{i}"
                ),
                args.misses,
            ),
            "L1 miss: filtered full view, search, by price": (
                lambda i: f"/catalog/models?view=full&q=model-0{i % 10}&sort=price&offset={i % 50}",
                args.misses,
            ),
            "L1 miss: /catalog/models/{id}": (
                lambda i: f"/catalog/models/{ids[(i * 7919) % len(ids)]}",
                args.misses,
            ),
        }
        client.get("/catalog/models?limit=1")  # the first build: L2 loads and the snapshot
        for name, (path, n) in scenarios.items():
            client.get(path(0))  # warm (for hits: the one build)
            results[name] = measure(client, path, n)
        results["rss_mb_after_scenarios"] = round(rss_mb(pid), 1)
        flood = measure(client, lambda i: f"/catalog/models?offset={i}&limit=20", 5000)
        results["L1 miss flood: 5000 distinct pages"] = flood
        results["rss_mb_after_5000_distinct_queries"] = round(rss_mb(pid), 1)
        flood2 = measure(client, lambda i: f"/catalog/models?offset={5000 + i}&limit=20", 5000)
        results["L1 miss flood: 5000 more"] = flood2
        results["rss_mb_after_10000_distinct_queries"] = round(rss_mb(pid), 1)
    finally:
        child.terminate()
        child.join(10)
    results["in-process cold paths"] = {k: summary(v) for k, v in cold.items()}
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        _print(results)
    return 0


def _print(results: dict[str, Any]) -> None:
    print(f"catalog: {results['models']:,} models, {results['offers']:,} offers (5 providers)")
    print(f"{'scenario':<52} {'n':>6} {'p50':>8} {'p90':>8} {'p99':>8} {'max':>8} {'bytes':>9}")
    for name, row in results.items():
        if isinstance(row, dict) and "p50_ms" in row:
            print(
                f"{name:<52} {row['n']:>6} {row['p50_ms']:>8} {row['p90_ms']:>8} "
                f"{row['p99_ms']:>8} {row['max_ms']:>8} {row.get('bytes', ''):>9}"
            )
    for name, row in results["in-process cold paths"].items():
        print(f"{name:<52} {row['n']:>6} {row['p50_ms']:>8} {row['p90_ms']:>8} {row['p99_ms']:>8}")
    for name in (
        "rss_mb_started",
        "rss_mb_after_scenarios",
        "rss_mb_after_5000_distinct_queries",
        "rss_mb_after_10000_distinct_queries",
    ):
        print(f"{name}: {results[name]} MB")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
