"""Why a hold was refused, in words the caller can act on: the trial's end or limits, the daily
spend cap (429, lifted at 00:00 UTC), else insufficient credits (402) with what the request
could cost and what is available."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gatewayz.billing.plans import Plans
from gatewayz.billing.pricing import FREE_SUFFIX
from gatewayz.errors import GatewayError, PaymentRequired, SpendCapReached
from gatewayz.money import format_usd
from gatewayz.storage.db import Database
from gatewayz.storage.ledger.money import spending_state
from gatewayz.storage.tables import utcnow


async def refusal(
    db: Database,
    plans: Plans,
    user_id: str,
    model: str,
    worst: int,
    tokens: str,
) -> GatewayError:
    """The error for a refused hold of `worst` nanos; `tokens` says what it covers."""
    async with db.begin() as conn:
        row = await spending_state(conn, user_id)
    now = utcnow()
    trial = plans.trial
    free_hint = f"Models with the '{FREE_SUFFIX}' suffix remain available."
    if row["plan"] == trial.plan:
        ends = row["trial_ends_at"]
        if ends is not None and ends <= now:
            return PaymentRequired(
                f"Your free trial ended on {ends:%Y-%m-%d %H:%M} UTC. Add credits or choose "
                f"a plan to use '{model}'. {free_hint}",
                code="trial_expired",
            )
        if row["trial_tokens_used"] >= trial.max_tokens:
            return PaymentRequired(
                f"Your free trial's {trial.max_tokens:,} tokens are used up. Add credits "
                f"or choose a plan to use '{model}'. {free_hint}",
                code="trial_token_limit",
            )
        if row["trial_requests_used"] >= trial.max_requests:
            return PaymentRequired(
                f"Your free trial's {trial.max_requests:,} requests are used up. Add credits"
                f" or choose a plan to use '{model}'. {free_hint}",
                code="trial_request_limit",
            )
    tier = plans.tier(row["plan"])
    today = now.date().isoformat()
    spent = row["spend_day_nanos"] if row["spend_day"] == today else 0
    if spent + row["held_nanos"] + worst > tier.daily_cap_nanos:
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        return SpendCapReached(
            f"The {tier.name} plan's daily spend cap of {format_usd(tier.daily_cap_nanos)} "
            f"would be exceeded (spent today {format_usd(spent)}, in flight "
            f"{format_usd(row['held_nanos'])}, this request up to {format_usd(worst)}). "
            "It resets at 00:00 UTC.",
            headers={"Retry-After": str(max(1, int((midnight - now).total_seconds())))},
        )
    available = row["allowance_nanos"] + row["credits_nanos"] - row["held_nanos"]
    return PaymentRequired(
        f"Insufficient credits: this request may cost up to {format_usd(worst)} ({tokens} of "
        f"'{model}'), and your available balance is {format_usd(max(available, 0))}. Add "
        "credits, or lower max_tokens.",
    )
