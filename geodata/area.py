"""Geodesic area and perimeter on the CGCS2000 ellipsoid.

CGCS2000 (EPSG:4490) uses an ellipsoid that is GRS80 to within 0.1 mm of the semi-minor axis, so areas
are computed with :class:`pyproj.Geod` on GRS80 — exact geodesic polygons, not planar approximations.
Coordinates are longitude/latitude in degrees.

>>> from shapely.geometry import box
>>> m = measure(box(106.0, 35.0, 106.01, 35.01))
>>> round(m.area_ha, 2), round(m.area_mu, 2)
(101.27, 1519.04)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pyproj import Geod
from shapely.geometry.base import BaseGeometry

from core.units import ha_from_m2, mu_from_m2


@lru_cache(maxsize=1)
def cgcs2000_geod() -> Geod:
    """Return the geodesic calculator on the GRS80 ellipsoid (CGCS2000)."""
    return Geod(ellps="GRS80")


@dataclass(frozen=True)
class Measurement:
    """A polygon's geodesic area (m², ha, mu) and perimeter (m)."""

    area_m2: float
    perimeter_m: float

    @property
    def area_ha(self) -> float:
        """Return the area in hectares."""
        return ha_from_m2(self.area_m2)

    @property
    def area_mu(self) -> float:
        """Return the area in mu (1 mu = 10000/15 m²)."""
        return mu_from_m2(self.area_m2)


def measure(geometry: BaseGeometry) -> Measurement:
    """Return the geodesic area and perimeter of a lon/lat (multi)polygon.

    The sign of pyproj's area follows ring orientation; the absolute value is taken, so input
    orientation does not matter (RFC 7946 recommends counter-clockwise exteriors but readers must
    accept both).
    """
    area_m2, perimeter_m = cgcs2000_geod().geometry_area_perimeter(geometry)
    return Measurement(abs(float(area_m2)), float(perimeter_m))
