"""`gatewayz routing eval [--json]`: how well the routers do on the labelled set
(routing/smart/evaluate.py) — the classifier's cross-validated tier accuracy, and per mode the
average price per request and the share of prompts under-served, against always-strongest and
always-cheapest."""

from __future__ import annotations

import json
from typing import Any

import typer

from gatewayz.billing.pricing import PriceBook
from gatewayz.routing.smart import data, evaluate

app = typer.Typer(help="Smart routers (router:general, router:code).", no_args_is_help=True)


@app.command("eval")
def run_eval(as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """Evaluate the routers on the labelled set (offline labels, not live answer quality)."""
    rows = evaluate.load_prompts()
    result = evaluate.report(rows, data.shipped(), PriceBook.load(), evaluate.cross_validated(rows))
    if as_json:
        typer.echo(json.dumps(result))
        return
    _print(result)


def _print(result: dict[str, Any]) -> None:
    typer.echo(
        f"prompts: {result['prompts']}   tier accuracy: {result['tier_accuracy']:.1%} "
        f"({result['folds']}-fold cross-validation)"
    )
    for kind, r in result["routers"].items():
        typer.echo(f"\nrouter:{kind} — {r['prompts']} prompts, {r['models']} candidate models")
        typer.echo(f"  {'mode':<18}{'$/request':>11}{'saving':>9}{'under-served':>14}  top pick")
        for label, row in r["modes"].items():
            top = next(iter(row["picks"]), "")
            typer.echo(
                f"  {label:<18}{row['usd_per_request']:>11.6f}"
                f"{row['saving_vs_strongest']:>9.1%}{row['under_served']:>14.1%}  {top}"
            )
    typer.echo(f"\n{result['assumptions']['labels']}; see routing/smart/README.md.")
