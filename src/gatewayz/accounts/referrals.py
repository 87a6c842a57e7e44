"""Referral codes (`GET /user/referral`): each user's code, made on first use, and how many
users signed up with it. A referred user's first purchase pays the referrer the bonus
(`billing.stripe_handlers`)."""

from __future__ import annotations

import secrets

from gatewayz.errors import GatewayError, NotFound
from gatewayz.storage import users
from gatewayz.storage.db import Database
from gatewayz.storage.errors import DuplicateValue

# Referral codes: 8 characters without look-alikes (0/O, 1/I); codes are matched upper-case.
REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
REFERRAL_LENGTH = 8
_REFERRAL_ATTEMPTS = 8


def new_referral_code() -> str:
    return "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(REFERRAL_LENGTH))


async def ensure_referral_code(db: Database, user_id: str) -> str:
    """The user's referral code; a new random one is stored on first use (a collision with
    another user's code, or a concurrent first call, just tries again / reads the winner)."""
    for _ in range(_REFERRAL_ATTEMPTS):
        async with db.begin() as conn:
            code = await users.referral_code_of(conn, user_id)
        if code is None:
            raise NotFound("Your user account no longer exists.", code="user_not_found")
        if code:
            return code
        try:
            async with db.begin() as conn:
                await users.set_referral_code(conn, user_id, new_referral_code())
        except DuplicateValue:
            continue  # the code is taken: draw another
    raise GatewayError("Could not allocate a referral code; please retry.")


async def referred_users(db: Database, code: str) -> int:
    """How many users signed up with `code`."""
    async with db.begin() as conn:
        return await users.count_referred(conn, code)
