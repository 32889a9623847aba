"""Validate GeoJSON plot features, collecting every problem before failing once.

:func:`parse_features` accepts a GeoJSON (RFC 7946) Feature or FeatureCollection already decoded from
JSON, in lon/lat degrees (EPSG:4326 or EPSG:4490 — at plot scale the two datums differ by well under
a metre, and CGCS2000 is what the platform stores). It checks the structure that shapely would
silently "fix" (unclosed rings, rings of fewer than four positions) before building geometries, then
asks GEOS for validity (``shapely.is_valid_reason``). Each :class:`GeometryProblem` names the feature
index, its plot code when it has one, the reason and, where it is known, the location.

>>> features, problems = parse_features({"type": "Feature", "properties": {"code": "P1"},
...     "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}})
>>> problems[0].reason, problems[0].location
('invalid geometry: Self-intersection', [0.5, 0.5])
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geodata import messages
from geodata.area import measure, oriented

_REASON_LOCATION = re.compile(r"^(?P<reason>[^\[]+)\[(?P<x>[-+0-9.eE]+) (?P<y>[-+0-9.eE]+)\]$")
PLOT_CODE_KEYS = ("code", "plot_code", "id")


@dataclass(frozen=True)
class GeometryProblem:
    """One defect of one feature."""

    feature_index: int | None
    reason: str
    plot_code: str | None = None
    location: list[float] | None = None
    pointer: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the problem as a JSON-ready mapping (problem+json ``errors`` item)."""
        return {
            "feature_index": self.feature_index,
            "plot_code": self.plot_code,
            "reason": self.reason,
            "location": self.location,
            "pointer": self.pointer,
        }


@dataclass(frozen=True)
class PlotFeature:
    """A valid plot feature: its index in the upload, properties and MultiPolygon geometry."""

    index: int
    properties: dict[str, Any]
    geometry: MultiPolygon
    plot_code: str | None = None
    name: str | None = None
    repaired: bool = False
    repair_area_change_m2: float = 0.0


def _plot_code(properties: Mapping[str, Any]) -> str | None:
    for key in PLOT_CODE_KEYS:
        value = properties.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positions(coordinates: Any) -> Iterator[Sequence[float]]:
    """Yield every well-formed position (2 or 3 finite numbers) nested in GeoJSON ``coordinates``."""
    if isinstance(coordinates, list | tuple):
        if 2 <= len(coordinates) <= 3 and all(_is_number(v) for v in coordinates):
            yield coordinates
        else:
            for item in coordinates:
                yield from _positions(item)


