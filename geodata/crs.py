"""Coordinate reference systems: detect, check against the coordinates, and reproject to CGCS2000.

Plots are stored in EPSG:4490 (CGCS2000 geographic, lon/lat). Accepted sources: EPSG:4490, EPSG:4326
and other geographic CRSs, the CGCS2000 3° and 6° Gauss-Krüger zones with the zone number prefixed to the
false easting (EPSG:4513–4533, 4491–4501) or without it (central-meridian CRSs EPSG:4534–4554,
4502–4512), UTM, and any other projected CRS PROJ can transform. Refused, with a reason and, where
the coordinates allow one, a suggested CRS:

* projected coordinates with no CRS (a Shapefile without its ``.prj``);
* latitude and longitude swapped;
* a CRS that does not fit the coordinates — geographic CRS with metre coordinates, or a transformation
  that yields infinities;
* projected coordinates outside the declared CRS's area of use (``geodata/crs-mismatch``), typically a
  ``.prj`` of one Gauss-Krüger zone on coordinates of another, or a zone prefix in the eastings that the
  CRS does not expect (or the reverse): the refusal names every CGCS2000 Gauss-Krüger CRS (3° and 6°,
  with and without the zone prefix) and UTM zone over China whose area of use would contain them
  (:func:`fitting_zones`). EPSG's areas of use of these CRSs are "China - onshore … between …°E and …°E",
  so a zone fits when the layer's points lie in its bounding box (± :data:`AREA_OF_USE_MARGIN_DEG`)
  *and* in China: a wrong prefix-free zone keeps the points inside its longitude band but may drop them
  in the sea;
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

from core.errors import CrsMismatch, InvalidCrs

CGCS2000 = "EPSG:4490"
#: EPSG code of CGCS2000 3° GK zone n (n = 25…45) with the zone prefix: 4488 + n; 6° zone n (13…23): 4478 + n.
GK3_PREFIXED_OFFSET = 4488
GK6_PREFIXED_OFFSET = 4478
#: Every CGCS2000 Gauss-Krüger CRS: 3° zones 25–45 with the zone prefix, then by central meridian 75°E–135°E;
#: 6° zones 13–23 with the prefix, then by central meridian.
GK_ZONE_CODES = (*range(4513, 4534), *range(4534, 4555), *range(4491, 4502), *range(4502, 4513))
#: WGS 84 / UTM zones 43N–53N, the ones over China.
UTM_ZONE_CODES = tuple(range(32643, 32654))
#: The CRSs :func:`fitting_zones` tries.
CANDIDATE_CODES = (*GK_ZONE_CODES, *UTM_ZONE_CODES)
#: A refusal's reason names at most this many candidates (``candidate_crs`` lists them all).
NAMED_CANDIDATES = 3
#: Slack around an area of use's bounding box: a county straddling a zone boundary is often surveyed in
#: one zone, a little beyond its band; a wrong zone puts the points a whole band (3° or 6°) away or more.
AREA_OF_USE_MARGIN_DEG = 1.0


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


@dataclass(frozen=True)
class AreaOfUse:
    """Where a CRS may be used: a lon/lat bounding box and whether it is restricted to China."""

    west: float
    south: float
    east: float
    north: float
    china_only: bool

    def contains(self, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Return, per point, whether it lies in the area of use (box ± margin; in China if China-only)."""
        margin = AREA_OF_USE_MARGIN_DEG
        with np.errstate(invalid="ignore"):
            inside = (lat >= self.south - margin) & (lat <= self.north + margin)
            if self.west <= self.east:
                inside &= (lon >= self.west - margin) & (lon <= self.east + margin)
            else:  # crosses the antimeridian
                inside &= (lon >= self.west - margin) | (lon <= self.east + margin)
        inside &= np.isfinite(lon) & np.isfinite(lat)
        if self.china_only and inside.any():
            inside &= shapely.contains_xy(china_outline(), np.nan_to_num(lon), np.nan_to_num(lat))
        return np.asarray(inside, dtype=bool)


