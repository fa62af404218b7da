"""The one money module (pilothouse/money.py): pico-dollar conversions and how amounts are written."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import pytest

from pilothouse.money import from_pico, per_item, to_pico, usd, usd_string


def test_to_pico_rounds_half_to_even_or_up() -> None:
    assert to_pico(Decimal("0.0000005")) == 500_000
    assert to_pico(Decimal("1.5e-12")) == 2 and to_pico(Decimal("2.5e-12")) == 2
    assert to_pico(Decimal("2.1e-12"), rounding=ROUND_CEILING) == 3
    assert to_pico(Decimal("-2.5e-12")) == -2
    assert to_pico(Decimal("9200000")) == 9_200_000 * 10**12


def test_to_pico_is_exact_beyond_the_default_precision() -> None:
    many_digits = Decimal("1234567.123456789012345678901234")  # 31 significant digits
    assert to_pico(many_digits) == 1_234_567_123_456_789_012


@pytest.mark.parametrize(("pico", "text"), [(0, "0"), (10**13, "10"), (123_000_000, "0.000123"), (-5 * 10**11, "-0.5")])
def test_from_pico_is_plain_decimal(pico: int, text: str) -> None:
    assert format(from_pico(pico), "f") == text
    assert to_pico(from_pico(pico)) == pico


def test_usd_for_people() -> None:
    assert usd(Decimal(10)) == "$10.00"
    assert usd(Decimal("0.1")) == "$0.10"
    assert usd(Decimal("0.123")) == "$0.123"
    assert usd(86_000_000) == "$0.000086"  # pico-dollars
    assert usd(Decimal(1234)) == "$1,234.00"
    assert usd(Decimal("123.456")) == "$123.46"
    assert usd(Decimal("123.456"), exact=True) == "$123.456"


def test_usd_string_and_per_item_for_json() -> None:
    assert usd_string(Decimal(0)) == "0"
    assert usd_string(Decimal("0.0015000")) == "0.0015"
    assert usd_string(Decimal("12")) == "12"
    assert usd_string(Decimal("0.0000000000025")) == "0.000000000002"  # half to even at the pico-dollar
    assert per_item(Decimal(1), 3) == Decimal("0.333333333333")
    assert per_item(Decimal("1e20"), 7) == Decimal("14285714285714285714.285714285714")
