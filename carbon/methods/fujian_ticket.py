"""Forestry carbon ticket (林业碳票): the increment of forest carbon stock over a monitoring period (pure).

Sanming's rule measures a ticket as the **increment** (增量) of forest carbon stock, for any forest
type and any owner, natural forest included (reference §2.1). The official SMCER formula text is not
available, so this module implements the increment with IPCC/CCER factors, per sub-compartment (小班)::

    ΔV_i     = V_i(t2) − V_i(t1) − ΔV_BSL,i                      [m³/ha]
    ΔC_i     = A_i × ΔV_i × D × BEF × (1 + R) × CF × 44/12        [t CO2e]
    tickets  = floor(Σ ΔC_i − uncertainty deduction − buffer)     [whole t CO2e]

``V`` is the sub-compartment stock volume from the forest management inventory, or the mean of sample
plots measured tree by tree through a volume equation. The factors are fixed per species group, so the
quantity is linear in area and monotone in the volume increment. Plots whose external registrations
(CCER, VCS, FFCER) cover the monitoring period are refused (double issuance). The parameter set is
labelled provisional; replacing it with the official one is a data change (a new file and version).
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Self

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
from carbon.methods.inventory import (
    PowerLawEquation,
    SamplePlot,
    StandFactors,
    missing_factors,
    plot_density_per_ha,
    resolve_factors,
)
from carbon.methods.registrations import ExternalRegistration, double_issuance_problems
from carbon.methods.sanity import rate_warnings
from carbon.parameters.models import ParameterSet

ZERO = Decimal(0)
ONE = Decimal(1)
M2_PER_HA = Decimal(10_000)
RULE = "forestry carbon ticket"


class StockMeasurement(InputModel):
    """Stock volume at one time: from the inventory (小班蓄积), or from sample plots of measured trees."""

    stock_volume_m3_per_ha: Decimal | None = Field(default=None, ge=0)
    sample_plots: tuple[SamplePlot, ...] = ()

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.stock_volume_m3_per_ha is None) == (not self.sample_plots):
            raise ValueError("give exactly one of stock_volume_m3_per_ha and sample_plots")
        return self


class SubCompartment(InputModel):
    """A sub-compartment (小班) of any forest type and owner."""

    sub_compartment_id: str = Field(min_length=1)
    area_m2: Decimal = Field(gt=0)
    owner: str = ""
    origin: str = Field(default="any", description="natural or planted; informational, every type is eligible")
    species: str = Field(pattern=r"^[a-z0-9_]+$")
    factors: StandFactors = StandFactors()
    volume_equation: PowerLawEquation | None = None
    start: StockMeasurement
    end: StockMeasurement
    baseline_volume_increment_m3_per_ha: Decimal = Field(default=ZERO, ge=0)


class TicketInputs(InputModel):
    """A ticket monitoring report: period, sub-compartments and their external registrations."""

    monitoring_start: date
    monitoring_end: date
    sub_compartments: tuple[SubCompartment, ...] = Field(min_length=1)
    external_registrations: tuple[ExternalRegistration, ...] = ()
    relative_uncertainty: Decimal = Field(default=ZERO, ge=0)
    uncertainty_source: str = "forest management inventory (二类调查) stock volumes; no sampling error declared"
    arid_site: bool = False
    buffer: BufferChoice = BufferChoice()

    @model_validator(mode="after")
    def _period_order(self) -> Self:
        if self.monitoring_end <= self.monitoring_start:
            raise ValueError("monitoring_end must be after monitoring_start")
        return self


def check_eligibility(inputs: TicketInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
    """Return every problem: double issuance, parcel size, duplicate ids, missing factors or equations."""
    ids = [s.sub_compartment_id for s in inputs.sub_compartments]
    counts = Counter(ids)
    problems = double_issuance_problems(
        ids, inputs.external_registrations, inputs.monitoring_start, inputs.monitoring_end, RULE
    )
    minimum = parameters.parameter("eligibility.min_parcel_area_m2").value
    available = set(parameters.parameters)
    for index, sub in enumerate(inputs.sub_compartments):
        pointer = f"/sub_compartments/{index}"
        if counts[sub.sub_compartment_id] > 1:
            problems.append(
                EligibilityProblem(
                    f"{RULE}: unique sub-compartments",
                    f"sub-compartment {sub.sub_compartment_id} is listed more than once",
                    pointer,
                )
            )
        if sub.area_m2 < minimum:
            problems.append(
                EligibilityProblem(
                    f"{RULE}: minimum parcel area",
                    f"sub-compartment {sub.sub_compartment_id}"
                    f" {sub.area_m2} m² < {minimum} m² minimum (福建碳中和林 2024)",
                    f"{pointer}/area_m2",
                )
            )
        for key in missing_factors(sub.species, sub.factors, available):
            problems.append(
                EligibilityProblem(
                    "parameter set",
                    f"sub-compartment {sub.sub_compartment_id}: {key} is not in {parameters.id} {parameters.version}",
                    pointer,
                )
            )
        plots = bool(sub.start.sample_plots or sub.end.sample_plots)
        if plots and (sub.volume_equation is None or sub.volume_equation.output != "volume_m3"):
            problems.append(
                EligibilityProblem(
                    f"{RULE}: tree measurements",
                    f"sub-compartment {sub.sub_compartment_id}: sample plots need a volume equation (output volume_m3)",
                    pointer,
                )
            )
    return problems


def stock_volume(sub: SubCompartment, measurement: StockMeasurement) -> Decimal:
    """Return the stock volume in m³/ha: the inventory value, or the mean over sample plots."""
    if measurement.stock_volume_m3_per_ha is not None:
        return measurement.stock_volume_m3_per_ha
    assert sub.volume_equation is not None  # checked by eligibility
    equation = sub.volume_equation
    values = [plot_density_per_ha(plot, equation) for plot in measurement.sample_plots]
    return sum(values, ZERO) / len(values)


def sub_compartment_removal(tracer: Tracer, sub: SubCompartment) -> Decimal:
    """Return the net stock increment of one sub-compartment in t CO2e, recording its steps."""
    prefix = f"sub_compartment[{sub.sub_compartment_id}]"
    factors = resolve_factors(tracer, sub.species, sub.factors)
    start, end = stock_volume(sub, sub.start), stock_volume(sub, sub.end)
    increment = tracer.step(
        f"{prefix}.net_volume_increment_m3_per_ha",
        "V(t2) − V(t1) − ΔV_BSL",
        end - start - sub.baseline_volume_increment_m3_per_ha,
        "m3/ha",
        V_t1=start,
        V_t2=end,
        delta_V_BSL=sub.baseline_volume_increment_m3_per_ha,
    )
    area_ha = sub.area_m2 / M2_PER_HA  # m² / (m²/ha) = ha
    carbon = area_ha * increment * factors.wood_density_t_per_m3 * factors.bef * (ONE + factors.root_shoot)
    carbon = carbon * factors.carbon_fraction
    return tracer.step(
        f"{prefix}.removal_tco2e",
        "A × ΔV × D × BEF × (1 + R) × CF × 44/12",
        co2e_from_c(carbon),
        "t CO2e",
        A_ha=area_ha,
        D=factors.wood_density_t_per_m3,
        BEF=factors.bef,
        R=factors.root_shoot,
        CF=factors.carbon_fraction,
    )


def _warnings(tracer: Tracer, inputs: TicketInputs, net: Decimal) -> list[SanityWarning]:
    area_m2 = sum((s.area_m2 for s in inputs.sub_compartments), ZERO)
    years = Decimal((inputs.monitoring_end - inputs.monitoring_start).days) / Decimal("365.25")
    rate = net * M2_PER_HA / area_m2 / years  # t / ha / yr
    warnings = rate_warnings(
        tracer, rate_tco2e_per_ha_yr=rate, kind="tree", arid=inputs.arid_site, stand_age_years=None
    )
    if net < ZERO:
        warnings.append(
            SanityWarning(
                "ticket.negative_increment",
                f"the net stock increment is {floor_t(net)} t CO2e (harvest or loss): no tickets",
            )
        )
    return warnings


class ForestryCarbonTicket:
    """Fujian forestry carbon ticket (林业碳票), increment method (provisional parameters)."""

    id = "FJ-FORESTRY-CARBON-TICKET"
    version = "1"
    title = "林业碳票 forest carbon stock increment (IPCC/CCER factors; SMCER text not available)"
    credit_class = "forestry carbon ticket"
    default_parameter_set = ("fujian-forestry-carbon-ticket", "1-provisional")
    input_model = TicketInputs

    def check(self, inputs: TicketInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
        """Return every eligibility problem."""
        return check_eligibility(inputs, parameters)

    def compute(self, inputs: TicketInputs, parameters: ParameterSet) -> Result:
        """Return the stock increment, deductions and whole tickets with the full trace."""

        def calculate() -> Result:
            tracer = Tracer(parameters)
            net = sum((sub_compartment_removal(tracer, s) for s in inputs.sub_compartments), ZERO)
            tracer.step(
                "net_removal_tco2e",
                "Σ sub-compartments ΔC_i",
                net,
                "t CO2e",
                sub_compartments=Decimal(len(inputs.sub_compartments)),
            )
            tracer.step(
                "relative_uncertainty", "declared", inputs.relative_uncertainty, "1", source=inputs.uncertainty_source
            )
            deduction = apply_uncertainty(tracer, net, inputs.relative_uncertainty) if net > ZERO else ZERO
            issuance = settle(tracer, floor_t(net), ceiling_t(deduction), inputs.buffer)
            quantities = {
                "net_removal_tco2e": floor_t(net),
                "uncertainty_deduction_tco2e": ceiling_t(deduction),
                **issuance_quantities(issuance),
            }
            return build_result(self, parameters, inputs, tracer, quantities, {}, _warnings(tracer, inputs, net))

        return run_checked(self.id, self.check(inputs, parameters), calculate)


FORESTRY_CARBON_TICKET = ForestryCarbonTicket()
