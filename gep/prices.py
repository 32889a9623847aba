"""Versioned, cited price and coefficient tables (frozen models; Decimal values).

Every unit price and every empirical coefficient of GEP accounting lives in a data file under
``gep/data/`` — never as a constant in code. A table has an id, a version, the region and year it is
valid for and its source; each entry has a value, a unit, a valid-from date, a citation and a note.
Tables are TOML (``tomllib`` is in the standard library, so reading them adds no dependency); floats
are parsed straight to :class:`~decimal.Decimal`, so ``7.06`` is exactly 7.06.

Rules enforced at load:

- an unknown key, a missing field, or a unit outside :data:`UNITS` is an error
  (:class:`core.errors.InvalidInput` listing every problem);
- asking for a missing entry, or for an entry in another unit than the caller expects, is an error —
  a price in 元/t can never silently value cubic metres.

A run records :meth:`ParameterTable.reference` (id, version and SHA-256 of the canonical JSON of the
whole table — RFC 8785 for new runs, the reference naming its ``hash_scheme``; a reference without one is
``shanhai-json/1``, ADR 033), so its results can be traced to the exact prices used.

>>> table = load_table("prices_ganzi_2010")
>>> table.value("reservoir_cost", unit="yuan/m3")
Decimal('7.06')
>>> table.value("reservoir_cost", unit="yuan/t")
Traceback (most recent call last):
...
core.errors.InvalidInput: reservoir_cost in prices_ganzi_2010 v1 is in yuan/m3, not yuan/t
"""

from __future__ import annotations

import tomllib
from datetime import date
from decimal import Decimal
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.canonical import JCS_SCHEME, scheme_hash, scheme_reference
from core.errors import InvalidInput, validation_problems

#: Units a table entry may declare. Money is yuan (元); "1" is dimensionless.
Unit = Literal[
    "yuan/m3",
    "yuan/t",
    "yuan/tCO2",
    "yuan/m2",
    "yuan/kWh",
    "yuan/visit",
    "1",
    "1/percent",
    "percent",
    "degree",
    "m",
    "t/m3",
    "kg/m3",
    "kJ/kg",
    "kWh/m3",
    "g/m",
    "d",
]
UNITS: frozenset[str] = frozenset(Unit.__args__)  # type: ignore[attr-defined]


class ParameterEntry(BaseModel):
    """One cited value: a unit price or a coefficient."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: Decimal
    unit: Unit
    valid_from: date
    citation: str = Field(min_length=1)
    note: str = ""


class ParameterTable(BaseModel):
    """A versioned table of prices or coefficients for one region and year."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    kind: Literal["prices", "coefficients"]
    region: str = Field(min_length=1)
    year: int
    valid_from: date
    source: str = Field(min_length=1)
    note: str = ""
    entries: dict[str, ParameterEntry]

    def entry(self, key: str, *, unit: str) -> ParameterEntry:
        """Return the entry ``key``, checking that it is in ``unit``.

        Raises:
            InvalidInput: The entry is missing, or its unit is not ``unit``.
        """
        found = self.entries.get(key)
        label = f"{self.id} v{self.version}"
        if found is None:
            raise InvalidInput(
                f"no entry {key!r} in {label}", [{"table": self.id, "key": key, "reason": "missing-entry"}]
            )
        if found.unit != unit:
            raise InvalidInput(
                f"{key} in {label} is in {found.unit}, not {unit}",
                [{"table": self.id, "key": key, "reason": "wrong-unit", "unit": found.unit, "expected": unit}],
            )
        return found

    def value(self, key: str, *, unit: str) -> Decimal:
        """Return the exact value of ``key`` in ``unit``."""
        return self.entry(key, unit=unit).value

    def number(self, key: str, *, unit: str) -> float:
        """Return the value of ``key`` as a float, for array kernels (never for money in tables)."""
        return float(self.value(key, unit=unit))

    def content_hash(self, scheme: str = JCS_SCHEME) -> str:
        """Return the SHA-256 of the table's canonical JSON under ``scheme``."""
        return scheme_hash(self.model_dump(mode="json"), scheme)

    def reference(self, scheme: str = JCS_SCHEME) -> dict[str, str]:
        """Return what a run records about this table: id, version and content hash (and its scheme)."""
        return scheme_reference(self.id, self.version, self.content_hash(scheme), scheme)


def parse_table(text: str, *, name: str) -> ParameterTable:
    """Parse a TOML table; every defect is reported at once.

    Raises:
        InvalidInput: TOML syntax errors, unknown or missing keys, bad units or dates.
    """
    try:
        raw: dict[str, Any] = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise InvalidInput(f"{name} is not valid TOML: {error}", [{"table": name, "reason": "syntax"}]) from error
    try:
        return ParameterTable.model_validate(raw)
    except ValidationError as error:
        problems = validation_problems(error.errors(), table=name)
        raise InvalidInput(f"{name} is not a valid parameter table ({len(problems)} problems)", problems) from error


def load_table(name: str) -> ParameterTable:
    """Load the packaged table ``gep/data/<name>.toml``.

    Raises:
        InvalidInput: No such table, or the table is invalid.
    """
    resource = resources.files("gep").joinpath("data", f"{name}.toml")
    if not resource.is_file():
        raise InvalidInput(f"no packaged parameter table {name!r}", [{"table": name, "reason": "not-found"}])
    return parse_table(resource.read_text(encoding="utf-8"), name=name)
