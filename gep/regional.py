"""The second pass of a run: indicators whose per-pixel quantity depends on a whole-region sum (pure).

Three quantities cannot be computed pixel by pixel, because their equation takes a regional total:

- **lakes** (flood regulation): C_l = e^a · A^b · T with A the lake area — concave in A, so it needs the
  area first. A run treats a region's lake pixels (legend ``flood_storage = "lake"``) as *one* lake of
  the region's total lake area (polygons of individual lakes are not in a raster stack). Because
  b < 1, this gives less storage than summing lake by lake would (Σ A_i^b ≥ (Σ A_i)^b): a conservative
  choice, documented in ADR 017;
- **reservoirs** (flood regulation): C_r = k_r · C_t with C_t the region's total reservoir capacity
  from the run's table (``reservoir_capacity_m3``: region code → m³), spread over the region's
  reservoir pixels in proportion to their area;
- **purification** (air and water): credited removal = min(Σ capacity, emission), with the region's
  emission from the run's table (``emissions_t``); when the cap binds, each pixel's capacity is scaled
  by ``emission / Σ capacity`` (:func:`gep.indicators.purification.cap_scale`).

So a tile returns, for these indicators, *basis* components per pixel (lake area, reservoir area, marsh
storage, purification capacity) with their exact per-region and per-class sums. After every tile is
merged (``math.fsum``), :func:`regional_result` turns a region's basis sums into its quantity and one
factor per component; the value raster is then the second, element-wise pass
``Σ_k basis_k × factor_k(region) × unit value`` (:meth:`gep.outputs.RasterWriter.assemble`). Both passes
use only tiling-independent sums, so the totals and the rasters do not depend on the tiling.

>>> params = RegionalParameters(6.636, 0.678, 1.0, 0.35, 0.3)
>>> result = regional_result("flood_regulation", {"lake": 1e7, "reservoir": 0.0, "marsh": 6e5},
...     params, reservoir_capacity_m3=0.0, emission_t=None)
>>> round(result.quantity / 1e4, 2)
3648.6
>>> regional_result("air_purification_so2", {"capacity": 1500.0}, params, reservoir_capacity_m3=0.0,
...     emission_t=1137.0).factors
{'capacity': 0.758}
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from core.errors import InvalidInput
from gep.indicators import flood_regulation, purification

#: m² per km².
M2_PER_KM2 = 1e6


def component_key(code: str, component: str) -> str:
    """Return the key of a basis component in tile results and tile rasters.

    >>> component_key("flood_regulation", "lake")
    'flood_regulation:lake'
    """
    return f"{code}:{component}"


@dataclass(frozen=True)
class RegionalParameters:
    """Coefficients of the regional indicators (from the coefficient table)."""

    lake_log_coefficient: float
    lake_area_exponent: float
    lake_water_exchanges: float
    reservoir_flood_share: float
    marsh_retention_depth_m: float


@dataclass(frozen=True)
class RegionalResult:
    """A region's quantity of one regional indicator and the per-pixel factor of each component."""

    quantity: float
    factors: dict[str, float]


def regional_result(
    code: str,
    basis: Mapping[str, float],
    params: RegionalParameters,
    *,
    reservoir_capacity_m3: float,
    emission_t: float | None,
) -> RegionalResult:
    """Return a region's quantity and factors from its basis sums.

    Raises:
        InvalidInput: Reservoir capacity but no reservoir pixel in the region (it could not be mapped),
            or a purification indicator without the region's emission.
    """
    if code == "flood_regulation":
        return _flood(basis, params, reservoir_capacity_m3)
    if emission_t is None:
        raise InvalidInput(f"{code}: no emission figure for the region", [{"indicator": code, "reason": "no-emission"}])
    capacity = basis["capacity"]
    return RegionalResult(
        purification.removed_t(capacity, emission_t), {"capacity": purification.cap_scale(capacity, emission_t)}
    )


def _flood(basis: Mapping[str, float], params: RegionalParameters, capacity_m3: float) -> RegionalResult:
    lake_m2, reservoir_m2, marsh_m2 = basis["lake"], basis["reservoir"], basis["marsh"]
    lake_m3 = 0.0
    if lake_m2 > 0.0:
        lake_m3 = float(
            flood_regulation.lake_storage_m3(
                lake_m2 / M2_PER_KM2,
                params.lake_water_exchanges,
                log_coefficient=params.lake_log_coefficient,
                area_exponent=params.lake_area_exponent,
            )
        )
    reservoir_m3 = float(flood_regulation.reservoir_storage_m3(capacity_m3, flood_share=params.reservoir_flood_share))
    if reservoir_m3 > 0.0 and reservoir_m2 <= 0.0:
        raise InvalidInput(
            "a region has a reservoir capacity but no reservoir pixel to map it to",
            [{"indicator": "flood_regulation", "reason": "reservoir-capacity-without-reservoir-pixels"}],
        )
    marsh_m3 = float(flood_regulation.marsh_storage_m3(marsh_m2, retention_depth_m=params.marsh_retention_depth_m))
    factors = {
        "lake": lake_m3 / lake_m2 if lake_m2 > 0.0 else 0.0,
        "reservoir": reservoir_m3 / reservoir_m2 if reservoir_m2 > 0.0 else 0.0,
        "marsh": params.marsh_retention_depth_m,
    }
    return RegionalResult(math.fsum((lake_m3, reservoir_m3, marsh_m3)), factors)
