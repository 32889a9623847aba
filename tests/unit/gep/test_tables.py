"""SEEA-style tables: lines from exact totals, GEP summary with asserted sums, extent, comparison, CSV."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from core.errors import InvalidInput
from gep.indicators.cultural import recreation_item
from gep.indicators.provisioning import StatisticalItem, value_items
from gep.prices import load_table, parse_table
from gep.spec import DEFAULT_INDICATORS
from gep.tables import (
    AccountingInconsistency,
    SupplyLine,
    compare_runs,
    decimal_from_total,
    extent_rows,
    gep_summary,
    line_from_total,
    monetary_supply_rows,
    physical_supply_rows,
    to_csv,
)
from gep.valuation import ServiceClass

PRICES = load_table("prices_ganzi_2010")
COEFFICIENTS = load_table("coefficients_default")
TRAVEL = parse_table(
    """
id = "travel"
version = "1"
kind = "prices"
region = "test"
year = 2025
valid_from = 2025-01-01
source = "test"
[entries.travel_cost_per_visit]
value = 197.03
unit = "yuan/visit"
valid_from = 2025-01-01
citation = "synthetic"
""",
    name="travel",
)


def regulating_line(region: str, code: str, quantity: float) -> SupplyLine:
    indicator = DEFAULT_INDICATORS.get(code)
    return line_from_total(
        region_code=region,
        indicator=indicator,
        quantity=quantity,
        unit_value=indicator.unit_value(PRICES, COEFFICIENTS),
    )


def statistical_lines(region: str) -> list[SupplyLine]:
    items = [
        StatisticalItem(
            code="water_supply_industrial",
            quantity=Decimal("2.5e6"),
            out_of_region_quantity=Decimal("0.5e6"),
            unit="m3",
            price_key="water_price_industrial",
        )
    ]
    values = value_items(items, PRICES)
    values += value_items([recreation_item(visits=Decimal(1000), price_key="travel_cost_per_visit")], TRAVEL)
    return [
        SupplyLine(
            region_code=region,
            indicator_code=v.item.code,
            service_class=v.item.service_class,
            quantity=v.item.quantity,
            unit=v.item.unit,
            gross_yuan=v.gross_yuan,
            out_of_region_yuan=v.out_of_region_yuan,
        )
        for v in values
    ]


def run_lines(scale: float) -> list[SupplyLine]:
    lines = []
    for region in ("640402", "640422"):
        lines.append(regulating_line(region, "water_conservation", 1.5e6 * scale))
        lines.append(regulating_line(region, "soil_retention", 10800.0 * scale))
        lines += statistical_lines(region)
    return lines


def test_line_value_is_exact_total_times_decimal_unit_value() -> None:
    line = regulating_line("640402", "soil_retention", 10800.0)
    assert line.quantity == Decimal("10800.0")
    assert line.unit == "t"
    assert line.gross_yuan == Decimal("111047.17")


def test_summary_sums_close_and_deduct_out_of_region() -> None:
    rows = gep_summary(run_lines(1.0))
    assert [row.region_code for row in rows] == ["640402", "640422", "total"]
    region, _, total = rows
    assert region.out_of_region_yuan == Decimal("1800000.00")  # 0.5e6 m³ × 3.6 元/m³
    assert region.cultural_yuan == Decimal("197030.00")
    assert region.gep_yuan == region.provisioning_yuan + region.regulating_yuan + region.cultural_yuan - Decimal(
        "1800000.00"
    )
    assert total.gep_yuan == 2 * region.gep_yuan
    assert math.isclose(sum(float(total.share(c)) for c in ServiceClass), 1.0)


def test_duplicate_lines_are_refused() -> None:
    line = regulating_line("640402", "water_conservation", 1.0)
    with pytest.raises(InvalidInput, match="double count"):
        gep_summary([line, line])


def test_inconsistent_line_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    line = regulating_line("640402", "water_conservation", 1.0)
    monkeypatch.setattr(SupplyLine, "net_yuan", property(lambda self: self.gross_yuan + 1))
    with pytest.raises(AccountingInconsistency):
        gep_summary([line])


def test_supply_tables_and_csv() -> None:
    lines = run_lines(1.0)
    physical = physical_supply_rows(lines)
    monetary = monetary_supply_rows(lines)
    assert len(physical) == len(monetary) == len(lines)
    assert physical[0].keys() == {
        "region_code",
        "service_class",
        "indicator_code",
        "ecosystem_type",
        "quantity",
        "unit",
    }
    text = to_csv(monetary)
    header, first = text.splitlines()[:2]
    assert header == "region_code,service_class,indicator_code,ecosystem_type,gross_yuan,out_of_region_yuan,net_yuan"
    assert first.startswith("640402,")
    assert to_csv([]) == ""


def test_extent_account() -> None:
    rows = extent_rows({"forest": 2_000_000.0, "grassland": 1_500_000.0}, {"forest": 2_250_000.0})
    assert rows == [
        {
            "ecosystem_type": "forest",
            "opening_km2": Decimal("2.000000"),
            "closing_km2": Decimal("2.250000"),
            "net_change_km2": Decimal("0.250000"),
        },
        {
            "ecosystem_type": "grassland",
            "opening_km2": Decimal("1.500000"),
            "closing_km2": Decimal("0.000000"),
            "net_change_km2": Decimal("-1.500000"),
        },
    ]


def test_compare_runs_by_region_and_indicator() -> None:
    before, after = run_lines(1.0), run_lines(1.1)
    after.append(regulating_line("640425", "sand_fixation", 1000.0))
    rows = compare_runs(before, after)
    water = next(r for r in rows if r["region_code"] == "640402" and r["indicator_code"] == "water_conservation")
    assert water["value_change_percent"] == Decimal("10.00")
    assert water["status"] == "both"
    added = next(r for r in rows if r["region_code"] == "640425")
    assert added["status"] == "added" and added["value_change_percent"] is None
    removed = compare_runs(after, before)
    assert next(r for r in removed if r["region_code"] == "640425")["status"] == "removed"


def test_compare_refuses_unit_mismatch() -> None:
    line = regulating_line("640402", "water_conservation", 1.0)
    with pytest.raises(InvalidInput, match="different units"):
        compare_runs([line], [line.model_copy(update={"unit": "t"})])


def test_non_finite_total_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a finite"):
        decimal_from_total("q", float("nan"))
