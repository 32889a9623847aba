"""Fen, price ticks and tonnes: exact integers, floats refused, half-up rounding."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.problems import status_for
from core.money import (
    Fen,
    FloatNotAllowed,
    FractionalQuantity,
    MoneyError,
    OffTick,
    PriceTicks,
    Tonnes,
    notional_fen,
    round_half_up,
    ticks_from_cny,
    tonnes_from_quantity,
)


@pytest.mark.parametrize("bad", [50.0, float("nan")])
def test_floats_are_refused_everywhere(bad: float) -> None:
    for build in (
        lambda: ticks_from_cny(bad),
        lambda: tonnes_from_quantity(bad),
        lambda: Fen(bad),
        lambda: Tonnes(bad),
    ):  # type: ignore[arg-type]
        with pytest.raises(FloatNotAllowed):
            build()


@pytest.mark.parametrize(
    ("value", "error"),
    [(Decimal("50.005"), OffTick), ("NaN", MoneyError), ("abc", MoneyError), (True, MoneyError), (None, MoneyError)],
)
def test_prices_off_the_tick_or_not_numbers(value: object, error: type[MoneyError]) -> None:
    with pytest.raises(error):
        ticks_from_cny(value)  # type: ignore[arg-type]


def test_tick_sizes_and_quantities() -> None:
    assert ticks_from_cny("60.05", tick_fen=5) == 1201
    with pytest.raises(OffTick):
        ticks_from_cny("60.01", tick_fen=5)
    with pytest.raises(FractionalQuantity):
        tonnes_from_quantity(Decimal("0.1"))
    assert tonnes_from_quantity("12") == 12


def test_value_types() -> None:
    price = PriceTicks.from_cny("55.55")
    assert price.fen == Fen(5555) and price.cny == Decimal("55.55")
    assert notional_fen(price, Tonnes.from_quantity(3)) == Fen(16665)
    assert Fen(5) - Fen(7) == Fen(-2)
    with pytest.raises(MoneyError):
        PriceTicks(1, tick_fen=0)
    with pytest.raises(MoneyError):
        Fen("1")  # type: ignore[arg-type]
    assert status_for(OffTick("x")) == 422 and OffTick.reason == "off_tick"


@given(st.integers(-(10**12), 10**12), st.integers(1, 10**6))
def test_round_half_up_matches_the_definition(numerator: int, denominator: int) -> None:
    value = Fraction(numerator, denominator)
    rounded = round_half_up(value)
    assert abs(value - rounded) <= Fraction(1, 2)
    if abs(value - rounded) == Fraction(1, 2):
        assert abs(rounded) > abs(value)  # exact halves go away from zero


@given(st.integers(0, 10**9))
def test_cny_round_trip(fen: int) -> None:
    assert ticks_from_cny(Fen(fen).cny) == fen