def area_of_use(crs: CRS) -> AreaOfUse | None:
    """Return the CRS's area of use, looking it up by EPSG code when the CRS came from an ESRI ``.prj``.

    >>> aou = area_of_use(CRS.from_epsg(4524))
    >>> (aou.west, aou.east, aou.china_only)
    (106.5, 109.51, True)
    """
    found = crs.area_of_use
    if found is None:
        code = crs.to_epsg(min_confidence=70)
        found = CRS.from_epsg(code).area_of_use if code is not None else None
    if found is None:
        return None
    west, south, east, north = found.bounds
    return AreaOfUse(west, south, east, north, found.name.startswith("China"))


def crs_label(code: int) -> str:
    """Return ``EPSG:<code> (<name>)``, the form every CRS suggestion takes.

    >>> crs_label(4523)
    'EPSG:4523 (CGCS2000 / 3-degree Gauss-Kruger zone 35)'
    """
    return f"EPSG:{code} ({_crs(code).name})"


@lru_cache(maxsize=128)
def _crs(code: int) -> CRS:
    return CRS.from_epsg(code)


@lru_cache(maxsize=128)
def _to_lonlat(code: int) -> Transformer:
    return Transformer.from_crs(_crs(code), CGCS2000, always_xy=True)


def _family(code: int | None) -> str | None:
    """Name the family of a candidate EPSG code (zone width and prefix), ``None`` for another CRS."""
    families = {
        "gk3-prefixed": range(4513, 4534),
        "gk3": range(4534, 4555),
        "gk6-prefixed": range(4491, 4502),
        "gk6": range(4502, 4513),
        "utm": range(32643, 32654),
    }
    return next((name for name, codes in families.items() if code in codes), None)


def fitting_zones(x: np.ndarray, y: np.ndarray, *, declared: int | None = None) -> list[int]:
    """Return the zone CRSs (:data:`CANDIDATE_CODES`) whose area of use, in China, contains every point.

    Zones of the declared CRS's family (3° or 6° Gauss-Krüger, prefixed or not, UTM) come first.
    Prefix-free eastings fit every zone that puts them in China at their latitude; prefixed eastings
    fit only their own zone.

    >>> fitting_zones(np.array([35_620_000.0]), np.array([3_930_000.0]))
    [4523]
    """
    family = _family(declared)
    fitting: list[int] = []
    for code in CANDIDATE_CODES:
        if code == declared:
            continue
        lon, lat = (np.asarray(v) for v in _to_lonlat(code).transform(x, y))
        zone_area = area_of_use(_crs(code))
        if zone_area is None or not zone_area.contains(lon, lat).all():
            continue
        if shapely.contains_xy(china_outline(), lon, lat).all():  # plots are in China, whatever the CRS
            fitting.append(code)
    twin = _prefix_twin(declared)
    return sorted(fitting, key=lambda c: (c != twin, _family(c) != family, CANDIDATE_CODES.index(c)))


def _prefix_twin(code: int | None) -> int | None:
    """The same zone with the zone prefix added or removed (EPSG:4523 ⇄ EPSG:4544, 4496 ⇄ 4507)."""
    twins = {**{c: c + 21 for c in range(4513, 4534)}, **{c: c + 11 for c in range(4491, 4502)}}
    twins |= {twin: c for c, twin in twins.items()}
    return twins.get(code) if code is not None else None


def _representative_xy(geometries: Sequence[BaseGeometry]) -> tuple[np.ndarray, np.ndarray]:
    points = shapely.get_coordinates(shapely.point_on_surface(np.asarray(geometries, dtype=object)))
    return points[:, 0], points[:, 1]


