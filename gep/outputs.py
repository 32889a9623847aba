"""Per-pixel value rasters of a run: float64 元 per indicator, written tile by tile, assembled as COGs.

Each tile writes its own small multi-band GeoTIFF (so tiles computed on different workers never write to
one file): one band per block of :meth:`gep.plan.Plan.value_keys` and a last band with the pixel's
region index. :meth:`RasterWriter.assemble` reads each tile once and copies its blocks window by window
into one tiled GeoTIFF per indicator (bounded memory: one tile at a time), converts each to a
Cloud-Optimised GeoTIFF with overviews (:data:`COG_OVERVIEWS`), then removes the tile files.

Regional indicators (:mod:`gep.regional`) write their basis components (physical, not 元); assembling is
their second pass: ``value = Σ_k basis_k × factor_k(region of the pixel) × unit value``, with the factors
from the merged regional sums, so the raster sums to the regional quantity × price.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from gep.arrays import FloatArray
from gep.plan import Plan, region_index
from gep.regional import component_key
from gep.spec import DEFAULT_INDICATORS

PROFILE: dict[str, Any] = {"driver": "GTiff", "count": 1, "dtype": "float64", "nodata": float("nan")}
#: Overviews of every value COG (halving down to one 256-px block), averaged ignoring NaN, so a map tile at
#: any zoom reads the overview nearest its scale (:mod:`gep.raster_tiles`); clicks read full resolution.
COG_OVERVIEWS: dict[str, str] = {
    "blocksize": "256",
    "overviews": "IGNORE_EXISTING",
    "overview_resampling": "AVERAGE",
}
#: The band of a tile file holding the region index (after the value blocks).
REGION_BAND = "region_index"


class RasterWriter:
    """Writes value blocks of a run's tiles under ``out_dir`` and assembles them per indicator."""

    def __init__(self, plan: Plan, out_dir: Path) -> None:
        """Prepare ``out_dir/tiles``."""
        self.plan = plan
        self.out_dir = out_dir
        self.tile_dir = out_dir / "tiles"
        self.tile_dir.mkdir(parents=True, exist_ok=True)
        self.bands = [*plan.value_keys(), REGION_BAND]

    def _tile_path(self, index: int) -> Path:
        return self.tile_dir / f"tile-{index:05d}.tif"

    def write_tile(self, index: int, window: tuple[int, int, int, int], values: dict[str, FloatArray]) -> None:
        """Write one tile's blocks and region index (overwrites: a retried tile is harmless)."""
        import rasterio
        from affine import Affine

        col, row, width, height = window
        transform = Affine(*self.plan.grid.transform) @ Affine.translation(col, row)
        profile = PROFILE | {
            "width": width,
            "height": height,
            "count": len(self.bands),
            "crs": self.plan.grid.crs_wkt,
            "transform": transform,
        }
        blocks = {**values, REGION_BAND: region_index(self.plan, window)}
        with rasterio.open(self._tile_path(index), "w", **profile) as out:
            for band, key in enumerate(self.bands, start=1):
                out.write(np.asarray(blocks[key], dtype=np.float64), band)
                out.set_band_description(band, key)

    def _value_block(
        self, code: str, blocks: Mapping[str, FloatArray], factors: Mapping[str, Mapping[str, float]]
    ) -> FloatArray:
        """Return an indicator's value block (元): as written, or the regional second pass."""
        spec = DEFAULT_INDICATORS.get(code)
        if not spec.regional:
            return np.asarray(blocks[code], dtype=np.float64)
        regions = blocks[REGION_BAND]
        value: FloatArray = np.zeros(regions.shape)
        for part in spec.components:
            key = component_key(code, part)
            factor = np.full(regions.shape, np.nan)
            for i, region in enumerate(self.plan.regions):
                factor[regions == i] = factors.get(key, {}).get(region.code, np.nan)
            value = value + blocks[key] * factor
        return value * float(self.plan.unit_values[code].yuan_per_unit)

    def assemble(self, tile_count: int, factors: Mapping[str, Mapping[str, float]] | None = None) -> dict[str, str]:
        """Assemble every indicator's tiles into ``value_<indicator>.tif`` (COG); return indicator → file name.

        ``factors`` (basis component → region code → factor) finishes the regional indicators.
        """
        import rasterio
        from affine import Affine
        from rasterio.shutil import copy as rio_copy
        from rasterio.windows import Window

        grid = self.plan.grid
        codes = list(self.plan.config.indicators)
        windows = self.plan.windows()
        profile = PROFILE | {
            "width": grid.width,
            "height": grid.height,
            "crs": grid.crs_wkt,
            "transform": Affine(*grid.transform),
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
        }
        with ExitStack() as stack:
            staging = {
                code: stack.enter_context(rasterio.open(self.out_dir / f".value_{code}.tif", "w", **profile))
                for code in codes
            }
            for index in range(tile_count):
                col, row, width, height = windows[index]
                with rasterio.open(self._tile_path(index)) as tile:
                    data = tile.read()
                blocks = {key: data[band] for band, key in enumerate(self.bands)}
                for code in codes:
                    block = self._value_block(code, blocks, factors or {})
                    staging[code].write(block, 1, window=Window(col, row, width, height))
        names: dict[str, str] = {}
        for code in codes:
            source, final = self.out_dir / f".value_{code}.tif", self.out_dir / f"value_{code}.tif"
            rio_copy(source, final, driver="COG", compress="DEFLATE", predictor="3", **COG_OVERVIEWS)
            source.unlink()
            names[code] = final.name
        shutil.rmtree(self.tile_dir, ignore_errors=True)
        return names
