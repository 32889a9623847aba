"""Worked examples T1–T15 of the GEP reference, run from worked_examples.yaml (STYLE §18)."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from gep.coefficients import lake_parameters, rweq_constants
from gep.indicators import carbon_oxygen, climate_regulation, flood_regulation, sand_fixation, soil_retention
from gep.indicators.provisioning import StatisticalItem, value_items
from gep.indicators.water_conservation import NegativeBalancePolicy, water_conservation_m3
from gep.invest import carbon, water_yield
from gep.pixel_area import row_areas_m2
from gep.prices import load_table
from gep.spec import DEFAULT_INDICATORS
from gep.tables import SupplyLine, gep_summary
from gep.valuation import ServiceClass

CASES = yaml.safe_load((Path(__file__).parent / "worked_examples.yaml").read_text(encoding="utf-8"))
PRICES = load_table("prices_ganzi_2010")
COEFFICIENTS = load_table("coefficients_default")


def unit_value(code: str) -> Decimal:
    return DEFAULT_INDICATORS.get(code).unit_value(PRICES, COEFFICIENTS).yuan_per_unit


def k_water_conservation(i: dict[str, Any]) -> dict[str, Any]:
    quantity = float(
        water_conservation_m3(
            i["precipitation_mm"],
            i["runoff_mm"],
            i["evapotranspiration_mm"],
            i["area_m2"],
            policy=NegativeBalancePolicy(i["policy"]),
        )
    )
    return {"quantity_m3": quantity, "value_yuan": Decimal(repr(quantity)) * Decimal(i["price_yuan_per_m3"])}


def k_unit_value_times_quantity(i: dict[str, Any]) -> dict[str, Any]:
    indicator = DEFAULT_INDICATORS.get(i["indicator"])
    value = indicator.unit_value(load_table(i["prices"]), COEFFICIENTS).yuan_per_unit
    return {"value_yuan": Decimal(repr(float(i["quantity"]))) * value}


def _soil_components(retention_t: Decimal) -> dict[str, Any]:
    c = {key: COEFFICIENTS.entries[key].value for key in COEFFICIENTS.entries}
    p = {key: PRICES.entries[key].value for key in PRICES.entries}
    sediment_m3 = c["sediment_deposition_coefficient"] * retention_t / c["soil_bulk_density"]
    nitrogen_t = retention_t * c["soil_nitrogen_content"]
    phosphorus_t = retention_t * c["soil_phosphorus_content"]
    return {
        "sediment_m3": float(sediment_m3),
        "sediment_yuan": sediment_m3 * p["dredging_cost"],
        "nitrogen_t": float(nitrogen_t),
        "nitrogen_yuan": nitrogen_t * p["nitrogen_treatment_cost"],
        "phosphorus_t": float(phosphorus_t),
        "phosphorus_yuan": phosphorus_t * p["phosphorus_treatment_cost"],
        "value_yuan": retention_t * unit_value("soil_retention"),
    }


def k_soil_retention(i: dict[str, Any]) -> dict[str, Any]:
    factors = (i["erosivity"], i["erodibility"], i["ls_factor"], i["cover_factor"], i["practice_factor"])
    per_ha = float(soil_retention.soil_retention_t_per_ha(*factors))
    potential = float(soil_retention.potential_erosion_t_per_ha(*factors[:3]))
    actual = float(soil_retention.actual_erosion_t_per_ha(*factors))
    assert math.isclose(potential - actual, per_ha, rel_tol=1e-12)  # avoided erosion = RKLS − USLE
    tonnes = float(soil_retention.soil_retention_t(*factors, i["area_m2"]))
    return {"retention_t_per_ha": per_ha, "retention_t": tonnes, **_soil_components(Decimal(repr(tonnes)))}


def k_soil_retention_components(i: dict[str, Any]) -> dict[str, Any]:
    return _soil_components(Decimal(repr(float(i["retention_t"]))))


def k_sand_fixation_value(i: dict[str, Any]) -> dict[str, Any]:
    tonnes = Decimal(repr(float(i["fixation_t"])))
    density = COEFFICIENTS.value("sand_bulk_density", unit="t/m3")
    thickness = COEFFICIENTS.value("sand_cover_thickness", unit="m")
    return {"covered_m2": float(tonnes / (density * thickness)), "value_yuan": tonnes * unit_value("sand_fixation")}


def k_flood_regulation(i: dict[str, Any]) -> dict[str, Any]:
    number = COEFFICIENTS.number
    lake = flood_regulation.lake_storage_m3(
        i["lake_area_km2"], i["lake_exchanges_per_year"], **lake_parameters(COEFFICIENTS)
    )
    reservoir = flood_regulation.reservoir_storage_m3(
        i["reservoir_capacity_m3"], flood_share=number("reservoir_flood_share", unit="1")
    )
    marsh = flood_regulation.marsh_storage_m3(
        i["marsh_area_m2"], retention_depth_m=number("marsh_retention_depth", unit="m")
    )
    return {"lake_m3": float(lake), "reservoir_m3": float(reservoir), "marsh_m3": float(marsh)}


def k_carbon_oxygen(i: dict[str, Any]) -> dict[str, Any]:
    co2 = float(carbon_oxygen.carbon_sequestration_tco2(i["nep_gc_per_m2"], i["area_m2"]))
    o2 = float(carbon_oxygen.oxygen_release_to2(i["nep_gc_per_m2"], i["area_m2"]))
    return {"co2_t": co2, "o2_t": o2, "oxygen_yuan": Decimal(repr(o2)) * Decimal(i["oxygen_price_yuan_per_t"])}


def k_climate_water(i: dict[str, Any]) -> dict[str, Any]:
    kwh = float(
        climate_regulation.water_evaporation_kwh(
            i["evaporation_m3"],
            latent_heat_kj_per_kg=i["latent_heat_kj_per_kg"],
            water_density_kg_per_m3=i["water_density_kg_per_m3"],
            energy_efficiency_ratio=i["energy_efficiency_ratio"],
            humidifier_kwh_per_m3=i["humidifier_kwh_per_m3"],
        )
    )
    return {"energy_kwh": kwh, "value_yuan": Decimal(repr(kwh)) * Decimal(i["electricity_price_yuan_per_kwh"])}


def k_climate_vegetation(i: dict[str, Any]) -> dict[str, Any]:
    kwh = float(
        climate_regulation.vegetation_cooling_kwh(
            i["transpiration_heat_kj_per_m2_per_day"],
            i["area_m2"],
            days=i["days"],
            energy_efficiency_ratio=i["energy_efficiency_ratio"],
        )
    )
    return {"energy_kwh": kwh, "value_yuan": Decimal(repr(kwh)) * Decimal(i["electricity_price_yuan_per_kwh"])}


def k_prevention_cost(i: dict[str, Any]) -> dict[str, Any]:
    codes = {"so2": "air_purification_so2", "nox": "air_purification_nox", "dust": "air_purification_dust"}
    codes |= {"cod": "water_purification_cod", "nh3n": "water_purification_nh3n"}
    return {"value_yuan": {key: Decimal(t) * unit_value(codes[key]) for key, t in i["removed_t"].items()}}


def k_supply_items(i: dict[str, Any]) -> dict[str, Any]:
    items = [StatisticalItem(**row) for row in i["items"]]
    return {"value_yuan": {v.item.code: v.net_yuan for v in value_items(items, PRICES)}}


def k_gep_summary(i: dict[str, Any]) -> dict[str, Any]:
    lines = [
        SupplyLine(
            region_code="region",
            indicator_code=row["indicator"],
            service_class=ServiceClass(row["class"]),
            quantity=Decimal(0),
            unit="yuan",
            gross_yuan=Decimal(row["value_yuan"]),
        )
        for row in i["lines"]
    ]
    region, total = gep_summary(lines)
    assert region.gep_yuan == total.gep_yuan
    shares = {c.value: float(total.share(c)) for c in ServiceClass}
    return {"gep_yuan": total.gep_yuan, "regulating_yuan": total.regulating_yuan, "shares": shares}


def k_implied_price(i: dict[str, Any]) -> dict[str, Any]:
    return {"price": {key: float(Decimal(v) / Decimal(q)) for key, (v, q) in i["pairs"].items()}}


def k_pixel_area(i: dict[str, Any]) -> dict[str, Any]:
    areas = row_areas_m2(
        top_latitude_deg=i["top_latitude_deg"],
        cell_height_deg=i["cell_deg"],
        cell_width_deg=i["cell_deg"],
        rows=1,
    )
    return {"area_m2": float(areas[0])}


def k_invest_carbon(i: dict[str, Any]) -> dict[str, Any]:
    pools = carbon.CarbonPools(
        rows={int(k): carbon.CarbonPool(above=v[0], below=v[1], soil=v[2], dead=v[3]) for k, v in i["pools"].items()}
    )
    bas, alt = np.array(i["lulc_bas"], float), np.array(i["lulc_alt"], float)
    area = i["pixel_area_m2"]
    change = carbon.carbon_sequestration_t_per_ha(bas, alt, pools)
    constant = carbon.valuation_constant(**i["valuation"])
    npv = carbon.npv_per_ha(change, constant)
    return {
        "storage_bas_t": carbon.total_t(carbon.carbon_storage_t_per_ha(bas, pools), area),
        "storage_alt_t": carbon.total_t(carbon.carbon_storage_t_per_ha(alt, pools), area),
        "change_t": carbon.total_t(change, area),
        "constant": constant,
        "npv_per_ha_70_to_205": float(npv[1, 0]),
        "npv_total": carbon.total_t(npv, area),
    }


def k_invest_water_yield(i: dict[str, Any]) -> dict[str, Any]:
    table = water_yield.BiophysicalTable(
        rows={1: water_yield.BiophysicalRow(vegetated=i["vegetated"], root_depth_mm=i["root_depth_mm"], kc=i["kc"])}
    )
    lulc = np.ones(i["pixels"])
    kwargs = {
        "precipitation_mm": np.full(i["pixels"], float(i["precipitation_mm"])),
        "eto_mm": i["eto_mm"],
        "restricting_depth_mm": i["restricting_depth_mm"],
        "pawc": i["pawc"],
        "table": table,
        "seasonality_z": i["seasonality_z"],
    }
    fraction = water_yield.actual_et_fraction(lulc, **kwargs)
    yield_mm = water_yield.water_yield_mm(lulc, **kwargs)
    return {
        "aet_fraction": float(fraction[0]),
        "yield_mm": float(yield_mm[0]),
        "volume_m3": water_yield.water_yield_volume_m3(yield_mm, i["pixel_area_m2"]),
    }


def k_rweq(i: dict[str, Any]) -> dict[str, Any]:
    constants = rweq_constants(load_table("coefficients_default"))
    factors = [i[k] for k in ("weather_factor_kg_per_m", "erodible_fraction", "crust_factor", "roughness_factor")]
    actual = float(sand_fixation.soil_loss_g_per_m(*factors, i["vegetation_factor"], constants))
    potential = float(sand_fixation.soil_loss_g_per_m(*factors, 1.0, constants))
    fixation = float(sand_fixation.sand_fixation_g_per_m(*factors, i["vegetation_factor"], constants))
    # t per km² = t per pixel of 1 km² area
    per_km2 = float(sand_fixation.sand_fixation_t(fixation, cell_size_m=i["cell_size_m"], area_m2=1e6))
    return {
        "actual_g_per_m": actual,
        "potential_g_per_m": potential,
        "fixation_g_per_m": fixation,
        "fixation_t_per_km2": per_km2,
    }


def k_rweq_cover(i: dict[str, Any]) -> dict[str, Any]:
    unit = sand_fixation.CoverUnit(i["cover_unit"])
    return {"factor": float(sand_fixation.vegetation_factor(i["cover"], i["coefficient_per_percent"], cover_unit=unit))}


KERNELS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    name.removeprefix("k_"): function for name, function in globals().items() if name.startswith("k_")
}


def assert_close(path: str, got: Any, expected: Any, rel_tol: float, abs_tol: float) -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict), path
        for key, value in expected.items():
            assert_close(f"{path}.{key}", got[key], value, rel_tol, abs_tol)
        return
    want = Decimal(expected) if isinstance(expected, str) else Decimal(repr(float(expected)))
    have = got if isinstance(got, Decimal) else Decimal(repr(float(got)))
    ok = math.isclose(float(have), float(want), rel_tol=rel_tol, abs_tol=abs_tol)
    assert ok, f"{path}: got {have}, expected {want} (rel_tol {rel_tol}, abs_tol {abs_tol})"


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_worked_example(case: dict[str, Any]) -> None:
    assert case["citation"]
    got = KERNELS[case["kernel"]](case["inputs"])
    assert_close(case["id"], got, case["expected"], float(case["rel_tol"]), float(case.get("abs_tol", 0.0)))


def test_every_reference_example_is_covered() -> None:
    covered = {case["id"].split("-")[0] for case in CASES}
    assert covered == {f"T{n}" for n in range(1, 16)}
