"""Money conversions: exact integer nano-dollars, no floats."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

import pytest

from gatewayz.money import NANOS_PER_USD, format_usd, nanos_to_usd, usd_to_nanos


@pytest.mark.parametrize(
    ("usd", "nanos"),
    [
        (Decimal("0"), 0),
        (Decimal("1"), NANOS_PER_USD),
        (Decimal("12.50"), 12_500_000_000),
        (Decimal("0.000000001"), 1),
        (Decimal("-3.25"), -3_250_000_000),
        (Decimal("1E+3"), 1_000 * NANOS_PER_USD),
        ("0.1", 100_000_000),
        (7, 7 * NANOS_PER_USD),
        (Decimal("9223372036.854775807"), 2**63 - 1),
    ],
)
def test_usd_to_nanos_exact(usd: Decimal | int | str, nanos: int) -> None:
    assert usd_to_nanos(usd) == nanos
    assert nanos_to_usd(nanos) == Decimal(usd)


def test_sub_nano_amounts_need_a_rounding_mode() -> None:
    with pytest.raises(ValueError, match="nano-dollars"):
        usd_to_nanos(Decimal("0.0000000015"))
    assert usd_to_nanos(Decimal("0.0000000015"), rounding=ROUND_HALF_EVEN) == 2
    assert usd_to_nanos(Decimal("0.0000000025"), rounding=ROUND_HALF_EVEN) == 2
    assert usd_to_nanos(Decimal("0.0000000001"), rounding=ROUND_CEILING) == 1


def test_floats_and_garbage_are_refused() -> None:
    with pytest.raises(TypeError):
        usd_to_nanos(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        nanos_to_usd(1.0)  # type: ignore[arg-type]
    for bad in ["abc", "NaN", "Infinity", Decimal("-Infinity")]:
        with pytest.raises(ValueError):
            usd_to_nanos(bad)


def test_format_usd() -> None:
    assert format_usd(0) == "$0.00"
    assert format_usd(12_500_000_000) == "$12.50"
    assert format_usd(1_234_567 * NANOS_PER_USD) == "$1,234,567.00"
    assert format_usd(1_234) == "$0.000001234"
