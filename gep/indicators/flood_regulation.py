"""Flood regulation 洪水调蓄: storage of lakes, reservoirs and marshes (pure, vectorised).

Equations (Ouyang group, 生态学报 2017 37(19):6302, after 饶恩明 et al. 2014)::

    lakes       C_l [万m³/a] = e^a · A^b · T      A lake area (km²), T water exchanges per year
    reservoirs  C_r [m³]     = k_r · C_t          C_t total capacity (m³), k_r = 0.35
    marshes     C_m [m³]     = d · S              S area (m²), d = 0.3 m retention depth

a = 6.636 and b = 0.678 are the Qinghai–Tibet Plateau regression; regional coefficients belong in
the coefficient table. The paper labels C_m "万m³/a", but its own figures are m³ (reference T6): the
kernel returns m³. Water bodies are features (one value per lake), so the inputs are 1-D arrays.

>>> round(float(lake_storage_m3(10.0, 1.0, log_coefficient=6.636, area_exponent=0.678)) / 1e4, 2)
3630.6
"""

from __future__ import annotations

import numpy as np

from gep.arrays import ArrayLike, FloatArray, prepare

#: m³ per 万m³.
M3_PER_WAN_M3 = 1e4


def lake_storage_m3(
    area_km2: ArrayLike, exchanges_per_year: ArrayLike, *, log_coefficient: float, area_exponent: float
) -> FloatArray:
    """Return lake flood storage (m³/a) = e^a · A^b · T × 10⁴ m³/万m³."""
    inputs = prepare({"area_km2": area_km2, "exchanges_per_year": exchanges_per_year})
    storage_wan_m3: FloatArray = (
        np.exp(log_coefficient) * inputs["area_km2"] ** area_exponent * inputs["exchanges_per_year"]
    )
    return storage_wan_m3 * M3_PER_WAN_M3


def reservoir_storage_m3(capacity_m3: ArrayLike, *, flood_share: float) -> FloatArray:
    """Return reservoir flood storage (m³) = share × total capacity.

    >>> float(reservoir_storage_m3(1e7, flood_share=0.35))
    3500000.0
    """
    return prepare({"capacity_m3": capacity_m3})["capacity_m3"] * flood_share


def marsh_storage_m3(area_m2: ArrayLike, *, retention_depth_m: float) -> FloatArray:
    """Return marsh flood storage (m³) = retention depth (m) × area (m²).

    >>> float(marsh_storage_m3(2e6, retention_depth_m=0.3))
    600000.0
    """
    return prepare({"area_m2": area_m2})["area_m2"] * retention_depth_m
