"""`gatewayz users list|show|set-role|set-plan` (registered by cli/users.py).

A role is changed by the admin API's own service (`accounts.admin.change_role`), a plan by the
ledger's (`billing.ledger.change_plan`, as a Stripe subscription or the allowance sweep does:
the new plan's monthly allowance starts now); both then make every worker re-read its cached
keys and are recorded as audit events (`role_changed`, `plan_changed`), as the API records
its changes (cli/ops.py)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer

from gatewayz.accounts import admin
from gatewayz.billing import ledger
from gatewayz.billing.ledger import Balance
from gatewayz.billing.plans import load_plans
from gatewayz.cli.db import fail, load_settings, run
from gatewayz.cli.ops import MAX_LIST, Operator, find_user, operating, reading, user_ref
from gatewayz.money import usd_text
from gatewayz.security.roles import load_roles
from gatewayz.settings import Settings
from gatewayz.storage import key_listing

JSON_OPTION = typer.Option(False, "--json", help="Print JSON.")


def when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _summary(user: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": user["id"],
        "email": user["email"],
        "role": user["role"],
        "plan": user["plan"],
        "is_active": bool(user["is_active"]),
        "created_at": when(user["created_at"]),
    }


# ---- list ------------------------------------------------------------------------------------


async def _list(settings: Settings, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    async with reading(settings) as db:
        return await admin.list_users(db, limit=limit, offset=offset)


def list_users(
    limit: int = typer.Option(50, "--limit", min=1, max=MAX_LIST, help="At most this many."),
    offset: int = typer.Option(0, "--offset", min=0, max=10**9, help="Skip this many first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Users, oldest first: id, email, role, plan, active, created."""
    rows, total = run(_list(load_settings(), limit, offset))
    data = [_summary(r) for r in rows]
    if as_json:
        typer.echo(json.dumps({"data": data, "total": total, "limit": limit, "offset": offset}))
        return
    typer.echo(f"{'id':<38}{'email':<32}{'role':<7}{'plan':<12}{'active':<8}created")
    for u in data:
        created = (u["created_at"] or "")[:19]
        active = "yes" if u["is_active"] else "no"
        typer.echo(
            f"{u['id']:<38}{u['email']:<32}{u['role']:<7}{u['plan']:<12}{active:<8}{created}"
        )
    typer.echo(f"\n{len(data)} shown of {total} users (offset {offset}).")


# ---- show ------------------------------------------------------------------------------------


def _money(balance: Balance) -> dict[str, str]:
    return {
        "allowance": usd_text(balance.allowance),
        "purchased": usd_text(balance.purchased),
        "held": usd_text(balance.held),
        "available": usd_text(balance.available),
        "total": usd_text(balance.total),
    }


async def _show(settings: Settings, ref: tuple[str | None, str | None]) -> dict[str, Any]:
    async with reading(settings) as db, db.begin() as conn:
        user = await find_user(conn, ref)
        balance = await ledger.balance(conn, user["id"])
        live, revoked = await key_listing.count_user_keys(conn, user["id"])
    return {
        **_summary(user),
        "tier": user.get("tier"),
        "trial_ends_at": when(user.get("trial_ends_at")),
        "balance_usd": _money(balance),
        "keys": {"active": live, "revoked": revoked},
    }


