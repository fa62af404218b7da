"""Column types shared by the tables: exact money and portable JSON."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from pilothouse.money import from_pico, to_pico

JSONType = JSON().with_variant(JSONB(), "postgresql")


class Money(TypeDecorator[Decimal]):
    """USD as a `Decimal`, stored exactly as an integer count of pico-dollars (1e-12 USD; pilothouse/money.py).

    SQLite has no exact decimal type; integers are exact everywhere and sum correctly in SQL.
    Use `money.from_pico` on the result of SQL aggregates over a Money column.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> int | None:
        if value is None:
            return None
        return to_pico(value if isinstance(value, Decimal) else Decimal(str(value)))

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else from_pico(int(value))
