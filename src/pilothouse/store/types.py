"""Column types shared by the tables: exact money and portable JSON."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

_PICO = Decimal("1e-12")
_SCALE = 10**12

JSONType = JSON().with_variant(JSONB(), "postgresql")


def to_pico(value: Decimal) -> int:
    return int((value / _PICO).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_pico(value: int) -> Decimal:
    if not value:
        return Decimal(0)
    amount = (Decimal(value) / _SCALE).normalize()
    # normalize() writes whole amounts with a positive exponent (10 -> 1E+1); keep them plain.
    return amount.quantize(Decimal(1)) if amount == amount.to_integral_value() else amount


class Money(TypeDecorator[Decimal]):
    """USD as a `Decimal`, stored exactly as an integer count of pico-dollars (1e-12 USD).

    SQLite has no exact decimal type; integers are exact everywhere and sum correctly in SQL.
    Use `from_pico` on the result of SQL aggregates over a Money column.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return to_pico(value if isinstance(value, Decimal) else Decimal(str(value)))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_pico(int(value))