def show(
    email_or_id: str = typer.Argument(..., help="The user's email or id (usr_...)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """One user: role, plan, balance (allowance, purchased, held, available), keys, created."""
    ref = user_ref(email_or_id)
    info = run(_show(load_settings(), ref))
    if as_json:
        typer.echo(json.dumps(info))
        return
    money, keys = info["balance_usd"], info["keys"]
    trial = load_plans().trial.plan
    lines = [
        ("id", info["id"]),
        ("email", info["email"]),
        ("role", info["role"]),
        ("plan", info["plan"] + (f" (tier {info['tier']})" if info["tier"] else "")),
        ("active", "yes" if info["is_active"] else "no"),
        ("created", info["created_at"]),
        ("trial ends", (info["trial_ends_at"] or "-") if info["plan"] == trial else "-"),
        ("allowance", f"${money['allowance']}"),
        ("purchased", f"${money['purchased']}"),
        ("held", f"${money['held']}"),
        ("available", f"${money['available']}"),
        ("total", f"${money['total']} (allowance + purchased)"),
        ("keys", f"{keys['active']} active, {keys['revoked']} revoked"),
    ]
    for label, value in lines:
        typer.echo(f"{label + ':':<12} {value}")


# ---- set-role --------------------------------------------------------------------------------


async def _set_role(
    settings: Settings, ref: tuple[str | None, str | None], role: str
) -> tuple[dict[str, Any], str, Operator]:
    async with operating(settings) as op:
        async with op.db.begin() as conn:
            user = await find_user(conn, ref)
        previous = await admin.change_role(op.db, user["id"], role)
        if previous is None:  # deleted meanwhile
            raise ValueError(f"no user with id {user['id']}")
        # Cached principals carry the role: every worker re-reads its keys.
        await op.publish(None)
        op.event("role_changed", user_id=user["id"], **{"from": previous, "to": role})
    return user, previous, op


def set_role(
    email_or_id: str = typer.Argument(..., help="The user's email or id (usr_...)."),
    role: str = typer.Argument(..., help="admin|team|dev|free (security/roles.toml)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
) -> None:
    """Change a user's role (audited as `role_changed`; every worker re-reads its keys)."""
    roles = load_roles().roles
    if role not in roles:
        fail(f"unknown role {role[:64]!r}; expected one of {', '.join(roles)}")
    ref = user_ref(email_or_id)
    user, previous, op = run(_set_role(load_settings(), ref, role))
    if as_json:
        typer.echo(json.dumps({"id": user["id"], "role": role, "previous_role": previous}))
    else:
        typer.echo(f"{user['email']}: role {previous} → {role}")
    op.finish()


# ---- set-plan --------------------------------------------------------------------------------


async def _set_plan(
    settings: Settings, ref: tuple[str | None, str | None], plan: str
) -> tuple[dict[str, Any], Balance | None, Operator]:
    tier = load_plans().tiers[plan]
    async with operating(settings) as op:
        async with op.db.begin() as conn:
            user = await find_user(conn, ref)
            if user["plan"] == plan:
                return user, None, op
            if user.get("stripe_subscription_id"):
                raise ValueError(
                    f"{user['email']} pays for plan {user['plan']} by a Stripe subscription "
                    f"({user['stripe_subscription_id']}), whose events set the plan: change or "
                    "cancel it in Stripe"
                )
            await ledger.change_plan(conn, user["id"], plan, allowance_nanos=tier.allowance_nanos)
            balance = await ledger.balance(conn, user["id"])
        # Cached principals carry the plan (as after a Stripe plan change).
        await op.publish(None)
        op.event(
            "plan_changed",
            user_id=user["id"],
            allowance_usd=usd_text(tier.monthly_allowance_usd),
            **{"from": user["plan"], "to": plan},
        )
    return user, balance, op


def set_plan(
    email_or_id: str = typer.Argument(..., help="The user's email or id (usr_...)."),
    plan: str = typer.Argument(
        ..., help="A plan of billing/plans.toml (see `gatewayz plans list`)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON line."),
) -> None:
    """Put a user on a plan: its limits, and its monthly allowance from now on (the previous
    allowance ends; purchased credits stay). Audited as `plan_changed`."""
    tiers = load_plans().tiers
    if plan not in tiers:
        fail(f"unknown plan {plan[:64]!r}; expected one of {', '.join(tiers)}")
    ref = user_ref(email_or_id)
    user, balance, op = run(_set_plan(load_settings(), ref, plan))
    if as_json:
        changed = balance is not None
        money = _money(balance) if balance is not None else None
        out = {"id": user["id"], "plan": plan, "previous_plan": user["plan"], "changed": changed}
        typer.echo(json.dumps({**out, "balance_usd": money}))
    elif balance is None:
        typer.echo(f"{user['email']}: already on plan {plan}; nothing changed")
    else:
        typer.echo(
            f"{user['email']}: plan {user['plan']} → {plan}; "
            f"allowance ${usd_text(balance.allowance)}, balance ${usd_text(balance.total)}"
        )
    if balance is not None:
        op.finish()
