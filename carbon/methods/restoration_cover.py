"""Ecological restoration, version 2: a bare-ground baseline, the cover planted or sown, and its growth (pure).

Version 1 (:mod:`carbon.methods.restoration`) takes the shrub crown cover and the soil at both ends of the
monitoring period and credits their change; it leaves unsaid what the site would have been without the
project and what was established on it. An abandoned quarry such as Yongning's is **bare ground**: without
the restoration nothing grows there, so the baseline carbon stock stays what the pre-restoration survey found
(shrub crown cover under the AR-TOOL14 threshold: no shrub stock; soil severely degraded) and the baseline
removals are zero. Version 2 makes that explicit and checkable::

    C_SHRUB(BSL) = AR-TOOL14 Eq. 26–27 at the surveyed baseline crown cover   (0 below the threshold)
    ΔC_BSL       = 0                                         bare ground: the baseline stock does not change
    ΔC_PROJ      = ΔC_SHRUB + ΔSOC                          as version 1 (the growth of the cover)
    ΔC_NET       = Σ polygons (ΔC_PROJ − ΔC_BSL)

and records the cover the project established — each species, shrub or herbaceous, planted or sown, on what
share of the polygon and when. Eligibility adds: the baseline really is bare (crown cover under the threshold,
surveyed no later than the restoration start), the cover was established inside the restoration, shrub
growth is credited only where shrubs were planted or sown, the shares of one life form do not exceed the
polygon, and a period that starts at the restoration starts from the baseline survey (same crown cover,
same soil condition). Sown grass and forbs (alfalfa 紫花苜蓿, 沙打旺) carry no biomass credit — herbaceous
stocks are in steady state under AR-TOOL14 — and act through the soil condition.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import Field

from carbon.methods.base import (
    EligibilityProblem,
    InputModel,
    Result,
    SanityWarning,
    Tracer,
    build_result,
    ceiling_t,
    floor_t,
    run_checked,
)
from carbon.methods.deductions import apply_uncertainty, issuance_quantities, settle
from carbon.methods.inventory import shrub_stock_tco2e
from carbon.methods.restoration import (
    M2_PER_HA,
    ZERO,
    DefaultSoil,
    RestorationInputs,
    RestorationPolygon,
    SoilCondition,
    _years,
    check_eligibility,
    polygon_removal,
)
from carbon.methods.sanity import rate_warnings
from carbon.parameters.models import ParameterSet

RULE = "restoration v2 (bare-ground baseline)"
THRESHOLD = "shrub.crown_cover_threshold"


class BareGroundBaseline(InputModel):
    """The site as surveyed before the restoration: bare ground, where nothing would grow without the project."""

    condition: Literal["bare_ground"] = "bare_ground"
    surveyed_on: date
    shrub_crown_cover: Decimal = Field(default=ZERO, ge=0, le=1, description="Must be under the shrub threshold.")
    soil_condition: SoilCondition = "severely_degraded"
    source: str = Field(min_length=1, description="The survey: who, how (transects, imagery), document number.")


class EstablishedCover(InputModel):
    """One species the restoration planted or sowed on the polygon."""

    species: str = Field(min_length=1, max_length=200)
    life_form: Literal["shrub", "herbaceous"]
    establishment: Literal["planted", "sown"]
    established_on: date
    area_share: Decimal = Field(gt=0, le=1, description="Share of the polygon's area it was established on.")


class CoverPolygon(RestorationPolygon):
    """A restored polygon with its bare-ground baseline and the cover established on it."""

    baseline: BareGroundBaseline
    cover: tuple[EstablishedCover, ...] = Field(min_length=1)


class CoverInputs(RestorationInputs):
    """A restoration monitoring report, version 2."""

    polygons: tuple[CoverPolygon, ...] = Field(min_length=1)


def _polygon_problems(
    polygon: CoverPolygon, index: int, inputs: CoverInputs, threshold: Decimal
) -> list[EligibilityProblem]:
    where, name = f"/polygons/{index}", polygon.polygon_id
    found: list[tuple[str, str, str]] = []
    baseline = polygon.baseline
    if baseline.shrub_crown_cover >= threshold:
        found.append(
            (
                "bare ground",
                f"polygon {name}: baseline shrub crown cover {baseline.shrub_crown_cover} is "
                f"not under the threshold {threshold}; the site is not bare",
                "/baseline/shrub_crown_cover",
            )
        )
    if baseline.surveyed_on > inputs.restoration_start:
        found.append(
            (
                "baseline survey",
                f"polygon {name}: baseline surveyed {baseline.surveyed_on}, after the "
                f"restoration started {inputs.restoration_start}",
                "/baseline/surveyed_on",
            )
        )
    for n, cover in enumerate(polygon.cover):
        if not inputs.restoration_start <= cover.established_on <= inputs.monitoring_end:
            found.append(
                (
                    "cover established",
                    f"polygon {name}: {cover.species} established {cover.established_on}, "
                    "outside the restoration up to the period's end",
                    f"/cover/{n}/established_on",
                )
            )
    shares: defaultdict[str, Decimal] = defaultdict(Decimal)
    for cover in polygon.cover:
        shares[cover.life_form] += cover.area_share
    for life_form, share in sorted(shares.items()):
        if share > 1:
            found.append(("cover shares", f"polygon {name}: {life_form} cover on {share} of the polygon", "/cover"))
    if polygon.shrub_crown_cover_end >= threshold and "shrub" not in shares:
        found.append(
            (
                "shrubs established",
                f"polygon {name}: shrub crown cover grows to "
                f"{polygon.shrub_crown_cover_end} but no shrub was planted or sown",
                "/cover",
            )
        )
    if inputs.monitoring_start == inputs.restoration_start:
        if polygon.shrub_crown_cover_start != baseline.shrub_crown_cover:
            found.append(
                (
                    "period starts at the baseline",
                    f"polygon {name}: crown cover at the start "
                    f"{polygon.shrub_crown_cover_start} ≠ the baseline survey's {baseline.shrub_crown_cover}",
                    "/shrub_crown_cover_start",
                )
            )
        soil = polygon.soil
        if isinstance(soil, DefaultSoil) and soil.condition_before != baseline.soil_condition:
            found.append(
                (
                    "period starts at the baseline",
                    f"polygon {name}: soil before is {soil.condition_before}, "
                    f"the baseline survey's {baseline.soil_condition}",
                    "/soil/condition_before",
                )
            )
    return [EligibilityProblem(f"{RULE}: {rule}", reason, where + pointer) for rule, reason, pointer in found]


def check_cover_eligibility(inputs: CoverInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
    """Return every problem of version 1's rules and of the baseline and cover."""
    threshold = parameters.parameters[THRESHOLD].value
    problems = check_eligibility(inputs, parameters)
    for index, polygon in enumerate(inputs.polygons):
        problems += _polygon_problems(polygon, index, inputs, threshold)
    return problems


