"""Geodesic areas of the cells of a geographic (lon/lat) grid on the GRS80 ellipsoid.

A cell between latitudes φ1 < φ2 and Δλ radians of longitude covers exactly
``A = (Δλ / 2π) · (S(φ2) − S(φ1))``, where ``S(φ)`` is the area of the ellipsoid from the equator to φ over
the full circle of longitude (an ellipsoidal zone):

``S(φ) = 2π b² · [ sinφ / (2(1 − e² sin²φ)) + atanh(e sinφ) / (2e) ]``.

Pure numpy; vectorised over latitudes, so a raster's cell areas cost one value per row.

>>> round(float(cell_area_m2(0.0, 1.0, 1.0)) / 1e6, 3)  # 1°×1° cell bounded by parallels, km²
12308.464
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

GRS80_A_M = 6_378_137.0
GRS80_F = 1 / 298.257222101
_E2 = GRS80_F * (2 - GRS80_F)
_E = float(np.sqrt(_E2))
_B_M = GRS80_A_M * (1 - GRS80_F)


def _zone_m2(latitude_deg: NDArray[np.float64]) -> NDArray[np.float64]:
    """Area (m²) from the equator to ``latitude_deg`` over 2π of longitude."""
    sin = np.sin(np.radians(latitude_deg))
    return 2 * np.pi * _B_M**2 * (sin / (2 * (1 - _E2 * sin**2)) + np.arctanh(_E * sin) / (2 * _E))


def cell_area_m2(south_deg: ArrayLike, north_deg: ArrayLike, width_deg: float) -> NDArray[np.float64]:
    """Return the area (m²) of cells between ``south_deg`` and ``north_deg``, ``width_deg`` wide."""
    south = np.asarray(south_deg, dtype=np.float64)
    north = np.asarray(north_deg, dtype=np.float64)
    return np.abs(_zone_m2(north) - _zone_m2(south)) * (abs(width_deg) / 360.0)


def cell_area_at_m2(center_lat_deg: ArrayLike, height_deg: float, width_deg: float) -> NDArray[np.float64]:
    """Return the areas (m²) of cells of a lon/lat grid given their centre latitudes.

    >>> float(cell_area_at_m2(0.5, 1.0, 1.0)[()]) == float(cell_area_m2(0.0, 1.0, 1.0)[()])
    True
    """
    center = np.asarray(center_lat_deg, dtype=np.float64)
    half = abs(height_deg) / 2
    return cell_area_m2(center - half, center + half, width_deg)
