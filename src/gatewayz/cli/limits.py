"""Per-key rate-limit overrides as CLI options (stored in api_keys.limits; the plan tier's
limits apply to whatever is not overridden)."""

from __future__ import annotations

from typing import Annotated

import typer


class LimitOptions:
    rpm = Annotated[
        int | None, typer.Option("--rpm-limit", min=0, help="Requests per minute for this key.")
    ]
    tpd = Annotated[
        int | None, typer.Option("--tokens-per-day", min=0, help="Tokens per day for this key.")
    ]
    tpm = Annotated[
        int | None,
        typer.Option("--tokens-per-month", min=0, help="Tokens per month for this key."),
    ]


def key_limits(rpm: int | None, tpd: int | None, tpm: int | None) -> dict[str, int] | None:
    values = {"rpm": rpm, "tokens_per_day": tpd, "tokens_per_month": tpm}
    limits = {k: v for k, v in values.items() if v is not None}
    return limits or None
