"""`gatewayz models resolve <name>`: how a model name resolves, step by step; `gatewayz models
sync`: the catalog from the providers' model lists (cli/models_sync.py)."""

from __future__ import annotations

import json
from typing import Any

import typer

from gatewayz.cli import models_sync
from gatewayz.cli.db import fail, load_settings
from gatewayz.errors import GatewayError
from gatewayz.providers.registry import load_registry
from gatewayz.routing.resolve import Explanation, Resolver

app = typer.Typer(
    help="Model names (aliases, providers, native ids) and the catalog.", no_args_is_help=True
)
app.command("sync")(models_sync.sync)


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
    """Input name → alias → canonical id → the provider chain, served or not, with native ids."""
    override: Any = provider
    if provider is not None and provider.lstrip().startswith("{"):
        try:
            override = json.loads(provider)
        except json.JSONDecodeError as e:
            fail(f"--provider is not valid JSON: {e}")
    settings = load_settings()
    registry = load_registry(settings, simulated_base_url="http://127.0.0.1:0/v1")
    try:
        exp = Resolver(registry).explain(name, override)
    except GatewayError as err:
        fail(err.message)
    if as_json:
        typer.echo(json.dumps(exp.to_dict(), indent=2))
        return
    _print(exp)


def _print(exp: Explanation) -> None:
    typer.echo(f"input      {exp.model}")
    typer.echo(f"alias      {exp.alias if exp.alias else '(none)'}")
    typer.echo(f"canonical  {exp.canonical}")
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
    if exp.error is not None:
        typer.echo(f"result     {exp.error.status} {exp.error.code}: {exp.error.message}")
    else:
        first = exp.routes[0]
        typer.echo(f"result     {first.provider.slug} with native id '{first.native_id}'")
