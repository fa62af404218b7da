"""Money as the limit store keeps it: integer pico-dollars (exact on every replica), and as people read it."""

from __future__ import annotations

from decimal import Decimal

from pilothouse.store.types import from_pico, to_pico

__all__ = ["from_pico", "to_pico", "usd"]


def usd(value: Decimal | int) -> str:
    """`$10.00`, `$0.0000123` (pico-dollar ints or Decimal USD)."""
    amount = from_pico(value) if isinstance(value, int) else value
    cents = amount.quantize(Decimal("0.01"))
    if cents == amount or abs(amount) >= 100:
        return f"${cents:,}"
    return f"${amount.normalize():f}"
