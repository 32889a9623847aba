"""CCER-14-001-V01 afforestation (造林碳汇): structure, eligibility gates and net removals (pure).

Net removals over a monitoring period (AR-CM-001 / AR-TOOL14 logic; reference §1.3)::

    ΔC_P       = Σ_strata (C_TREE + C_SHRUB)(t2) − Σ_strata (C_TREE + C_SHRUB)(t1)
    ΔC_ACTUAL  = ΔC_P − GHG_E
    ΔC_NET     = ΔC_ACTUAL − ΔC_BSL − LK

Tree biomass per stratum and inventory comes from one of: a sub-compartment stand volume (volume
route, ``b = V × D × BEF``), measured sample plots (volume route through a volume equation, or
allometric route through a biomass equation), or an externally supplied above-ground-biomass density
(the plug for a raster route: a zonal mean from ``geodata``). ``C_TREE = 44/12 × CF × (1 + R) × A × b``;
shrubs follow AR-TOOL14 Eq. 26–27. The uncertainty of the 90 % interval is computed from the plots
(or declared) and discounted by band; the buffer and flooring follow ``carbon.methods.deductions``.

Eligibility gates (each refusal names its rule): scope (economic forest, urban/industrial/mining land,
wetland), applicability (a) ≥ 3 years non-forest planned afforestation land, (c) parcel ≥ 400 m²
(≥ 667 m² for projects started in or before 2019), (e) shrub removal ≤ 20 %, crediting period 20–40
years, additionality (exempt below 400 mm rainfall, in a key ecological function zone or for
ecological public-welfare forest; otherwise it must be demonstrated).

The equations and species tables of CCER-14-001-V01 itself were not read (reference ❌): the default
parameter set is provisional and says so in every result.
"""

from __future__ import annotations

import enum
from datetime import date
from decimal import Decimal
from typing import Literal, Self

from pydantic import Field, model_validator

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
from carbon.methods.deductions import BufferChoice, apply_uncertainty, issuance_quantities, settle
from carbon.methods.inventory import (
    PowerLawEquation,
    SamplePlot,
    StandFactors,
    StratumSample,
    missing_factors,
    plot_density_per_ha,
    resolve_factors,
    sample_summary,
    shrub_stock_tco2e,
    stratified_uncertainty,
    tree_stock_tco2e,
)
from carbon.methods.sanity import rate_warnings
from carbon.parameters.models import ParameterSet

ZERO = Decimal(0)
M2_PER_HA = Decimal(10_000)
DAYS_PER_YEAR = Decimal("365.25")
RULE = "CCER-14-001-V01"


class LandClass(enum.StrEnum):
    """Land class of a parcel before the project (land-use survey class)."""

    PLANNED_AFFORESTATION = "planned_afforestation_land"  # 规划造林地
    INDUSTRIAL_MINING = "industrial_mining_land"  # 工矿用地
    URBAN_VILLAGE = "urban_village_land"  # 城镇村用地
    WETLAND = "wetland"  # 湿地
    OTHER = "other"


class Parcel(InputModel):
    """A contiguous parcel (地块) of the project."""

    parcel_id: str = Field(min_length=1)
    area_m2: Decimal = Field(gt=0)
    land_class: LandClass
    years_non_forest_before_start: Decimal = Field(ge=0)
    shrub_removal_share: Decimal = Field(default=ZERO, ge=0, le=1)


class Inventory(InputModel):
    """One stratum's measurement at one time: exactly one tree source, plus shrub crown cover."""

    stand_volume_m3_per_ha: Decimal | None = Field(default=None, ge=0)
    sample_plots: tuple[SamplePlot, ...] = ()
    above_ground_biomass_t_per_ha: Decimal | None = Field(default=None, ge=0)
    biomass_source: str = ""
    shrub_crown_cover: Decimal = Field(default=ZERO, ge=0, le=1)

    @model_validator(mode="after")
    def _one_tree_source(self) -> Self:
        sources = [
            self.stand_volume_m3_per_ha is not None,
            bool(self.sample_plots),
            self.above_ground_biomass_t_per_ha is not None,
        ]
        if sum(sources) != 1:
            raise ValueError("give exactly one of stand_volume_m3_per_ha, sample_plots, above_ground_biomass_t_per_ha")
        if self.above_ground_biomass_t_per_ha is not None and not self.biomass_source:
            raise ValueError("an external biomass density needs its biomass_source (e.g. the raster and its zonal run)")
        return self

    @property
    def has_trees(self) -> bool:
        """Return whether the inventory records any tree biomass."""
        if self.sample_plots:
            return any(p.trees for p in self.sample_plots)
        return (self.stand_volume_m3_per_ha or self.above_ground_biomass_t_per_ha or ZERO) > ZERO


