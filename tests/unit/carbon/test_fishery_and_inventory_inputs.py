"""Fishery harvests by sea area and culture mode, sea-area licences, and IPCC crediting (issue 26; pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from carbon.methods.base import Ineligible
from carbon.methods.ipcc import IPCC_FOREST_LAND, IpccInputs
from carbon.methods.ocean_fishery import OCEAN_FISHERY, OceanInputs
from carbon.models import LicenceKind
from carbon.parameters.loader import load_parameter_set
from carbon.sea_areas import Licence, licence_of, normalise_licence

OCEAN = load_parameter_set("hyt-0305-2021-mariculture", "1-provisional")
IPCC = load_parameter_set("ipcc-2006-2019-forest-land", "1")


def harvests(*rows: tuple[str, str, str, str]) -> OceanInputs:
    return OceanInputs.model_validate({
        "period_start": "2025-01-01", "period_end": "2025-12-31",
        "harvests": [{"sea_area_id": area, "species": species, "culture": "non_fed", "culture_mode": mode,
                      "harvest_fresh_t": tonnes} for area, species, mode, tonnes in rows],
    })  # fmt: skip


def test_a_harvest_listed_twice_is_refused_but_another_mode_or_sea_area_is_another_harvest() -> None:
    with pytest.raises(Ineligible) as refused:
        OCEAN_FISHERY.compute(harvests(("A", "oyster", "raft", "10"), ("A", "oyster", "raft", "10")), OCEAN)
    assert refused.value.problems[0]["pointer"] == "/harvests/1"
    assert "already listed at /harvests/0" in refused.value.problems[0]["reason"]
    result = OCEAN_FISHERY.compute(
        harvests(("A", "oyster", "raft", "10"), ("A", "oyster", "longline", "10"), ("B", "oyster", "raft", "10")),
        OCEAN,
    )
    # 3 × 10 t of oysters: 30 × 0.6510 × (0.0614 × 0.4598 + 0.9386 × 0.1268) = 2.875718286 t C
    assert {s.name: s.value for s in result.steps}["carbon_tc"] == Decimal("2.875718286000")
    assert result.quantities["carbon_tc"] == Decimal("2.875")


def test_culture_mode_and_sea_area_are_in_the_trace_and_a_mussel_by_hand() -> None:
    result = OCEAN_FISHERY.compute(harvests(("LJ-3", "mussel", "longline", "600")), OCEAN)
    steps = {s.name: s for s in result.steps}
    soft = steps["harvest[0:mussel].soft_tissue_carbon_tc"]
    assert soft.terms["culture_mode"] == "longline" and soft.terms["sea_area_id"] == "LJ-3"
    # 600 × 0.7528 = 451.68 t dry; × 0.0847 × 0.4440 = 16.986239424 t C; × 0.9153 × 0.1176 = 48.6185099904 t C
    assert soft.value == Decimal("16.986239424000")
    assert steps["harvest[0:mussel].shell_carbon_tc"].value == Decimal("48.618509990400")


def test_fed_species_stay_refused() -> None:
    inputs = OceanInputs.model_validate({"period_start": "2025-01-01", "period_end": "2025-12-31", "harvests": [
        {"species": "oyster", "culture": "fed", "harvest_fresh_t": "1", "culture_mode": "hanging_cage"}]})  # fmt: skip
    with pytest.raises(Ineligible, match="fed aquaculture"):
        OCEAN_FISHERY.compute(inputs, OCEAN)


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        (
            {"养殖证号": "闽连江县府(海)养证[2023]第00812号"},
            Licence("闽连江县府(海)养证[2023]第00812号", LicenceKind.AQUACULTURE),
        ),
        (
            {"海域使用权证号": "国海证 2023350122000457号"},
            Licence("国海证2023350122000457号", LicenceKind.SEA_USE_RIGHT),
        ),
        ({"licence_number": "ab-12", "licence_kind": "aquaculture"}, Licence("AB-12", LicenceKind.AQUACULTURE)),
        ({}, "states its 海域使用权证 or 养殖证"),
        ({"licence_number": "L-0001"}, "state the licence kind"),
        ({"licence_number": "L-0001", "licence_kind": "fishing"}, "is not one of"),
        ({"licence_number": "L1"}, "not a licence number"),
        ({"养殖证号": "L-0001", "海域使用权证号": "L-0002"}, "several licence numbers"),
        ({"养殖证号": "L-0001", "licence_kind": "sea_use_right"}, "state the licence kind"),
    ],
)
def test_licences(properties: dict[str, Any], expected: Licence | str) -> None:
    found = licence_of(properties)
    if isinstance(expected, Licence):
        assert found == expected
    else:
        assert isinstance(found, str) and expected in found


def test_licence_numbers_compare_after_nfkc_without_spaces() -> None:
    assert normalise_licence("闽连江县府（海）养证［2023］第00812号") == "闽连江县府(海)养证[2023]第00812号"


def stock_difference(**extra: Any) -> IpccInputs:
    return IpccInputs.model_validate({"calculation": {"method": "stock_difference", "interval_years": "5", "strata": [
        {"stratum_id": "S1", "area_m2": "1000000", "forest_type": "pines", "growing_stock_start_m3_per_ha": "30",
         "growing_stock_end_m3_per_ha": "50"}]}, **extra})  # fmt: skip


def test_ipcc_without_a_buffer_is_the_calculation_it_was() -> None:
    result = IPCC_FOREST_LAND.compute(stock_difference(), IPCC)
    assert result.quantities["removal_tco2e"] == Decimal("1809.500")
    assert "issuable_units_t" not in result.quantities


def test_ipcc_credited_with_an_explicit_buffer_by_hand() -> None:
    buffer = {"risk_rating": None, "share": "0.10", "reason": "registry rule"}
    result = IPCC_FOREST_LAND.compute(stock_difference(buffer=buffer), IPCC)
    # 1,809.5 t CO2e: issuable floor(1,628.55) = 1,628; buffer min(ceil(180.95), floor(181.5)) = 181; 0.5 left
    assert result.quantities["issuable_units_t"] == 1628 and result.quantities["buffer_units_t"] == 181
    assert result.quantities["remainder_tco2e"] == Decimal("0.500")
    assert result.quantities["net_removal_tco2e"] == Decimal("1809.500")


def test_ipcc_crediting_needs_a_stock_difference_and_an_explicit_share() -> None:
    with pytest.raises(Ineligible) as refused:
        IPCC_FOREST_LAND.compute(stock_difference(buffer={"risk_rating": "medium"}), IPCC)
    assert refused.value.problems[0]["pointer"] == "/buffer"
    gain_loss = IpccInputs.model_validate({
        "calculation": {"method": "gain_loss", "strata": [{"stratum_id": "S1", "area_m2": "10000",
                        "forest_type": "pines", "tier": 1, "above_ground_biomass_t_per_ha": "30"}]},
        "buffer": {"risk_rating": None, "share": "0.1", "reason": "r"}})  # fmt: skip
    with pytest.raises(Ineligible, match="annual rate"):
        IPCC_FOREST_LAND.compute(gain_loss, IPCC)
