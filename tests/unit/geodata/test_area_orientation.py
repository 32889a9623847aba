"""Areas and overlaps do not depend on ring winding: property tests against independent references.

Two references that share no code with ``geodata.area``:

* the closed-form area of a latitude/longitude rectangle on GRS80 (an ellipsoidal zone slice); the
  rectangle's parallels are densified so that the geodesic polygon follows them to < 1e-8 relative;
* an equal-area projection: pyproj ``Transformer`` to a Lambert azimuthal equal-area projection centred
  on the polygon, then shapely's planar area (which is orientation-free: |exterior| − Σ|holes|).

Each polygon is then re-wound at random — any exterior, hole or part reversed and its start vertex
rotated — and ``measure`` must give the same area to 1e-6 relative. On the code before the fix, a hole
wound like its exterior was added and parts wound in opposite directions cancelled.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Transformer
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geodata.area import measure
from geodata.overlap import geodesic_overlap
from geodata.validation import GeometryLimits, check_plot_geometry, parse_features

# GRS80 (CGCS2000), written out here so the reference does not reuse the code under test.
A_M = 6_378_137.0
F = 1 / 298.257222101
E2 = F * (2 - F)
E = math.sqrt(E2)
B_M = A_M * (1 - F)
REL = 1e-6
DENSIFY = 24  # vertices per rectangle side: the geodesic chords then follow the parallels to < 1e-8


def zone_m2(lat_deg: float) -> float:
    """Ellipsoid area from the equator to ``lat_deg`` over the whole circle of longitude."""
    s = math.sin(math.radians(lat_deg))
    return 2 * math.pi * B_M**2 * (s / (2 * (1 - E2 * s * s)) + math.atanh(E * s) / (2 * E))


def rectangle_m2(west: float, south: float, east: float, north: float) -> float:
    """Closed-form area of the lon/lat rectangle (bounded by two meridians and two parallels)."""
    return (zone_m2(north) - zone_m2(south)) * (east - west) / 360.0


def rectangle_ring(west: float, south: float, east: float, north: float) -> list[tuple[float, float]]:
    """A counter-clockwise ring along the rectangle, densified along every side."""
    steps = [i / DENSIFY for i in range(DENSIFY)]
    bottom = [(west + (east - west) * t, south) for t in steps]
    right = [(east, south + (north - south) * t) for t in steps]
    top = [(east - (east - west) * t, north) for t in steps]
    left = [(west, north - (north - south) * t) for t in steps]
    return bottom + right + top + left


def equal_area_m2(geometry: BaseGeometry) -> float:
    """Area by a local Lambert azimuthal equal-area projection and shapely's planar area."""
    centre = geometry.centroid
    laea = f"+proj=laea +lat_0={centre.y} +lon_0={centre.x} +ellps=GRS80 +units=m +no_defs"
    transformer = Transformer.from_crs("EPSG:4490", laea, always_xy=True)
    dense = densified(geometry)

    def project(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

    projected = shapely.transform(dense, project)
    return float(projected.area)


def densified(geometry: BaseGeometry) -> BaseGeometry:
    """Vertices every 0.0005° (≈ 50 m), so geodesic chords and projected straight edges trace one curve."""
    return shapely.segmentize(geometry, 0.0005)


def rewind_ring(ring: list[tuple[float, float]], reverse: bool, start: int) -> list[tuple[float, float]]:
    start %= len(ring)
    turned = ring[start:] + ring[:start]
    return turned[::-1] if reverse else turned


# --- strategies ----------------------------------------------------------------------------------------

lon = st.floats(74.0, 134.0)
lat = st.floats(18.5, 52.0)
size = st.floats(0.002, 0.05)
choices = st.lists(st.tuples(st.booleans(), st.integers(0, 10_000)), min_size=12, max_size=12)


@st.composite
def rectangles_with_holes(draw: st.DrawFn) -> tuple[list[list[list[tuple[float, float]]]], float]:
    """Up to three disjoint rectangles side by side, each with up to two rectangular holes; their area."""
    west, south = draw(lon), draw(lat)
    width, height = draw(size), draw(size)
    parts: list[list[list[tuple[float, float]]]] = []
    total_m2 = 0.0
    for k in range(draw(st.integers(1, 3))):
        x0 = west + k * 2 * width
        box = (x0, south, x0 + width, south + height)
        rings = [rectangle_ring(*box)]
        total_m2 += rectangle_m2(*box)
        for h in range(draw(st.integers(0, 2))):
            # holes in the left and right halves of the part, never touching each other or the exterior
            fx, fy = draw(st.floats(0.1, 0.35)), draw(st.floats(0.1, 0.35))
            hx0 = x0 + width * (0.05 + 0.5 * h)
            hole = (hx0, south + height * fy, hx0 + width * fx, south + height * (fy + 0.5))
            rings.append(rectangle_ring(*hole)[::-1])
            total_m2 -= rectangle_m2(*hole)
        parts.append(rings)
    return parts, total_m2


def rewound(parts: list[list[list[tuple[float, float]]]], how: list[tuple[bool, int]]) -> MultiPolygon:
    flags = iter(how * 4)
    polygons = []
    for rings in parts:
        again = [rewind_ring(ring, *next(flags)) for ring in rings]
        polygons.append(Polygon(again[0], again[1:]))
    return MultiPolygon(polygons)


# --- properties --------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(rectangles_with_holes(), choices)
def test_area_matches_the_closed_form_whatever_the_winding(
    case: tuple[list[list[list[tuple[float, float]]]], float], how: list[tuple[bool, int]]
) -> None:
    parts, expected_m2 = case
    geometry = rewound(parts, how)
    assert measure(geometry).area_m2 == pytest.approx(expected_m2, rel=REL)
    for part in shapely.get_parts(densified(geometry)):  # each part alone, too: a Polygon with its holes wound any way
        assert measure(part).area_m2 == pytest.approx(equal_area_m2(part), rel=REL)


@st.composite
def star_polygons(draw: st.DrawFn) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """A random star-shaped exterior and a star-shaped hole around the same centre (valid by construction)."""
    cx, cy, radius = draw(lon), draw(lat), draw(size)
    n = draw(st.integers(5, 40))
    outer_r = draw(st.lists(st.floats(0.6, 1.0), min_size=n, max_size=n))
    inner_r = draw(st.lists(st.floats(0.1, 0.5), min_size=n, max_size=n))
    angles = [2 * math.pi * i / n for i in range(n)]
    outer = [
        (cx + radius * r * math.cos(a), cy + radius * r * math.sin(a)) for r, a in zip(outer_r, angles, strict=True)
    ]
    inner = [
        (cx + radius * r * math.cos(a), cy + radius * r * math.sin(a)) for r, a in zip(inner_r, angles, strict=True)
    ]
    return outer, inner


@settings(max_examples=80, deadline=None)
@given(star_polygons(), choices)
def test_area_matches_an_equal_area_projection_whatever_the_winding(
    case: tuple[list[tuple[float, float]], list[tuple[float, float]]], how: list[tuple[bool, int]]
) -> None:
    outer, inner = case
    polygon = densified(Polygon(rewind_ring(outer, *how[0]), [rewind_ring(inner, *how[1])]))
    assert measure(polygon).area_m2 == pytest.approx(equal_area_m2(polygon), rel=REL)


@settings(max_examples=40, deadline=None)
@given(rectangles_with_holes(), choices, choices)
def test_overlap_does_not_depend_on_the_winding(
    case: tuple[list[list[list[tuple[float, float]]]], float],
    first: list[tuple[bool, int]],
    second: list[tuple[bool, int]],
) -> None:
    parts, _ = case
    a, b = rewound(parts, first), rewound(parts, second)
    reference = geodesic_overlap(shapely.normalize(a), shapely.normalize(b))
    overlap = geodesic_overlap(a, b)
    assert overlap.overlap_m2 == pytest.approx(reference.overlap_m2, rel=REL)
    assert overlap.area_a_m2 == pytest.approx(overlap.area_b_m2, rel=REL)


def box_overlap_m2(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Closed-form area of the intersection of two lon/lat rectangles (0 if they are apart)."""
    west, south, east, north = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return rectangle_m2(west, south, east, north) if west < east and south < north else 0.0


@settings(max_examples=40, deadline=None)
@given(lon, lat, size, st.floats(0.05, 0.9), st.floats(-0.5, 0.5), choices)
def test_overlap_with_a_holed_plot_matches_the_closed_form(
    west: float, south: float, width: float, shift_x: float, shift_y: float, how: list[tuple[bool, int]]
) -> None:
    outer = (west, south, west + width, south + width)
    hole = (west + 0.2 * width, south + 0.2 * width, west + 0.6 * width, south + 0.6 * width)
    other = (
        west + shift_x * width,
        south + shift_y * width,
        west + (1 + shift_x) * width,
        south + (1 + shift_y) * width,
    )
    a = Polygon(rewind_ring(rectangle_ring(*outer), *how[0]), [rewind_ring(rectangle_ring(*hole), *how[1])])
    b = Polygon(rewind_ring(rectangle_ring(*other), *how[2]))
    expected_m2 = box_overlap_m2(outer, other) - box_overlap_m2(hole, other)
    overlap = geodesic_overlap(a, b)
    assert overlap.overlap_m2 == pytest.approx(expected_m2, rel=REL)
    assert overlap.area_a_m2 == pytest.approx(rectangle_m2(*outer) - rectangle_m2(*hole), rel=REL)


# --- the examples, and the other places an area is measured ----------------------------------

OUTER = [(106.30, 35.50), (106.31, 35.50), (106.31, 35.51), (106.30, 35.51)]
HOLE = [(106.302, 35.502), (106.306, 35.502), (106.306, 35.506), (106.302, 35.506)]  # CCW, like OUTER


def test_a_hole_wound_like_its_exterior_is_subtracted() -> None:
    polygon = Polygon(OUTER, [HOLE])
    expected_m2 = rectangle_m2(106.30, 35.50, 106.31, 35.51) - rectangle_m2(106.302, 35.502, 106.306, 35.506)
    assert measure(polygon).area_m2 == pytest.approx(expected_m2, rel=1e-5)  # undensified chords: 1e-5


def test_parts_wound_in_opposite_directions_add_up() -> None:
    east = [(x + 0.02, y) for x, y in OUTER][::-1]
    multi = MultiPolygon([Polygon(OUTER), Polygon(east)])
    assert measure(multi).area_m2 == pytest.approx(2 * measure(Polygon(OUTER)).area_m2, rel=1e-5)


def test_sliver_and_size_checks_see_the_true_area() -> None:
    # 100 ha plot with a 40 ha hole wound like its exterior: 60 ha, under a 70 ha limit.
    outer = [(106.30, 35.50), (106.311, 35.50), (106.311, 35.509), (106.30, 35.509)]
    hole = [(106.301, 35.501), (106.307, 35.501), (106.307, 35.507), (106.301, 35.507)]
    limits = GeometryLimits(max_area_m2=measure(Polygon(outer)).area_m2 * 0.8)
    assert check_plot_geometry(Polygon(outer, [hole]), limits=limits).problems == []
    assert check_plot_geometry(Polygon(outer, [hole[::-1]]), limits=limits).problems == []


def test_plots_are_kept_wound_as_rfc_7946_asks() -> None:
    document = {
        "type": "Feature",
        "properties": {"code": "CW"},
        "geometry": {"type": "Polygon", "coordinates": [[*OUTER[::-1], OUTER[-1]], [*HOLE, HOLE[0]]]},
    }
    [feature], problems = parse_features(document)
    assert problems == []
    [polygon] = feature.geometry.geoms
    assert polygon.exterior.is_ccw and not polygon.interiors[0].is_ccw
