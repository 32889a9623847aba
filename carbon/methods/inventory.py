"""Shared forest-inventory equations: tree volume and biomass, sample-plot statistics, shrubs (pure).

Used by the CCER-14-001, forestry-carbon-ticket and restoration methodologies.

* Tree volume and biomass equations are power laws ``y = a × dbh_cm^b × height_m^c`` (the form of
  Chinese two-way volume tables, 二元材积式, and of most allometric biomass equations); the
  coefficients and their citation are project inputs, because they are species- and region-specific.
* Uncertainty is the half-width of the 90 % confidence interval of the stratified mean over the mean,
  with Student's t on ``n − M`` degrees of freedom (AR-TOOL14 v04.2, reference §1.4).
* Shrubs follow AR-TOOL14 Eq. 26–27 (reference §1.3).

>>> power_law(Decimal("0.00005"), Decimal(2), Decimal(1), Decimal(20), Decimal(15))
Decimal('0.30000')
>>> t_value_90(33)
Decimal('1.6924')
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from pydantic import Field

from carbon.methods.base import InputModel, Tracer, co2e_from_c

ZERO = Decimal(0)
ONE = Decimal(1)
M2_PER_HA = Decimal(10_000)


class PowerLawEquation(InputModel):
    """``a × dbh_cm^b × height_m^c`` giving ``output`` per tree, with its citation."""

    a: Decimal = Field(gt=0)
    b: Decimal
    c: Decimal = ZERO
    output: Literal["volume_m3", "biomass_kg"]
    citation: str = Field(min_length=1)


class Tree(InputModel):
    """One measured tree."""

    dbh_cm: Decimal = Field(gt=0)
    height_m: Decimal = Field(gt=0)


class SamplePlot(InputModel):
    """A measured sample plot: its area and its trees."""

    plot_id: str
    plot_area_m2: Decimal = Field(gt=0)
    trees: tuple[Tree, ...] = ()


def power_law(a: Decimal, b: Decimal, c: Decimal, dbh_cm: Decimal, height_m: Decimal) -> Decimal:
    """Return ``a × dbh^b × height^c`` (exact for integer exponents, correctly rounded otherwise)."""
    value = a * _power(dbh_cm, b)
    return value * _power(height_m, c) if c != ZERO else value


def _power(base: Decimal, exponent: Decimal) -> Decimal:
    if exponent == exponent.to_integral_value():
        return base ** int(exponent)
    return base**exponent


def plot_density_per_ha(plot: SamplePlot, equation: PowerLawEquation) -> Decimal:
    """Return the plot's per-hectare total of the equation's output (m³/ha or t d.m./ha).

    kg/tree summed, / 1000 kg/t, × 10000 m²/ha / plot m² = t/ha.
    """
    total = sum((power_law(equation.a, equation.b, equation.c, t.dbh_cm, t.height_m) for t in plot.trees), ZERO)
    if equation.output == "biomass_kg":
        total = total / 1000
    return total * M2_PER_HA / plot.plot_area_m2


@dataclass(frozen=True, slots=True)
class StratumSample:
    """Summary of one stratum's plots: area weight, mean, standard deviation, number of plots."""

    weight: Decimal
    mean: Decimal
    sd: Decimal
    n: int


@dataclass(frozen=True, slots=True)
class Uncertainty:
    """A stratified estimate with its 90 % confidence half-width."""

    mean: Decimal
    standard_error: Decimal
    t_value: Decimal
    half_width: Decimal
    relative: Decimal


def sample_summary(weight: Decimal, values: Sequence[Decimal]) -> StratumSample:
    """Return mean and standard deviation, ``s² = [n Σb² − (Σb)²] / [n (n − 1)]`` (AR-TOOL14).

    >>> sample_summary(Decimal(1), [Decimal(1), Decimal(3)]).sd
    Decimal('1.414213562373095048801688724')
    """
    n = len(values)
    total = sum(values, ZERO)
    if n < 2:
        return StratumSample(weight, total / n if n else ZERO, ZERO, n)
    variance = (n * sum((v * v for v in values), ZERO) - total * total) / (n * (n - 1))
    return StratumSample(weight, total / n, variance.sqrt(), n)


def stratified_uncertainty(strata: Sequence[StratumSample]) -> Uncertainty:
    """Return the stratified mean and its 90 % CI half-width (AR-TOOL14 v04.2; reference §1.4).

    ``u = t(0.90, n − M) × sqrt(Σ w_i² s_i² / n_i) / Σ w_i b_i``.

    Raises:
        ValueError: Fewer plots than strata + 1, or a zero mean.
    """
    n = sum(s.n for s in strata)
    degrees = n - len(strata)
    if degrees < 1 or any(s.n < 1 for s in strata):
        raise ValueError(f"{n} plot(s) in {len(strata)} stratum/strata leave no degrees of freedom")
    mean = sum((s.weight * s.mean for s in strata), ZERO)
    if mean == ZERO:
        raise ValueError("the stratified mean is zero; relative uncertainty is undefined")
    standard_error = sum((s.weight * s.weight * s.sd * s.sd / s.n for s in strata), ZERO).sqrt()
    t = t_value_90(degrees)
    half_width = t * standard_error
    return Uncertainty(mean, standard_error, t, half_width, half_width / abs(mean))


