"""Indicator registry and unit values: yuan per physical unit, from cited tables (pure).

Every regulating indicator is valued linearly in its physical quantity, so its value is
``quantity × unit value``. The unit value is computed once per run from the price table and the
coefficient table, in :class:`~decimal.Decimal`, with a trace of the entries used:

==========================  ======  =====================================================
indicator                   unit    unit value (元 per unit)
==========================  ======  =====================================================
water_conservation          m3      reservoir_cost
flood_regulation            m3      reservoir_cost
soil_retention              t       λ / ρ_soil · dredging_cost + c_N · P_N + c_P · P_P
sand_fixation               t       sand_control_cost / (ρ_sand · h)
carbon_sequestration        tCO2    carbon_price
oxygen_release              t       oxygen_price
climate_regulation          kWh     electricity_price
air_purification_<x>        t       treatment_cost_<x>   (so2, nox, dust)
water_purification_<x>      t       treatment_cost_<x>   (cod, nh3n)
==========================  ======  =====================================================

Per-pixel value rasters are ``physical raster × float(unit value)`` (float64 is fine there); tables
multiply the exact total by the Decimal unit value (:mod:`gep.tables`).

The registry is explicit and immutable: :meth:`IndicatorRegistry.register` returns a new registry.

>>> from gep.prices import load_table
>>> prices, coefficients = load_table("prices_ganzi_2010"), load_table("coefficients_default")
>>> DEFAULT_INDICATORS.get("water_conservation").unit_value(prices, coefficients).yuan_per_unit
Decimal('7.06')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import numpy as np

from core.canonical import canonical_hash
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


UnitValueRule = Callable[[ParameterTable, ParameterTable], UnitValue]


@dataclass(frozen=True)
class Indicator:
    """A registered indicator: code, names, class, physical unit and valuation rule."""

    code: str
    name_zh: str
    service_class: ServiceClass
    physical_unit: str
    unit_value: UnitValueRule


def _term(table: ParameterTable, key: str, unit: str) -> Term:
    return Term(table.id, key, table.value(key, unit=unit), unit)


def price_rule(price_key: str, price_unit: str) -> UnitValueRule:
    """Return a rule whose unit value is one price entry."""

    def rule(prices: ParameterTable, coefficients: ParameterTable) -> UnitValue:
        term = _term(prices, price_key, price_unit)
        return UnitValue(term.value, price_key, (term,))

    return rule


def soil_retention_rule(prices: ParameterTable, coefficients: ParameterTable) -> UnitValue:
    """Return λ/ρ · P_s + c_N · P_N + c_P · P_P (元/t): sediment, nitrogen and phosphorus avoided.

    Units: 1 / (t/m³) × 元/m³ = 元/t; 1 × 元/t = 元/t.
    """
    terms = (
        _term(coefficients, "sediment_deposition_coefficient", "1"),
        _term(coefficients, "soil_bulk_density", "t/m3"),
        _term(prices, "dredging_cost", "yuan/m3"),
        _term(coefficients, "soil_nitrogen_content", "1"),
        _term(prices, "nitrogen_treatment_cost", "yuan/t"),
        _term(coefficients, "soil_phosphorus_content", "1"),
        _term(prices, "phosphorus_treatment_cost", "yuan/t"),
    )
    lam, rho, dredging, c_n, p_n, c_p, p_p = (t.value for t in terms)
    value = lam / rho * dredging + c_n * p_n + c_p * p_p
    formula = "sediment_deposition_coefficient / soil_bulk_density * dredging_cost + soil_nitrogen_content * nitrogen_treatment_cost + soil_phosphorus_content * phosphorus_treatment_cost"  # noqa: E501
    return UnitValue(value, formula, terms)


def sand_fixation_rule(prices: ParameterTable, coefficients: ParameterTable) -> UnitValue:
    """Return P_f / (ρ · h) (元/t): the area a tonne of sand would cover, times the control cost.

    Units: 元/m² / (t/m³ × m) = 元/t.
    """
    terms = (
        _term(prices, "sand_control_cost", "yuan/m2"),
        _term(coefficients, "sand_bulk_density", "t/m3"),
        _term(coefficients, "sand_cover_thickness", "m"),
    )
    cost, rho, thickness = (t.value for t in terms)
    return UnitValue(cost / (rho * thickness), "sand_control_cost / (sand_bulk_density * sand_cover_thickness)", terms)


@dataclass(frozen=True)
class IndicatorRegistry:
    """An immutable set of indicators keyed by code."""

    indicators: Mapping[str, Indicator] = field(default_factory=lambda: MappingProxyType({}))

    def register(self, indicator: Indicator) -> IndicatorRegistry:
        """Return a new registry with ``indicator`` added; a duplicate code is refused."""
        if indicator.code in self.indicators:
            raise InvalidInput(f"indicator {indicator.code!r} is already registered", [{"code": indicator.code}])
        return IndicatorRegistry(MappingProxyType({**self.indicators, indicator.code: indicator}))

    def get(self, code: str) -> Indicator:
        """Return the indicator ``code``.

        Raises:
            InvalidInput: No such indicator.
        """
        if code not in self.indicators:
            raise InvalidInput(f"unknown indicator {code!r}", [{"code": code, "reason": "unknown-indicator"}])
        return self.indicators[code]

    def codes(self) -> tuple[str, ...]:
        """Return the registered codes in registration order."""
        return tuple(self.indicators)


def _default_registry() -> IndicatorRegistry:
    regulating = ServiceClass.REGULATING
    rows = [
        Indicator("water_conservation", "水源涵养", regulating, "m3", price_rule("reservoir_cost", "yuan/m3")),
        Indicator("soil_retention", "土壤保持", regulating, "t", soil_retention_rule),
        Indicator("sand_fixation", "防风固沙", regulating, "t", sand_fixation_rule),
        Indicator("flood_regulation", "洪水调蓄", regulating, "m3", price_rule("reservoir_cost", "yuan/m3")),
        Indicator("carbon_sequestration", "固碳", regulating, "tCO2", price_rule("carbon_price", "yuan/tCO2")),
        Indicator("oxygen_release", "释氧", regulating, "t", price_rule("oxygen_price", "yuan/t")),
        Indicator("climate_regulation", "气候调节", regulating, "kWh", price_rule("electricity_price", "yuan/kWh")),
    ]
    for pollutant, name in (("so2", "二氧化硫"), ("nox", "氮氧化物"), ("dust", "工业粉尘")):
        rule = price_rule(f"treatment_cost_{pollutant}", "yuan/t")
        rows.append(Indicator(f"air_purification_{pollutant}", f"大气净化·{name}", regulating, "t", rule))
    for pollutant, name in (("cod", "化学需氧量"), ("nh3n", "氨氮")):
        rule = price_rule(f"treatment_cost_{pollutant}", "yuan/t")
        rows.append(Indicator(f"water_purification_{pollutant}", f"水质净化·{name}", regulating, "t", rule))
    registry = IndicatorRegistry()
    for row in rows:
        registry = registry.register(row)
    return registry


#: The regulating indicators of the RCEES/Ouyang system (reference gep.md §1.2).
DEFAULT_INDICATORS = _default_registry()


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
    registry: IndicatorRegistry, codes: Sequence[str], prices: ParameterTable, coefficients: ParameterTable
) -> dict[str, Any]:
    """Return what a run records about its valuation, with the hash of that record.

    The record names both tables (id, version, SHA-256) and, per indicator, the unit value, its
    formula and every entry used. Every missing or mis-united entry is reported at once.

    Raises:
        InvalidInput: One or more unit values cannot be computed (all problems are listed).

    >>> from gep.prices import load_table
    >>> record = valuation_record(DEFAULT_INDICATORS, ["sand_fixation"], load_table("prices_ganzi_2010"),
    ...     load_table("coefficients_default"))
    >>> record["unit_values"]["sand_fixation"]["yuan_per_unit"]
    Decimal('29.296875')
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
        "prices": prices.reference(),
        "coefficients": coefficients.reference(),
        "unit_values": unit_values,
    }
    record["sha256"] = canonical_hash(record)
    return record
