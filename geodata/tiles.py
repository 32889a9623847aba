"""Mapbox Vector Tiles (MVT 2.1) of polygons in lon/lat: the tile grid and the SQLite-side encoder.

The web map (MapLibre) asks for tiles ``z/x/y`` of the Web Mercator grid (EPSG:3857, the XYZ scheme). On
PostgreSQL the tiles are built in the database (``ST_AsMVT``, ``carbon.plot_tiles``); on SQLite, which has no
spatial extension, this module encodes them: the geometries are projected to tile units with numpy in one
vectorised pass (shapely), simplified to half a pixel (4 of the tile's 4096 units) and clipped to the tile plus a
buffer; the geometry commands (MVT 2.1 §4.3) are built with numpy and written into ``mapbox-vector-tile``'s
generated protobuf message ``vector_tile_pb2`` (the library's own Python encoder took 2.3 s for 10,000 plots
here: ADR 040).
CGCS2000 lon/lat is drawn as WGS 84 lon/lat, as the rest of the map is (the two differ by centimetres).

>>> tile_bounds(0, 0, 0)
(-180.0, -85.0511287798066, 180.0, 85.0511287798066)
>>> [round(v, 4) for v in tile_bounds(10, 843, 387)]  # Beijing
[116.3672, 39.9097, 116.7188, 40.1789]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2  # type: ignore[import-untyped]
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

EXTENT: Final = 4096
#: Tile units drawn beyond the tile's edge, so outlines do not show seams at tile borders.
BUFFER: Final = 64
MAX_ZOOM: Final = 22
#: Simplification tolerance in tile units: a tile is drawn 512 px wide, so 4 units are half a pixel.
SIMPLIFY_UNITS: Final = 4.0
EARTH_RADIUS_M: Final = 6378137.0
ORIGIN_M: Final = math.pi * EARTH_RADIUS_M


def check_tile(z: int, x: int, y: int) -> bool:
    """Return whether ``z/x/y`` is a tile of the grid.

    >>> check_tile(2, 3, 3), check_tile(2, 4, 0), check_tile(23, 0, 0)
    (True, False, False)
    """
    return 0 <= z <= MAX_ZOOM and 0 <= x < 2**z and 0 <= y < 2**z


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Return a tile's lon/lat bounds (west, south, east, north)."""
    n = 2**z

    def lat(row: float) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)


def _to_tile(z: int, x: int, y: int) -> Any:
    size = 2 * ORIGIN_M / 2**z
    left, top = -ORIGIN_M + x * size, ORIGIN_M - y * size
    scale = EXTENT / size

    def project(coords: NDArray[np.float64]) -> NDArray[np.float64]:
        lon, lat = coords[:, 0], np.clip(coords[:, 1], -85.0511, 85.0511)
        mx = np.radians(lon) * EARTH_RADIUS_M
        my = np.log(np.tan(np.pi / 4 + np.radians(lat) / 2)) * EARTH_RADIUS_M
        return np.column_stack(((mx - left) * scale, (top - my) * scale))  # y grows downwards in a tile

    return project


