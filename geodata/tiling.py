"""Tiling machinery shared by every raster job: the grid, its tiles, window reads, pixel areas, burnt labels.

GEP accounting runs (:mod:`gep.engine`) and reversal monitoring (:mod:`carbon.reversals.watch`) both cut a
grid into tiles that workers compute independently and merge exactly. The pieces they share live here, below
both (``carbon`` may not import ``gep``, ADR 038):

* :class:`Grid` — CRS, affine transform and size; :func:`grid_of` reads it from a dataset (north-up only,
  metres or degrees) and :func:`same_grid` compares a dataset with it;
* :func:`tile_windows` — the tiles as ``(col_off, row_off, width, height)``, row by row;
* :func:`read_window` — one band window as float64 with the dataset's mask blanked to NaN;
* :func:`pixel_areas` — the pixel areas (m²) of a window: geodesic rows on GRS80 for lon/lat grids (computed
  from the absolute row index, so identical in any tiling), ``|a·e|`` for projected grids;
* :func:`label_window` — polygons burnt into a window by pixel centre (index + 1, 0 outside).

>>> tile_windows(5, 3, 2)
[(0, 0, 2, 2), (2, 0, 2, 2), (4, 0, 1, 2), (0, 2, 2, 1), (2, 2, 2, 1), (4, 2, 1, 1)]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from core.errors import InvalidInput
from geodata.pixel_area import cell_area_m2

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int32]
#: Two grids are the same when their origins and cell sizes agree to this share of a cell.
GRID_TOLERANCE = 1e-6
Window = tuple[int, int, int, int]


@dataclass(frozen=True)
class Grid:
    """The grid every input is aligned onto."""

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    geographic: bool

    def windows(self, tile_size: int) -> list[Window]:
        """Return the grid's tiles of at most ``tile_size`` × ``tile_size`` pixels, row by row."""
        return tile_windows(self.width, self.height, tile_size)


def tile_windows(width: int, height: int, tile_size: int) -> list[Window]:
    """Return the tiles of a ``width`` × ``height`` grid as ``(col_off, row_off, width, height)``, row by row."""
    if tile_size < 1:
        raise ValueError("tile_size must be at least 1")
    return [
        (col, row, min(tile_size, width - col), min(tile_size, height - row))
        for row in range(0, height, tile_size)
        for col in range(0, width, tile_size)
    ]


def grid_of(dataset: Any) -> Grid:
    """Return the grid of an open dataset; refuse rotated grids and projected grids not in metres."""
    a, b, c, d, e, f = list(dataset.transform)[:6]
    crs = CRS.from_user_input(dataset.crs.to_wkt())
    if b != 0 or d != 0 or e >= 0:
        raise InvalidInput("the grid raster must be north-up (no rotation)", [{"reason": "rotated-grid"}])
    if not crs.is_geographic and crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise InvalidInput("projected grids must be in metres", [{"reason": "grid-units"}])
    return Grid(dataset.crs.to_wkt(), (a, b, c, d, e, f), dataset.width, dataset.height, crs.is_geographic)


def same_grid(dataset: Any, grid: Grid) -> bool:
    """Return whether a dataset lies on ``grid`` (size, origin and cell size within :data:`GRID_TOLERANCE`)."""
    if (dataset.width, dataset.height) != (grid.width, grid.height):
        return False
    a, _b, c, _d, e, f = grid.transform
    ta, tb, tc, td, te, tf = list(dataset.transform)[:6]
    return bool(
        tb == 0
        and td == 0
        and abs(ta - a) <= GRID_TOLERANCE * abs(a)
        and abs(te - e) <= GRID_TOLERANCE * abs(e)
        and abs(tc - c) <= GRID_TOLERANCE * abs(a)
        and abs(tf - f) <= GRID_TOLERANCE * abs(e)
    )


def read_window(dataset: Any, window: Window) -> FloatArray:
    """Return band 1 of a window as float64, the dataset's mask (nodata, NaN, mask band) blanked to NaN."""
    from rasterio.enums import MaskFlags
    from rasterio.windows import Window as RioWindow

    col, row, width, height = window
    frame = RioWindow(col, row, width, height)
    # Read straight into float64 (GDAL converts; exact for uint8/int/float32) and blank the dataset's
    # mask in place: one array, where a masked read makes three.
    block: FloatArray = dataset.read(1, window=frame, out_dtype="float64")
    if dataset.mask_flag_enums[0] != [MaskFlags.all_valid]:
        block[dataset.read_masks(1, window=frame) == 0] = np.nan
    return block


def pixel_areas(grid: Grid, window: Window) -> FloatArray:
    """Return the pixel areas (m²) of a window: geodesic rows for lon/lat grids, ``|a·e|`` otherwise."""
    _col, row, width, height = window
    a, _b, _c, _d, e, f = grid.transform
    if not grid.geographic:
        return np.full((height, width), abs(a * e))
    north = f + e * np.arange(row, row + height, dtype=np.float64)
    south = f + e * np.arange(row + 1, row + height + 1, dtype=np.float64)
    areas = cell_area_m2(south, north, abs(a))
    return np.repeat(areas[:, None], width, axis=1)


def label_window(grid: Grid, window: Window, geometries: Sequence[BaseGeometry]) -> IntArray:
    """Return each pixel's polygon (index into ``geometries`` + 1; 0 where none) by pixel centre.

    The geometries must already be in the grid's CRS. Where polygons overlap, the later one wins.
    """
    from affine import Affine
    from rasterio.features import rasterize

    col, row, width, height = window
    if not geometries:
        return np.zeros((height, width), dtype=np.int32)
    transform = Affine(*grid.transform) @ Affine.translation(col, row)
    burned: IntArray = rasterize(
        ((g, i + 1) for i, g in enumerate(geometries)),
        out_shape=(height, width),
        transform=transform,
        fill=0,
        dtype="int32",
    )
    return burned


def window_bounds(grid: Grid, window: Window) -> tuple[float, float, float, float]:
    """Return a window's ``(min_x, min_y, max_x, max_y)`` in the grid's CRS."""
    col, row, width, height = window
    a, _b, c, _d, e, f = grid.transform
    x0, x1 = c + a * col, c + a * (col + width)
    y0, y1 = f + e * row, f + e * (row + height)
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