def polygon_net(tracer: Tracer, polygon: CoverPolygon, years: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """Return the polygon's shrub change, baseline removal and net removal in t CO2e."""
    prefix = f"polygon[{polygon.polygon_id}]"
    area_ha = polygon.area_m2 / M2_PER_HA  # m² / (m²/ha) = ha
    baseline = polygon.baseline
    shrubs = [c for c in polygon.cover if c.life_form == "shrub"]
    tracer.step(
        f"{prefix}.shrub_cover_established_share",
        "Σ area shares of the shrubs planted or sown",
        sum((c.area_share for c in shrubs), ZERO),
        "1",
        species="; ".join(f"{c.species} ({c.establishment} {c.established_on})" for c in polygon.cover),
    )
    stock = shrub_stock_tco2e(
        tracer, f"{prefix}.baseline", area_ha, baseline.shrub_crown_cover, polygon.forest_biomass_t_per_ha
    )
    baseline_removal = tracer.step(
        f"{prefix}.baseline_removal_tco2e",
        "bare ground: C_SHRUB(BSL) and SOC stay at the baseline survey's; ΔC_BSL = 0",
        ZERO,
        "t CO2e",
        C_SHRUB_BSL=stock,
        soil=baseline.soil_condition,
        survey=baseline.source,
    )
    shrub, removal = polygon_removal(tracer, polygon, years)
    net = tracer.step(f"{prefix}.net_removal_tco2e", "ΔC_PROJ − ΔC_BSL", removal - baseline_removal, "t CO2e")
    return shrub, baseline_removal, net


class EcologicalRestorationCover:
    """Restoration from a bare-ground baseline: the cover planted or sown, and its growth (local, provisional)."""

    id = "NX-RESTORATION"
    version = "2"
    title = (
        "生态修复碳汇 v2: bare-ground baseline, cover planted or sown, shrub and soil carbon growth (local provisional)"
    )
    credit_class = "restoration (local provisional)"
    default_parameter_set = ("ningxia-restoration", "1-provisional")
    input_model = CoverInputs

    def check(self, inputs: CoverInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
        """Return every eligibility problem."""
        return check_cover_eligibility(inputs, parameters)

    def compute(self, inputs: CoverInputs, parameters: ParameterSet) -> Result:
        """Return removals net of the baseline, deductions and issuable units with the full trace."""

        def calculate() -> Result:
            tracer = Tracer(parameters)
            years = _years(inputs.monitoring_start, inputs.monitoring_end)
            found = [polygon_net(tracer, p, years) for p in inputs.polygons]
            shrub = sum((s for s, _, _ in found), ZERO)
            baseline = tracer.step(
                "baseline_removal_tco2e", "Σ polygons ΔC_BSL", sum((b for _, b, _ in found), ZERO), "t CO2e"
            )
            net = tracer.step(
                "net_removal_tco2e", "Σ polygons (ΔC_PROJ − ΔC_BSL)", sum((n for _, _, n in found), ZERO), "t CO2e"
            )
            tracer.step("relative_uncertainty", "declared", inputs.relative_uncertainty, "1")
            deduction = apply_uncertainty(tracer, net, inputs.relative_uncertainty) if net > ZERO else ZERO
            issuance = settle(tracer, floor_t(net), ceiling_t(deduction), inputs.buffer)
            area_m2 = sum((p.area_m2 for p in inputs.polygons), ZERO)
            warnings: list[SanityWarning] = rate_warnings(
                tracer,
                rate_tco2e_per_ha_yr=shrub * M2_PER_HA / area_m2 / years,
                kind="shrub",
                arid=True,
                stand_age_years=None,
            )
            quantities = {
                "shrub_change_tco2e": floor_t(shrub),
                "baseline_removal_tco2e": floor_t(baseline),
                "net_removal_tco2e": floor_t(net),
                "uncertainty_deduction_tco2e": ceiling_t(deduction),
                **issuance_quantities(issuance),
            }
            return build_result(self, parameters, inputs, tracer, quantities, {}, warnings)

        return run_checked(self.id, self.check(inputs, parameters), calculate)


ECOLOGICAL_RESTORATION_COVER = EcologicalRestorationCover()
