"""`gatewayz breakers list|reset`: the providers' circuit breakers (reliability/breaker.py) as
every worker shares them, in the state backend the settings name — Redis, which is the only
place a breaker lives outside a gateway process. A reset does what `POST
/admin/circuit-breakers/{provider}/reset` does, audit event (`circuit_breaker_reset`) included;
workers see it within a second."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer

from gatewayz.cli.db import fail, load_settings, run
from gatewayz.cli.ops import Operator, operating
from gatewayz.providers.registry import load_registry
from gatewayz.reliability import CircuitBreakers
from gatewayz.settings import Settings
from gatewayz.state import StateBackend, build_state

app = typer.Typer(help="Provider circuit breakers (shared through Redis).", no_args_is_help=True)

MAX_PROVIDER = 64
MAX_MODEL = 256  # as the admin route bounds it
UNSHARED = (
    "GATEWAYZ_REDIS_URL is not set: each gateway process keeps its breakers in its own memory, "
    "out of this command's reach; use GET/POST /admin/circuit-breakers on the gateway"
)
UNREACHABLE = "Redis (GATEWAYZ_REDIS_URL) is unreachable: the breakers cannot be read"


def board(settings: Settings, state: StateBackend) -> CircuitBreakers:
    """The breakers as the gateway's services build them (services.py)."""
    return CircuitBreakers(
        state,
        failure_threshold=settings.breaker_failure_threshold,
        open_s=settings.breaker_open_s,
    )


def _time(value: float | None) -> str | None:
    return None if value is None else datetime.fromtimestamp(value, UTC).isoformat()


def _entry(e: dict[str, Any]) -> dict[str, Any]:
    return {**e, "opened_at": _time(e["opened_at"]), "retry_at": _time(e["retry_at"])}


async def _list(settings: Settings) -> list[dict[str, Any]]:
    state = build_state(settings.redis_url, settings.redis_key_prefix)
    try:
        entries = await board(settings, state).snapshot()
        if getattr(state, "degraded", False):
            raise ValueError(UNREACHABLE)
    finally:
        await state.close()
    return [_entry(e) for e in entries]


@app.command("list")
def list_breakers(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every breaker that recorded a failure on any worker: state, failures, retry time."""
    settings = load_settings()
    if not settings.redis_url:
        fail(UNSHARED)
    entries = run(_list(settings))
    if as_json:
        typer.echo(json.dumps(entries))
        return
    if not entries:
        typer.echo("no breaker has recorded a failure")
        return
    typer.echo(f"{'provider':<24}{'model':<40}{'state':<11}{'failures':<10}retry at")
    for e in entries:
        model = e["model"] or "(all models)"
        typer.echo(
            f"{e['provider']:<24}{model:<40}{e['state']:<11}{e['failures']:<10}"
            f"{(e['retry_at'] or '-')[:19]}"
        )


def _check_provider(settings: Settings, provider: str) -> None:
    """A provider slug the gateway knows, or the way to one through its proxy
    (`slug@proxy`, a breaker of its own: routing/explanation.py `Route.key`)."""
    registry = load_registry(settings, simulated_base_url="http://127.0.0.1:0/v1")
    slug, at, via = provider.partition("@")
    found = registry.get(slug)
    if found is None:
        fail(f"unknown provider {provider[:MAX_PROVIDER]!r} (see `gatewayz providers list`)")
    if at and via != found.proxy_name:
        fail(f"provider {slug} has no proxy {via[:MAX_PROVIDER]!r}")


async def _reset(
    settings: Settings, provider: str, model: str | None
) -> tuple[dict[str, Any], dict[str, Any], Operator]:
    async with operating(settings) as op:
        breakers = board(settings, op.state)
        op.shared_change = True
        before = await breakers.get(provider, model)
        await breakers.reset(provider, model)
        after = await breakers.get(provider, model)
        if getattr(op.state, "degraded", False):
            raise ValueError(f"{UNREACHABLE}; nothing was reset")
        op.event(
            "circuit_breaker_reset",
            user_id=None,
            provider=provider,
            model=model,
            previous_state=before["state"],
            previous_failures=before["failures"],
        )
    return before, after, op


@app.command("reset")
def reset(
    provider: str = typer.Argument(..., help="A provider slug (see `gatewayz breakers list`)."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Only the breaker of this model at the provider."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
) -> None:
    """Close a provider's breaker (or its breaker for one model) now, failures reset."""
    if not provider or len(provider) > MAX_PROVIDER:
        fail(f"the provider must be 1-{MAX_PROVIDER} characters")
    if model is not None and not 1 <= len(model) <= MAX_MODEL:
        fail(f"--model must be 1-{MAX_MODEL} characters")
    settings = load_settings()
    if not settings.redis_url:
        fail(UNSHARED)
    _check_provider(settings, provider)
    before, after, op = run(_reset(settings, provider, model))
    if as_json:
        typer.echo(json.dumps({**_entry(after), "previous_state": before["state"]}))
    else:
        which = provider + (f" × {model}" if model else "")
        typer.echo(
            f"breaker {which}: {before['state']} ({before['failures']} failures) → {after['state']}"
        )
    op.finish()
