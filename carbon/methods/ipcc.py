"""IPCC 2006 / 2019 Refinement, Vol. 4 Ch. 2 and 4: forest-land biomass carbon, per stratum (pure).

Two calculations, chosen by ``calculation.method``:

* **Stock difference** (Eq. 2.8a/b): ``C = Σ A × V × BCEF_S × (1 + R) × CF`` at two inventories and
  ``ΔC = (C_t2 − C_t1) / (t2 − t1)``. BCEF_S is looked up by growing-stock class from Table 4.5, or
  replaced by ``D × BEF`` when wood density and BEF are given. R is looked up by above-ground-biomass
  class (2006 Table 4.4 or the 2019 Asia table), CF from Table 4.3.
* **Gain–loss** (Eq. 2.7, 2.9, 2.10): ``ΔC_G = Σ A × G_TOTAL × CF`` with Tier 1
  ``G_TOTAL = G_W × (1 + R)`` or Tier 2 ``G_TOTAL = I_V × BCEF_I × (1 + R)``; ``ΔC_B = ΔC_G − ΔC_L``,
  the losses being an explicit input (Eq. 2.11–2.14 are computed upstream).

Class boundaries are data (see the ``note`` of each table in ``ipcc-2006-2019-forest-land@1``): a
growing stock of exactly 40 m³/ha is in the (20, 40] class and 40.5 m³/ha in (40, 100].

As a calculation it reports removals. A project of inventory units credits them (issue 26): with a
``buffer`` given, the stock-difference removal over ``t2 − t1`` is settled like every crediting
methodology (``carbon.methods.deductions``: no uncertainty deduction — the IPCC equations carry none —, the
non-permanence buffer, whole tonnes floored, the remainder recorded). IPCC defines no buffer, so the share is
explicit with its reason; gain–loss gives an annual rate, not a period's removal, and is not credited.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Self

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
ONE = Decimal(1)
M2_PER_HA = Decimal(10_000)
ForestType = Literal["hardwoods", "pines", "other_conifers"]


class _StratumBase(InputModel):
    stratum_id: str = Field(min_length=1)
    area_m2: Decimal = Field(gt=0)
    forest_type: ForestType
    origin: Literal["planted", "natural"] = "planted"
    root_shoot: Decimal | None = Field(default=None, ge=0, description="override of the R lookup")
    carbon_fraction: Decimal | None = Field(default=None, gt=0, le=1, description="override of CF")


class StockStratum(_StratumBase):
    """A stratum measured at two inventories (merchantable growing stock, m³/ha)."""

    growing_stock_start_m3_per_ha: Decimal = Field(ge=0)
    growing_stock_end_m3_per_ha: Decimal = Field(ge=0)
    wood_density_t_per_m3: Decimal | None = Field(default=None, gt=0)
    bef: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _density_and_bef_together(self) -> Self:
        if (self.wood_density_t_per_m3 is None) != (self.bef is None):
            raise ValueError("give both wood_density_t_per_m3 and bef (D × BEF route) or neither (BCEF route)")
        return self


class GainLossStratum(_StratumBase):
    """A stratum with annual growth (Tier 1: G_W; Tier 2: I_V) and explicit losses."""

    tier: Literal[1, 2]
    ecological_zone: Literal["temperate_continental", "temperate_mountain"] = "temperate_continental"
    above_ground_growth_t_per_ha_yr: Decimal | None = Field(default=None, ge=0, description="G_W; default Table 4.12")
    volume_increment_m3_per_ha_yr: Decimal | None = Field(default=None, ge=0, description="I_V (Tier 2)")
    growing_stock_m3_per_ha: Decimal | None = Field(default=None, ge=0, description="selects the BCEF_I class")
    above_ground_biomass_t_per_ha: Decimal = Field(ge=0, description="standing AGB, selects the R class")
    loss_tc_per_yr: Decimal = Field(default=ZERO, ge=0, description="ΔC_L from Eq. 2.11–2.14")

    @model_validator(mode="after")
    def _tier_inputs(self) -> Self:
        if self.tier == 2 and (self.volume_increment_m3_per_ha_yr is None or self.growing_stock_m3_per_ha is None):
            raise ValueError("Tier 2 needs volume_increment_m3_per_ha_yr and growing_stock_m3_per_ha")
        return self


class _Common(InputModel):
    climate_domain: Literal["temperate"] = "temperate"
    root_shoot_table: Literal["2006", "2019_asia"] = "2006"
    carbon_fraction: Literal["default", "by_forest_type"] = "default"


class StockDifference(_Common):
    """Eq. 2.8a/b inputs."""

    method: Literal["stock_difference"] = "stock_difference"
    interval_years: Decimal = Field(gt=0, description="t2 − t1; fractional years allowed")
    strata: tuple[StockStratum, ...] = Field(min_length=1)


class GainLoss(_Common):
    """Eq. 2.7/2.9/2.10 inputs."""

    method: Literal["gain_loss"] = "gain_loss"
    strata: tuple[GainLossStratum, ...] = Field(min_length=1)


class IpccInputs(InputModel):
    """The IPCC forest-land calculation to run; ``buffer`` given: credit it (stock difference only)."""

    calculation: Annotated[StockDifference | GainLoss, Field(discriminator="method")]
    buffer: BufferChoice | None = Field(
        default=None, description="The non-permanence buffer, an explicit share with its reason; credits the removal."
    )


CREDITING_RULE = "IPCC inventory units: crediting"


def crediting_problems(inputs: IpccInputs) -> list[EligibilityProblem]:
    """Return why the inputs cannot be credited (none when no buffer is asked for)."""
    if inputs.buffer is None:
        return []
    problems = []
    if inputs.calculation.method != "stock_difference":
        problems.append(
            EligibilityProblem(
                CREDITING_RULE,
                "gain–loss gives an annual rate, not the removal of a period: credit a stock difference "
                "(two inventories, Eq. 2.8a)",
                "/calculation/method",
            )
        )
    if inputs.buffer.share is None:
        problems.append(
            EligibilityProblem(
                CREDITING_RULE,
                "the IPCC guidelines set no non-permanence buffer: give buffer.share with its reason "
                "(risk_rating null)",
                "/buffer",
            )
        )
    return problems


def _conifer(forest_type: ForestType) -> bool:
    return forest_type != "hardwoods"


def root_shoot(tracer: Tracer, common: _Common, stratum: _StratumBase, agb_t_per_ha: Decimal) -> Decimal:
    """Return R: the override, else the class of ``agb_t_per_ha`` in the selected table."""
    if stratum.root_shoot is not None:
        return stratum.root_shoot
    group = "conifer" if _conifer(stratum.forest_type) else "broadleaf"
    if common.root_shoot_table == "2006":
        key = f"root_shoot.2006.temperate.{'conifer' if group == 'conifer' else 'other_broadleaf'}"
    else:
        key = f"root_shoot.2019.asia_temperate.{stratum.origin}_{group}"
    return tracer.lookup(key, agb_t_per_ha)


def carbon_fraction(tracer: Tracer, common: _Common, stratum: _StratumBase) -> Decimal:
    """Return CF: the override, the default 0.47, or Table 4.3 by forest type."""
    if stratum.carbon_fraction is not None:
        return stratum.carbon_fraction
    if common.carbon_fraction == "default":
        return tracer.parameter("carbon_fraction.default")
    kind = "conifer" if _conifer(stratum.forest_type) else "broadleaf"
    return tracer.parameter(f"carbon_fraction.temperate_boreal.{kind}")


def stratum_stock_tc(
    tracer: Tracer, common: _Common, stratum: StockStratum, volume_m3_per_ha: Decimal, when: str
) -> Decimal:
    """Return one stratum's biomass carbon stock at one inventory (Eq. 2.8b), recording each step."""
    prefix = f"stratum[{stratum.stratum_id}].{when}"
    if stratum.wood_density_t_per_m3 is not None and stratum.bef is not None:
        bcef = tracer.step(
            f"{prefix}.bcef_s",
            "D × BEF_S",
            stratum.wood_density_t_per_m3 * stratum.bef,
            "t AGB/m3",
            D=stratum.wood_density_t_per_m3,
            BEF_S=stratum.bef,
        )
    else:
        table = f"bcef_s.{common.climate_domain}.{stratum.forest_type}"
        bcef = tracer.step(
            f"{prefix}.bcef_s",
            f"class lookup {table}",
            tracer.lookup(table, volume_m3_per_ha),
            "t AGB/m3",
            V_m3_per_ha=volume_m3_per_ha,
        )
    agb = tracer.step(
        f"{prefix}.agb_t_per_ha",
        "V × BCEF_S",
        volume_m3_per_ha * bcef,
        "t d.m./ha",
        V_m3_per_ha=volume_m3_per_ha,
        BCEF_S=bcef,
    )
    ratio = root_shoot(tracer, common, stratum, agb)
    biomass = tracer.step(f"{prefix}.biomass_t_per_ha", "AGB × (1 + R)", agb * (ONE + ratio), "t d.m./ha", R=ratio)
    fraction = carbon_fraction(tracer, common, stratum)
    area_ha = stratum.area_m2 / M2_PER_HA  # m² / (m²/ha) = ha
    return tracer.step(
        f"{prefix}.stock_tc",
        "A × V × BCEF_S × (1 + R) × CF  (Eq. 2.8b)",
        area_ha * biomass * fraction,
        "t C",
        A_ha=area_ha,
        biomass_t_per_ha=biomass,
        CF=fraction,
    )


