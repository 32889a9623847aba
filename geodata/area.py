"""Geodesic area and perimeter on the CGCS2000 ellipsoid.

CGCS2000 (EPSG:4490) uses an ellipsoid that is GRS80 to within 0.1 mm of the semi-minor axis, so areas
are computed with :class:`pyproj.Geod` on GRS80 — exact geodesic polygons, not planar approximations.
Coordinates are longitude/latitude in degrees.

Invariant: an area never depends on how the rings are wound. pyproj's geodesic sum is *signed* — a
counter-clockwise ring counts positive, a clockwise one negative, and a polygon's holes are simply added
to its exterior — so every ring is first oriented (exterior counter-clockwise, holes clockwise, as
RFC 7946 §3.1.6 prescribes) by :func:`oriented`. Taking the absolute value of the sum instead is wrong:
a hole wound like its exterior would be *added*, and two parts of a MultiPolygon wound in opposite
directions would cancel. GeoJSON readers must accept either winding (RFC 7946 §3.1.6), and KML,
GeoPackage, Shapefile and CSV-WKT promise none.

>>> from shapely.geometry import box
>>> m = measure(box(106.0, 35.0, 106.01, 35.01))
>>> round(m.area_ha, 2), round(m.area_mu, 2)
(101.27, 1519.04)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import shapely
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


def oriented(geometry: BaseGeometry) -> BaseGeometry:
    """Return ``geometry`` with every polygon ring wound as RFC 7946 says: exterior CCW, holes CW.

    Applies to Polygons, MultiPolygons and the polygonal members of a GeometryCollection (what an
    intersection may return); other geometries are returned unchanged. Winding is decided in the
    lon/lat plane, which for any ring smaller than a hemisphere agrees with the geodesic winding.

    >>> from shapely.geometry import Polygon
    >>> clockwise = Polygon([(0, 0), (0, 1), (1, 1), (1, 0)])
    >>> clockwise.exterior.is_ccw, oriented(clockwise).exterior.is_ccw
    (False, True)
    """
    result: BaseGeometry = shapely.orient_polygons(geometry, exterior_cw=False)
    return result


def measure(geometry: BaseGeometry) -> Measurement:
    """Return the geodesic area and perimeter of a lon/lat (multi)polygon, whatever its rings' winding.

    Rings are oriented first (:func:`oriented`), so pyproj's signed sum is exterior minus holes for
    each part, and the parts add up.

    >>> from shapely.geometry import Polygon
    >>> outer = [(106.0, 35.0), (106.01, 35.0), (106.01, 35.01), (106.0, 35.01)]
    >>> hole = [(106.002, 35.002), (106.004, 35.002), (106.004, 35.004), (106.002, 35.004)]
    >>> same_winding = Polygon(outer, [hole])  # hole wound like the exterior: still subtracted
    >>> round(measure(same_winding).area_m2) == round(measure(Polygon(outer, [hole[::-1]])).area_m2)
    True
    """
    area_m2, perimeter_m = cgcs2000_geod().geometry_area_perimeter(oriented(geometry))
    # Oriented rings give a positive sum; abs() only removes a -0.0 of degenerate input.
    return Measurement(abs(float(area_m2)), float(perimeter_m))
