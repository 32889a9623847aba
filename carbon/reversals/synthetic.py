"""Synthetic NDVI composites and change patches with a known scar — for the demo, the tests and the benchmark.

SYNTHETIC, not data. The grid is EPSG:4490 lon/lat; NDVI is a smooth deterministic field (0.62–0.78, no
randomness: the same call writes the same bytes) that changes by at most ±0.03 between the two composites,
except inside the *scar*, where the later composite holds ``scar_ndvi`` (a burn: bare soil and ash). The scar is
a rectangle of whole pixels, so its true area is the geodesic area of that rectangle, and its pixels are exactly
those whose centres fall in it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
from shapely.geometry import box, mapping
from shapely.geometry.base import BaseGeometry

from geodata.tiling import FloatArray

#: The synthetic grid's cell (degrees): about 9 m × 11 m at 35.5° N.
CELL_DEG = 0.0001
NODATA = -9999.0


@dataclass(frozen=True)
class SyntheticGrid:
    """A north-up lon/lat grid: its west and north edges, its cell size and shape."""

    west: float
    north: float
    width: int
    height: int
    cell_deg: float = CELL_DEG

    @classmethod
    def around(
        cls, bounds: tuple[float, float, float, float], margin_px: int = 20, cell_deg: float = CELL_DEG
    ) -> SyntheticGrid:
        """Return the grid covering ``bounds`` (lon/lat) with a margin, its edges on whole cells."""
        west = np.floor(bounds[0] / cell_deg) * cell_deg - margin_px * cell_deg
        north = np.ceil(bounds[3] / cell_deg) * cell_deg + margin_px * cell_deg
        width = int(np.ceil((bounds[2] - west) / cell_deg)) + margin_px
        height = int(np.ceil((north - bounds[1]) / cell_deg)) + margin_px
        return cls(float(west), float(north), width, height, cell_deg)

    def pixel_box(self, col: int, row: int, width: int, height: int) -> BaseGeometry:
        """Return the lon/lat rectangle of ``width`` × ``height`` whole pixels from ``(col, row)``."""
        west = self.west + col * self.cell_deg
        north = self.north - row * self.cell_deg
        return box(west, north - height * self.cell_deg, west + width * self.cell_deg, north)

    def pixel_of(self, lon: float, lat: float) -> tuple[int, int]:
        """Return the ``(col, row)`` of the pixel holding a point."""
        return int((lon - self.west) // self.cell_deg), int((self.north - lat) // self.cell_deg)


def ndvi_field(grid: SyntheticGrid, phase: float = 0.0) -> FloatArray:
    """Return a smooth NDVI field (0.62–0.78) that moves by at most ±0.03 with ``phase`` (0..1)."""
    rows, cols = np.mgrid[0 : grid.height, 0 : grid.width].astype(np.float64)
    base = 0.70 + 0.05 * np.sin(cols / 17.0) * np.cos(rows / 23.0)
    field: FloatArray = base + 0.03 * phase * np.sin((cols + rows) / 11.0)
    return field


def write_ndvi(path: Path, grid: SyntheticGrid, values: FloatArray) -> None:
    """Write an NDVI composite as a float32 GeoTIFF (EPSG:4490, nodata −9999, tiled, deflate)."""
    import rasterio
    from affine import Affine

    path.parent.mkdir(parents=True, exist_ok=True)
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": grid.width, "height": grid.height, "count": 1, "dtype": "float32",
        "crs": "EPSG:4490", "transform": Affine(grid.cell_deg, 0.0, grid.west, 0.0, -grid.cell_deg, grid.north),
        "nodata": NODATA, "compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256,
    }  # fmt: skip
    if grid.width < 256 or grid.height < 256:
        profile.update(tiled=False, blockxsize=None, blockysize=None)
        profile = {k: v for k, v in profile.items() if v is not None}
    with rasterio.open(path, "w", **profile) as out:
        out.write(np.where(np.isfinite(values), values, NODATA).astype(np.float32), 1)


def burn(values: FloatArray, grid: SyntheticGrid, scar: BaseGeometry, scar_ndvi: float = 0.12) -> FloatArray:
    """Return ``values`` with the pixels whose centres lie in ``scar`` set to ``scar_ndvi``."""
    from affine import Affine
    from rasterio.features import rasterize

    transform = Affine(grid.cell_deg, 0, grid.west, 0, -grid.cell_deg, grid.north)
    inside = rasterize([(scar, 1)], out_shape=values.shape, transform=transform, fill=0, dtype="uint8") == 1
    burnt = values.copy()
    burnt[inside] = scar_ndvi
    return burnt


def write_pair(
    raster_dir: Path, grid: SyntheticGrid, scar: BaseGeometry | None, *, stem: str, scar_ndvi: float = 0.12
) -> tuple[str, str]:
    """Write ``<stem>_before.tif`` and ``<stem>_after.tif`` (the scar burnt into the later one); return their names."""
    before = ndvi_field(grid, 0.0)
    after = ndvi_field(grid, 1.0)
    if scar is not None:
        after = burn(after, grid, scar, scar_ndvi)
    names = (f"{stem}_before.tif", f"{stem}_after.tif")
    write_ndvi(raster_dir / names[0], grid, before)
    write_ndvi(raster_dir / names[1], grid, after)
    return names


def change_patch_document(patches: list[tuple[BaseGeometry, dict[str, Any]]]) -> bytes:
    """Return a change-patch GeoJSON file (森林督查 attribute names) of the given polygons and attributes."""
    features = [{"type": "Feature", "properties": props, "geometry": mapping(g)} for g, props in patches]
    return json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False).encode("utf-8")


#: Demo and test acquisition windows: two summers (anniversary dates) and a winter.
SUMMER_2024 = (date(2024, 7, 1), date(2024, 8, 31))
SUMMER_2025 = (date(2025, 7, 1), date(2025, 8, 31))
WINTER_2025 = (date(2025, 1, 1), date(2025, 2, 28))
