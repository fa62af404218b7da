"""USD amounts in reports and estimates: exact `Decimal`s written as plain strings."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, localcontext

PICO = Decimal("1e-12")


def money(value: Decimal) -> str:
    """USD as a plain decimal string to the pico-dollar (the store's resolution), without trailing zeros."""
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