class Stratum(InputModel):
    """A stratum: area, species group, factors and the two inventories."""

    stratum_id: str = Field(min_length=1)
    area_m2: Decimal = Field(gt=0)
    vegetation: Literal["tree", "bamboo", "shrub"] = "tree"
    species: str = Field(pattern=r"^[a-z0-9_]+$")
    factors: StandFactors = StandFactors()
    tree_equation: PowerLawEquation | None = None
    forest_biomass_t_per_ha: Decimal | None = Field(default=None, gt=0, description="b_FOREST for shrubs")
    start: Inventory
    end: Inventory


class CcerInputs(InputModel):
    """A CCER-14-001 project and one monitoring period."""

    project_start: date
    crediting_period_years: int = Field(gt=0)
    forest_category: Literal["protection", "special_purpose", "timber", "economic"]
    mean_annual_precipitation_mm: Decimal = Field(ge=0)
    in_key_ecological_function_zone: bool = False
    ecological_public_welfare_forest: bool = False
    additionality_demonstrated: bool = False
    arid_site: bool = False
    parcels: tuple[Parcel, ...] = Field(min_length=1)
    monitoring_start: date
    monitoring_end: date
    strata: tuple[Stratum, ...] = Field(min_length=1)
    baseline_removal_tco2e: Decimal = ZERO
    baseline_source: str = "AR-CM-001: baseline carbon stock change of non-forest land taken as zero"
    project_emissions_tco2e: Decimal = Field(default=ZERO, ge=0)
    leakage_tco2e: Decimal = Field(default=ZERO, ge=0)
    relative_uncertainty: Decimal | None = Field(default=None, ge=0, description="declared, when plots are not used")
    buffer: BufferChoice = BufferChoice()

    @model_validator(mode="after")
    def _period_order(self) -> Self:
        if self.monitoring_end <= self.monitoring_start:
            raise ValueError("monitoring_end must be after monitoring_start")
        return self


def additionality(inputs: CcerInputs, parameters: ParameterSet) -> tuple[bool, str]:
    """Return whether additionality is exempt (免予论证) and why.

    >>> from carbon.parameters.loader import load_parameter_set
    >>> p = load_parameter_set("ccer-14-001", "1-provisional")
    >>> additionality(example_inputs(mean_annual_precipitation_mm=Decimal(280)), p)
    (True, 'mean annual precipitation 280 mm < 400 mm')
    """
    threshold = parameters.parameter("additionality.precipitation_threshold_mm").value
    if inputs.mean_annual_precipitation_mm < threshold:
        return True, f"mean annual precipitation {inputs.mean_annual_precipitation_mm} mm < {threshold} mm"
    if inputs.in_key_ecological_function_zone:
        return True, "site in a national key ecological function zone (国发〔2010〕46号)"
    if inputs.ecological_public_welfare_forest:
        return True, "ecological public-welfare forest (生态公益林)"
    return False, (
        f"mean annual precipitation {inputs.mean_annual_precipitation_mm} mm ≥ {threshold} mm, not in a key "
        "ecological function zone, not public-welfare forest: additionality must be demonstrated"
    )


def _scope_problems(inputs: CcerInputs) -> list[EligibilityProblem]:
    problems = []
    if inputs.forest_category == "economic":
        problems.append(
            EligibilityProblem(
                f"{RULE} scope", f"economic forest (经济林, e.g. goji) is excluded from {RULE}", "/forest_category"
            )
        )
    excluded = {
        LandClass.INDUSTRIAL_MINING: ("scope", "greening of industrial/mining land (工矿用地) is excluded"),
        LandClass.URBAN_VILLAGE: ("scope", "greening of urban and village land (城镇村用地) is excluded"),
        LandClass.WETLAND: ("applicability (d)", "wetland is excluded"),
        LandClass.OTHER: ("applicability (a)", "land must be planned afforestation land (规划造林地)"),
    }
    for index, parcel in enumerate(inputs.parcels):
        if parcel.land_class in excluded:
            rule, reason = excluded[parcel.land_class]
            problems.append(
                EligibilityProblem(
                    f"{RULE} {rule}", f"parcel {parcel.parcel_id}: {reason} by {RULE}", f"/parcels/{index}/land_class"
                )
            )
    return problems


