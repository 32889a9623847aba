"""Water conservation 水源涵养: the water balance P − R − ET over each pixel (pure block kernel).

Equation (RCEES/Ouyang group, 生态学报 2017 37(19):6302, and the 规范 family)::

    Q_wr [m³] = (P − R − ET) [mm] × A [m²] × 10⁻³ [m/mm]

valued at the reservoir construction cost per m³ of capacity (price key ``reservoir_cost``).

Pixels where evapotranspiration and storm runoff exceed precipitation have a negative balance. How
the specifications treat them is not confirmed (reference gep.md §1.3a), so the caller chooses a
:class:`NegativeBalancePolicy` explicitly; there is no default (ADR 006). The policy is part of the
run's recorded configuration.

Block-friendly: element-wise, no halo.

>>> float(water_conservation_m3(450.0, 50.0, 350.0, 1e6, policy=NegativeBalancePolicy.CLAMP_TO_ZERO))
50000.0
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from gep.arrays import ArrayLike, FloatArray, prepare

#: mm → m (m/mm).
M_PER_MM = 1e-3


class NegativeBalancePolicy(StrEnum):
    """What to do with pixels whose balance P − R − ET is negative."""

    #: A pixel that loses water supplies no conservation service: its balance counts as 0.
    CLAMP_TO_ZERO = "clamp-to-zero"
    #: Keep the deficit, so the regional total is the net water balance.
    ALLOW_NEGATIVE = "allow-negative"


def storm_runoff_mm(precipitation_mm: ArrayLike, runoff_coefficient: ArrayLike) -> FloatArray:
    """Return storm runoff R = P · α (mm) from a runoff coefficient α (dimensionless, per pixel).

    >>> storm_runoff_mm([500.0, 200.0], 0.1).tolist()
    [50.0, 20.0]
    """
    inputs = prepare({"precipitation_mm": precipitation_mm, "runoff_coefficient": runoff_coefficient})
    return inputs["precipitation_mm"] * inputs["runoff_coefficient"]


def water_balance_mm(
    precipitation_mm: ArrayLike,
    runoff_mm: ArrayLike,
    evapotranspiration_mm: ArrayLike,
    *,
    policy: NegativeBalancePolicy,
) -> FloatArray:
    """Return the per-pixel balance P − R − ET (mm) under ``policy``.

    >>> water_balance_mm([300.0], [20.0], [320.0], policy=NegativeBalancePolicy.ALLOW_NEGATIVE).tolist()
    [-40.0]
    >>> water_balance_mm([300.0], [20.0], [320.0], policy=NegativeBalancePolicy.CLAMP_TO_ZERO).tolist()
    [0.0]
    """
    inputs = prepare(
        {
            "precipitation_mm": precipitation_mm,
            "runoff_mm": runoff_mm,
            "evapotranspiration_mm": evapotranspiration_mm,
        }
    )
    balance_mm = inputs["precipitation_mm"] - inputs["runoff_mm"] - inputs["evapotranspiration_mm"]
    if NegativeBalancePolicy(policy) is NegativeBalancePolicy.CLAMP_TO_ZERO:
        # np.maximum propagates NaN, so nodata stays nodata (np.fmax would not).
        balance_mm = np.maximum(balance_mm, 0.0)
    return balance_mm


def water_conservation_m3(
    precipitation_mm: ArrayLike,
    runoff_mm: ArrayLike,
    evapotranspiration_mm: ArrayLike,
    area_m2: ArrayLike,
    *,
    policy: NegativeBalancePolicy,
) -> FloatArray:
    """Return the water conserved per pixel (m³) = balance (mm) × area (m²) × 10⁻³ m/mm.

    Args:
        precipitation_mm: Annual precipitation P.
        runoff_mm: Storm runoff R (see :func:`storm_runoff_mm`).
        evapotranspiration_mm: Actual evapotranspiration ET.
        area_m2: Pixel area (scalar for a projected grid, rows from :mod:`gep.pixel_area` otherwise).
        policy: Negative-balance policy; required, recorded with the run.

    Raises:
        InvalidInput: Misaligned or all-NaN inputs.
    """
    balance_mm = water_balance_mm(precipitation_mm, runoff_mm, evapotranspiration_mm, policy=policy)
    area = prepare({"area_m2": area_m2})["area_m2"]
    prepare({"balance_mm": balance_mm, "area_m2": area})
    # mm × m² × (m/mm) = m³
    return balance_mm * area * M_PER_MM