class _FeatureChecker:
    """Collects the problems of one feature."""

    def __init__(self, index: int, plot_code: str | None, pointer: str) -> None:
        self.index = index
        self.plot_code = plot_code
        self.pointer = pointer
        self.problems: list[GeometryProblem] = []

    def add(self, reason: str, location: Sequence[float] | None = None, pointer: str = "") -> None:
        self.problems.append(
            GeometryProblem(
                self.index,
                reason,
                self.plot_code,
                list(location) if location is not None else None,
                self.pointer + pointer,
            )
        )

    def check_swapped(self, coordinates: Any) -> bool:
        """Report once, and return ``True``, when the positions are out of range as given but valid swapped."""
        positions = list(_positions(coordinates))
        outside = next((p for p in positions if not (-180 <= p[0] <= 180 and -90 <= p[1] <= 90)), None)
        if outside is None or not all(-90 <= p[0] <= 90 and -180 <= p[1] <= 180 for p in positions):
            return False
        self.add(messages.SWAPPED.format(position=list(outside[:2])), list(outside[:2]), "/geometry/coordinates")
        return True

    def check_ring(self, ring: Any, pointer: str) -> bool:
        if not isinstance(ring, list | tuple) or not all(isinstance(p, list | tuple) for p in ring):
            self.add(messages.BAD_COORDINATES.format(geometry_type="a linear ring"), pointer=pointer)
            return False
        ok = True
        for i, position in enumerate(ring):
            if not (2 <= len(position) <= 3 and all(_is_number(v) for v in position)):
                self.add(messages.BAD_POSITION, pointer=f"{pointer}/{i}")
                return False
            lon, lat = position[0], position[1]
            if not -180 <= lon <= 180:
                self.add(messages.LONGITUDE_RANGE.format(value=lon), list(position[:2]), f"{pointer}/{i}")
                ok = False
            if not -90 <= lat <= 90:
                self.add(messages.LATITUDE_RANGE.format(value=lat), list(position[:2]), f"{pointer}/{i}")
                ok = False
        if len(ring) < 4:
            self.add(messages.TOO_FEW_POINTS.format(count=len(ring)), list(ring[0][:2]) if ring else None, pointer)
            return False
        if list(ring[0][:2]) != list(ring[-1][:2]):
            first, last = list(ring[0][:2]), list(ring[-1][:2])
            self.add(messages.UNCLOSED_RING.format(first=first, last=last), last, pointer)
            return False
        return ok

    def check_polygon(self, rings: Any, pointer: str) -> Polygon | None:
        if not isinstance(rings, list | tuple) or not rings:
            self.add(messages.BAD_COORDINATES.format(geometry_type="Polygon"), pointer=pointer)
            return None
        results = [self.check_ring(ring, f"{pointer}/{i}") for i, ring in enumerate(rings)]
        if not all(results):
            return None
        coords = [[tuple(p[:2]) for p in ring] for ring in rings]
        return Polygon(coords[0], coords[1:])

    def build(self, geometry: Any) -> MultiPolygon | None:
        if not isinstance(geometry, Mapping):
            self.add(messages.NO_GEOMETRY, pointer="/geometry")
            return None
        kind = geometry.get("type")
        coordinates = geometry.get("coordinates")
        if kind in ("Polygon", "MultiPolygon") and self.check_swapped(coordinates):
            return None
        if kind == "Polygon":
            polygon = self.check_polygon(coordinates, "/geometry/coordinates")
            return MultiPolygon([polygon]) if polygon is not None else None
        if kind == "MultiPolygon":
            if not isinstance(coordinates, list | tuple) or not coordinates:
                self.add(messages.BAD_COORDINATES.format(geometry_type="MultiPolygon"), pointer="/geometry/coordinates")
                return None
            polygons = [self.check_polygon(p, f"/geometry/coordinates/{i}") for i, p in enumerate(coordinates)]
            if any(p is None for p in polygons):
                return None
            return MultiPolygon([p for p in polygons if p is not None])
        self.add(messages.WRONG_GEOMETRY_TYPE.format(found=kind), pointer="/geometry/type")
        return None

    def check_geometry(self, geometry: BaseGeometry, repair: bool, limits: GeometryLimits) -> GeometryCheck:
        result = check_plot_geometry(geometry, repair=repair, limits=limits)
        for reason, location in result.problems:
            self.add(reason, location, "/geometry")
        return result


@dataclass(frozen=True)
class GeometryLimits:
    """Bounds on one plot's geometry."""

    max_vertices: int = 100_000
    max_area_m2: float = 1e9  # 100,000 ha: larger is an administrative area, not a plot
    min_area_m2: float = 1.0
    #: Polsby-Popper compactness 4πA/P² below which a polygon is a sliver (a 5 m × 1 km strip is 0.016).
    min_compactness: float = 0.005


@dataclass(frozen=True)
class GeometryCheck:
    """Outcome of :func:`check_plot_geometry`: the (possibly repaired) geometry, or the problems."""

    geometry: MultiPolygon | None
    problems: list[tuple[str, list[float] | None]]
    repaired: bool = False
    area_change_m2: float = 0.0


def _polygonal(geometry: BaseGeometry) -> MultiPolygon | None:
    if isinstance(geometry, Polygon):
        return MultiPolygon([geometry])
    if isinstance(geometry, MultiPolygon):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon | MultiPolygon)]
    polygons = [p for g in parts for p in (g.geoms if isinstance(g, MultiPolygon) else [g])]
    return MultiPolygon(polygons) if polygons else None


def _invalid_reason(geometry: BaseGeometry) -> tuple[str, list[float] | None] | None:
    reason = shapely.is_valid_reason(geometry)
    if reason == "Valid Geometry":
        return None
    match = _REASON_LOCATION.match(reason)
    if match:
        return messages.INVALID.format(reason=match["reason"].strip()), [float(match["x"]), float(match["y"])]
    return messages.INVALID.format(reason=reason), None


def _measure_problems(geometry: MultiPolygon, limits: GeometryLimits) -> list[tuple[str, list[float] | None]]:
    where = list(geometry.representative_point().coords[0]) if not geometry.is_empty else None
    measured = measure(geometry)
    if measured.area_m2 < limits.min_area_m2:
        return [(messages.ZERO_AREA, where)]
    if measured.area_m2 > limits.max_area_m2:
        return [(messages.TOO_LARGE.format(area_ha=measured.area_ha, limit_ha=limits.max_area_m2 / 10_000), where)]
    compactness = 4 * math.pi * measured.area_m2 / measured.perimeter_m**2
    if compactness < limits.min_compactness:
        return [(messages.SLIVER.format(compactness=compactness, limit=limits.min_compactness), where)]
    return []