def _parcel_problems(inputs: CcerInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
    value = {
        k: parameters.parameter(f"eligibility.{k}").value
        for k in (
            "min_parcel_area_m2",
            "min_parcel_area_early_m2",
            "early_start_cutoff_year",
            "min_years_non_forest",
            "max_shrub_removal_share",
        )
    }
    early = inputs.project_start.year <= value["early_start_cutoff_year"]
    minimum = value["min_parcel_area_early_m2"] if early else value["min_parcel_area_m2"]
    when = (
        f"started in or before {value['early_start_cutoff_year']}"
        if early
        else "started after " + str(value["early_start_cutoff_year"])
    )
    problems = []
    for index, parcel in enumerate(inputs.parcels):
        if parcel.area_m2 < minimum:
            problems.append(
                EligibilityProblem(
                    f"{RULE} applicability (c)",
                    f"parcel {parcel.parcel_id} {parcel.area_m2} m² < {minimum} m² minimum of "
                    f"{RULE} applicability condition (c) (project {when})",
                    f"/parcels/{index}/area_m2",
                )
            )
        if parcel.years_non_forest_before_start < value["min_years_non_forest"]:
            problems.append(
                EligibilityProblem(
                    f"{RULE} applicability (a)",
                    f"parcel {parcel.parcel_id} non-forest for {parcel.years_non_forest_before_start} years "
                    f"< {value['min_years_non_forest']} years before start "
                    f"({RULE} applicability condition (a))",
                    f"/parcels/{index}/years_non_forest_before_start",
                )
            )
        if parcel.shrub_removal_share > value["max_shrub_removal_share"]:
            problems.append(
                EligibilityProblem(
                    f"{RULE} applicability (e)",
                    f"parcel {parcel.parcel_id} shrub removal {parcel.shrub_removal_share} > "
                    f"{value['max_shrub_removal_share']} of the area ({RULE} applicability condition (e))",
                    f"/parcels/{index}/shrub_removal_share",
                )
            )
    return problems


def _period_problems(inputs: CcerInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
    low = parameters.parameter("eligibility.crediting_period_min_years").value
    high = parameters.parameter("eligibility.crediting_period_max_years").value
    problems = []
    if not low <= inputs.crediting_period_years <= high:
        problems.append(
            EligibilityProblem(
                f"{RULE} crediting period",
                f"crediting period {inputs.crediting_period_years} years is outside {low}–{high} years of {RULE}",
                "/crediting_period_years",
            )
        )
    end = _add_years(inputs.project_start, inputs.crediting_period_years)
    if inputs.monitoring_start < inputs.project_start or inputs.monitoring_end > end:
        problems.append(
            EligibilityProblem(
                f"{RULE} crediting period",
                f"monitoring period {inputs.monitoring_start}.."
                f"{inputs.monitoring_end} is not within the crediting period "
                f"{inputs.project_start}..{end}",
                "/monitoring_start",
            )
        )
    exempt, reason = additionality(inputs, parameters)
    if not exempt and not inputs.additionality_demonstrated:
        problems.append(EligibilityProblem(f"{RULE} additionality", reason, "/additionality_demonstrated"))
    return problems


def _add_years(start: date, years: int) -> date:
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)


def _stratum_problems(inputs: CcerInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
    problems = []
    available = set(parameters.parameters)
    for index, stratum in enumerate(inputs.strata):
        pointer = f"/strata/{index}"
        for key in missing_factors(stratum.species, stratum.factors, available):
            problems.append(
                EligibilityProblem(
                    "parameter set",
                    f"stratum {stratum.stratum_id}: {key} is not in "
                    f"{parameters.id} {parameters.version} and no override is given",
                    pointer,
                )
            )
        for when, inventory in (("start", stratum.start), ("end", stratum.end)):
            if inventory.sample_plots and stratum.tree_equation is None:
                problems.append(
                    EligibilityProblem(
                        "AR-TOOL14 tree biomass",
                        f"stratum {stratum.stratum_id}: sample plots need a tree_equation",
                        f"{pointer}/tree_equation",
                    )
                )
            if inventory.shrub_crown_cover > 0 and stratum.forest_biomass_t_per_ha is None:
                problems.append(
                    EligibilityProblem(
                        "AR-TOOL14 Eq. 26",
                        f"stratum {stratum.stratum_id}: shrub cover at {when} needs forest_biomass_t_per_ha (b_FOREST)",
                        pointer,
                    )
                )
            if inputs.relative_uncertainty is None and inventory.has_trees and not inventory.sample_plots:
                problems.append(
                    EligibilityProblem(
                        "AR-TOOL14 uncertainty (90 % CI)",
                        f"stratum {stratum.stratum_id} at {when} has tree biomass but "
                        "no sample plots: declare relative_uncertainty or measure plots",
                        f"{pointer}/{when}",
                    )
                )
    problems += _degrees_of_freedom_problems(inputs)
    strata_m2 = sum((s.area_m2 for s in inputs.strata), ZERO)
    parcels_m2 = sum((p.area_m2 for p in inputs.parcels), ZERO)
    if strata_m2 > parcels_m2 + 1:
        problems.append(
            EligibilityProblem("stratification", f"strata cover {strata_m2} m² > parcels {parcels_m2} m²", "/strata")
        )
    return problems


def _degrees_of_freedom_problems(inputs: CcerInputs) -> list[EligibilityProblem]:
    if inputs.relative_uncertainty is not None:
        return []
    problems = []
    for when in ("start", "end"):
        measured = [getattr(s, when) for s in inputs.strata if getattr(s, when).sample_plots]
        plots = sum(len(m.sample_plots) for m in measured)
        if any(m.has_trees for m in measured) and plots - len(measured) < 1:
            problems.append(
                EligibilityProblem(
                    "AR-TOOL14 uncertainty (90 % CI)",
                    f"at {when}, {plots} plot(s) in {len(measured)} stratum/strata leave no degrees of freedom "
                    "(n − M < 1): measure more plots or declare relative_uncertainty",
                    "/strata",
                )
            )
    return problems


def check_eligibility(inputs: CcerInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
    """Return every eligibility problem of a CCER-14-001 project and monitoring period."""
    return [
        *_scope_problems(inputs),
        *_parcel_problems(inputs, parameters),
        *_period_problems(inputs, parameters),
        *_stratum_problems(inputs, parameters),
    ]


def stratum_biomass(tracer: Tracer, stratum: Stratum, inventory: Inventory, when: str) -> tuple[Decimal, list[Decimal]]:
    """Return the stratum's above-ground tree biomass density (t d.m./ha) and the per-plot values."""
    prefix = f"stratum[{stratum.stratum_id}].{when}"
    factors = resolve_factors(tracer, stratum.species, stratum.factors)
    if inventory.stand_volume_m3_per_ha is not None:
        volume = inventory.stand_volume_m3_per_ha
        biomass = volume * factors.wood_density_t_per_m3 * factors.bef
        return tracer.step(
            f"{prefix}.b_tree_t_per_ha",
            "V × D × BEF  (volume route)",
            biomass,
            "t d.m./ha",
            V_m3_per_ha=volume,
            D=factors.wood_density_t_per_m3,
            BEF=factors.bef,
        ), []
    if inventory.above_ground_biomass_t_per_ha is not None:
        return tracer.step(
            f"{prefix}.b_tree_t_per_ha",
            "external biomass density",
            inventory.above_ground_biomass_t_per_ha,
            "t d.m./ha",
            source=inventory.biomass_source,
        ), []
    equation = stratum.tree_equation
    assert equation is not None  # checked by eligibility
    values = []
    for plot in inventory.sample_plots:
        density = plot_density_per_ha(plot, equation)
        if equation.output == "volume_m3":
            value = tracer.step(
                f"{prefix}.plot[{plot.plot_id}].b_t_per_ha",
                "Σ V_tree(dbh, h) / A_plot × D × BEF",
                density * factors.wood_density_t_per_m3 * factors.bef,
                "t d.m./ha",
                V_m3_per_ha=density,
                D=factors.wood_density_t_per_m3,
                BEF=factors.bef,
            )
        else:
            value = tracer.step(
                f"{prefix}.plot[{plot.plot_id}].b_t_per_ha",
                "Σ f(dbh, h) / A_plot  (allometric route)",
                density,
                "t d.m./ha",
                source=equation.citation,
            )
        values.append(value)
    mean = sum(values, ZERO) / len(values)
    tracer.step(f"{prefix}.b_tree_t_per_ha", "mean of plots", mean, "t d.m./ha", plots=Decimal(len(values)))
    return mean, values


def stratum_stock(
    tracer: Tracer, stratum: Stratum, inventory: Inventory, when: str
) -> tuple[Decimal, Decimal, list[Decimal]]:
    """Return the stratum's tree and shrub stocks (t CO2e) and its plot values at one inventory."""
    prefix = f"stratum[{stratum.stratum_id}].{when}"
    area_ha = stratum.area_m2 / M2_PER_HA  # m² / (m²/ha) = ha
    biomass, values = stratum_biomass(tracer, stratum, inventory, when)
    tree = tree_stock_tco2e(tracer, prefix, area_ha, biomass, resolve_factors(tracer, stratum.species, stratum.factors))
    shrub = ZERO
    if inventory.shrub_crown_cover > ZERO:
        assert stratum.forest_biomass_t_per_ha is not None  # checked by eligibility
        shrub = shrub_stock_tco2e(tracer, prefix, area_ha, inventory.shrub_crown_cover, stratum.forest_biomass_t_per_ha)
    return tree, shrub, values


def _time_half_width(
    tracer: Tracer, inputs: CcerInputs, when: str, stocks: list[Decimal], plots: list[list[Decimal]]
) -> Decimal:
    samples = [sample_summary(s.area_m2, v) for s, v in zip(inputs.strata, plots, strict=True) if v]
    if not any(sample.mean > ZERO for sample in samples):
        return ZERO  # no plots, or plots without trees (e.g. before planting): nothing to be uncertain about
    total_m2 = sum((s.weight for s in samples), ZERO)
    weighted = [StratumSample(s.weight / total_m2, s.mean, s.sd, s.n) for s in samples]
    estimate = stratified_uncertainty(weighted)
    tracer.step(
        f"{when}.relative_uncertainty",
        "t(0.90, n − M) × sqrt(Σ w² s² / n) / Σ w b  (AR-TOOL14)",
        estimate.relative,
        "1",
        t=estimate.t_value,
        SE=estimate.standard_error,
        mean=estimate.mean,
    )
    tree_stock = sum(stocks, ZERO)
    return tracer.step(f"{when}.half_width_tco2e", "u × C_TREE", estimate.relative * tree_stock, "t CO2e")


def _relative_uncertainty(
    tracer: Tracer,
    inputs: CcerInputs,
    removal: Decimal,
    stocks: dict[str, list[Decimal]],
    plots: dict[str, list[list[Decimal]]],
) -> Decimal:
    if inputs.relative_uncertainty is not None:
        return tracer.step("relative_uncertainty", "declared", inputs.relative_uncertainty, "1")
    widths = [_time_half_width(tracer, inputs, when, stocks[when], plots[when]) for when in ("start", "end")]
    if removal == ZERO:
        return tracer.step("relative_uncertainty", "ΔC_P = 0", ZERO, "1")
    combined = (widths[0] * widths[0] + widths[1] * widths[1]).sqrt() / abs(removal)
    return tracer.step(
        "relative_uncertainty",
        "sqrt((u1·C1)² + (u2·C2)²) / |ΔC_P|",
        combined,
        "1",
        half_width_t1=widths[0],
        half_width_t2=widths[1],
        delta_C_P=removal,
    )


def _years(start: date, end: date) -> Decimal:
    return Decimal((end - start).days) / DAYS_PER_YEAR  # days / (days/yr) = yr


def _project_removal(tracer: Tracer, inputs: CcerInputs) -> tuple[Decimal, Decimal, Decimal]:
    """Return ΔC_P (t CO2e), the relative uncertainty and the shrub share of ΔC_P."""
    stocks: dict[str, list[Decimal]] = {}
    plots: dict[str, list[list[Decimal]]] = {}
    totals: dict[str, Decimal] = {}
    shrubs: dict[str, Decimal] = {}
    for when in ("start", "end"):
        found = [stratum_stock(tracer, s, getattr(s, when), when) for s in inputs.strata]
        stocks[when] = [tree for tree, _, _ in found]
        plots[when] = [values for _, _, values in found]
        shrubs[when] = sum((shrub for _, shrub, _ in found), ZERO)
        totals[when] = tracer.step(
            f"{when}.project_stock_tco2e",
            "Σ strata (C_TREE + C_SHRUB)",
            sum(stocks[when], ZERO) + shrubs[when],
            "t CO2e",
        )
    removal = tracer.step(
        "delta_c_p_tco2e",
        "C_P(t2) − C_P(t1)",
        totals["end"] - totals["start"],
        "t CO2e",
        C_t1=totals["start"],
        C_t2=totals["end"],
    )
    uncertainty = _relative_uncertainty(tracer, inputs, removal, stocks, plots)
    return removal, uncertainty, shrubs["end"] - shrubs["start"]


def _warnings(tracer: Tracer, inputs: CcerInputs, net: Decimal, shrub_change: Decimal) -> list[SanityWarning]:
    years = _years(inputs.monitoring_start, inputs.monitoring_end)
    tree_m2 = sum((s.area_m2 for s in inputs.strata if s.vegetation != "shrub"), ZERO)
    shrub_m2 = sum((s.area_m2 for s in inputs.strata if s.vegetation == "shrub"), ZERO)
    age = _years(inputs.project_start, inputs.monitoring_end)
    warnings = []
    if tree_m2 > ZERO:
        rate = (net - shrub_change) * M2_PER_HA / tree_m2 / years  # t / ha / yr
        warnings += rate_warnings(
            tracer, rate_tco2e_per_ha_yr=rate, kind="tree", arid=inputs.arid_site, stand_age_years=age
        )
    if shrub_m2 > ZERO:
        rate = shrub_change * M2_PER_HA / shrub_m2 / years
        warnings += rate_warnings(
            tracer, rate_tco2e_per_ha_yr=rate, kind="shrub", arid=inputs.arid_site, stand_age_years=None
        )
    return warnings


class Ccer14001:
    """CCER-14-001-V01 afforestation (造林碳汇)."""

    id = "CCER-14-001"
    version = "V01"
    title = "温室气体自愿减排项目方法学 造林碳汇 (CCER-14-001-V01)"
    credit_class = "CCER"
    default_parameter_set = ("ccer-14-001", "1-provisional")
    input_model = CcerInputs

    def check(self, inputs: CcerInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
        """Return every eligibility problem."""
        return check_eligibility(inputs, parameters)

    def compute(self, inputs: CcerInputs, parameters: ParameterSet) -> Result:
        """Return net removals, deductions and issuable units with the full trace."""

        def calculate() -> Result:
            tracer = Tracer(parameters)
            removal, uncertainty, shrub_change = _project_removal(tracer, inputs)
            actual = tracer.step(
                "delta_c_actual_tco2e",
                "ΔC_P − GHG_E",
                removal - inputs.project_emissions_tco2e,
                "t CO2e",
                GHG_E=inputs.project_emissions_tco2e,
            )
            net = tracer.step(
                "delta_c_net_tco2e",
                "ΔC_ACTUAL − ΔC_BSL − LK",
                actual - inputs.baseline_removal_tco2e - inputs.leakage_tco2e,
                "t CO2e",
                delta_C_BSL=inputs.baseline_removal_tco2e,
                LK=inputs.leakage_tco2e,
            )
            deduction = apply_uncertainty(tracer, removal, uncertainty)
            issuance = settle(tracer, floor_t(net), ceiling_t(deduction), inputs.buffer)
            exempt, reason = additionality(inputs, parameters)
            quantities = {
                "project_removal_tco2e": floor_t(removal),
                "baseline_removal_tco2e": inputs.baseline_removal_tco2e,
                "leakage_tco2e": inputs.leakage_tco2e,
                "net_removal_tco2e": floor_t(net),
                "uncertainty_deduction_tco2e": ceiling_t(deduction),
                **issuance_quantities(issuance),
            }
            details = {
                "relative_uncertainty": str(uncertainty),
                "additionality": "exempt" if exempt else "demonstrated",
                "additionality_reason": reason,
            }
            return build_result(
                self, parameters, inputs, tracer, quantities, details, _warnings(tracer, inputs, net, shrub_change)
            )

        return run_checked(self.id, self.check(inputs, parameters), calculate)


CCER_14_001 = Ccer14001()


def example_inputs(**changes: object) -> CcerInputs:
    """Return a small eligible project (used by doctests and as documentation of the input shape)."""
    project: dict[str, object] = {
        "project_start": "2023-03-01",
        "crediting_period_years": 30,
        "forest_category": "protection",
        "mean_annual_precipitation_mm": "280",
        "parcels": [
            {
                "parcel_id": "P1",
                "area_m2": "10000",
                "land_class": "planned_afforestation_land",
                "years_non_forest_before_start": "5",
            }
        ],
        "monitoring_start": "2023-03-01",
        "monitoring_end": "2028-03-01",
        "strata": [
            {
                "stratum_id": "S1",
                "area_m2": "10000",
                "species": "populus",
                "start": {"stand_volume_m3_per_ha": "0"},
                "end": {"stand_volume_m3_per_ha": "30"},
            }
        ],
        "relative_uncertainty": "0.08",
    }
    project.update(changes)
    return CcerInputs.model_validate(project)
