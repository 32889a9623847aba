"""Each methodology's routes, refusals (naming the rule) and sanity warnings."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from carbon.methods.base import Ineligible
from carbon.methods.ccer_14_001 import CCER_14_001, CcerInputs
from carbon.methods.deductions import BufferChoice
from carbon.methods.fujian_ticket import FORESTRY_CARBON_TICKET
from carbon.methods.ipcc import IPCC_FOREST_LAND, IpccInputs
from carbon.methods.ocean_fishery import OCEAN_FISHERY, OceanInputs
from carbon.methods.restoration import ECOLOGICAL_RESTORATION, RestorationInputs
from tests.unit.carbon.helpers import CCER_PARAMS, TICKET_PARAMS, ccer_document, params, ticket_document, ticket_inputs

IPCC = params("ipcc-2006-2019-forest-land", "1")
CCER = params(*CCER_PARAMS)
TICKET = params(*TICKET_PARAMS)
RESTORATION = params("ningxia-restoration", "1-provisional")
OCEAN = params("hyt-0305-2021-mariculture", "1-provisional")
VOLUME = {"a": "0.00006", "b": "1.9", "c": "0.9", "output": "volume_m3", "citation": "test volume table"}
BIOMASS = {"a": "0.05", "b": "2.4", "output": "biomass_kg", "citation": "test allometry"}


def plots(*dbh: int, height: str = "8") -> list[dict[str, Any]]:
    return [
        {
            "plot_id": f"p{i}",
            "plot_area_m2": "600",
            "trees": [{"dbh_cm": str(d + j), "height_m": height} for j in range(20)],
        }
        for i, d in enumerate(dbh)
    ]


def rules(problems: list[Any]) -> set[str]:
    return {p.rule for p in problems}


# --- IPCC -----------------------------------------------------------------------------------------


def test_ipcc_gain_loss_tiers_and_2019_table() -> None:
    inputs = IpccInputs.model_validate(
        {
            "calculation": {
                "method": "gain_loss",
                "root_shoot_table": "2019_asia",
                "strata": [
                    {
                        "stratum_id": "T1",
                        "area_m2": "1000000",
                        "forest_type": "pines",
                        "tier": 1,
                        "above_ground_biomass_t_per_ha": "40",
                    },
                    {
                        "stratum_id": "T2",
                        "area_m2": "1000000",
                        "forest_type": "hardwoods",
                        "tier": 2,
                        "volume_increment_m3_per_ha_yr": "5",
                        "growing_stock_m3_per_ha": "150",
                        "above_ground_biomass_t_per_ha": "130",
                        "loss_tc_per_yr": "10",
                    },
                ],
            }
        }
    )
    result = IPCC_FOREST_LAND.compute(inputs, IPCC)
    # T1: 100 ha × 4.0 × 1.224 × 0.47 = 230.112; T2: 100 ha × 5 × 0.6 × 1.248 × 0.47 = 175.968
    assert result.quantities["gain_tc_per_yr"] == Decimal("406.080")
    assert result.quantities["delta_c_tc_per_yr"] == Decimal("396.080")
    assert not result.provisional


def test_ipcc_refuses_repeated_strata_and_half_given_bef() -> None:
    stratum = {
        "stratum_id": "S",
        "area_m2": "1",
        "forest_type": "pines",
        "growing_stock_start_m3_per_ha": "1",
        "growing_stock_end_m3_per_ha": "2",
    }
    inputs = IpccInputs.model_validate(
        {"calculation": {"method": "stock_difference", "interval_years": "1", "strata": [stratum, stratum]}}
    )
    with pytest.raises(Ineligible, match="appears more than once"):
        IPCC_FOREST_LAND.compute(inputs, IPCC)
    with pytest.raises(ValidationError, match="give both"):
        IpccInputs.model_validate(
            {
                "calculation": {
                    "method": "stock_difference",
                    "interval_years": "1",
                    "strata": [{**stratum, "bef": "1.2"}],
                }
            }
        )
    with pytest.raises(ValidationError, match="Tier 2 needs"):
        IpccInputs.model_validate(
            {
                "calculation": {
                    "method": "gain_loss",
                    "strata": [
                        {
                            "stratum_id": "S",
                            "area_m2": "1",
                            "forest_type": "pines",
                            "tier": 2,
                            "above_ground_biomass_t_per_ha": "1",
                        }
                    ],
                }
            }
        )


# --- CCER-14-001 ----------------------------------------------------------------------------------


def ccer_with_plots(**stratum: Any) -> dict[str, Any]:
    document = ccer_document(project={"relative_uncertainty": None, "arid_site": True})
    document["strata"][0] = {"stratum_id": "S1", "area_m2": "10000", "species": "populus", **stratum}
    return document


def test_ccer_volume_route_from_plots_computes_uncertainty_and_discount() -> None:
    document = ccer_with_plots(
        tree_equation=VOLUME, start={"stand_volume_m3_per_ha": "0"}, end={"sample_plots": plots(6, 9, 14)}
    )
    result = CCER_14_001.compute(CcerInputs.model_validate(document), CCER)
    relative = Decimal(result.details["relative_uncertainty"])
    assert relative > Decimal("0.30")  # three very different plots: the whole half-width is deducted
    assert result.quantities["uncertainty_deduction_tco2e"] > 0
    assert result.quantities["creditable_tco2e"] < result.quantities["net_removal_tco2e"]


def test_ccer_allometric_route_with_plots_at_both_times_and_shrubs() -> None:
    document = ccer_with_plots(
        tree_equation=BIOMASS,
        forest_biomass_t_per_ha="60",
        start={"sample_plots": plots(3, 3, 4), "shrub_crown_cover": "0.1"},
        end={"sample_plots": plots(10, 10, 11), "shrub_crown_cover": "0.2"},
    )
    result = CCER_14_001.compute(CcerInputs.model_validate(document), CCER)
    names = {s.name for s in result.steps}
    assert {"start.half_width_tco2e", "end.half_width_tco2e", "stratum[S1].end.shrub_stock_tco2e"} <= names
    assert result.quantities["net_removal_tco2e"] > 0


def test_ccer_external_biomass_density_is_a_pluggable_input() -> None:
    document = ccer_document()
    document["strata"][0]["end"] = {
        "above_ground_biomass_t_per_ha": "12",
        "biomass_source": "raster agb-2028 zonal mean",
    }
    result = CCER_14_001.compute(CcerInputs.model_validate(document), CCER)
    step = next(s for s in result.steps if s.name == "stratum[S1].end.b_tree_t_per_ha")
    assert step.terms["source"] == "raster agb-2028 zonal mean" and step.value == 12
    with pytest.raises(ValidationError, match="biomass_source"):
        CcerInputs.model_validate(
            {**document, "strata": [{**document["strata"][0], "end": {"above_ground_biomass_t_per_ha": "12"}}]}
        )


def test_ccer_sanity_warnings_are_reported_not_clipped() -> None:
    document = ccer_document(project={"arid_site": True, "monitoring_end": "2025-03-01"})
    document["strata"][0]["end"] = {"stand_volume_m3_per_ha": "400"}
    result = CCER_14_001.compute(CcerInputs.model_validate(document), CCER)
    assert {w.code for w in result.warnings} == {"band.arid_tree", "band.young_stand"}
    assert result.quantities["project_removal_tco2e"] > 10  # unchanged by the warning


def test_ccer_shrub_strata_warn_above_three_tonnes() -> None:
    document = ccer_document()
    document["strata"][0] |= {
        "vegetation": "shrub",
        "forest_biomass_t_per_ha": "200",
        "end": {"stand_volume_m3_per_ha": "0", "shrub_crown_cover": "0.9"},
    }
    result = CCER_14_001.compute(CcerInputs.model_validate(document), CCER)
    assert [w.code for w in result.warnings] == ["band.shrub"]


def test_ccer_structural_refusals_name_their_rule() -> None:
    document = ccer_document(
        project={"relative_uncertainty": None, "monitoring_end": "2060-01-01", "monitoring_start": "2020-01-01"}
    )
    document["strata"][0] |= {
        "species": "ginkgo",
        "area_m2": "20000",
        "start": {"sample_plots": plots(3), "shrub_crown_cover": "0.2"},
    }
    problems = CCER_14_001.check(CcerInputs.model_validate(document), CCER)
    assert rules(problems) == {
        "parameter set",
        "AR-TOOL14 tree biomass",
        "AR-TOOL14 Eq. 26",
        "AR-TOOL14 uncertainty (90 % CI)",
        "stratification",
        "CCER-14-001-V01 crediting period",
    }


def test_ccer_land_class_other_and_leap_day_start() -> None:
    problems = CCER_14_001.check(
        CcerInputs.model_validate(
            ccer_document(
                project={
                    "project_start": "2024-02-29",
                    "monitoring_start": "2024-02-29",
                    "monitoring_end": "2029-01-01",
                },
                parcel={"land_class": "other"},
            )
        ),
        CCER,
    )
    assert rules(problems) == {"CCER-14-001-V01 applicability (a)"}


def test_inventory_needs_exactly_one_tree_source() -> None:
    document = ccer_document()
    document["strata"][0]["end"] = {
        "stand_volume_m3_per_ha": "3",
        "above_ground_biomass_t_per_ha": "4",
        "biomass_source": "x",
    }
    with pytest.raises(ValidationError, match="exactly one of"):
        CcerInputs.model_validate(document)
    with pytest.raises(ValidationError, match="monitoring_end must be after"):
        CcerInputs.model_validate(ccer_document(project={"monitoring_end": "2023-03-01"}))


# --- Forestry carbon ticket -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["CCER", "VCS", "FFCER"])
def test_ticket_refuses_plots_registered_elsewhere_for_the_period(scheme: str) -> None:
    registration = {
        "plot_id": "XB-0000",
        "scheme": scheme,
        "registration_id": "R-1",
        "period_start": "2019-01-01",
        "period_end": "2038-12-31",
    }
    with pytest.raises(Ineligible) as raised:
        FORESTRY_CARBON_TICKET.compute(ticket_inputs(["10"], external_registrations=[registration]), TICKET)
    problem = raised.value.problems[0]
    assert problem["rule"] == "forestry carbon ticket: no double issuance"
    assert f"registered under {scheme}" in problem["reason"] and "double issuance is refused" in problem["reason"]


def test_ticket_accepts_registrations_outside_the_period_or_of_other_plots() -> None:
    registrations = [
        {
            "plot_id": "XB-0000",
            "scheme": "FFCER",
            "registration_id": "F-1",
            "period_start": "2012-01-01",
            "period_end": "2020-12-31",
        },
        {
            "plot_id": "XB-9999",
            "scheme": "CCER",
            "registration_id": "C-1",
            "period_start": "2021-01-01",
            "period_end": "2040-12-31",
        },
    ]
    result = FORESTRY_CARBON_TICKET.compute(ticket_inputs(["10"], external_registrations=registrations), TICKET)
    assert result.quantities["issuable_units_t"] > 0 and result.provisional


def test_ticket_from_tree_measurements_and_negative_increment() -> None:
    document = ticket_document(["-5"])
    document["sub_compartments"][0] |= {"volume_equation": VOLUME, "end": {"sample_plots": plots(12, 14)}}
    result = FORESTRY_CARBON_TICKET.compute(ticket_inputs(["-5"]), TICKET)
    assert result.quantities["issuable_units_t"] == 0
    assert [w.code for w in result.warnings] == ["ticket.negative_increment"]
    measured = FORESTRY_CARBON_TICKET.compute(FORESTRY_CARBON_TICKET.input_model.model_validate(document), TICKET)
    assert measured.quantities["net_removal_tco2e"] != 0


def test_ticket_structural_refusals() -> None:
    document = ticket_document(["1", "2"], area_m2="300")
    document["sub_compartments"][1] |= {
        "sub_compartment_id": "XB-0000",
        "species": "ginkgo",
        "end": {"sample_plots": plots(5)},
    }
    problems = FORESTRY_CARBON_TICKET.check(FORESTRY_CARBON_TICKET.input_model.model_validate(document), TICKET)
    assert rules(problems) == {
        "forestry carbon ticket: unique sub-compartments",
        "forestry carbon ticket: minimum parcel area",
        "parameter set",
        "forestry carbon ticket: tree measurements",
    }


def test_buffer_choice_rules() -> None:
    assert BufferChoice(risk_rating=None, share=Decimal("0.3"), reason="verifier's rating").share == Decimal("0.3")
    with pytest.raises(ValidationError, match="exactly one"):
        BufferChoice(risk_rating="low", share=Decimal("0.1"), reason="x")
    with pytest.raises(ValidationError, match="needs a reason"):
        BufferChoice(risk_rating=None, share=Decimal("0.1"))
    result = FORESTRY_CARBON_TICKET.compute(
        ticket_inputs(["10"], buffer={"risk_rating": None, "share": "0.5", "reason": "fire risk"}), TICKET
    )
    assert result.quantities["buffer_units_t"] >= result.quantities["issuable_units_t"]


# --- Restoration and ocean --------------------------------------------------------------------------


def restoration(**changes: Any) -> RestorationInputs:
    document: dict[str, Any] = {
        "restoration_start": "2022-01-01",
        "monitoring_start": "2022-01-01",
        "monitoring_end": "2027-01-01",
        "polygons": [
            {
                "polygon_id": "YN-1",
                "area_m2": "2197400",
                "activity": "mine_site",
                "shrub_crown_cover_start": "0.02",
                "shrub_crown_cover_end": "0.25",
                "forest_biomass_t_per_ha": "30",
                "soil": {
                    "method": "default_factors",
                    "climate_soil": "temperate_dry.sandy",
                    "condition_before": "severely_degraded",
                    "condition_after": "improved",
                },
            }
        ],
    }
    document.update(changes)
    return RestorationInputs.model_validate(document)


def test_restoration_default_soil_factors_and_provisional_label() -> None:
    result = ECOLOGICAL_RESTORATION.compute(restoration(), RESTORATION)
    soil = next(s for s in result.steps if s.name == "polygon[YN-1].soc_change_tc")
    # 219.74 ha × 19 t C/ha × (1.14 − 0.70) × T/20 with T = 1826 days / 365.25
    assert soil.value == Decimal("219.74") * 19 * Decimal("0.44") * (Decimal(1826) / Decimal("365.25")) / 20
    assert result.provisional and result.warnings == ()
    assert result.quantities["net_removal_tco2e"] > result.quantities["shrub_change_tco2e"]


def test_restoration_refusals() -> None:
    polygon = restoration().polygons[0].model_dump(mode="json")
    inputs = restoration(
        monitoring_start="2021-06-01",
        polygons=[polygon, polygon],
        external_registrations=[
            {
                "plot_id": "YN-1",
                "scheme": "VCS",
                "registration_id": "V-7",
                "period_start": "2020-01-01",
                "period_end": "2030-01-01",
            }
        ],
    )
    with pytest.raises(Ineligible) as raised:
        ECOLOGICAL_RESTORATION.compute(inputs, RESTORATION)
    assert {p["rule"] for p in raised.value.problems} == {
        "restoration (local provisional class): no double issuance",
        "restoration (local provisional class): unique polygons",
        "restoration (local provisional class): monitoring period",
    }


def test_ocean_refuses_fed_aquaculture_and_unknown_species() -> None:
    inputs = OceanInputs.model_validate(
        {
            "period_start": "2022-01-01",
            "period_end": "2023-01-01",
            "harvests": [{"species": "abalone", "culture": "fed", "harvest_fresh_t": "10"}],
        }
    )
    with pytest.raises(Ineligible) as raised:
        OCEAN_FISHERY.compute(inputs, OCEAN)
    reasons = " ".join(p["reason"] for p in raised.value.problems)
    assert "fed aquaculture" in reasons and "no coefficients" in reasons
    assert {p["rule"] for p in raised.value.problems} == {"HY/T 0305-2021 scope"}


def test_ocean_sums_species_and_issues_whole_tonnes() -> None:
    inputs = OceanInputs.model_validate(
        {
            "period_start": "2022-01-01",
            "period_end": "2023-01-01",
            "harvests": [
                {"species": "oyster", "culture": "non_fed", "harvest_fresh_t": "1000"},
                {"species": "kelp", "culture": "non_fed", "harvest_fresh_t": "1000"},
            ],
        }
    )
    result = OCEAN_FISHERY.compute(inputs, OCEAN)
    assert abs(result.quantities["removal_tco2e"] - Decimal("580.28")) < Decimal("0.01")
    assert result.quantities["issuable_units_t"] + result.quantities["buffer_units_t"] == 580


def test_ccer_plots_need_degrees_of_freedom_and_empty_start_plots_are_certain() -> None:
    one_plot = ccer_with_plots(
        tree_equation=VOLUME, start={"stand_volume_m3_per_ha": "0"}, end={"sample_plots": plots(8)}
    )
    problems = CCER_14_001.check(CcerInputs.model_validate(one_plot), CCER)
    assert [p.rule for p in problems] == ["AR-TOOL14 uncertainty (90 % CI)"]
    assert "n − M < 1" in problems[0].reason
    empty = [{"plot_id": "e1", "plot_area_m2": "600"}, {"plot_id": "e2", "plot_area_m2": "600"}]
    document = ccer_with_plots(tree_equation=VOLUME, start={"sample_plots": empty}, end={"sample_plots": plots(8, 9)})
    result = CCER_14_001.compute(CcerInputs.model_validate(document), CCER)
    assert "start.half_width_tco2e" not in {s.name for s in result.steps}
    assert Decimal(result.details["relative_uncertainty"]) > 0
