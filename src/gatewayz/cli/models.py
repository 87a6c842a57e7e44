"""`gatewayz models resolve <name>`: how a model name resolves, step by step, with the synced
catalog a running gateway would use (read from its database, never written); `gatewayz models
sync`: the catalog from the providers' model lists (cli/models_sync.py)."""

from __future__ import annotations

import json
from typing import Any

import typer

from gatewayz.billing.pricing import PriceBook
from gatewayz.catalog.known import Knowledge
from gatewayz.catalog.service import Catalog
from gatewayz.cli import models_sync
from gatewayz.cli.db import fail, load_settings, run
from gatewayz.errors import GatewayError
from gatewayz.providers.registry import Registry, load_registry
from gatewayz.reliability.passive_health import PassiveHealth
from gatewayz.routing.resolve import Explanation, Resolver
from gatewayz.settings import Settings
from gatewayz.storage import price_overrides
from gatewayz.storage.catalog import sync_states
from gatewayz.storage.db import Database, sqlite_file
from gatewayz.storage.errors import DB_ERRORS

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
    knowledge, catalog = run(_knowledge(settings, registry))
    try:
        exp = Resolver(registry, known=lambda: knowledge).explain(name, override)
    except GatewayError as err:
        fail(err.message)
    if as_json:
        typer.echo(json.dumps({**exp.to_dict(), "catalog": catalog}, indent=2))
        return
    _print(exp, catalog)


async def _knowledge(settings: Settings, registry: Registry) -> tuple[Knowledge | None, str]:
    """What the gateway's synced catalog knows providers list and price, as `Services` reads
    it, and a line saying which catalog the resolution used."""
    url = settings.resolved_database_url
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return None, "none: resolved without it (no database yet)"
    db = Database(url)
    try:
        async with db.begin() as conn:
            await sync_states(conn)  # a database without the catalog fails here
            book = PriceBook.load().with_overrides(await price_overrides.list_rows(conn))
        configured = [{"id": m} for p in registry.enabled for m in p.models]
        catalog = Catalog(
            db, settings, registry, lambda: book, PassiveHealth(), extra_models=lambda: configured
        )
        await catalog.publish_known()
        knowledge = catalog.known()
    except DB_ERRORS as exc:
        return None, f"none: resolved without it (database: {exc.__class__.__name__})"
    finally:
        await registry.close()
        await db.dispose()
    if knowledge is None:
        return None, "none: resolved without it (the catalog could not be read)"
    if knowledge.synced:
        return knowledge, "synced: org and aggregator routes need a listing or a price"
    return knowledge, "not synced: org and aggregator routes are not checked"


def _print(exp: Explanation, catalog: str) -> None:
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
    if exp.error is not None:
        typer.echo(f"result     {exp.error.status} {exp.error.code}: {exp.error.message}")
    else:
        first = exp.routes[0]
        typer.echo(f"result     {first.provider.slug} with native id '{first.native_id}'")
