"""`gatewayz users ...`: create users (each with a primary API key), grant them credits; list,
show, and change a role or plan (cli/users_admin.py).

A user created on the trial plan is provisioned exactly as `POST /auth/register` provisions one
(`accounts/provisioning.py`): the trial's credit as a ledger row, its end, its tier label and
the primary key; `--credits` then adds credit on top (another `grant` row)."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

import typer

from gatewayz.accounts import api_keys
from gatewayz.accounts.provisioning import PRIMARY_KEY_NAME, provision_user, trial_offer
from gatewayz.billing import ledger
from gatewayz.billing.ledger import Balance
from gatewayz.billing.plans import load_plans
from gatewayz.cli import users_admin
from gatewayz.cli.db import fail, load_settings, run
from gatewayz.cli.limits import LimitOptions, key_limits
from gatewayz.money import format_usd, usd_text, usd_to_nanos
from gatewayz.security.keys import KeyRing
from gatewayz.settings import Settings
from gatewayz.storage import users
from gatewayz.storage.db import Database, upgrade
from gatewayz.storage.tables import ROLES

app = typer.Typer(help="Users.", no_args_is_help=True)

MAX_DESCRIPTION = 1000  # as POST /admin/credits bounds it


def parse_credits(text: str) -> Decimal:
    try:
        amount = Decimal(text.strip().removeprefix("$"))
    except InvalidOperation:
        fail(f"--credits must be a USD amount, got {text!r}")
    if not amount.is_finite() or amount < 0:
        fail(f"--credits must be a non-negative USD amount, got {text!r}")
    try:
        usd_to_nanos(amount)
    except ValueError:
        fail(f"--credits has more precision than one nano-dollar: {text!r}")
    return amount


async def _create(
    settings: Settings,
    email: str,
    role: str,
    plan: str,
    credits_usd: Decimal,
    limits: dict[str, int] | None,
) -> tuple[dict[str, Any], str, Balance]:
    url = settings.resolved_database_url
    keyring = KeyRing(*settings.secrets)
    await upgrade(url)
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        async with db.begin() as conn:
            if plan == load_plans().trial.plan:
                result = await provision_user(
                    conn,
                    keyring,
                    email=email,
                    env=settings.env,
                    offer=await trial_offer(conn),
                    role=role,
                    key_limits=limits,
                )
                user, key = result.user, result.api_key
                assert key is not None  # a new user's key
                if credits_usd > 0:
                    await ledger.grant(
                        conn, user["id"], credits_usd, description="gatewayz users create"
                    )
            else:
                user = await users.create_user(
                    conn, email, role=role, plan=plan, credits_usd=credits_usd
                )
                _, key = await api_keys.create_api_key(
                    conn,
                    keyring,
                    user["id"],
                    settings.env,
                    name=PRIMARY_KEY_NAME,
                    is_primary=True,
                    limits=limits,
                )
            balance = await ledger.balance(conn, user["id"])
    finally:
        await db.dispose()
    return user, key, balance


@app.command("create")
def create(
    email: Annotated[str, typer.Option("--email", help="The user's email address.")],
    role: Annotated[str, typer.Option("--role", help=f"One of {'|'.join(ROLES)}.")] = "free",
    credits: Annotated[
        str,
        typer.Option(
            "--credits", help="Credits in USD, e.g. 10 or 2.50 (on the trial: on top of its own)."
        ),
    ] = "0",
    plan: Annotated[
        str, typer.Option("--plan", help="Plan tier: trial|dev|team|enterprise.")
    ] = "trial",
    rpm_limit: LimitOptions.rpm = None,
    tokens_per_day: LimitOptions.tpd = None,
    tokens_per_month: LimitOptions.tpm = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line.")] = False,
) -> None:
    """Create a user and its primary API key (on the trial plan: the trial's credit, end and
    limits, as a sign-up gets them). The key is shown only now."""
    if role not in ROLES:
        fail(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
    tiers = load_plans().tiers
    if plan not in tiers:
        fail(f"unknown plan {plan!r}; expected one of {', '.join(tiers)}")
    amount = parse_credits(credits)
    limits = key_limits(rpm_limit, tokens_per_day, tokens_per_month)
    settings = load_settings()
    user, key, balance = run(_create(settings, email, role, plan, amount, limits))
    if as_json:
        typer.echo(json.dumps({"user_id": user["id"], "api_key": key}))
        return
    typer.echo(f"user_id:     {user['id']}")
    typer.echo(f"email:       {user['email']}")
    typer.echo(f"role:        {user['role']}")
    typer.echo(f"plan:        {user['plan']}")
    typer.echo(f"credits:     {format_usd(usd_to_nanos(balance.total))}")
    if user.get("trial_ends_at") is not None:
        typer.echo(f"trial ends:  {user['trial_ends_at']:%Y-%m-%d %H:%M} UTC")
    typer.echo(f"api_key:     {key}")
    typer.echo("Store this key now: it will not be shown again.")


async def _grant(
    settings: Settings, email: str, amount: Decimal, kind: str, description: str | None
) -> tuple[dict[str, Any], Balance]:
    url = settings.resolved_database_url
    await upgrade(url)
    db = Database(url, pool_size=1, max_overflow=0)
    try:
        async with db.begin() as conn:
            user = await users.get_user_by_email(conn, email)
            if user is None:
                fail(f"no user with email {email!r}")
            try:
                await ledger.grant(conn, user["id"], amount, type=kind, description=description)
            except ledger.InsufficientCredits as exc:
                fail(f"cannot apply: {exc}")
            return user, await ledger.balance(conn, user["id"])
    finally:
        await db.dispose()


@app.command("grant")
def grant(
    email: Annotated[str, typer.Option("--email", help="The user's email address.")],
    usd: Annotated[str, typer.Option("--usd", help="USD to add, e.g. 25 or 0.50.")],
    kind: Annotated[
        str, typer.Option("--type", help="grant|purchase|adjustment (adjustments may be < 0).")
    ] = "grant",
    description: Annotated[str | None, typer.Option("--description")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON line.")] = False,
) -> None:
    """Add purchased credits to a user (one ledger row); an adjustment may remove some."""
    if description is not None and len(description) > MAX_DESCRIPTION:
        fail(f"--description must be at most {MAX_DESCRIPTION} characters")
    if kind not in ("grant", "purchase", "adjustment"):
        fail(f"--type must be grant, purchase or adjustment, got {kind!r}")
    negative = usd.strip().startswith("-")
    if negative and kind != "adjustment":
        fail("only --type adjustment may be negative")
    amount = parse_credits(usd.strip().removeprefix("-"))
    if amount == 0:
        fail("--usd must not be zero")
    user, bal = run(
        _grant(load_settings(), email, -amount if negative else amount, kind, description)
    )
    if as_json:
        typer.echo(json.dumps({"user_id": user["id"], "balance_usd": usd_text(bal.total)}))
        return
    typer.echo(f"{user['email']}: balance {format_usd(usd_to_nanos(bal.total))}")


app.command("list")(users_admin.list_users)
app.command("show")(users_admin.show)
app.command("set-role")(users_admin.set_role)
app.command("set-plan")(users_admin.set_plan)