def _stock_difference(tracer: Tracer, calc: StockDifference) -> dict[str, Decimal]:
    start = sum((stratum_stock_tc(tracer, calc, s, s.growing_stock_start_m3_per_ha, "t1") for s in calc.strata), ZERO)
    end = sum((stratum_stock_tc(tracer, calc, s, s.growing_stock_end_m3_per_ha, "t2") for s in calc.strata), ZERO)
    tracer.step("stock_t1_tc", "Σ strata C_t1", start, "t C")
    tracer.step("stock_t2_tc", "Σ strata C_t2", end, "t C")
    rate = tracer.step(
        "delta_c_tc_per_yr",
        "(C_t2 − C_t1) / (t2 − t1)  (Eq. 2.8a)",
        (end - start) / calc.interval_years,
        "t C/yr",
        C_t1=start,
        C_t2=end,
        interval_years=calc.interval_years,
    )
    rate_co2 = tracer.step("removal_tco2e_per_yr", "ΔC × 44/12", co2e_from_c(rate), "t CO2e/yr")
    total = tracer.step("removal_tco2e", "ΔC × 44/12 × (t2 − t1)", rate_co2 * calc.interval_years, "t CO2e")
    return {
        "stock_t1_tc": floor_t(start),
        "stock_t2_tc": floor_t(end),
        "delta_c_tc_per_yr": floor_t(rate),
        "removal_tco2e_per_yr": floor_t(rate_co2),
        "removal_tco2e": floor_t(total),
    }


