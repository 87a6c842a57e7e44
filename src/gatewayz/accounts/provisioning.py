"""New users and logins: the trial (or a partner trial), the starting credit, the primary key.

Provisioning happens in the caller's transaction (one `db.begin()`): the user row, the `grant`
ledger row for the trial credit, the trial terms and the primary API key commit together or not
at all. The plaintext key exists only in the return value (shown once).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from gatewayz.accounts import api_keys
from gatewayz.accounts.disposable import check_not_disposable
from gatewayz.accounts.privy import Identity
from gatewayz.billing.plans import load_plans
from gatewayz.errors import GatewayError, InvalidRequest, PermissionDenied
from gatewayz.money import nanos_to_usd, usd_to_nanos
from gatewayz.security.keys import KeyRing
from gatewayz.storage import users
from gatewayz.storage.db import Database, DbConnection
from gatewayz.storage.errors import DuplicateValue
from gatewayz.storage.tables import utcnow

PRIMARY_KEY_NAME = "primary"
LOGIN_KEY_NAME = "login"
_CODE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class AccountConflict(GatewayError):
    status, type, code = 409, "invalid_request_error", "account_exists"


@dataclass(frozen=True, slots=True)
class TrialOffer:
    plan: str
    tier: str
    days: int
    credits_nanos: int
    partner_code: str | None = None


@dataclass(frozen=True, slots=True)
class AuthResult:
    user: dict[str, Any]
    api_key: str | None  # plaintext, shown once: only for a new user or on request
    is_new_user: bool
    api_key_id: str | None = None  # the id of `api_key`
    partner_code: str | None = None  # the partner trial a new user signed up on


def tier_label(user: dict[str, Any]) -> str:
    """The user's tier label: stored at sign-up; for older rows derived from the plan."""
    if user.get("tier"):
        return str(user["tier"])
    trial = load_plans().trial
    return trial.tier_label if user["plan"] == trial.plan else str(user["plan"])


