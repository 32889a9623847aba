"""Ocean fishery carbon sink (海洋渔业碳汇): mariculture bivalves and macroalgae (pure).

Carbon removed with the harvest, in the carbon-stock-change structure of HY/T 0305-2021 as used in the
literature (reference §5.1; the standard's own equations were not readable, so the set is provisional)::

    bivalves: C = P_wet × R_dw × (w_soft × CF_soft + w_shell × CF_shell)     [t C]
    algae:    C = P_wet × R_dw × CF_algae                                    [t C]
    CO2e = C × 44/12

``P_wet`` is the harvested fresh weight; the coefficients per species are the table of 孙康 et al. 2020
(parameter set ``hyt-0305-2021-mariculture``). Fed aquaculture (abalone, large yellow croaker, sea
cucumber …) brings external carbon in with the feed and is refused.

A harvest may name its sea area (``sea_area_id``, the sea area's code in the project) and its culture mode
(raft, longline, bottom sowing …; recorded in the trace, the coefficients being per species). The same
species in the same culture mode on the same sea area listed twice is the same harvest counted twice, and
is refused.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal, Self

from pydantic import Field, model_validator

from carbon.methods.base import (
    EligibilityProblem,
    InputModel,
    Result,
    Tracer,
    build_result,
    co2e_from_c,
    floor_t,
    run_checked,
)
from carbon.methods.deductions import BufferChoice, issuance_quantities, settle
from carbon.parameters.models import ParameterSet

ZERO = Decimal(0)
RULE = "HY/T 0305-2021 scope"


CultureMode = Literal["raft", "longline", "bottom_sowing", "hanging_cage", "intertidal_flat", "pond"]


class Harvest(InputModel):
    """Harvested fresh weight (tonnes) of one species in one culture mode over the period."""

    species: str = Field(pattern=r"^[a-z0-9_]+$")
    culture: Literal["non_fed", "fed"]
    harvest_fresh_t: Decimal = Field(ge=0)
    source: str = ""
    sea_area_id: str | None = Field(default=None, min_length=1, max_length=100)
    culture_mode: CultureMode | None = None


class OceanInputs(InputModel):
    """A mariculture carbon-sink report."""

    period_start: date
    period_end: date
    harvests: tuple[Harvest, ...] = Field(min_length=1)
    buffer: BufferChoice = BufferChoice()

    @model_validator(mode="after")
    def _period_order(self) -> Self:
        if self.period_end <= self.period_start:
            raise ValueError("period_end must be after period_start")
        return self


def _kind(parameters: ParameterSet, species: str) -> str | None:
    if f"species.{species}.shell_share" in parameters.parameters:
        return "bivalve"
    if f"species.{species}.carbon_fraction" in parameters.parameters:
        return "algae"
    return None


def check_eligibility(inputs: OceanInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
    """Return every problem: fed aquaculture, species without coefficients, a harvest listed twice."""
    problems = []
    seen: dict[tuple[str | None, str, str | None], int] = {}
    for index, harvest in enumerate(inputs.harvests):
        key = (harvest.sea_area_id, harvest.species, harvest.culture_mode)
        if key in seen:
            problems.append(
                EligibilityProblem(
                    "no double counting of a harvest",
                    f"{harvest.species} ({harvest.culture_mode or 'culture mode not stated'}) of sea area "
                    f"{harvest.sea_area_id or '(not stated)'} is already listed at /harvests/{seen[key]}: "
                    "the same harvest is counted once",
                    f"/harvests/{index}",
                )
            )
        seen.setdefault(key, index)
        if harvest.culture == "fed":
            problems.append(
                EligibilityProblem(
                    RULE,
                    f"{harvest.species} is fed aquaculture: feed brings in external "
                    "carbon, so only non-fed bivalves and macroalgae are credited",
                    f"/harvests/{index}/culture",
                )
            )
        if _kind(parameters, harvest.species) is None:
            problems.append(
                EligibilityProblem(
                    RULE,
                    f"{harvest.species} has no coefficients in {parameters.id} "
                    f"{parameters.version} (bivalves and macroalgae only)",
                    f"/harvests/{index}/species",
                )
            )
    return problems


def _where(harvest: Harvest) -> dict[str, str]:
    """Return the harvest's sea area and culture mode as trace terms (only those stated)."""
    terms = {"sea_area_id": harvest.sea_area_id, "culture_mode": harvest.culture_mode}
    return {name: value for name, value in terms.items() if value is not None}


