"""Coordinate reference systems: detect, check against the coordinates, and reproject to CGCS2000.

Plots are stored in EPSG:4490 (CGCS2000 geographic, lon/lat). Accepted sources: EPSG:4490, EPSG:4326
and other geographic CRSs, the CGCS2000 3° and 6° Gauss-Krüger zones with the zone number prefixed to the
false easting (EPSG:4513–4533, 4491–4501) or without it (central-meridian CRSs EPSG:4534–4554,
4502–4512), UTM, and any other projected CRS PROJ can transform. Refused, with a reason and, where
the coordinates allow one, a suggested CRS:

* projected coordinates with no CRS (a Shapefile without its ``.prj``);
* latitude and longitude swapped;
* a CRS that does not fit the coordinates — geographic CRS with metre coordinates, a Gauss-Krüger CRS
  whose zone prefix disagrees with the eastings, or a transformation that yields infinities;
* coordinates outside China (tested per feature against a coarse national outline, see
  ``docs/data-provenance.md``; a bounding box would accept Mongolia).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from core.errors import InvalidCrs

CGCS2000 = "EPSG:4490"
#: EPSG code of CGCS2000 3° GK zone n (n = 25…45) with the zone prefix: 4488 + n; 6° zone n (13…23): 4478 + n.
GK3_PREFIXED_OFFSET = 4488
GK6_PREFIXED_OFFSET = 4478


@dataclass(frozen=True)
class Normalised:
    """Geometries reprojected to CGCS2000 lon/lat and the CRS they came from."""

    geometries: list[BaseGeometry]
    source_crs: str
    assumed: bool


@lru_cache(maxsize=1)
def china_outline() -> BaseGeometry:
    """Return the coarse national outline (prepared for fast predicates)."""
    text = resources.files("geodata").joinpath("data/china_outline.geojson").read_text(encoding="utf-8")
    outline = shape(json.loads(text)["features"][0]["geometry"])
    shapely.prepare(outline)
    return outline


def in_china(geometry: BaseGeometry) -> bool:
    """Return whether a lon/lat geometry lies in China (its representative point, coarse outline).

    >>> from shapely.geometry import Point
    >>> in_china(Point(106.3, 35.5)), in_china(Point(106.9, 47.9))  # Jingyuan; Ulaanbaatar
    (True, False)
    """
    return bool(china_outline().contains(geometry.representative_point()))


def suggest_crs(x: float, y: float) -> str | None:
    """Suggest a CGCS2000 Gauss-Krüger CRS from a projected coordinate carrying a zone prefix.

    >>> suggest_crs(36_512_345.0, 3_930_000.0)
    'EPSG:4524 (CGCS2000 3-degree Gauss-Kruger zone 36)'
    >>> suggest_crs(18_650_000.0, 4_200_000.0)
    'EPSG:4496 (CGCS2000 6-degree Gauss-Kruger zone 18)'
    >>> suggest_crs(512_345.0, 3_930_000.0) is None
    True
    """
    zone = int(x // 1_000_000)
    if not 1_000_000 <= y <= 6_500_000:
        return None
    if 25 <= zone <= 45:
        return f"EPSG:{GK3_PREFIXED_OFFSET + zone} (CGCS2000 3-degree Gauss-Kruger zone {zone})"
    if 13 <= zone <= 23:
        return f"EPSG:{GK6_PREFIXED_OFFSET + zone} (CGCS2000 6-degree Gauss-Kruger zone {zone})"
    return None


def _bounds(geometries: Sequence[BaseGeometry]) -> tuple[float, float, float, float]:
    minx, miny, maxx, maxy = shapely.total_bounds(np.asarray(geometries, dtype=object))
    return float(minx), float(miny), float(maxx), float(maxy)


def _lonlat_like(bounds: tuple[float, float, float, float]) -> bool:
    minx, miny, maxx, maxy = bounds
    return -180 <= minx and maxx <= 180 and -90 <= miny and maxy <= 90


def _refuse(reason: str, bounds: tuple[float, float, float, float], suggestion: str | None = None) -> InvalidCrs:
    problem = {"reason": reason, "location": [bounds[0], bounds[1]], "suggested_crs": suggestion}
    return InvalidCrs(reason, [problem])


def _check_swapped(bounds: tuple[float, float, float, float]) -> None:
    minx, miny, maxx, maxy = bounds
    swapped = shapely.box(miny, minx, maxy, maxx)
    if -90 <= minx and maxx <= 90 and -180 <= miny and maxy <= 180 and not in_china(shapely.box(*bounds)):
        if in_china(swapped):
            raise _refuse("latitude and longitude are swapped: write longitude first (x = lon, y = lat)", bounds)


def _false_easting(crs: CRS) -> float | None:
    operation = crs.coordinate_operation
    if operation is None:
        return None
    for parameter in operation.params:
        if parameter.name.lower() == "false easting":
            return float(parameter.value)
    return None


def _check_projected(crs: CRS, bounds: tuple[float, float, float, float]) -> None:
    if _lonlat_like(bounds):
        raise _refuse(f"the CRS {crs.name!r} is projected but the coordinates look like degrees", bounds, CGCS2000)
    false_easting = _false_easting(crs)
    if false_easting is None:
        return
    has_prefix = bounds[0] >= 1_000_000
    if has_prefix and false_easting < 1_000_000:
        reason = f"eastings carry a zone prefix but the CRS {crs.name!r} has none (false easting {false_easting:.0f})"
        raise _refuse(reason, bounds, suggest_crs(bounds[0], bounds[1]))
    if not has_prefix and false_easting >= 1_000_000:
        reason = f"the CRS {crs.name!r} expects a zone prefix in the eastings (false easting {false_easting:.0f})"
        raise _refuse(reason, bounds)


def _source_crs(source: str | None, bounds: tuple[float, float, float, float]) -> tuple[CRS, bool]:
    if source is None:
        if _lonlat_like(bounds):
            return CRS.from_user_input(CGCS2000), True
        suggestion = suggest_crs(bounds[0], bounds[1])
        hint = "" if suggestion else "; eastings without a zone prefix cannot identify their zone"
        raise _refuse(f"projected coordinates without a CRS (add the .prj file){hint}", bounds, suggestion)
    try:
        return CRS.from_user_input(source), False
    except CRSError as error:
        raise _refuse(f"the CRS cannot be read: {error}", bounds) from error


def to_cgcs2000(geometries: Sequence[BaseGeometry], source: str | None) -> Normalised:
    """Reproject ``geometries`` from ``source`` (``None``: no CRS given) to EPSG:4490 lon/lat.

    Raises:
        InvalidCrs: One of the refusals listed in the module docstring (layer-wide).
    """
    if not geometries:
        return Normalised([], source or CGCS2000, source is None)
    bounds = _bounds(geometries)
    crs, assumed = _source_crs(source, bounds)
    if crs.is_geographic:
        _check_swapped(bounds)
        if not _lonlat_like(bounds):
            raise _refuse(
                f"the CRS {crs.name!r} is geographic but the coordinates are not degrees",
                bounds,
                suggest_crs(bounds[0], bounds[1]),
            )
    else:
        _check_projected(crs, bounds)
    name = crs.to_string()
    if crs.equals(CRS.from_user_input(CGCS2000)):
        return Normalised(list(geometries), name, assumed)
    transformer = Transformer.from_crs(crs, CGCS2000, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    projected = [shapely.transform(g, project) for g in geometries]
    out = _bounds(projected)
    if not all(math.isfinite(v) for v in out) or not _lonlat_like(out):
        raise _refuse(f"the CRS {crs.name!r} does not fit the coordinates (they transform to no valid lon/lat)", bounds)
    return Normalised(projected, name, assumed)
