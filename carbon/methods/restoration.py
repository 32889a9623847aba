"""Ecological restoration (mine sites, shrub and grassland, desertification control): a local credit class (pure).

For polygons such as the Yongning abandoned-mine restoration (219.74 ha, 宁夏永宁县). There is no
published methodology for this class, so it is local and provisional. Removals over the monitoring
period are the shrub biomass change plus the soil-organic-carbon change::

    ΔC_SHRUB = C_SHRUB(t2) − C_SHRUB(t1)                         AR-TOOL14 Eq. 26–27 (reference §1.3)
    ΔSOC     = A × (SOC(t2) − SOC(t1)) × 44/12                     measured densities, or
    ΔSOC     = A × SOC_REF × (F_after − F_before) × min(T, D) / D × 44/12   IPCC default-factor structure

Unlike CCER-14-001, industrial/mining land is eligible here; a polygon registered under another scheme
for an overlapping period is refused (double issuance).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from carbon.methods.base import (
    EligibilityProblem,
    InputModel,
    Result,
    SanityWarning,
    Tracer,
    build_result,
    ceiling_t,
    co2e_from_c,
    floor_t,
    run_checked,
)
from carbon.methods.deductions import BufferChoice, apply_uncertainty, issuance_quantities, settle
from carbon.methods.inventory import shrub_stock_tco2e
from carbon.methods.registrations import ExternalRegistration, double_issuance_problems
from carbon.methods.sanity import rate_warnings
from carbon.parameters.models import ParameterSet

ZERO = Decimal(0)
M2_PER_HA = Decimal(10_000)
RULE = "restoration (local provisional class)"
SoilCondition = Literal["severely_degraded", "nominally_managed", "improved"]


class MeasuredSoil(InputModel):
    """Soil organic carbon densities measured at both ends of the period (0–30 cm)."""

    method: Literal["measured"] = "measured"
    soc_start_tc_per_ha: Decimal = Field(ge=0)
    soc_end_tc_per_ha: Decimal = Field(ge=0)
    source: str = Field(min_length=1)


class DefaultSoil(InputModel):
    """Soil organic carbon change from default reference stocks and condition factors."""

    method: Literal["default_factors"] = "default_factors"
    climate_soil: Literal["temperate_dry.sandy", "temperate_dry.low_activity_clay", "temperate_dry.high_activity_clay"]
    condition_before: SoilCondition
    condition_after: SoilCondition


class RestorationPolygon(InputModel):
    """A restored polygon with its shrub cover at both ends of the period and its soil data."""

    polygon_id: str = Field(min_length=1)
    area_m2: Decimal = Field(gt=0)
    activity: Literal["mine_site", "shrub_grassland", "desertification_control"]
    land_class: str = ""
    shrub_crown_cover_start: Decimal = Field(ge=0, le=1)
    shrub_crown_cover_end: Decimal = Field(ge=0, le=1)
    forest_biomass_t_per_ha: Decimal = Field(gt=0, description="b_FOREST of AR-TOOL14 Eq. 26")
    soil: Annotated[MeasuredSoil | DefaultSoil, Field(discriminator="method")]


class RestorationInputs(InputModel):
    """A restoration monitoring report."""

    restoration_start: date
    monitoring_start: date
    monitoring_end: date
    polygons: tuple[RestorationPolygon, ...] = Field(min_length=1)
    external_registrations: tuple[ExternalRegistration, ...] = ()
    relative_uncertainty: Decimal = Field(default=ZERO, ge=0)
    buffer: BufferChoice = BufferChoice()

    @model_validator(mode="after")
    def _period_order(self) -> Self:
        if self.monitoring_end <= self.monitoring_start:
            raise ValueError("monitoring_end must be after monitoring_start")
        return self


def check_eligibility(inputs: RestorationInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
    """Return every problem: double issuance, repeated polygons, monitoring before restoration."""
    ids = [p.polygon_id for p in inputs.polygons]
    problems = double_issuance_problems(
        ids, inputs.external_registrations, inputs.monitoring_start, inputs.monitoring_end, RULE
    )
    problems += [
        EligibilityProblem(f"{RULE}: unique polygons", f"polygon {i} is listed more than once", "/polygons")
        for i, n in sorted(Counter(ids).items())
        if n > 1
    ]
    if inputs.monitoring_start < inputs.restoration_start:
        problems.append(
            EligibilityProblem(
                f"{RULE}: monitoring period",
                f"monitoring starts {inputs.monitoring_start}, before the restoration start {inputs.restoration_start}",
                "/monitoring_start",
            )
        )
    return problems


def _years(start: date, end: date) -> Decimal:
    return Decimal((end - start).days) / Decimal("365.25")  # days / (days/yr) = yr


def soil_change_tco2e(tracer: Tracer, polygon: RestorationPolygon, years: Decimal) -> Decimal:
    """Return the polygon's soil organic carbon change over the period in t CO2e."""
    prefix = f"polygon[{polygon.polygon_id}]"
    area_ha = polygon.area_m2 / M2_PER_HA  # m² / (m²/ha) = ha
    soil = polygon.soil
    if isinstance(soil, MeasuredSoil):
        change = tracer.step(
            f"{prefix}.soc_change_tc",
            "A × (SOC(t2) − SOC(t1))  (measured)",
            area_ha * (soil.soc_end_tc_per_ha - soil.soc_start_tc_per_ha),
            "t C",
            A_ha=area_ha,
            SOC_t1=soil.soc_start_tc_per_ha,
            SOC_t2=soil.soc_end_tc_per_ha,
            source=soil.source,
        )
    else:
        reference = tracer.parameter(f"soil.soc_ref.{soil.climate_soil}")
        before = tracer.parameter(f"soil.factor.{soil.condition_before}")
        after = tracer.parameter(f"soil.factor.{soil.condition_after}")
        period = tracer.parameter("soil.default_period_years")
        share = min(years, period) / period
        change = tracer.step(
            f"{prefix}.soc_change_tc",
            "A × SOC_REF × (F_after − F_before) × min(T, D) / D",
            area_ha * reference * (after - before) * share,
            "t C",
            A_ha=area_ha,
            SOC_REF=reference,
            F_before=before,
            F_after=after,
            T_years=years,
            D_years=period,
        )
    return tracer.step(f"{prefix}.soc_change_tco2e", "ΔSOC × 44/12", co2e_from_c(change), "t CO2e")


