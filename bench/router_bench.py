"""Router decision benchmark (issue 18: p95 < 5 ms): the routes step of a `router:*` request —
the classifier's floor, then every candidate resolved, priced, checked and ranked, and the chain
built (pipeline/smart_route.py) — timed in this process for every prompt of the labelled set in
every mode, with real components (registry with a dozen providers keyed, resolver, failover
policy, balancer, price book). No network and no database: the step does neither.

    .venv/bin/python bench/router_bench.py [--rounds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

from gatewayz.billing.meter import Meter
from gatewayz.canonical.types import ChatRequest, Message, Tool
from gatewayz.context import RequestContext
from gatewayz.pipeline.call import Call
from gatewayz.pipeline.route import Routes
from gatewayz.pipeline.smart_route import SmartRoutes
from gatewayz.providers.registry import load_registry
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.routing.balance import Balancer
from gatewayz.routing.failover import load_failover_policy
from gatewayz.routing.resolve import Resolver
from gatewayz.routing.smart import evaluate
from gatewayz.routing.smart.modes import MODES, RouterName
from gatewayz.security.auth import Principal
from gatewayz.settings import Settings
from gatewayz.storage.db import Database

KEYED = (
    "openai", "anthropic", "google-ai-studio", "openrouter", "together", "groq", "xai",
    "mistral", "deepseek", "moonshot", "fireworks", "deepinfra",
)  # fmt: skip


def build(data_dir: Path) -> SmartRoutes:
    settings = Settings(
        env="test",
        data_dir=data_dir,
        fernet_key=Fernet.generate_key().decode(),
        hmac_key="bench-hmac-key-" + "x" * 32,
        provider_env={slug: {"api_key": "sk-bench"} for slug in KEYED},
    )
    health = PassiveHealth()
    policy = load_failover_policy()
    meter = Meter(Database(settings.resolved_database_url), settings)
    routes = Routes(
        Resolver(load_registry(settings)),
        policy,
        Balancer(health, policy.splits),
        meter,
        settings.chars_per_token,
    )
    return SmartRoutes(routes, health)


def request(row: evaluate.Labelled) -> ChatRequest:
    tools = [Tool(name, parameters={"type": "object"}) for name in row.prompt.tools]
    return ChatRequest(
        "router", [Message("user", row.prompt.text)], tools=tools or None, max_tokens=1024
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    principal = Principal("key", "user", "test", "dev", "dev", None, {})
    rows = evaluate.load_prompts()
    with tempfile.TemporaryDirectory() as tmp:
        smart = build(Path(tmp))
        times: list[float] = []
        for _ in range(args.rounds):
            for row in rows:
                for kind, modes in MODES.items():
                    for mode in modes:
                        call = Call(RequestContext("req", time.perf_counter()), "chat")
                        call.principal, call.req = principal, request(row)
                        t0 = time.perf_counter()
                        smart.run(call, RouterName(kind, mode))
                        times.append((time.perf_counter() - t0) * 1000)
                        assert call.decision is not None
    times.sort()
    result = {
        "decisions": len(times),
        "p50_ms": round(statistics.median(times), 3),
        "p95_ms": round(times[int(len(times) * 0.95)], 3),
        "p99_ms": round(times[int(len(times) * 0.99)], 3),
        "max_ms": round(times[-1], 3),
        "candidates": {kind: len(smart.data.candidates[kind]) for kind in MODES},
    }
    print(json.dumps(result) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