def stratum_gain_tc_per_yr(tracer: Tracer, calc: GainLoss, stratum: GainLossStratum) -> Decimal:
    """Return ``A × G_TOTAL × CF`` for one stratum (Eq. 2.9/2.10)."""
    prefix = f"stratum[{stratum.stratum_id}]"
    ratio = root_shoot(tracer, calc, stratum, stratum.above_ground_biomass_t_per_ha)
    if stratum.tier == 1:
        growth = stratum.above_ground_growth_t_per_ha_yr
        if growth is None:
            growth = tracer.parameter(f"growth.{stratum.ecological_zone}.plantation")
        total = tracer.step(
            f"{prefix}.g_total_t_per_ha_yr",
            "G_W × (1 + R)  (Eq. 2.10, Tier 1)",
            growth * (ONE + ratio),
            "t d.m./ha/yr",
            G_W=growth,
            R=ratio,
        )
    else:
        assert stratum.volume_increment_m3_per_ha_yr is not None and stratum.growing_stock_m3_per_ha is not None
        table = f"bcef_i.{calc.climate_domain}.{stratum.forest_type}"
        bcef_i = tracer.lookup(table, stratum.growing_stock_m3_per_ha)
        total = tracer.step(
            f"{prefix}.g_total_t_per_ha_yr",
            "I_V × BCEF_I × (1 + R)  (Eq. 2.10, Tier 2)",
            stratum.volume_increment_m3_per_ha_yr * bcef_i * (ONE + ratio),
            "t d.m./ha/yr",
            I_V=stratum.volume_increment_m3_per_ha_yr,
            BCEF_I=bcef_i,
            R=ratio,
        )
    fraction = carbon_fraction(tracer, calc, stratum)
    area_ha = stratum.area_m2 / M2_PER_HA  # m² / (m²/ha) = ha
    return tracer.step(
        f"{prefix}.gain_tc_per_yr",
        "A × G_TOTAL × CF  (Eq. 2.9)",
        area_ha * total * fraction,
        "t C/yr",
        A_ha=area_ha,
        G_TOTAL=total,
        CF=fraction,
    )


