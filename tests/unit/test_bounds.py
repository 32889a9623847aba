"""The bounded input types (issue 16.1): ids, quantities, amounts, prices and text fit their columns."""

from __future__ import annotations

from decimal import Decimal, Overflow
from typing import Any

import pytest
from pydantic import BaseModel, Field, ValidationError

from carbon.methods.base import InputModel, floor_t, run_checked
from core.bounds import INT32_MAX, AmountFen, Id, MultilineText, PriceCny, Text, Tonnes, control_characters
from core.errors import InvalidInput
from geodata.rasters import raster_path_problems


class Command(BaseModel):
    id: Id = 1
    quantity_t: Tonnes = 1
    amount_fen: AmountFen = 1
    price_cny: PriceCny = "1"
    name: Text = ""
    note: MultilineText = ""


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", 0), ("id", INT32_MAX + 1), ("id", 2**63),
        ("quantity_t", 0), ("quantity_t", 10**12 + 1), ("quantity_t", 2**63), ("quantity_t", 1.0),
        ("amount_fen", 10**16 + 1), ("amount_fen", 2**64),
        ("price_cny", "1" + "0" * 12), ("price_cny", "1e23"), ("price_cny", "-1"),
        ("name", "a\x00b"), ("name", "a\nb"), ("name", "\x7f"), ("name", "\x85"),
        ("note", "a\x00b"), ("note", "\x1b[31m"),
    ],
)  # fmt: skip
def test_values_beyond_the_columns_are_refused(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        Command(**{field: value})


def test_the_largest_storable_values_and_multiline_text_are_accepted() -> None:
    command = Command(id=INT32_MAX, quantity_t=10**12, amount_fen=10**16, price_cny="999999999999.99",
                      name="Haicang 海沧", note="line one\r\nline two\ttab")  # fmt: skip
    assert command.id == INT32_MAX
    assert control_characters("a\x00\x1fb", allow_newlines=True) == ["U+0000", "U+001F"]


class Stock(InputModel):
    volume_m3: Decimal
    samples: list[Decimal] = Field(default_factory=list)


@pytest.mark.parametrize("value", ["1e400", "-1E+1000", "NaN", "Infinity", "sNaN", "1e15"])
def test_methodology_numbers_must_be_finite_and_bounded(value: str) -> None:
    with pytest.raises(ValidationError):
        Stock(volume_m3=Decimal(value))
    with pytest.raises(ValidationError):
        Stock(volume_m3=Decimal(1), samples=[Decimal(1), Decimal(value)])
    assert floor_t(Stock(volume_m3=Decimal("999999999999999.9")).volume_m3) == Decimal("999999999999999.900")


def test_a_calculation_past_the_decimal_context_is_invalid_input() -> None:
    def calculate() -> Any:
        return floor_t(Decimal("9" * 27) * Decimal("9" * 27))

    with pytest.raises(InvalidInput, match="computable range") as caught:
        run_checked("X", [], calculate)
    assert isinstance(caught.value.__cause__, Overflow | ArithmeticError)


def test_raster_paths_that_cannot_name_a_file() -> None:
    assert raster_path_problems("agb/agb-2025.tif") == []
    assert raster_path_problems("a" * 255 + "/b.tif") == []
    assert raster_path_problems("a" * 256) == ["a path component is longer than 255 bytes"]
    assert raster_path_problems("é" * 128) == ["a path component is longer than 255 bytes"]
    assert raster_path_problems("/".join(["d" * 200] * 6)) == ["the path is longer than 1024 bytes"]
    assert raster_path_problems("a\x00.tif") == ["the path contains control characters (U+0000)"]
