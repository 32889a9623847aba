"""Per-pixel value rasters of a run: float64 元 per indicator, written tile by tile, assembled as COGs.

Each tile writes its own small GeoTIFF (so tiles computed on different workers never write to one
file); :meth:`RasterWriter.assemble` copies the tiles window by window into one tiled GeoTIFF per
indicator (bounded memory) and converts it to a Cloud-Optimised GeoTIFF, then removes the tile files.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from gep.arrays import FloatArray
from gep.engine import Plan

PROFILE: dict[str, Any] = {"driver": "GTiff", "count": 1, "dtype": "float64", "nodata": float("nan")}


class RasterWriter:
    """Writes value blocks of a run's tiles under ``out_dir`` and assembles them per indicator."""

    def __init__(self, plan: Plan, out_dir: Path) -> None:
        """Prepare ``out_dir/tiles``."""
        self.plan = plan
        self.out_dir = out_dir
        self.tile_dir = out_dir / "tiles"
        self.tile_dir.mkdir(parents=True, exist_ok=True)

    def _tile_path(self, code: str, index: int) -> Path:
        return self.tile_dir / f"{code}-{index:05d}.tif"

    def write_tile(self, index: int, window: tuple[int, int, int, int], values: dict[str, FloatArray]) -> None:
        """Write one tile's value block per indicator (overwrites: a retried tile is harmless)."""
        import rasterio
        from affine import Affine

        col, row, width, height = window
        transform = Affine(*self.plan.grid.transform) @ Affine.translation(col, row)
        for code, block in values.items():
            profile = PROFILE | {
                "width": width,
                "height": height,
                "crs": self.plan.grid.crs_wkt,
                "transform": transform,
            }
            with rasterio.open(self._tile_path(code, index), "w", **profile) as out:
                out.write(np.asarray(block, dtype=np.float64), 1)

    def assemble(self, tile_count: int) -> dict[str, str]:
        """Assemble every indicator's tiles into ``value_<indicator>.tif`` (COG); return indicator → file name."""
        import rasterio
        from affine import Affine
        from rasterio.shutil import copy as rio_copy
        from rasterio.windows import Window

        grid = self.plan.grid
        names: dict[str, str] = {}
        windows = self.plan.windows()
        for code in self.plan.config.indicators:
            staging = self.out_dir / f".value_{code}.tif"
            profile = PROFILE | {
                "width": grid.width,
                "height": grid.height,
                "crs": grid.crs_wkt,
                "transform": Affine(*grid.transform),
                "tiled": True,
                "blockxsize": 256,
                "blockysize": 256,
            }
            with rasterio.open(staging, "w", **profile) as out:
                for index in range(tile_count):
                    col, row, width, height = windows[index]
                    with rasterio.open(self._tile_path(code, index)) as tile:
                        out.write(tile.read(1), 1, window=Window(col, row, width, height))
            final = self.out_dir / f"value_{code}.tif"
            rio_copy(staging, final, driver="COG", compress="DEFLATE", predictor="3")
            staging.unlink()
            names[code] = final.name
        shutil.rmtree(self.tile_dir, ignore_errors=True)
        return names
