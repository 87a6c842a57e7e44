"""Money as integers: amounts are stored and summed in nano-dollars (USD × 10⁹).

Conversions are exact. A `float` is refused outright: it cannot represent most decimal amounts,
so accepting one would silently lose money.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

NANOS_PER_USD = 1_000_000_000
_NANO = Decimal("1e-9")


def usd_to_nanos(usd: Decimal | int | str, *, rounding: str | None = None) -> int:
    """Integer nano-dollars for a USD amount.

    Without `rounding`, an amount finer than one nano-dollar is a `ValueError`; with a
    `decimal` rounding mode (e.g. `decimal.ROUND_HALF_EVEN`) it is rounded to the nearest nano.
    """
    if isinstance(usd, float | bool):
        raise TypeError("USD amounts must be Decimal, int or str, never float")
    try:
        value = usd if isinstance(usd, Decimal) else Decimal(usd)
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {usd!r}") from exc
    if not value.is_finite():
        raise ValueError(f"not a finite amount: {usd!r}")
    scaled = value.scaleb(9)
    if scaled == scaled.to_integral_value():
        return int(scaled)
    if rounding is None:
        raise ValueError(f"{usd} USD is not a whole number of nano-dollars")
    return int(value.quantize(_NANO, rounding=rounding).scaleb(9))


def nanos_to_usd(nanos: int) -> Decimal:
    """USD for an integer nano-dollar amount, exact (nine decimal places)."""
    if isinstance(nanos, bool) or not isinstance(nanos, int):
        raise TypeError("nano-dollar amounts must be int")
    return Decimal(nanos).scaleb(-9)


def format_usd(nanos: int) -> str:
    """Human display, e.g. `$12.50`; sub-cent amounts keep their significant digits."""
    usd = nanos_to_usd(nanos)
    cents = usd.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    if cents == usd:
        return f"${cents:,}"
    return f"${usd.normalize():,f}"


def usd_text(amount: int | Decimal) -> str:
    """An exact USD decimal string for nano-dollars (int) or USD (`Decimal`): `"0.0045"`, `"20"`,
    `"-1.5"`; no exponent, no trailing zeros."""
    value = nanos_to_usd(amount) if isinstance(amount, int) else amount
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text
