r"""Bounded input types: every integer, decimal and text value an edge accepts fits its column.

A value the database cannot store must be refused where it enters, as a 422 problem naming the field —
never found by the database as ``integer out of range`` (PostgreSQL ``INTEGER`` is 32-bit), an
``OverflowError`` (SQLite's 64-bit integers) or a NUL byte PostgreSQL text and JSONB refuse. These
aliases carry the bounds into the request schemas and their OpenAPI document:

- :data:`Id` — a row id (``INTEGER`` primary keys): 1 … 2³¹ − 1.
- :data:`Tonnes` — a whole number of tonnes (``BIGINT``), at most :data:`MAX_QUANTITY_T`.
- :data:`AmountFen` — an amount of money in fen (``BIGINT``), at most :data:`MAX_AMOUNT_FEN`.
- :data:`PriceCny` — a decimal price string in CNY with at most :data:`PRICE_INTEGER_DIGITS` integer digits.
- :data:`Text` — one line of text: no control character at all.
- :data:`MultilineText` — text where newlines and tabs are legitimate (comments, descriptions).

>>> from pydantic import TypeAdapter
>>> TypeAdapter(Id).validate_python(2**31)
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for constrained-int
  Input should be less than or equal to 2147483647 [type=less_than_equal, input_value=2147483648, input_type=int]
...
>>> control_characters("a\x00b\n", allow_newlines=True)
['U+0000']
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field

#: Largest value of a PostgreSQL ``INTEGER`` (and of every ``Integer`` column and primary key).
INT32_MAX = 2**31 - 1
#: Largest value of a ``BIGINT`` (PostgreSQL and SQLite alike).
INT64_MAX = 2**63 - 1
#: The largest quantity one command may move: 10¹² t, far above any real issuance, and small enough that
#: sums of quantities and quantity × price in fen stay checked well inside ``BIGINT``.
MAX_QUANTITY_T = 10**12
#: The largest amount of one cash movement: 10¹⁶ fen = 10¹⁴ CNY (``BIGINT`` holds 9.2 × 10¹⁸ fen).
MAX_AMOUNT_FEN = 10**16
#: Integer digits of a price in CNY: below 10¹² CNY/t, i.e. below 10¹⁴ fen/t.
PRICE_INTEGER_DIGITS = 12
#: The magnitude every methodology decimal input stays below (areas in m², stocks, precipitation…).
MAX_DECIMAL_INPUT = Decimal(10) ** 15

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_CONTROL_EXCEPT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def control_characters(text: str, *, allow_newlines: bool = False) -> list[str]:
    """Return the control characters of ``text`` as ``U+XXXX`` (tab, LF and CR allowed if ``allow_newlines``)."""
    pattern = _CONTROL_EXCEPT_NEWLINES if allow_newlines else _CONTROL
    return sorted({f"U+{ord(char):04X}" for char in pattern.findall(text)})


def _single_line(text: str) -> str:
    found = control_characters(text)
    if found:
        raise ValueError(f"text may not contain control characters ({', '.join(found)})")
    return text


def _multiline(text: str) -> str:
    found = control_characters(text, allow_newlines=True)
    if found:
        raise ValueError(f"text may not contain control characters other than tab and newlines ({', '.join(found)})")
    return text


Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
Tonnes = Annotated[int, Field(gt=0, le=MAX_QUANTITY_T, strict=True)]
AmountFen = Annotated[int, Field(gt=0, le=MAX_AMOUNT_FEN, strict=True)]
PriceCny = Annotated[str, Field(pattern=rf"^\d{{1,{PRICE_INTEGER_DIGITS}}}(\.\d+)?$", max_length=24)]
Text = Annotated[str, AfterValidator(_single_line)]
MultilineText = Annotated[str, AfterValidator(_multiline)]
