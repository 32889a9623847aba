"""Bad inputs are refused with clear errors: shapes, NaN-only arrays, prices, units, tables."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from core.errors import InvalidInput
from gep.arrays import as_float_array, check_aligned, lookup, require_positive
from gep.coefficients import rweq_constants, rweq_cover_coefficients_per_percent, water_evaporation_parameters
from gep.indicators import air_purification, purification, sand_fixation, terrain, water_purification
from gep.indicators.provisioning import StatisticalItem, value_items
from gep.indicators.water_conservation import NegativeBalancePolicy, water_conservation_m3
from gep.invest import carbon, water_yield
from gep.pixel_area import pixel_areas_m2, row_areas_m2
from gep.prices import load_table, parse_table
from gep.spec import DEFAULT_INDICATORS
from gep.valuation import valuation_record

GOOD_TABLE = """
id = "t"
version = "1"
kind = "prices"
region = "test"
year = 2025
valid_from = 2025-01-01
source = "test"
[entries.reservoir_cost]
value = 7.06
unit = "yuan/m3"
valid_from = 2025-01-01
citation = "test"
"""


def test_misaligned_shapes_are_refused() -> None:
    with pytest.raises(InvalidInput) as caught:
        water_conservation_m3(
            np.zeros((2, 3)), np.zeros((3, 2)), 1.0, 900.0, policy=NegativeBalancePolicy.CLAMP_TO_ZERO
        )
    assert "not aligned" in caught.value.detail
    assert {p["input"] for p in caught.value.problems} >= {"precipitation_mm", "runoff_mm"}


def test_row_is_not_broadcast_silently() -> None:
    with pytest.raises(InvalidInput):
        check_aligned(block=np.zeros((4, 4)), row=np.zeros(4))


def test_nan_only_array_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no valid"):
        water_conservation_m3(np.full((2, 2), np.nan), 0.0, 0.0, 900.0, policy=NegativeBalancePolicy.ALLOW_NEGATIVE)
    assert as_float_array("x", [np.nan], allow_all_nan=True).shape == (1,)


@pytest.mark.parametrize("value", [[], "abc", [[1.0], [1.0, 2.0]]])
def test_empty_or_non_numeric_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput):
        as_float_array("x", value)


@pytest.mark.parametrize("value", [0, -1.0, float("nan"), float("inf")])
def test_non_positive_parameters_are_refused(value: float) -> None:
    with pytest.raises(InvalidInput):
        require_positive("cell_size_m", value)


def test_unknown_land_cover_codes_are_listed() -> None:
    with pytest.raises(InvalidInput) as caught:
        lookup(np.array([1.0, 7.0, 9.0, np.nan]), {1: 1.0}, name="lulc")
    assert [p["code"] for p in caught.value.problems] == [7, 9]
    pools = carbon.CarbonPools(rows={1: carbon.CarbonPool(above=1, below=1, soil=1, dead=1)})
    with pytest.raises(InvalidInput):
        carbon.carbon_storage_t_per_ha([1.0, 2.0], pools)


def test_missing_price_is_refused() -> None:
    prices, coefficients = load_table("prices_ganzi_2010"), load_table("coefficients_default")
    with pytest.raises(InvalidInput) as caught:
        DEFAULT_INDICATORS.get("carbon_sequestration").unit_value(prices, coefficients)
    assert caught.value.problems == [{"table": "prices_ganzi_2010", "key": "carbon_price", "reason": "missing-entry"}]


def test_price_in_wrong_unit_is_refused() -> None:
    prices = load_table("prices_ganzi_2010")
    items = [
        StatisticalItem(code="hydro", quantity=Decimal(10), unit="m3", price_key="hydropower_tariff"),
        StatisticalItem(code="tea", quantity=Decimal(10), unit="t", price_key="tea_price"),
    ]
    with pytest.raises(InvalidInput) as caught:
        value_items(items, prices)
    reasons = [(p["item"], p["reason"]) for p in caught.value.problems]
    assert reasons == [("hydro", "wrong-unit"), ("tea", "missing-entry")]


def test_table_with_unknown_unit_or_key_is_refused() -> None:
    assert parse_table(GOOD_TABLE, name="t").value("reservoir_cost", unit="yuan/m3") == Decimal("7.06")
    with pytest.raises(InvalidInput) as caught:
        parse_table(GOOD_TABLE.replace('unit = "yuan/m3"', 'unit = "yuan/mu"'), name="t")
    assert caught.value.problems[0]["location"] == "entries.reservoir_cost.unit"
    with pytest.raises(InvalidInput, match="not a valid parameter table"):
        parse_table(GOOD_TABLE + 'colour = "red"\n', name="t")
    with pytest.raises(InvalidInput, match="not a valid parameter table"):
        parse_table(GOOD_TABLE.replace('citation = "test"', 'citation = ""'), name="t")
    with pytest.raises(InvalidInput, match="not valid TOML"):
        parse_table("id = ", name="t")
    with pytest.raises(InvalidInput, match="no packaged"):
        load_table("prices_atlantis_1999")


def test_unknown_indicator_and_duplicate_registration() -> None:
    with pytest.raises(InvalidInput, match="unknown indicator"):
        DEFAULT_INDICATORS.get("happiness")
    with pytest.raises(InvalidInput, match="already registered"):
        DEFAULT_INDICATORS.register(DEFAULT_INDICATORS.get("soil_retention"))


def test_cover_out_of_range_for_its_unit_is_refused() -> None:
    with pytest.raises(InvalidInput, match="check the cover unit"):
        sand_fixation.vegetation_factor(60.0, -0.0438, cover_unit=sand_fixation.CoverUnit.FRACTION)


def test_zero_rweq_product_gives_zero_loss_without_warnings() -> None:
    loss = sand_fixation.soil_loss_g_per_m(
        np.array([0.0, 10.0, np.nan]), 0.5, 0.8, 0.9, 0.5, rweq_constants(load_table("coefficients_default"))
    )
    assert loss[0] == 0.0 and loss[1] > 0 and np.isnan(loss[2])


def test_coefficient_builders_read_every_key() -> None:
    table = load_table("coefficients_default")
    assert rweq_cover_coefficients_per_percent(table)["cropland"] == -0.0438
    assert water_evaporation_parameters(table)["energy_efficiency_ratio"] == 3.0


def test_dem_block_without_halo_is_refused() -> None:
    with pytest.raises(InvalidInput, match="halo"):
        terrain.slope_radians(np.zeros((2, 5)), cell_x_m=30, cell_y_m=30)
    with pytest.raises(InvalidInput, match="do not fit"):
        terrain.LsCoefficients(22.13, (1.0,), (0.2,), (5.0,), (10.8,), (0.03,))


def test_purification_needs_emission_figures() -> None:
    with pytest.raises(InvalidInput, match="no emission"):
        air_purification.air_purification_t({air_purification.AirPollutant.SO2: 1.0}, {})
    with pytest.raises(InvalidInput, match="no discharge"):
        water_purification.water_purification_t({water_purification.WaterPollutant.COD: 1.0}, {})
    with pytest.raises(InvalidInput):
        purification.removed_t(-1.0, 5.0)


def test_statistical_item_rules() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        StatisticalItem(code="x", quantity=Decimal(1), out_of_region_quantity=Decimal(2), unit="t", price_key="p")
    with pytest.raises(ValueError, match="not regulating"):
        StatisticalItem(code="x", service_class="regulating", quantity=Decimal(1), unit="t", price_key="p")


def test_pixel_area_and_invest_parameters_are_checked() -> None:
    with pytest.raises(InvalidInput, match="beyond a pole"):
        row_areas_m2(top_latitude_deg=-89.99, cell_height_deg=0.01, cell_width_deg=0.01, rows=3)
    with pytest.raises(InvalidInput):
        pixel_areas_m2(top_latitude_deg=36.0, cell_height_deg=0.01, cell_width_deg=0.01, shape=(2, 0))
    with pytest.raises(InvalidInput, match="after year_bas"):
        carbon.valuation_constant(
            price_per_t=1, discount_rate_percent=7, rate_change_percent=0, year_bas=2030, year_alt=2030
        )
    table = water_yield.BiophysicalTable(rows={1: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=1, kc=1)})
    with pytest.raises(InvalidInput, match="seasonality_z"):
        water_yield.water_yield_mm(
            [1.0], precipitation_mm=1.0, eto_mm=1.0, restricting_depth_mm=1.0, pawc=0.1, table=table, seasonality_z=0
        )


def test_valuation_record_lists_every_missing_price() -> None:
    prices, coefficients = load_table("prices_ganzi_2010"), load_table("coefficients_default")
    with pytest.raises(InvalidInput) as caught:
        valuation_record(
            DEFAULT_INDICATORS, ["carbon_sequestration", "nonsense", "soil_retention"], prices, coefficients
        )
    assert [(p["indicator"], p["reason"]) for p in caught.value.problems] == [
        ("carbon_sequestration", "missing-entry"),
        ("nonsense", "unknown-indicator"),
    ]
    record = valuation_record(DEFAULT_INDICATORS, DEFAULT_INDICATORS.codes()[:4], prices, coefficients)
    assert record["prices"]["sha256"] == prices.content_hash()
    assert len(record["sha256"]) == 64


def test_negative_sand_fixation_is_kept_not_clamped() -> None:
    constants = rweq_constants(load_table("coefficients_default"))
    # SL peaks near x ≈ 62: at x = 200 bare and 100 with cover, the covered pixel loses more (ADR 006)
    assert float(sand_fixation.sand_fixation_g_per_m(200.0, 1.0, 1.0, 1.0, 0.5, constants)) < 0


def test_lookup_refuses_fractional_codes() -> None:
    with pytest.raises(InvalidInput) as caught:
        lookup(np.array([1.0, 1.5]), {1: 1.0}, name="lulc")
    assert [p["code"] for p in caught.value.problems] == [1.5]