def encode_tile(
    z: int,
    x: int,
    y: int,
    layer: str,
    geometries: Sequence[BaseGeometry],
    properties: Sequence[Mapping[str, str | int | float | None]],
    ids: Sequence[int],
) -> bytes:
    """Return the MVT of ``geometries`` (lon/lat) in tile ``z/x/y`` as one layer; empty bytes when none shows.

    A polygon smaller than a tile unit at this zoom is drawn as a one-unit square at its place, so a
    project of many small plots still shows where each one is when zoomed out. Property values are strings
    or numbers (``None`` values are left out).
    """
    if not geometries:
        return b""
    projected = shapely.transform(np.asarray(geometries, dtype=object), _to_tile(z, x, y))
    simplified = shapely.simplify(projected, SIMPLIFY_UNITS, preserve_topology=False)
    low, high = -BUFFER, EXTENT + BUFFER
    box = shapely.bounds(simplified)
    outside = np.any(box[:, :2] < low, axis=1) | np.any(box[:, 2:] > high, axis=1)
    clipped = simplified.copy()
    clipped[outside] = shapely.clip_by_rect(simplified[outside], low, low, high, high)
    tiny = shapely.area(clipped) < 1.0
    if tiny.any():
        centres = shapely.point_on_surface(projected[tiny])
        cx, cy = shapely.get_x(centres), shapely.get_y(centres)
        squares = shapely.box(cx - 0.5, cy - 0.5, cx + 0.5, cy + 0.5)
        inside = (cx >= -BUFFER) & (cx <= EXTENT + BUFFER) & (cy >= -BUFFER) & (cy <= EXTENT + BUFFER)
        clipped[tiny] = np.where(inside, squares, None)
    # Polygons only (a clip can leave lines and points), exteriors with positive area in y-down tile space.
    parts, owner = shapely.get_parts(clipped, return_index=True)
    parts, inner = shapely.get_parts(parts, return_index=True)  # a collection's multipolygons
    owner = owner[inner]
    keep = shapely.get_type_id(parts) == 3
    parts, owner = shapely.orient_polygons(parts[keep], exterior_cw=False), owner[keep]
    tile = vector_tile_pb2.tile()
    out = tile.layers.add()
    out.name, out.version, out.extent = layer, 2, EXTENT
    keys: dict[str, int] = {}
    values: dict[tuple[str, str | int | float], int] = {}
    stream, features, bounds = _commands(parts, owner)
    for index, start, end in zip(features.tolist(), bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        feature = out.features.add()
        feature.id, feature.type = int(ids[index]), vector_tile_pb2.tile.Polygon
        feature.geometry.extend(stream[start:end].tolist())
        for key, value in properties[index].items():
            if value is None:
                continue
            feature.tags.append(keys.setdefault(key, len(keys)))
            kind = "s" if isinstance(value, str) else "i" if isinstance(value, int) else "d"
            feature.tags.append(values.setdefault((kind, value), len(values)))
    if not out.features:
        return b""
    out.keys.extend(keys)
    for kind, value in values:
        entry = out.values.add()
        if kind == "s":
            entry.string_value = str(value)
        elif kind == "i":
            entry.sint_value = int(value)
        else:
            entry.double_value = float(value)
    encoded: bytes = tile.SerializeToString()
    return encoded


MOVE_TO, LINE_TO, CLOSE_PATH = 1, 2, 7
Ints = NDArray[np.int64]


def _commands(parts: NDArray[Any], owner: Ints) -> tuple[Ints, Ints, Ints]:
    """Return the geometry command stream of polygons ``parts`` (feature ``owner`` of each, non-decreasing).

    MVT geometry (spec 2.1 §4.3): per ring ``MoveTo(1) x y LineTo(n-1) dx dy… ClosePath``, coordinates as
    zig-zag deltas from a cursor that runs through one feature's rings. Built in one numpy pass: rings rounded
    to whole tile units, repeated points dropped, rings of fewer than three points dropped (a polygon whose
    exterior collapses is dropped with its holes). Returns the stream, the features present and the bounds of
    each one's commands in the stream.
    """
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    coords, ring_of = shapely.get_coordinates(rings, return_index=True)
    first_of_ring = np.concatenate(([0], np.flatnonzero(np.diff(ring_of)) + 1))
    is_exterior = np.concatenate(([True], ring_part[1:] != ring_part[:-1]))
    last = np.zeros(len(coords), dtype=bool)
    last[np.concatenate((first_of_ring[1:] - 1, [len(coords) - 1]))] = True  # the closing repeat of each ring
    points = np.rint(coords[~last]).astype(np.int64)
    ring_of = ring_of[~last]
    same = np.zeros(len(points), dtype=bool)
    same[1:] = (ring_of[1:] == ring_of[:-1]) & np.all(points[1:] == points[:-1], axis=1)
    points, ring_of = points[~same], ring_of[~same]
    counts = np.bincount(ring_of, minlength=len(rings))
    collapsed_exterior = np.zeros(len(parts), dtype=bool)
    collapsed_exterior[ring_part[is_exterior & (counts < 3)]] = True
    ring_ok = (counts >= 3) & ~collapsed_exterior[ring_part]
    keep_point = ring_ok[ring_of]
    points, ring_of = points[keep_point], ring_of[keep_point]
    kept_rings = np.flatnonzero(ring_ok)
    n = counts[kept_rings]
    if len(kept_rings) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(1, dtype=np.int64)
    ring_feature = owner[ring_part[kept_rings]]
    point_feature = np.repeat(ring_feature, n)
    previous = np.zeros_like(points)
    previous[1:] = points[:-1]
    new_feature = np.ones(len(points), dtype=bool)
    new_feature[1:] = point_feature[1:] != point_feature[:-1]
    previous[new_feature] = 0
    delta = points - previous
    zigzag = (delta << 1) ^ (delta >> 63)
    lengths = 2 * n + 3
    ring_start = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    stream = np.empty(int(lengths.sum()), dtype=np.int64)
    stream[ring_start] = (1 << 3) | MOVE_TO
    stream[ring_start + 3] = ((n - 1) << 3) | LINE_TO
    stream[ring_start + lengths - 1] = (1 << 3) | CLOSE_PATH
    k = np.arange(len(points)) - np.repeat(np.concatenate(([0], np.cumsum(n)[:-1])), n)  # index within its ring
    x_at = np.repeat(ring_start, n) + 1 + 2 * k + (k >= 1)
    stream[x_at], stream[x_at + 1] = zigzag[:, 0], zigzag[:, 1]
    feature_change = np.concatenate(([True], ring_feature[1:] != ring_feature[:-1]))
    features = ring_feature[feature_change]
    bounds = np.concatenate((ring_start[feature_change], [len(stream)]))
    return stream, features, bounds
