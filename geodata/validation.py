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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geodata import messages

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
    name: str | None = field(default=None)


def _plot_code(properties: Mapping[str, Any]) -> str | None:
    for key in PLOT_CODE_KEYS:
        value = properties.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


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

    def check_validity(self, geometry: BaseGeometry) -> None:
        if geometry.is_empty:
            self.add(messages.EMPTY, pointer="/geometry")
            return
        reason = shapely.is_valid_reason(geometry)
        if reason != "Valid Geometry":
            match = _REASON_LOCATION.match(reason)
            if match:
                location = [float(match["x"]), float(match["y"])]
                self.add(messages.INVALID.format(reason=match["reason"].strip()), location, "/geometry")
            else:
                self.add(messages.INVALID.format(reason=reason), pointer="/geometry")
            return
        if geometry.area == 0:
            self.add(messages.ZERO_AREA, pointer="/geometry")


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


def parse_features(document: Any, *, max_features: int = 10_000) -> tuple[list[PlotFeature], list[GeometryProblem]]:
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
        geometry = checker.build(raw.get("geometry") if isinstance(raw, Mapping) else None)
        if geometry is not None:
            checker.check_validity(geometry)
        problems.extend(checker.problems)
        if geometry is not None and not checker.problems:
            name = properties.get("name")
            features.append(
                PlotFeature(
                    index, dict(properties), geometry, checker.plot_code, name if isinstance(name, str) else None
                )
            )
    return features, problems