def _optional_code(value: object, param: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _CODE.match(value.strip()):
        raise InvalidRequest(f"'{param}' must be 1-64 letters, digits, '-' or '_'.", param=param)
    return value.strip()


def referral_code(value: object) -> str | None:
    """A referral code from a request (stored as given, trimmed), or None."""
    return _optional_code(value, "referral_code")


async def trial_offer(conn: DbConnection, partner_code: object = None) -> TrialOffer:
    """The standard trial (plans.toml), or the active partner trial of `partner_code`
    (case-insensitive); an unknown or inactive partner code is a 400."""
    trial = load_plans().trial
    code = _optional_code(partner_code, "partner_code")
    if code is None:
        return TrialOffer(trial.plan, trial.tier_label, trial.days, usd_to_nanos(trial.credits_usd))
    row = await users.find_partner_trial(conn, code)
    if row is None:
        raise InvalidRequest(f"Unknown partner code {code!r}.", param="partner_code")
    plan = str(row["plan"])
    tier = trial.tier_label if plan == trial.plan else plan
    return TrialOffer(plan, tier, int(row["trial_days"]), int(row["credits_nanos"]), row["code"])


async def provision_user(
    conn: DbConnection,
    keyring: KeyRing,
    *,
    email: str,
    env: str,
    offer: TrialOffer,
    privy_user_id: str | None = None,
    referred_by_code: str | None = None,
    now: datetime | None = None,
    role: str = "free",
    key_limits: Mapping[str, int] | None = None,
) -> AuthResult:
    """Create the user on `offer` with its credit, trial end and primary key. Sign-ups are
    `free` users; `gatewayz users create` may choose the role and the key's limits."""
    moment = now or utcnow()
    try:
        user = await users.create_user(
            conn, email, role=role, plan=offer.plan, credits_usd=nanos_to_usd(offer.credits_nanos)
        )
    except ValueError as exc:
        if "already exists" in str(exc):
            raise AccountConflict(f"An account with e-mail {email} already exists.") from None
        raise InvalidRequest(str(exc), param="email") from None
    extra = {
        "tier": offer.tier,
        "trial_ends_at": moment + timedelta(days=offer.days),
        "privy_user_id": privy_user_id,
        "referred_by_code": referred_by_code,
        "created_at": moment,
        "updated_at": moment,
    }
    try:
        await users.record_sign_up(conn, user["id"], extra)
    except DuplicateValue:  # a concurrent sign-up of the same Privy user won
        raise AccountConflict("This login is already linked to an account.") from None
    user.update(extra)
    row, key = await api_keys.create_api_key(
        conn, keyring, user["id"], env, PRIMARY_KEY_NAME, is_primary=True, limits=key_limits
    )
    return AuthResult(user, key, True, row["id"], offer.partner_code)


async def register(
    db: Database,
    keyring: KeyRing,
    *,
    email: str,
    env: str,
    partner_code: object = None,
    referred_by_code: str | None = None,
) -> AuthResult:
    """Sign a new user up by e-mail (`POST /auth/register`) on the standard trial, or the
    partner trial of `partner_code`, in one transaction."""
    async with db.begin() as conn:
        offer = await trial_offer(conn, partner_code)
        return await provision_user(
            conn, keyring, email=email, env=env, offer=offer, referred_by_code=referred_by_code
        )


async def find_identity_user(conn: DbConnection, identity: Identity) -> dict[str, Any] | None:
    """The user of a Privy identity: by Privy user id, else by its account e-mail (linking the
    Privy id to that user). An e-mail already linked to another Privy user is a 409."""
    found = await users.get_user_by_privy_id(conn, identity.subject)
    if found is not None:
        return found
    user = await users.get_user_by_email(conn, identity.account_email)
    if user is None:
        return None
    if user["privy_user_id"] not in (None, identity.subject):
        raise AccountConflict(
            f"The e-mail {identity.account_email} belongs to an account linked to another login."
        )
    if user["privy_user_id"] is None:
        await users.link_privy_id(conn, user["id"], identity.subject)
        user["privy_user_id"] = identity.subject
    return user


async def _login(
    conn: DbConnection, keyring: KeyRing, user: dict[str, Any], env: str, new_api_key: bool
) -> AuthResult:
    if not user["is_active"]:
        raise PermissionDenied("This account is disabled.", code="account_disabled")
    if not new_api_key:
        return AuthResult(user, None, False)
    row, key = await api_keys.create_api_key(conn, keyring, user["id"], env, LOGIN_KEY_NAME)
    return AuthResult(user, key, False, row["id"])


async def login_or_sign_up(
    db: Database,
    keyring: KeyRing,
    identity: Identity,
    *,
    env: str,
    new_api_key: bool = False,
    referred_by_code: str | None = None,
    partner_code: object = None,
    before_sign_up: Callable[[], Awaitable[None]] | None = None,
) -> AuthResult:
    """Log an existing user in, or sign a new one up on the standard trial (or the partner
    trial of `partner_code`, with `referred_by_code` stored; both ignored on login).

    `before_sign_up` runs only when a new account is about to be created (the per-IP sign-up
    limit); a sign-up that loses a race with a concurrent one for the same identity logs in."""
    async with db.begin() as conn:
        user = await find_identity_user(conn, identity)
        if user is not None:
            return await _login(conn, keyring, user, env, new_api_key)
    if identity.email:
        check_not_disposable(identity.email.rpartition("@")[2])
    if before_sign_up is not None:
        await before_sign_up()
    try:
        async with db.begin() as conn:
            offer = await trial_offer(conn, partner_code)
            return await provision_user(
                conn,
                keyring,
                email=identity.account_email,
                env=env,
                offer=offer,
                privy_user_id=identity.subject,
                referred_by_code=referred_by_code,
            )
    except AccountConflict:
        async with db.begin() as conn:
            user = await find_identity_user(conn, identity)
            if user is None:
                raise
            return await _login(conn, keyring, user, env, new_api_key)


def auth_response(result: AuthResult) -> dict[str, Any]:
    """The JSON answer of POST /auth and POST /auth/register."""
    user = result.user
    ends = user.get("trial_ends_at")
    return {
        "user_id": user["id"],
        "api_key": result.api_key,
        "is_new_user": result.is_new_user,
        "email": user["email"],
        "plan": user["plan"],
        "tier": tier_label(user),
        "trial_ends_at": ends.isoformat() if isinstance(ends, datetime) else None,
    }
