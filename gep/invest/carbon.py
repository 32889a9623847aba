"""InVEST Carbon storage and sequestration on numpy blocks (pure; InVEST 3.20 arithmetic).

As in ``natcap.invest.carbon`` since 3.15.0, rasters are densities in **t C/ha** (not t/pixel):

- storage (t/ha) = c_above + c_below + c_soil + c_dead of the pixel's land-cover row;
- sequestration (t/ha) = storage_alt − storage_bas;
- a total is Σ density (t/ha) × pixel area (ha) — for InVEST's summary table, Σ × pixel_area / 10⁴;
- valuation: NPV (元/ha) = sequestration × constant, with
  constant = price / (year_alt − year_bas) · Σ_{t=0}^{n−1} 1 / ((1 + r/100)^t (1 + c/100)^t).

A land-cover code without a row in the pools table is refused (InVEST does the same); NaN land cover
is nodata and stays NaN.

>>> pools = CarbonPools(rows={1: CarbonPool(above=80, below=20, soil=100, dead=5)})
>>> carbon_storage_t_per_ha([1.0, float("nan")], pools).tolist()
[205.0, nan]
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field

from core.errors import InvalidInput
from gep.arrays import ArrayLike, FloatArray, exact_sum, lookup, prepare

#: m² per hectare.
M2_PER_HA = 1e4


class CarbonPool(BaseModel):
    """Carbon densities of one land-cover class (t C/ha), InVEST's ``c_above … c_dead`` columns."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    above: float = Field(ge=0)
    below: float = Field(ge=0)
    soil: float = Field(ge=0)
    dead: float = Field(ge=0)

    @property
    def total_t_per_ha(self) -> float:
        """Return the sum of the four pools (t C/ha)."""
        return math.fsum((self.above, self.below, self.soil, self.dead))


class CarbonPools(BaseModel):
    """The pools table keyed by land-cover code (InVEST's ``lucode``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: dict[int, CarbonPool]


def carbon_storage_t_per_ha(lulc: ArrayLike, pools: CarbonPools) -> FloatArray:
    """Return total carbon storage per pixel (t C/ha) from land-cover codes."""
    return lookup(lulc, {code: pool.total_t_per_ha for code, pool in pools.rows.items()}, name="lulc")


def carbon_sequestration_t_per_ha(lulc_bas: ArrayLike, lulc_alt: ArrayLike, pools: CarbonPools) -> FloatArray:
    """Return storage change alt − bas per pixel (t C/ha)."""
    prepare({"lulc_bas": lulc_bas, "lulc_alt": lulc_alt})
    return carbon_storage_t_per_ha(lulc_alt, pools) - carbon_storage_t_per_ha(lulc_bas, pools)


def total_t(density_t_per_ha: ArrayLike, pixel_area_m2: ArrayLike) -> float:
    """Return Σ density (t/ha) × pixel area (m²) / 10⁴ m²/ha, exactly summed (NaN skipped).

    >>> total_t([205.0, 70.0], 900.0)
    24.75
    """
    inputs = prepare({"density_t_per_ha": density_t_per_ha, "pixel_area_m2": pixel_area_m2})
    return exact_sum(inputs["density_t_per_ha"] * inputs["pixel_area_m2"] / M2_PER_HA)


def valuation_constant(
    *, price_per_t: float, discount_rate_percent: float, rate_change_percent: float, year_bas: int, year_alt: int
) -> float:
    """Return InVEST's NPV multiplier per t C of sequestration.

    >>> round(valuation_constant(price_per_t=100, discount_rate_percent=7, rate_change_percent=0,
    ...     year_bas=2020, year_alt=2030), 6)
    75.152322
    """
    years = year_alt - year_bas
    if years <= 0:
        raise InvalidInput(
            f"year_alt ({year_alt}) must be after year_bas ({year_bas})",
            [{"input": "year_alt", "reason": "not-after-year_bas"}],
        )
    discount = 1.0 + discount_rate_percent / 100.0
    change = 1.0 + rate_change_percent / 100.0
    series = math.fsum(1.0 / (discount**t * change**t) for t in range(years))
    return price_per_t / years * series


def npv_per_ha(sequestration_t_per_ha: ArrayLike, constant: float) -> FloatArray:
    """Return the NPV density (currency/ha) = sequestration (t/ha) × constant (currency/t)."""
    return prepare({"sequestration_t_per_ha": sequestration_t_per_ha})["sequestration_t_per_ha"] * constant
