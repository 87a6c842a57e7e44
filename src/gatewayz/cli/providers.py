"""`gatewayz providers list`"""

from __future__ import annotations

import json

import typer

from gatewayz.cli.db import load_settings
from gatewayz.providers.registry import load_registry

app = typer.Typer(help="Providers and whether they are served.", no_args_is_help=True)


@app.command("list")
def list_providers(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every known provider: wire format, whether it is served, and why (not)."""
    settings = load_settings()
    registry = load_registry(settings, simulated_base_url="http://127.0.0.1:0/v1")
    rows = [
        {
            "slug": p.slug,
            "name": p.name,
            "family": p.family,
            "served": p.enabled,
            "status": "starts with `gatewayz serve`" if p.slug == "simulated" else p.reason,
            "base_url": "" if p.slug == "simulated" else p.base_url,
        }
        for p in registry.providers.values()
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    typer.echo(f"{'provider':<24}{'format':<11}{'served':<8}status")
    for r in rows:
        typer.echo(
            f"{r['slug']:<24}{r['family']:<11}{'yes' if r['served'] else 'no':<8}{r['status']}"
        )
    served = sum(r["served"] for r in rows)
    typer.echo(f"\n{len(rows)} providers known, {served} served.")
