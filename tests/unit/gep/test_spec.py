"""The indicator specs (ADR 032): one declaration per indicator, the engine's views derived from it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from core.errors import InvalidInput
from gep.engine import INDICATOR_ROLES, LEGEND_INDICATORS, REGIONAL_INDICATORS, ROLES
from gep.prices import load_table
from gep.spec import DEFAULT_INDICATORS, IndicatorRegistry, describe_indicators, describe_roles

PURIFICATION = (
    "air_purification_so2",
    "air_purification_nox",
    "air_purification_dust",
    "water_purification_cod",
    "water_purification_nh3n",
)


def test_engine_views_equal_the_tables_they_replace() -> None:
    # The literal tables of gep/engine.py before ADR 032, written out once more as the regression oracle.
    assert INDICATOR_ROLES == {
        "water_conservation": ("precipitation", "evapotranspiration", "runoff_coefficient"),
        "carbon_sequestration": ("nep",),
        "oxygen_release": ("nep",),
        "soil_retention": ("dem", "erosivity", "erodibility", "cover_factor", "practice_factor"),
        "sand_fixation": (
            "wind_weather_factor",
            "erodible_fraction",
            "crust_factor",
            "roughness_factor",
            "vegetation_cover",
            "land_cover",
        ),
        "flood_regulation": ("land_cover",),
        "climate_regulation": ("transpiration_heat", "water_evaporation", "land_cover"),
        **{code: (f"uptake_{code.rsplit('_', 1)[1]}",) for code in PURIFICATION},
    }
    assert LEGEND_INDICATORS == {"sand_fixation", "flood_regulation", "climate_regulation"}
    assert REGIONAL_INDICATORS == {"flood_regulation", *PURIFICATION}
    assert list(ROLES)[:10] == [
        "precipitation",
        "evapotranspiration",
        "runoff_coefficient",
        "nep",
        "dem",
        "erosivity",
        "erodibility",
        "cover_factor",
        "practice_factor",
        "land_cover",
    ]
    assert ROLES["vegetation_cover"] == ("percent", "continuous")
    assert ROLES["land_cover"] == ("class", "categorical")
    assert ROLES["uptake_nh3n"] == ("t/km2", "continuous")


def test_every_indicator_is_described_as_json() -> None:
    described = describe_indicators()
    assert [entry["code"] for entry in described] == list(DEFAULT_INDICATORS.codes())
    json.dumps(described)  # JSON-able as it is: pages and an API can return it
    json.dumps(describe_roles())
    by_code = {entry["code"]: entry for entry in described}
    soil = by_code["soil_retention"]
    assert soil["halo"] == {"dem": 1}
    assert soil["valuation"]["price_keys"] == ["dredging_cost", "nitrogen_treatment_cost", "phosphorus_treatment_cost"]
    assert {"id": "dem", "unit": "m", "kind": "continuous"}.items() <= soil["inputs"][0].items()
    assert by_code["flood_regulation"]["components"] == ["lake", "reservoir", "marsh"]
    assert by_code["flood_regulation"]["pass"] == "regional"
    assert by_code["climate_regulation"]["legend_fields"] == ["transpires", "water_surface"]
    assert by_code["water_conservation"]["settings"] == ["negative_balance"]
    assert by_code["carbon_sequestration"]["kernel"] == "gep.kernels.carbon_sequestration"


def test_valuation_rules_compute_what_they_declare() -> None:
    prices, coefficients = load_table("prices_guyuan_2025"), load_table("coefficients_default")
    for spec in DEFAULT_INDICATORS.specs():
        value = spec.unit_value(prices, coefficients)
        assert [(t.key, t.unit) for t in value.terms] == [(e.key, e.unit) for e in spec.valuation.entries]
        assert value.formula == spec.valuation.formula


def test_registry_refuses_an_undeclared_role() -> None:
    spec = dataclasses.replace(DEFAULT_INDICATORS.get("oxygen_release"), code="oxygen_twice", roles=("npp",))
    with pytest.raises(InvalidInput, match="undeclared roles") as caught:
        IndicatorRegistry().register(spec)
    assert caught.value.problems == [{"code": "oxygen_twice", "role": "npp", "reason": "unknown-role"}]
    assert IndicatorRegistry().register(DEFAULT_INDICATORS.get("oxygen_release")).codes() == ("oxygen_release",)
