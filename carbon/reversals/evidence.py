"""Evidence of a loss event: the lost pixels as polygons, and a before/after map image.

Both re-read only the window around the plot (the plot's box plus a margin), never the whole composite:

* :func:`loss_geojson` — the plot outline, the lost pixels inside it (polygonised, EPSG:4490) and the loss
  patches met, as a GeoJSON FeatureCollection stored with the event;
* :func:`map_png` — a PNG, before on the left and after on the right: NDVI (or vegetated land cover) in a
  brown-to-green ramp, the lost pixels tinted red (after), the plot's outline in white.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from carbon.reversals.models import Composite
from geodata.rasters import open_raster
from geodata.tiling import Grid, grid_of, label_window, read_window
from geodata.zonal import to_raster_crs

#: Pixels added around the plot's box in the evidence window.
MARGIN_PX = 8
#: Most loss polygons stored with an event (the largest first); the rest are counted.
MAX_POLYGONS = 500


def plot_window(grid: Grid, geometry: BaseGeometry, margin: int = MARGIN_PX) -> tuple[int, int, int, int]:
    """Return the window (clipped to the grid) around a geometry given in the grid's CRS."""
    a, _b, c, _d, e, f = grid.transform
    west, south, east, north = geometry.bounds
    col0, col1 = sorted(((west - c) / a, (east - c) / a))
    row0, row1 = sorted(((north - f) / e, (south - f) / e))
    left, top = max(int(np.floor(col0)) - margin, 0), max(int(np.floor(row0)) - margin, 0)
    right, bottom = min(int(np.ceil(col1)) + margin, grid.width), min(int(np.ceil(row1)) + margin, grid.height)
    return left, top, max(right - left, 1), max(bottom - top, 1)


def read_pair(paths: Sequence[Path], geometry_4490: BaseGeometry) -> tuple[Grid, Any, Any, Any, BaseGeometry]:
    """Return the grid, the window, both composites' blocks there and the plot in the grid's CRS."""
    with open_raster(paths[0]) as first, open_raster(paths[1]) as second:
        grid = grid_of(first)
        [local] = to_raster_crs([geometry_4490], CRS.from_wkt(grid.crs_wkt))
        window = plot_window(grid, local)
        return grid, window, read_window(first, window), read_window(second, window), local


def loss_geojson(
    grid: Grid, window: tuple[int, int, int, int], lost: Any, local_plot: BaseGeometry, plot_4490: BaseGeometry,
    patches: Sequence[tuple[dict[str, Any], BaseGeometry]],
) -> dict[str, Any]:  # fmt: skip
    """Return the plot, its lost pixels (polygonised by pixel-centre membership) and the patches, as GeoJSON."""
    from affine import Affine
    from rasterio.features import shapes

    inside = label_window(grid, window, [local_plot]) == 1
    mask = (lost & inside).astype(np.uint8)
    col, row, _w, _h = window
    transform = Affine(*grid.transform) @ Affine.translation(col, row)
    polygons = [shape(geom) for geom, value in shapes(mask, mask=mask.astype(bool), transform=transform) if value]
    polygons.sort(key=lambda p: -p.area)
    crs = CRS.from_wkt(grid.crs_wkt)
    if not crs.is_geographic:
        back = Transformer.from_crs(crs, CRS.from_epsg(4490), always_xy=True)
        polygons = [
            shapely.transform(p, lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1]))) for p in polygons
        ]
    features: list[dict[str, Any]] = [
        {"type": "Feature", "properties": {"layer": "plot"}, "geometry": mapping(plot_4490)}
    ]
    features += [
        {"type": "Feature", "properties": {"layer": "lost_pixels"}, "geometry": mapping(p)}
        for p in polygons[:MAX_POLYGONS]
    ]
    features += [
        {"type": "Feature", "properties": {"layer": "change_patch", **facts}, "geometry": mapping(g)}
        for facts, g in patches
    ]
    return {"type": "FeatureCollection", "features": features, "lost_polygons_total": len(polygons)}


def _ramp(block: Any, composite: Composite) -> Any:
    """Return an RGB ramp of a block: brown (bare) to green (vegetated); no data dark grey."""
    if composite.vegetated_classes:
        level = np.isin(block, composite.vegetated_classes).astype(np.float64)
    else:
        level = np.clip(np.nan_to_num(block, nan=0.0), 0.0, 1.0)
    rgb = np.stack([150 - 120 * level, 110 + 70 * level, 60 - 20 * level]).astype(np.uint8)
    rgb[:, ~np.isfinite(block)] = 40
    return rgb


def map_png(
    composites: Sequence[Composite], blocks: Sequence[Any], lost: Any, grid: Grid, window: tuple[int, int, int, int],
    local_plot: BaseGeometry, *, scale: int = 4,
) -> bytes:  # fmt: skip
    """Return a PNG: before | after, lost pixels red, plot outline white, each pixel ``scale`` × ``scale``."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning
    from rasterio.io import MemoryFile

    outline = label_window(grid, window, [local_plot.boundary.buffer(abs(grid.transform[0]) * 0.5)]) == 1
    panels = []
    for index, (composite, block) in enumerate(zip(composites, blocks, strict=True)):
        rgb = _ramp(block, composite)
        if index == 1:
            red = np.array([230, 20, 20], dtype=np.float64)[:, None]
            rgb[:, lost] = ((rgb[:, lost].astype(np.float64) + red) / 2).astype(np.uint8)  # a red tint: NDVI shows
        rgb[:, outline] = 255
        panels.append(rgb)
    gap = np.full((3, panels[0].shape[1], 2), 255, dtype=np.uint8)
    image = np.concatenate([panels[0], gap, panels[1]], axis=2).repeat(scale, axis=1).repeat(scale, axis=2)
    with warnings.catch_warnings(), MemoryFile() as memory:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a picture, not a raster: no transform wanted
        with memory.open(driver="PNG", width=image.shape[2], height=image.shape[1], count=3, dtype="uint8") as png:
            png.write(image)
        return bytes(memory.read())
