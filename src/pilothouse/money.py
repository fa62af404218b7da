"""Money in one place: USD as exact `Decimal`s at the edges, integer pico-dollars (1e-12 USD) where amounts
are stored and counted (the `Money` column in store/types.py, the limit store's budget counters), and how
amounts are written for JSON (`usd_string`) and for people (`usd`).

Integers are exact on every database and every replica and sum correctly in SQL; ±9.2 million USD fit in a
64-bit count.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

PICO = Decimal("1e-12")  # one pico-dollar, in USD
PICO_PER_USD = 10**12


def to_pico(value: Decimal, *, rounding: str = ROUND_HALF_EVEN) -> int:
    """USD as a whole number of pico-dollars, rounded half to even (`rounding=ROUND_CEILING` for an amount
    that must never come out smaller, such as a reservation)."""
    return int(value.scaleb(12).to_integral_value(rounding=rounding))  # scaleb: exact, whatever the precision


def from_pico(value: int) -> Decimal:
    """Pico-dollars as USD without trailing zeros (`10`, `0.000123`); also for SQL sums of a Money column."""
    if not value:
        return Decimal(0)
    amount = (Decimal(value) / PICO_PER_USD).normalize()
    # normalize() writes whole amounts with a positive exponent (10 -> 1E+1); keep them plain.
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount


def usd_string(value: Decimal) -> str:
    """USD as a plain decimal string to the pico-dollar (half to even), without trailing zeros: for JSON."""
    if value == 0:
        return "0"
    with localcontext() as ctx:
        ctx.prec = 60
        return format(value.quantize(PICO, rounding=ROUND_HALF_EVEN).normalize(), "f")


def per_item(total: Decimal, count: int) -> Decimal:
    """`total / count` rounded to the pico-dollar (half to even); `count` must be positive."""
    with localcontext() as ctx:
        ctx.prec = 60
        return (total / count).quantize(PICO, rounding=ROUND_HALF_EVEN)


def usd(value: Decimal | int, *, exact: bool = False) -> str:
    """For people: `$10.00`, `$1,234.00`, `$0.0000123` (USD as a Decimal, or pico-dollars as an int). Amounts of
    $100 or more are rounded to the cent unless `exact`."""
    amount = from_pico(value) if isinstance(value, int) else value
    cents = amount.quantize(Decimal("0.01"))
    if cents == amount or (abs(amount) >= 100 and not exact):
        return f"${cents:,}"
    return f"${amount.normalize():f}"
