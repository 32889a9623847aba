"""Pollutant removal capped by emissions, shared by air and water purification (pure).

Prevention-cost method (Ouyang group, 生态学报 2017 37(19):6302): ecosystems are credited with the
pollutant they can take up, but never more than the region emits — the Ganzi study used the regional
emissions themselves as the amount. Per pixel::

    capacity [t] = uptake rate [t·km⁻²·a⁻¹] × area [m²] × 10⁻⁶ km²/m²

and regionally ``removed = min(Σ capacity, emission)``. When the cap binds, each pixel's share is
scaled by ``emission / Σ capacity`` (:func:`cap_scale`), so per-pixel rasters still sum to the total.
The cap is regional, so a run computes it after summing all tiles: a second, element-wise pass.

>>> removed_t(1500.0, 1137.0)
1137.0
>>> cap_scale(1500.0, 1137.0)
0.758
"""

from __future__ import annotations

import math

from core.errors import InvalidInput
from gep.arrays import ArrayLike, FloatArray, prepare

#: km² per m².
KM2_PER_M2 = 1e-6


def uptake_capacity_t(uptake_t_per_km2: ArrayLike, area_m2: ArrayLike) -> FloatArray:
    """Return what each pixel can take up (t/a) = rate (t/km²) × area (m²) × 10⁻⁶ km²/m².

    >>> float(uptake_capacity_t(2.0, 1e6))
    2.0
    """
    inputs = prepare({"uptake_t_per_km2": uptake_t_per_km2, "area_m2": area_m2})
    return inputs["uptake_t_per_km2"] * inputs["area_m2"] * KM2_PER_M2


def _check_totals(capacity_t: float, emission_t: float) -> None:
    for name, value in (("capacity_t", capacity_t), ("emission_t", emission_t)):
        if not (math.isfinite(value) and value >= 0.0):
            raise InvalidInput(
                f"{name} must be a finite number ≥ 0, got {value!r}", [{"input": name, "reason": "negative"}]
            )


def removed_t(capacity_t: float, emission_t: float) -> float:
    """Return the credited removal min(capacity, emission) in tonnes.

    Raises:
        InvalidInput: A negative or non-finite total.
    """
    _check_totals(capacity_t, emission_t)
    return min(capacity_t, emission_t)


def cap_scale(capacity_t: float, emission_t: float) -> float:
    """Return the factor that scales per-pixel capacity down to the capped regional removal.

    >>> cap_scale(100.0, 250.0)
    1.0
    >>> cap_scale(0.0, 5.0)
    1.0
    """
    _check_totals(capacity_t, emission_t)
    if capacity_t <= emission_t:
        return 1.0
    return emission_t / capacity_t