def _mismatch(
    crs: CRS, x: np.ndarray, y: np.ndarray, reason: str, candidates: list[int], declared_area: AreaOfUse | None
) -> CrsMismatch:
    """Build the ``geodata/crs-mismatch`` refusal: what is wrong, the declared CRS, the zones that fit."""
    declared = crs.to_epsg(min_confidence=70)
    labels = [crs_label(code) for code in candidates]
    if len(labels) > NAMED_CANDIDATES:
        named = ", ".join(f"EPSG:{code}" for code in candidates)
        reason += f"; {len(labels)} zones fit them (eastings without a zone prefix cannot tell which): {named}"
    elif labels:
        reason += "; they fit " + ", ".join(labels)
    else:
        reason += "; no Gauss-Kruger or UTM zone over China fits them either"
    box = [declared_area.west, declared_area.south, declared_area.east, declared_area.north] if declared_area else None
    problem = {
        "reason": reason,
        "location": [float(x[0]), float(y[0])],
        "declared_crs": crs_label(declared) if declared is not None else crs.name,
        "area_of_use": box,
        "candidate_crs": labels,
        "suggested_crs": labels[0] if labels else None,
    }
    return CrsMismatch(reason, [problem])


def _check_area_of_use(crs: CRS, geometries: Sequence[BaseGeometry], transformer: Transformer) -> None:
    """Refuse a layer none of whose features lies in the declared projected CRS's area of use."""
    declared_area = area_of_use(crs)
    if declared_area is None:
        return
    x, y = _representative_xy(geometries)
    lon, lat = (np.asarray(v) for v in transformer.transform(x, y))
    if declared_area.contains(lon, lat).any():
        return  # some features fit: any stray one is refused on its own (outside China)
    declared = crs.to_epsg(min_confidence=70)
    candidates = fitting_zones(x, y, declared=declared)
    finite = bool(np.isfinite(lon).all() and np.isfinite(lat).all())
    in_box = AreaOfUse(declared_area.west, declared_area.south, declared_area.east, declared_area.north, False)
    if not candidates and (not finite or in_box.contains(lon, lat).all()):
        return  # nothing better to say: "does not fit" or, per feature, "outside China"
    where = "China, " if declared_area.china_only else ""
    reason = (
        f"the coordinates lie outside the area of use of the declared CRS {crs.name!r} ({where}"
        f"{declared_area.west:g}°–{declared_area.east:g}°E, {declared_area.south:g}°–{declared_area.north:g}°N)"
    )
    raise _mismatch(crs, x, y, reason, candidates, declared_area)


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


def _check_projected(crs: CRS, bounds: tuple[float, float, float, float], geometries: Sequence[BaseGeometry]) -> None:
    if _lonlat_like(bounds):
        raise _refuse(f"the CRS {crs.name!r} is projected but the coordinates look like degrees", bounds, CGCS2000)
    false_easting = _false_easting(crs)
    if false_easting is None:
        return
    has_prefix = bounds[0] >= 1_000_000
    if has_prefix and false_easting < 1_000_000:
        reason = f"eastings carry a zone prefix but the CRS {crs.name!r} has none (false easting {false_easting:.0f})"
    elif not has_prefix and false_easting >= 1_000_000:
        reason = f"the CRS {crs.name!r} expects a zone prefix in the eastings (false easting {false_easting:.0f})"
    else:
        return
    x, y = _representative_xy(geometries)
    declared_area = area_of_use(crs)
    raise _mismatch(crs, x, y, reason, fitting_zones(x, y, declared=crs.to_epsg(min_confidence=70)), declared_area)


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
        CrsMismatch: The coordinates lie outside the declared CRS's area of use (names the zones that fit).
        InvalidCrs: One of the other refusals listed in the module docstring (layer-wide).
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
        _check_projected(crs, bounds, geometries)
    name = crs.to_string()
    if crs.equals(CRS.from_user_input(CGCS2000)):
        return Normalised(list(geometries), name, assumed)
    transformer = Transformer.from_crs(crs, CGCS2000, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        lon, lat = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    if not crs.is_geographic:
        _check_area_of_use(crs, geometries, transformer)
    projected = [shapely.transform(g, project) for g in geometries]
    out = _bounds(projected)
    if not all(math.isfinite(v) for v in out) or not _lonlat_like(out):
        raise _refuse(f"the CRS {crs.name!r} does not fit the coordinates (they transform to no valid lon/lat)", bounds)
    return Normalised(projected, name, assumed)
