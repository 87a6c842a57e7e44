"""`gatewayz models sync [--provider P] [--json]`: read the served providers' model list APIs
now (due or not), merge them with the pricing data and write the catalog. Running gateways pick
the change up within GATEWAYZ_CATALOG_CHECK_S. Exits 1 when a provider's list could not be read
(its last good offers stay)."""

from __future__ import annotations

import json

import typer

from gatewayz.billing.pricing import PriceBook
from gatewayz.catalog.capabilities import CapabilityTable
from gatewayz.catalog.naming import Naming
from gatewayz.catalog.offers import OfferBuilder
from gatewayz.catalog.sync import Syncer, SyncResult
from gatewayz.cli.db import fail, load_settings, run
from gatewayz.providers.registry import load_registry
from gatewayz.settings import Settings
from gatewayz.storage import price_overrides
from gatewayz.storage.catalog import prune
from gatewayz.storage.db import Database, upgrade


def sync(
    provider: str | None = typer.Option(
        None, "--provider", "-p", help="Only this provider (a slug from `gatewayz providers list`)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Sync the model catalog from the served providers' model list APIs."""
    settings = load_settings()
    results = run(_sync(settings, provider))
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in results]))
    elif not results:
        typer.echo("no provider is served: nothing to sync (see `gatewayz providers list`)")
    else:
        for r in results:
            excluded = ", ".join(f"{k} {v}" for k, v in sorted(r.excluded.items())) or "none"
            line = f"{r.provider:<24} {r.status:<8}"
            if r.status == "ok":
                line += f" {r.models} offers from {r.listed} listed (excluded: {excluded})"
            else:
                line += f" {r.detail}"
            typer.echo(line)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


async def _sync(settings: Settings, slug: str | None) -> list[SyncResult]:
    url = settings.resolved_database_url
    await upgrade(url)
    registry = load_registry(settings)
    db = Database(url)
    try:
        if slug is None:
            targets = registry.enabled
        else:
            found = registry.get(slug)
            if found is None:
                fail(f"unknown provider '{slug}' (see `gatewayz providers list`)")
            if not found.enabled:
                fail(f"provider '{slug}' is not served: {found.reason}")
            targets = [found]
        async with db.begin() as conn:
            rows = await price_overrides.list_rows(conn)
            if slug is None:
                await prune(conn, registry.providers)
        book = PriceBook.load().with_overrides(rows)
        builder = OfferBuilder(
            Naming(registry),
            CapabilityTable.load(),
            lambda: book,
            max_offers=settings.catalog_max_offers_per_provider,
        )
        syncer = Syncer(
            db,
            builder,
            interval_s=settings.catalog_sync_interval_s,
            retry_s=settings.catalog_sync_retry_s,
            timeout_s=settings.catalog_sync_timeout_s,
            redact=registry.redact,
        )
        return [await syncer.sync(p, force=True) for p in targets]
    finally:
        await registry.close()
        await db.dispose()