def _gain_loss(tracer: Tracer, calc: GainLoss) -> dict[str, Decimal]:
    gain = sum((stratum_gain_tc_per_yr(tracer, calc, s) for s in calc.strata), ZERO)
    loss = sum((s.loss_tc_per_yr for s in calc.strata), ZERO)
    tracer.step("gain_tc_per_yr", "Σ strata ΔC_G", gain, "t C/yr")
    tracer.step("loss_tc_per_yr", "Σ strata ΔC_L (input)", loss, "t C/yr")
    rate = tracer.step("delta_c_tc_per_yr", "ΔC_G − ΔC_L  (Eq. 2.7)", gain - loss, "t C/yr")
    rate_co2 = tracer.step("removal_tco2e_per_yr", "ΔC × 44/12", co2e_from_c(rate), "t CO2e/yr")
    return {
        "gain_tc_per_yr": floor_t(gain),
        "loss_tc_per_yr": floor_t(loss),
        "delta_c_tc_per_yr": floor_t(rate),
        "removal_tco2e_per_yr": floor_t(rate_co2),
    }


class IpccForestLand:
    """IPCC 2006/2019 forest-land biomass carbon (stock difference or gain–loss), per stratum."""

    id = "ipcc-2006-2019-forest-land"
    version = "1"
    title = "IPCC 2006 GL / 2019 Refinement Vol.4 forest land: biomass carbon stock change"
    credit_class = "IPCC inventory units (IFL) when credited; otherwise an inventory calculation"
    default_parameter_set = ("ipcc-2006-2019-forest-land", "1")
    input_model = IpccInputs

    def check(self, inputs: IpccInputs, parameters: ParameterSet) -> list[EligibilityProblem]:
        """Return problems: stratum ids must be unique (each is a separate row of the sums); crediting rules."""
        ids = [s.stratum_id for s in inputs.calculation.strata]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        return [
            EligibilityProblem(
                "IPCC 2006 Vol.4 §2.2 stratification", f"stratum {i} appears more than once", "/calculation/strata"
            )
            for i in repeated
        ] + crediting_problems(inputs)

    def compute(self, inputs: IpccInputs, parameters: ParameterSet) -> Result:
        """Return the removals with their trace."""

        def calculate() -> Result:
            tracer = Tracer(parameters)
            calc = inputs.calculation
            quantities = (
                _stock_difference(tracer, calc) if isinstance(calc, StockDifference) else _gain_loss(tracer, calc)
            )
            if inputs.buffer is not None:
                removal = quantities["removal_tco2e"]
                tracer.step("net_removal_tco2e", "removal over t2 − t1 (no leakage, no baseline)", removal, "t CO2e")
                issuance = settle(tracer, removal, ZERO, inputs.buffer)
                quantities = {
                    **quantities,
                    "net_removal_tco2e": removal,
                    "uncertainty_deduction_tco2e": ZERO,
                    **issuance_quantities(issuance),
                }
            return build_result(self, parameters, inputs, tracer, quantities, {"method": calc.method})

        return run_checked(self.id, self.check(inputs, parameters), calculate)


IPCC_FOREST_LAND = IpccForestLand()
