"""`gatewayz models resolve <name>`: how a model name resolves, step by step, with the synced
catalog a running gateway would use (read from its database, never written), and the failover
chain a chat request for it would try, with what is left out and why (cli/models_chain.py);
`gatewayz models sync`: the catalog from the providers' model lists (cli/models_sync.py)."""

from __future__ import annotations

import json
from typing import Any

import typer

from gatewayz.cli import models_sync
from gatewayz.cli.db import fail, load_settings, run
from gatewayz.cli.models_chain import Chain, look_up
from gatewayz.routing.explanation import Explanation

app = typer.Typer(
    help="Model names (aliases, providers, native ids) and the catalog.", no_args_is_help=True
)
app.command("sync")(models_sync.sync)

MAX_NAME = 512  # characters of a model name
MAX_OVERRIDE = 4096  # characters of --provider


@app.command("resolve")
def resolve(
    name: str = typer.Argument(..., help="A model name as a client would send it."),
    provider: str | None = typer.Option(
        None,
        "--provider",
        "-p",
        help='Explicit override: a provider slug, or JSON like \'{"order": ["groq"]}\'.',
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Input name → alias → canonical id → the providers, served or not, with native ids → the
    failover chain a chat request tries, and what is left out of it and why."""
    if not name.strip() or len(name) > MAX_NAME:
        fail(f"the model name must be 1-{MAX_NAME} characters")
    if provider is not None and len(provider) > MAX_OVERRIDE:
        fail(f"--provider must be at most {MAX_OVERRIDE} characters")
    override: Any = provider
    if provider is not None and provider.lstrip().startswith("{"):
        try:
            override = json.loads(provider)
        except json.JSONDecodeError as e:
            fail(f"--provider is not valid JSON: {e}")
    exp, catalog, chain = run(look_up(load_settings(), name, override))
    if as_json:
        typer.echo(
            json.dumps({**exp.to_dict(), "catalog": catalog, "chain": chain.to_dict()}, indent=2)
        )
        return
    _print(exp, catalog, chain)


def _print(exp: Explanation, catalog: str, chain: Chain) -> None:
    typer.echo(f"input      {exp.model}")
    typer.echo(f"alias      {exp.alias if exp.alias else '(none)'}")
    typer.echo(f"canonical  {exp.canonical}")
    typer.echo(f"catalog    {catalog}")
    if exp.override is not None:
        typer.echo(f"override   {exp.override.describe()}")
    typer.echo("steps")
    for i, step in enumerate(exp.steps, 1):
        typer.echo(f"  {i}. {step}")
    typer.echo("providers, in order")
    if not exp.candidates:
        typer.echo("  (none)")
    width = max([len(c.provider.slug) for c in exp.candidates] + [8])
    for i, c in enumerate(exp.candidates, 1):
        served = "served" if c.served else f"not served: {c.provider.reason}"
        typer.echo(f"  {i:>2}. {c.provider.slug:<{width}}  {c.native_id}")
        typer.echo(f"      {'':<{width}}  {c.rule}: {c.detail}; {served}")
    _print_chain(chain)
    if chain.tried:
        first = next((s for s in chain.tried if not _open(s)), chain.tried[0])
        skipped = [s["key"] for s in chain.tried[: chain.tried.index(first)]]
        after = f" (breaker open: {', '.join(skipped)})" if skipped else ""
        typer.echo(f"result     {first['key']} with native id '{first['native_id']}'{after}")
    elif chain.error is not None:
        err = chain.error
        typer.echo(f"result     {err.status} {err.code}: {err.message}")


def _open(step: dict[str, Any]) -> bool:
    breaker = step["breaker"]
    return breaker is not None and breaker["state"] == "open"


def _print_chain(chain: Chain) -> None:
    typer.echo("failover chain, as a chat request tries it")
    if not chain.tried:
        typer.echo("  (none)")
    width = max([len(s["key"]) for s in chain.tried] + [8])
    for i, s in enumerate(chain.tried, 1):
        price = s["price_per_1m_usd"]
        line = (
            f"  {i:>2}. {s['key']:<{width}}  {s['native_id']}  "
            f"${price['prompt']}/${price['completion']} per 1M tokens ({s['price_source']})"
        )
        breaker = s["breaker"]
        if breaker is not None and breaker["state"] != "closed":
            scope = f" for {breaker['model']}" if breaker["model"] else ""
            if breaker["state"] == "open":
                line += f"; breaker open{scope}: skipped until {breaker['retry_at']}"
            else:
                line += f"; breaker half-open{scope}: one probe request at a time"
        typer.echo(line)
    if chain.left_out:
        typer.echo("left out")
        width = max(len(o["provider"]) for o in chain.left_out)
        for o in chain.left_out:
            typer.echo(f"   - {o['provider']:<{width}}  {o['reason']}")
    for note in chain.notes:
        typer.echo(f"note       {note}")