def harvest_carbon_tc(tracer: Tracer, index: int, harvest: Harvest, kind: str) -> Decimal:
    """Return the carbon removed with one harvest, recording the terms."""
    prefix = f"harvest[{index}:{harvest.species}]"
    key = f"species.{harvest.species}"
    dry = tracer.parameter(f"{key}.dry_wet_ratio")
    if kind == "algae":
        fraction = tracer.parameter(f"{key}.carbon_fraction")
        return tracer.step(
            f"{prefix}.carbon_tc",
            "P_wet × R_dw × CF_algae",
            harvest.harvest_fresh_t * dry * fraction,
            "t C",
            P_wet_t=harvest.harvest_fresh_t,
            R_dw=dry,
            CF_algae=fraction,
            **_where(harvest),
        )
    soft_share, soft_cf = (
        tracer.parameter(f"{key}.soft_tissue_share"),
        tracer.parameter(f"{key}.soft_tissue_carbon_fraction"),
    )
    shell_share, shell_cf = tracer.parameter(f"{key}.shell_share"), tracer.parameter(f"{key}.shell_carbon_fraction")
    soft = tracer.step(
        f"{prefix}.soft_tissue_carbon_tc",
        "P_wet × R_dw × w_soft × CF_soft",
        harvest.harvest_fresh_t * dry * soft_share * soft_cf,
        "t C",
        P_wet_t=harvest.harvest_fresh_t,
        R_dw=dry,
        w_soft=soft_share,
        CF_soft=soft_cf,
        **_where(harvest),
    )
    shell = tracer.step(
        f"{prefix}.shell_carbon_tc",
        "P_wet × R_dw × w_shell × CF_shell",
        harvest.harvest_fresh_t * dry * shell_share * shell_cf,
        "t C",
        w_shell=shell_share,
        CF_shell=shell_cf,
    )
    return tracer.step(f"{prefix}.carbon_tc", "soft tissue + shell", soft + shell, "t C")


class OceanFisheryCarbonSink:
    """Mariculture bivalve and macroalgae carbon sink (HY/T 0305-2021 structure)."""

    id = "HY-T-0305-2021"
    version = "1"
    title = "养殖大型藻类和双壳贝类碳汇计量方法 碳储量变化法 (HY/T 0305-2021 structure)"
    credit_class = "ocean fishery carbon sink"
    default_parameter_set = ("hyt-0305-2021-mariculture", "1-provisional")
    input_model = OceanInputs

    def check(self, inputs: OceanInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
        """Return every eligibility problem."""
        return check_eligibility(inputs, parameters)

    def compute(self, inputs: OceanInputs, parameters: ParameterSet) -> Result:
        """Return carbon removed with the harvest, buffer and issuable units with the trace."""

        def calculate() -> Result:
            tracer = Tracer(parameters)
            carbon = ZERO
            for index, harvest in enumerate(inputs.harvests):
                kind = _kind(parameters, harvest.species)
                assert kind is not None  # checked by eligibility
                carbon += harvest_carbon_tc(tracer, index, harvest, kind)
            tracer.step("carbon_tc", "Σ harvests", carbon, "t C")
            removal = tracer.step("removal_tco2e", "C × 44/12", co2e_from_c(carbon), "t CO2e")
            issuance = settle(tracer, floor_t(removal), ZERO, inputs.buffer)
            quantities = {
                "carbon_tc": floor_t(carbon),
                "removal_tco2e": floor_t(removal),
                **issuance_quantities(issuance),
            }
            return build_result(self, parameters, inputs, tracer, quantities)

        return run_checked(self.id, self.check(inputs, parameters), calculate)


OCEAN_FISHERY = OceanFisheryCarbonSink()