def check_plot_geometry(
    geometry: BaseGeometry | None, *, repair: bool = False, limits: GeometryLimits | None = None
) -> GeometryCheck:
    """Check one lon/lat plot geometry: type, emptiness, size, validity (repaired on request), slivers.

    >>> from shapely.geometry import Polygon
    >>> bow_tie = Polygon([(0, 0), (0.01, 0.01), (0.01, 0), (0, 0.01)])
    >>> check_plot_geometry(bow_tie).problems
    [('invalid geometry: Self-intersection', [0.005, 0.005])]
    >>> fixed = check_plot_geometry(bow_tie, repair=True)
    >>> fixed.repaired, len(fixed.geometry.geoms)
    (True, 2)
    """
    limits = limits or GeometryLimits()
    if geometry is None or geometry.is_empty:
        return GeometryCheck(None, [(messages.EMPTY, None)])
    polygonal = _polygonal(geometry) if geometry.geom_type in ("Polygon", "MultiPolygon") else None
    if polygonal is None:
        return GeometryCheck(None, [(messages.WRONG_GEOMETRY_TYPE.format(found=geometry.geom_type), None)])
    vertices = shapely.get_num_coordinates(polygonal)
    if vertices > limits.max_vertices:
        return GeometryCheck(
            None, [(messages.TOO_MANY_VERTICES.format(count=vertices, limit=limits.max_vertices), None)]
        )
    invalid = _invalid_reason(polygonal)
    repaired, change_m2 = False, 0.0
    if invalid is not None:
        fixed = _polygonal(shapely.make_valid(polygonal)) if repair else None
        if fixed is None or fixed.is_empty:
            return GeometryCheck(None, [invalid])
        change_m2 = measure(fixed).area_m2 - measure(polygonal).area_m2
        polygonal, repaired = fixed, True
    problems = _measure_problems(polygonal, limits)
    # Stored and served wound as RFC 7946 §3.1.6 asks (exterior CCW, holes CW), whatever the file's winding.
    return GeometryCheck(None if problems else _oriented_multipolygon(polygonal), problems, repaired, change_m2)


def _oriented_multipolygon(geometry: MultiPolygon) -> MultiPolygon:
    return cast(MultiPolygon, oriented(geometry))  # orienting keeps the geometry type


def _feature_list(document: Any) -> tuple[list[tuple[str, Any]], list[GeometryProblem]]:
    if not isinstance(document, Mapping):
        return [], [GeometryProblem(None, messages.NOT_AN_OBJECT, pointer="")]
    kind = document.get("type")
    if kind == "Feature":
        return [("", document)], []
    if kind == "FeatureCollection":
        features = document.get("features")
        if not isinstance(features, list):
            return [], [GeometryProblem(None, messages.FEATURES_NOT_LIST, pointer="/features")]
        if not features:
            return [], [GeometryProblem(None, messages.NO_FEATURES, pointer="/features")]
        return [(f"/features/{i}", f) for i, f in enumerate(features)], []
    return [], [GeometryProblem(None, messages.UNKNOWN_TYPE.format(found=kind), pointer="/type")]


def parse_features(
    document: Any, *, max_features: int = 10_000, repair: bool = False, limits: GeometryLimits | None = None
) -> tuple[list[PlotFeature], list[GeometryProblem]]:
    """Return the valid plot features of a GeoJSON document and every problem found.

    The caller must refuse the whole upload when ``problems`` is not empty.
    """
    entries, problems = _feature_list(document)
    if len(entries) > max_features:
        message = messages.TOO_MANY_FEATURES.format(count=len(entries), limit=max_features)
        return [], [GeometryProblem(None, message, pointer="/features")]
    features: list[PlotFeature] = []
    for index, (pointer, raw) in enumerate(entries):
        properties = raw.get("properties") if isinstance(raw, Mapping) else None
        checker = _FeatureChecker(index, None, pointer)
        if properties is None:
            properties = {}
        elif not isinstance(properties, Mapping):
            checker.add(messages.PROPERTIES_NOT_OBJECT, pointer="/properties")
            properties = {}
        checker.plot_code = _plot_code(properties)
        built = checker.build(raw.get("geometry") if isinstance(raw, Mapping) else None)
        result = checker.check_geometry(built, repair, limits or GeometryLimits()) if built is not None else None
        problems.extend(checker.problems)
        if result is not None and result.geometry is not None and not checker.problems:
            name = properties.get("name")
            features.append(
                PlotFeature(
                    index,
                    dict(properties),
                    result.geometry,
                    checker.plot_code,
                    name if isinstance(name, str) else None,
                    result.repaired,
                    result.area_change_m2,
                )
            )
    return features, problems
