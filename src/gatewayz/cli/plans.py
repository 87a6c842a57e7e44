"""`gatewayz plans list`: the plan tiers of billing/plans.toml (what `users create --plan` and
`users set-plan` accept), with their limits and money, and the trial's terms."""

from __future__ import annotations

import json
from typing import Any

import typer

from gatewayz.billing.plans import load_plans
from gatewayz.money import usd_text

app = typer.Typer(help="Plans (billing/plans.toml).", no_args_is_help=True)


def _rows() -> list[dict[str, Any]]:
    plans = load_plans()
    trial = plans.trial
    rows = []
    for t in plans.tiers.values():
        rows.append(
            {
                "plan": t.slug,
                "name": t.name,
                "rpm": t.rpm,
                "tokens_per_day": t.tokens_per_day,
                "tokens_per_month": t.tokens_per_month,
                "price_usd_month": usd_text(t.price_usd_month),
                "monthly_allowance_usd": usd_text(t.monthly_allowance_usd),
                "daily_spend_cap_usd": usd_text(t.daily_spend_cap_usd),
                "self_serve": t.self_serve,
                "trial": None
                if t.slug != trial.plan
                else {
                    "days": trial.days,
                    "credits_usd": usd_text(trial.credits_usd),
                    "max_tokens": trial.max_tokens,
                    "max_requests": trial.max_requests,
                },
            }
        )
    return rows


@app.command("list")
def list_plans(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every plan: requests per minute, tokens per day and month, price, allowance, cap."""
    rows = _rows()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    typer.echo(
        f"{'plan':<12}{'rpm':>6}{'tokens/day':>13}{'tokens/month':>15}{'$/month':>9}"
        f"{'allowance':>11}{'daily cap':>11}  sold by checkout"
    )
    for r in rows:
        typer.echo(
            f"{r['plan']:<12}{r['rpm']:>6}{r['tokens_per_day']:>13,}{r['tokens_per_month']:>15,}"
            f"{'$' + r['price_usd_month']:>9}{'$' + r['monthly_allowance_usd']:>11}"
            f"{'$' + r['daily_spend_cap_usd']:>11}  {'yes' if r['self_serve'] else 'no'}"
        )
    for r in rows:
        if r["trial"]:
            t = r["trial"]
            typer.echo(
                f"\nThe {r['plan']} plan: ${t['credits_usd']} of credit for {t['days']} days, "
                f"at most {t['max_tokens']:,} tokens and {t['max_requests']:,} requests."
            )
