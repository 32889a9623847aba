"""Unit values: yuan per physical unit, from cited tables (pure).

Every regulating indicator is valued linearly in its physical quantity, so its value is
``quantity × unit value``. The unit value is computed once per run from the price table and the
coefficient table, in :class:`~decimal.Decimal`, with a trace of the entries used. A
:class:`ValuationRule` declares the entries it reads (table, key, unit) and the formula over them, so
the rule can be shown without computing it; which indicator uses which rule is declared once, in its
:class:`gep.spec.IndicatorSpec` (``describe_indicators()`` lists them all).

Per-pixel value rasters are ``physical raster × float(unit value)`` (float64 is fine there); tables
multiply the exact total by the Decimal unit value (:mod:`gep.tables`).

>>> from gep.prices import load_table
>>> prices, coefficients = load_table("prices_ganzi_2010"), load_table("coefficients_default")
>>> price_rule("reservoir_cost", "yuan/m3").unit_value(prices, coefficients).yuan_per_unit
Decimal('7.06')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Literal, Protocol

import numpy as np

from core.canonical import JCS_SCHEME, LEGACY_SCHEME, SCHEMES, scheme_hash
from core.errors import InvalidInput
from gep.arrays import FloatArray
from gep.prices import ParameterTable


class ServiceClass(StrEnum):
    """The three product classes of every GEP specification."""

    PROVISIONING = "provisioning"
    REGULATING = "regulating"
    CULTURAL = "cultural"


@dataclass(frozen=True)
class Term:
    """One table entry used in a unit value."""

    table: str
    key: str
    value: Decimal
    unit: str


@dataclass(frozen=True)
class UnitValue:
    """Yuan per physical unit, with the formula and the entries it used."""

    yuan_per_unit: Decimal
    formula: str
    terms: tuple[Term, ...]


TableName = Literal["prices", "coefficients"]


@dataclass(frozen=True)
class Entry:
    """An entry a valuation rule reads: which table, which key, in which unit."""

    table: TableName
    key: str
    unit: str


@dataclass(frozen=True)
class ValuationRule:
    """Yuan per physical unit as a formula over declared table entries.

    ``combine`` receives the entries' values in the order of ``entries`` and returns 元 per unit. The
    entries are read in that order and the first missing or mis-united one is refused, so a rule never
    computes with a value in another unit than it declares.
    """

    entries: tuple[Entry, ...]
    formula: str
    combine: Callable[[Sequence[Decimal]], Decimal]

    def unit_value(self, prices: ParameterTable, coefficients: ParameterTable) -> UnitValue:
        """Return the unit value with the entries used.

        Raises:
            InvalidInput: An entry is missing or in another unit.
        """
        tables = {"prices": prices, "coefficients": coefficients}
        terms = tuple(_term(tables[entry.table], entry.key, entry.unit) for entry in self.entries)
        return UnitValue(self.combine([t.value for t in terms]), self.formula, terms)

    @property
    def price_keys(self) -> tuple[str, ...]:
        """Return the keys this rule reads from the price table."""
        return tuple(entry.key for entry in self.entries if entry.table == "prices")

    def describe(self) -> dict[str, Any]:
        """Return the rule as JSON-able data (formula and entries), for pages and records."""
        return {
            "formula": self.formula,
            "entries": [{"table": e.table, "key": e.key, "unit": e.unit} for e in self.entries],
        }


def _term(table: ParameterTable, key: str, unit: str) -> Term:
    return Term(table.id, key, table.value(key, unit=unit), unit)


def price_rule(price_key: str, price_unit: str) -> ValuationRule:
    """Return a rule whose unit value is one price entry."""
    return ValuationRule((Entry("prices", price_key, price_unit),), price_key, lambda values: values[0])


def _soil_retention(values: Sequence[Decimal]) -> Decimal:
    lam, rho, dredging, c_n, p_n, c_p, p_p = values
    return lam / rho * dredging + c_n * p_n + c_p * p_p


#: λ/ρ · P_s + c_N · P_N + c_P · P_P (元/t): sediment, nitrogen and phosphorus avoided.
#: Units: 1 / (t/m³) × 元/m³ = 元/t; 1 × 元/t = 元/t.
SOIL_RETENTION_RULE = ValuationRule(
    (
        Entry("coefficients", "sediment_deposition_coefficient", "1"),
        Entry("coefficients", "soil_bulk_density", "t/m3"),
        Entry("prices", "dredging_cost", "yuan/m3"),
        Entry("coefficients", "soil_nitrogen_content", "1"),
        Entry("prices", "nitrogen_treatment_cost", "yuan/t"),
        Entry("coefficients", "soil_phosphorus_content", "1"),
        Entry("prices", "phosphorus_treatment_cost", "yuan/t"),
    ),
    "sediment_deposition_coefficient / soil_bulk_density * dredging_cost + soil_nitrogen_content * nitrogen_treatment_cost + soil_phosphorus_content * phosphorus_treatment_cost",  # noqa: E501
    _soil_retention,
)


def _sand_fixation(values: Sequence[Decimal]) -> Decimal:
    cost, rho, thickness = values
    return cost / (rho * thickness)


#: P_f / (ρ · h) (元/t): the area a tonne of sand would cover, times the control cost.
#: Units: 元/m² / (t/m³ × m) = 元/t.
SAND_FIXATION_RULE = ValuationRule(
    (
        Entry("prices", "sand_control_cost", "yuan/m2"),
        Entry("coefficients", "sand_bulk_density", "t/m3"),
        Entry("coefficients", "sand_cover_thickness", "m"),
    ),
    "sand_control_cost / (sand_bulk_density * sand_cover_thickness)",
    _sand_fixation,
)


class Valued(Protocol):
    """What :func:`valuation_record` needs of an indicator: its physical unit and its unit value."""

    @property
    def physical_unit(self) -> str:
        """The unit of the physical quantity (m3, t, tCO2, kWh)."""
        ...

    def unit_value(self, prices: ParameterTable, coefficients: ParameterTable) -> UnitValue:
        """Return 元 per physical unit with its trace."""
        ...


class IndicatorLookup(Protocol):
    """A registry of indicators by code (:class:`gep.spec.IndicatorRegistry`)."""

    def get(self, code: str) -> Valued:
        """Return the indicator ``code``; raise :class:`~core.errors.InvalidInput` if unknown."""
        ...


def value_per_pixel_yuan(quantity: FloatArray, unit_value: UnitValue) -> FloatArray:
    """Return a per-pixel value raster (元, float64) = physical raster × unit value.

    Float is acceptable here and only here: tables never sum this raster, they multiply the exact
    physical total by the Decimal unit value (:func:`gep.tables.line_from_total`).

    >>> import numpy as np
    >>> value_per_pixel_yuan(np.array([50000.0, np.nan]), UnitValue(Decimal("7.06"), "reservoir_cost", ())).tolist()
    [353000.0, nan]
    """
    return np.asarray(quantity, dtype=np.float64) * float(unit_value.yuan_per_unit)


def valuation_record(
    registry: IndicatorLookup,
    codes: Sequence[str],
    prices: ParameterTable,
    coefficients: ParameterTable,
    scheme: str = JCS_SCHEME,
) -> dict[str, Any]:
    """Return what a run records about its valuation, with the hash of that record.

    The record names both tables (id, version, SHA-256) and, per indicator, the unit value, its
    formula and every entry used. Every missing or mis-united entry is reported at once. The record, the
    tables' hashes and its own ``sha256`` are under ``scheme`` (RFC 8785 for new runs), which the record
    names as ``hash_scheme`` (a record under ``shanhai-json/1`` names none, as before; see :func:`valuation_hash`).

    Raises:
        InvalidInput: One or more unit values cannot be computed (all problems are listed).

    >>> from gep.prices import load_table
    >>> from gep.spec import DEFAULT_INDICATORS
    >>> record = valuation_record(DEFAULT_INDICATORS, ["sand_fixation"], load_table("prices_ganzi_2010"),
    ...     load_table("coefficients_default"))
    >>> record["unit_values"]["sand_fixation"]["yuan_per_unit"], record["hash_scheme"]
    (Decimal('29.296875'), 'rfc8785')
    >>> valuation_hash(record) == record["sha256"]
    True
    """
    unit_values: dict[str, Any] = {}
    problems: list[dict[str, Any]] = []
    for code in codes:
        try:
            indicator = registry.get(code)
            value = indicator.unit_value(prices, coefficients)
        except InvalidInput as error:
            problems.extend({**problem, "indicator": code} for problem in error.problems)
            continue
        unit_values[code] = {
            "physical_unit": indicator.physical_unit,
            "yuan_per_unit": value.yuan_per_unit,
            "formula": value.formula,
            "terms": [{"table": t.table, "key": t.key, "value": t.value, "unit": t.unit} for t in value.terms],
        }
    if problems:
        raise InvalidInput(f"{len(problems)} valuation problems", problems)
    record: dict[str, Any] = {
        **({"hash_scheme": scheme} if scheme != LEGACY_SCHEME else {}),
        "prices": prices.reference(scheme),
        "coefficients": coefficients.reference(scheme),
        "unit_values": unit_values,
    }
    record["sha256"] = scheme_hash(record, scheme)
    return record


def valuation_hash(record: Mapping[str, Any]) -> str:
    """Return the hash of a (stored) valuation record, re-computed under the scheme it names.

    Everything but ``sha256`` is hashed; a record without ``hash_scheme`` is under ``shanhai-json/1``
    (every run before RFC 8785 records, ADR 033). It equals ``record["sha256"]`` for an intact record.

    Raises:
        ValueError: The record names an unknown scheme.
    """
    scheme = str(record.get("hash_scheme", LEGACY_SCHEME))
    if scheme not in SCHEMES:
        raise ValueError(f"unknown canonicalization scheme {scheme!r}")
    return scheme_hash({key: value for key, value in record.items() if key != "sha256"}, scheme)
