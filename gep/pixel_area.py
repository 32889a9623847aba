"""Pixel areas of a geographic (lon/lat) grid block, from ``geodata.pixel_area`` (pure numpy).

In a lon/lat raster (EPSG:4490 or 4326) a pixel's area depends on its latitude only. The exact area
of a cell bounded by two parallels on GRS80 (CGCS2000) is ``geodata.pixel_area.cell_area_m2``; this
module shapes it for kernels: one area per row, or a block of areas aligned with a tile. The
"111 320 m per degree" shortcut is wrong by +0.21 % at 36°N, and by +23.9 % without cos φ (reference
gep.md T11); never use it.

Block-friendly: a tile needs only its own top latitude and row count.

>>> areas = row_areas_m2(top_latitude_deg=36.01, cell_height_deg=0.01, cell_width_deg=0.01, rows=1)
>>> round(float(areas[0]), 2)
1000384.95
"""

from __future__ import annotations

import numpy as np

from core.errors import InvalidInput
from geodata.pixel_area import cell_area_m2
from gep.arrays import FloatArray, require_positive


def row_areas_m2(*, top_latitude_deg: float, cell_height_deg: float, cell_width_deg: float, rows: int) -> FloatArray:
    """Return the area (m²) of one cell in each of ``rows`` rows, from the top edge southwards.

    Args:
        top_latitude_deg: Latitude of the top edge of the first row (north-up grid).
        cell_height_deg: Pixel height in degrees (positive).
        cell_width_deg: Pixel width in degrees (positive).
        rows: Number of rows.

    Raises:
        InvalidInput: Non-positive sizes or a row beyond a pole.
    """
    height = require_positive("cell_height_deg", cell_height_deg)
    width = require_positive("cell_width_deg", cell_width_deg)
    count = int(require_positive("rows", rows))
    bottom = top_latitude_deg - count * height
    if top_latitude_deg > 90.0 or bottom < -90.0:
        raise InvalidInput(
            f"rows span {bottom}..{top_latitude_deg}°, beyond a pole",
            [{"input": "top_latitude_deg", "reason": "beyond-pole"}],
        )
    north = top_latitude_deg - np.arange(count) * height
    return np.asarray(cell_area_m2(north - height, north, width), dtype=np.float64)


def pixel_areas_m2(
    *, top_latitude_deg: float, cell_height_deg: float, cell_width_deg: float, shape: tuple[int, int]
) -> FloatArray:
    """Return a (rows, cols) array of pixel areas (m²) for a block of a geographic grid.

    >>> pixel_areas_m2(top_latitude_deg=36.02, cell_height_deg=0.01, cell_width_deg=0.01, shape=(2, 3)).shape
    (2, 3)
    """
    rows, cols = shape
    areas = row_areas_m2(
        top_latitude_deg=top_latitude_deg, cell_height_deg=cell_height_deg, cell_width_deg=cell_width_deg, rows=rows
    )
    return np.repeat(areas[:, None], int(require_positive("cols", cols)), axis=1)
