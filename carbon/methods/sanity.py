"""Sanity warnings from the reference's plausibility bands (pure).

The bands (reference §6.3) are parameters of each credit class's set. A result outside a band gets a
warning in its ``warnings`` list; the value itself is never clipped or changed.

Bands: arid or semi-arid tree plantations outside 0.5–10 t CO2e/ha/yr; shrub or restoration sites above
about 3 t CO2e/ha/yr; any stand in its first 3 years above about 1 t CO2e/ha/yr.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from carbon.methods.base import SanityWarning, Tracer

ZERO = Decimal(0)


def rate_warnings(
    tracer: Tracer,
    *,
    rate_tco2e_per_ha_yr: Decimal,
    kind: Literal["tree", "shrub"],
    arid: bool,
    stand_age_years: Decimal | None,
) -> list[SanityWarning]:
    """Return the warnings for one annual per-hectare removal rate."""
    rate = rate_tco2e_per_ha_yr.quantize(Decimal("0.01"))
    warnings = []
    if kind == "tree" and arid:
        low = tracer.parameter("sanity.arid_tree.min_tco2e_per_ha_yr")
        high = tracer.parameter("sanity.arid_tree.max_tco2e_per_ha_yr")
        if not low <= rate_tco2e_per_ha_yr <= high:
            warnings.append(
                SanityWarning(
                    "band.arid_tree",
                    f"{rate} t CO2e/ha/yr is outside the {low}–{high} band of "
                    "arid or semi-arid tree plantations; review before verification",
                )
            )
    if kind == "shrub":
        high = tracer.parameter("sanity.shrub.max_tco2e_per_ha_yr")
        if rate_tco2e_per_ha_yr > high:
            warnings.append(
                SanityWarning(
                    "band.shrub",
                    f"{rate} t CO2e/ha/yr is above the ~{high} band of shrub or "
                    "restoration sites; review before verification",
                )
            )
    if stand_age_years is not None:
        young = tracer.parameter("sanity.young_stand.years")
        high = tracer.parameter("sanity.young_stand.max_tco2e_per_ha_yr")
        if stand_age_years <= young and rate_tco2e_per_ha_yr > high:
            warnings.append(
                SanityWarning(
                    "band.young_stand",
                    f"{rate} t CO2e/ha/yr in year {stand_age_years:.1f} after "
                    f"planting is above the ~{high} band for years 1–{young}; review",
                )
            )
    return warnings
