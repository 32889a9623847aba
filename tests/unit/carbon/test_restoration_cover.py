"""Restoration v2: a bare-ground baseline, the cover planted or sown, its growth — worked by hand."""

from __future__ import annotations

import copy
from decimal import ROUND_FLOOR, Decimal
from typing import Any

import pytest

from carbon.methods.base import Ineligible
from carbon.methods.registry import default_registry
from carbon.methods.restoration_cover import ECOLOGICAL_RESTORATION_COVER, CoverInputs
from tests.unit.carbon.helpers import params

RESTORATION = params("ningxia-restoration", "1-provisional")
YONGNING: dict[str, Any] = {
    "restoration_start": "2022-04-01",
    "monitoring_start": "2022-04-01",
    "monitoring_end": "2025-12-31",
    "relative_uncertainty": "0.12",
    "polygons": [
        {
            "polygon_id": "NX-YN-KS-001",
            "area_m2": "2197400",
            "activity": "mine_site",
            "land_class": "abandoned quarry",
            "shrub_crown_cover_start": "0.02",
            "shrub_crown_cover_end": "0.30",
            "forest_biomass_t_per_ha": "40",
            "soil": {
                "method": "default_factors",
                "climate_soil": "temperate_dry.sandy",
                "condition_before": "severely_degraded",
                "condition_after": "nominally_managed",
            },
            "baseline": {
                "surveyed_on": "2021-10-15",
                "shrub_crown_cover": "0.02",
                "soil_condition": "severely_degraded",
                "source": "pre-restoration transect survey (demo)",
            },
            "cover": [
                {"species": "Caragana korshinskii", "life_form": "shrub", "establishment": "planted",
                 "established_on": "2022-04-20", "area_share": "0.6"},
                {"species": "Medicago sativa (紫花苜蓿)", "life_form": "herbaceous", "establishment": "sown",
                 "established_on": "2022-05-10", "area_share": "0.9"},
            ],
        }
    ],
}  # fmt: skip


def inputs(document: dict[str, Any] | None = None) -> CoverInputs:
    return CoverInputs.model_validate(document or YONGNING)


def test_worked_example_by_hand() -> None:
    result = ECOLOGICAL_RESTORATION_COVER.compute(inputs(), RESTORATION)
    steps = {s.name: s.value for s in result.steps}
    area_ha = Decimal("219.74")
    # Baseline: 0.02 < the 5 % threshold, so no shrub stock; bare ground → ΔC_BSL = 0.
    assert steps["polygon[NX-YN-KS-001].baseline.shrub_stock_tco2e"] == 0
    assert steps["polygon[NX-YN-KS-001].baseline_removal_tco2e"] == 0
    # End: b_SHRUB = BDR_SF × b_FOREST × CC = 0.10 × 40 × 0.30 = 1.2 t d.m./ha;
    # C_SHRUB = 44/12 × CF_S × (1 + R_S) × A × b_SHRUB = 44/12 × 0.47 × 1.4 × 219.74 × 1.2.
    shrub = Decimal(44) / Decimal(12) * Decimal("0.47") * Decimal("1.4") * area_ha * Decimal("1.2")
    assert steps["polygon[NX-YN-KS-001].shrub_change_tco2e"] == pytest.approx(shrub, rel=Decimal("1e-12"))
    # Soil: A × SOC_REF × (F_after − F_before) × min(T, 20)/20 × 44/12, T = 1370 days / 365.25.
    years = Decimal(1370) / Decimal("365.25")
    soil = area_ha * 19 * (Decimal("1.00") - Decimal("0.70")) * years / 20 * Decimal(44) / Decimal(12)
    assert steps["polygon[NX-YN-KS-001].soc_change_tco2e"] == pytest.approx(soil, rel=Decimal("1e-12"))
    assert steps["net_removal_tco2e"] == pytest.approx(shrub + soil, rel=Decimal("1e-12"))
    # 636.191 + 861.303 = 1,497.493 t CO2e, floored to the kilogram.
    assert result.quantities["net_removal_tco2e"] == (shrub + soil).quantize(Decimal("0.001"), ROUND_FLOOR)
    assert result.quantities["net_removal_tco2e"] == Decimal("1497.493")
    assert result.quantities["baseline_removal_tco2e"] == 0
    assert steps["polygon[NX-YN-KS-001].shrub_cover_established_share"] == Decimal("0.6")
    assert result.provisional


def test_registered_beside_version_1() -> None:
    registry = default_registry()
    assert registry.get("NX-RESTORATION", "2") is ECOLOGICAL_RESTORATION_COVER
    assert registry.get("NX-RESTORATION", "1").version == "1"


def _broken(change: Any) -> dict[str, Any]:
    document = copy.deepcopy(YONGNING)
    change(document["polygons"][0])
    return document


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda p: p["baseline"].update(shrub_crown_cover="0.2"), "bare ground"),
        (lambda p: p["baseline"].update(surveyed_on="2022-06-01"), "baseline survey"),
        (lambda p: p["cover"][0].update(established_on="2021-01-01"), "cover established"),
        (lambda p: p["cover"].append({**p["cover"][0], "species": "Tamarix", "area_share": "0.5"}), "cover shares"),
        (lambda p: p.update(cover=[p["cover"][1]]), "shrubs established"),
        (lambda p: p.update(shrub_crown_cover_start="0.04"), "period starts at the baseline"),
        (lambda p: p["soil"].update(condition_before="nominally_managed"), "period starts at the baseline"),
    ],
)
def test_refusals(change: Any, rule: str) -> None:
    with pytest.raises(Ineligible) as raised:
        ECOLOGICAL_RESTORATION_COVER.compute(inputs(_broken(change)), RESTORATION)
    assert f"restoration v2 (bare-ground baseline): {rule}" in {p["rule"] for p in raised.value.problems}


def test_a_later_period_need_not_start_at_the_baseline() -> None:
    document = copy.deepcopy(YONGNING)
    document.update(monitoring_start="2026-01-01", monitoring_end="2027-12-31")
    document["polygons"][0].update(shrub_crown_cover_start="0.30", shrub_crown_cover_end="0.36")
    document["polygons"][0]["soil"].update(condition_before="nominally_managed", condition_after="improved")
    result = ECOLOGICAL_RESTORATION_COVER.compute(inputs(document), RESTORATION)
    assert result.quantities["net_removal_tco2e"] > 0


def test_baseline_and_cover_are_required() -> None:
    document = copy.deepcopy(YONGNING)
    del document["polygons"][0]["baseline"]
    with pytest.raises(ValueError, match="baseline"):
        inputs(document)