def polygon_removal(tracer: Tracer, polygon: RestorationPolygon, years: Decimal) -> tuple[Decimal, Decimal]:
    """Return the polygon's shrub change and total removal (shrub + soil) in t CO2e."""
    prefix = f"polygon[{polygon.polygon_id}]"
    area_ha = polygon.area_m2 / M2_PER_HA  # m² / (m²/ha) = ha
    start = shrub_stock_tco2e(
        tracer, f"{prefix}.start", area_ha, polygon.shrub_crown_cover_start, polygon.forest_biomass_t_per_ha
    )
    end = shrub_stock_tco2e(
        tracer, f"{prefix}.end", area_ha, polygon.shrub_crown_cover_end, polygon.forest_biomass_t_per_ha
    )
    shrub = tracer.step(f"{prefix}.shrub_change_tco2e", "C_SHRUB(t2) − C_SHRUB(t1)", end - start, "t CO2e")
    soil = soil_change_tco2e(tracer, polygon, years)
    return shrub, tracer.step(f"{prefix}.removal_tco2e", "ΔC_SHRUB + ΔSOC", shrub + soil, "t CO2e")


class EcologicalRestoration:
    """Restoration of mine sites, shrub and grassland, and desertification control (local, provisional)."""

    id = "NX-RESTORATION"
    version = "1"
    title = "生态修复碳汇 shrub biomass and soil organic carbon change (local provisional credit class)"
    credit_class = "restoration (local provisional)"
    default_parameter_set = ("ningxia-restoration", "1-provisional")
    input_model = RestorationInputs

    def check(self, inputs: RestorationInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
        """Return every eligibility problem."""
        return check_eligibility(inputs, parameters)

    def compute(self, inputs: RestorationInputs, parameters: ParameterSet) -> Result:
        """Return removals, deductions and issuable units with the full trace."""

        def calculate() -> Result:
            tracer = Tracer(parameters)
            years = _years(inputs.monitoring_start, inputs.monitoring_end)
            found = [polygon_removal(tracer, p, years) for p in inputs.polygons]
            shrub = sum((s for s, _ in found), ZERO)
            net = tracer.step(
                "net_removal_tco2e", "Σ polygons (ΔC_SHRUB + ΔSOC)", sum((r for _, r in found), ZERO), "t CO2e"
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
                "net_removal_tco2e": floor_t(net),
                "uncertainty_deduction_tco2e": ceiling_t(deduction),
                **issuance_quantities(issuance),
            }
            return build_result(self, parameters, inputs, tracer, quantities, {}, warnings)

        return run_checked(self.id, self.check(inputs, parameters), calculate)


ECOLOGICAL_RESTORATION = EcologicalRestoration()