def t_value_90(degrees: int) -> Decimal:
    """Return Student's t for a two-sided 90 % interval, to 4 decimals (ROUND_HALF_EVEN).

    Computed by bisection on the regularised incomplete beta function; rounding to 4 decimals makes it
    platform-independent for hashing.
    """
    if degrees < 1:
        raise ValueError("degrees of freedom must be >= 1")
    low, high = 0.0, 100.0
    for _ in range(200):
        middle = (low + high) / 2
        if _t_upper_tail(middle, degrees) > 0.05:
            low = middle
        else:
            high = middle
    return Decimal(repr((low + high) / 2)).quantize(Decimal("0.0001"))


def _t_upper_tail(t: float, degrees: int) -> float:
    x = degrees / (degrees + t * t)
    return 0.5 * _incomplete_beta(degrees / 2, 0.5, x)


def _incomplete_beta(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 300):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return result


def shrub_stock_tco2e(
    tracer: Tracer, prefix: str, area_ha: Decimal, crown_cover: Decimal, forest_biomass_t_per_ha: Decimal
) -> Decimal:
    """Return the shrub carbon stock of one stratum (AR-TOOL14 Eq. 26–27), recording each step.

    ``b_SHRUB = BDR_SF × b_FOREST × CC`` (0 below the crown-cover threshold);
    ``C_SHRUB = 44/12 × CF_S × (1 + R_S) × A × b_SHRUB``.
    """
    threshold = tracer.parameter("shrub.crown_cover_threshold")
    ratio = tracer.parameter("shrub.biomass_ratio_bdr_sf")
    counted = crown_cover if crown_cover >= threshold else ZERO
    biomass = tracer.step(
        f"{prefix}.shrub_biomass_t_per_ha",
        "BDR_SF × b_FOREST × CC (CC < threshold counts as 0)",
        ratio * forest_biomass_t_per_ha * counted,
        "t d.m./ha",
        BDR_SF=ratio,
        b_FOREST=forest_biomass_t_per_ha,
        CC=crown_cover,
        threshold=threshold,
    )
    carbon_fraction = tracer.parameter("shrub.carbon_fraction")
    root_shoot = tracer.parameter("shrub.root_shoot")
    stock = co2e_from_c(carbon_fraction * (ONE + root_shoot) * area_ha * biomass)
    return tracer.step(
        f"{prefix}.shrub_stock_tco2e",
        "44/12 × CF_S × (1 + R_S) × A × b_SHRUB",
        stock,
        "t CO2e",
        CF_S=carbon_fraction,
        R_S=root_shoot,
        A_ha=area_ha,
        b_SHRUB=biomass,
    )


class StandFactors(InputModel):
    """Per-stratum overrides of the species defaults, with their source (else the parameter set's)."""

    wood_density_t_per_m3: Decimal | None = Field(default=None, gt=0)
    bef: Decimal | None = Field(default=None, gt=0)
    root_shoot: Decimal | None = Field(default=None, ge=0)
    carbon_fraction: Decimal | None = Field(default=None, gt=0, le=1)
    source: str = ""


@dataclass(frozen=True, slots=True)
class Factors:
    """Resolved conversion factors of one stratum."""

    wood_density_t_per_m3: Decimal
    bef: Decimal
    root_shoot: Decimal
    carbon_fraction: Decimal


FACTOR_NAMES = ("wood_density", "bef", "root_shoot", "carbon_fraction")


def missing_factors(species: str, overrides: StandFactors, available: set[str]) -> list[str]:
    """Return the parameter keys a stratum needs but neither overrides nor the parameter set supply."""
    given = {
        "wood_density": overrides.wood_density_t_per_m3,
        "bef": overrides.bef,
        "root_shoot": overrides.root_shoot,
        "carbon_fraction": overrides.carbon_fraction,
    }
    return [
        f"species.{species}.{n}" for n in FACTOR_NAMES if given[n] is None and f"species.{species}.{n}" not in available
    ]


def resolve_factors(tracer: Tracer, species: str, overrides: StandFactors) -> Factors:
    """Return D, BEF, R and CF: each override if given, else ``species.<species>.<name>`` of the parameter set."""

    def pick(value: Decimal | None, name: str) -> Decimal:
        return value if value is not None else tracer.parameter(f"species.{species}.{name}")

    return Factors(
        pick(overrides.wood_density_t_per_m3, "wood_density"),
        pick(overrides.bef, "bef"),
        pick(overrides.root_shoot, "root_shoot"),
        pick(overrides.carbon_fraction, "carbon_fraction"),
    )


def tree_stock_tco2e(tracer: Tracer, prefix: str, area_ha: Decimal, agb_t_per_ha: Decimal, factors: Factors) -> Decimal:
    """Return ``44/12 × CF × (1 + R) × A × b`` (AR-TOOL14 Eq. 12–14 with A1.5), recording the step."""
    stock = co2e_from_c(factors.carbon_fraction * (ONE + factors.root_shoot) * area_ha * agb_t_per_ha)
    return tracer.step(
        f"{prefix}.tree_stock_tco2e",
        "44/12 × CF × (1 + R) × A × b_TREE",
        stock,
        "t CO2e",
        CF=factors.carbon_fraction,
        R=factors.root_shoot,
        A_ha=area_ha,
        b_TREE_t_per_ha=agb_t_per_ha,
    )
