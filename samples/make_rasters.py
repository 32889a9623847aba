"""Regenerate the synthetic raster stack over the two demo sites (clearly synthetic, seeded).

For each site (Jingyuan around the Haicang plot; Yongning around the mine restoration) two GeoTIFFs in
EPSG:4490 with 0.0002° cells (about 18 m × 22 m), DEFLATE-compressed and tiled:

* ``landcover_<site>.tif`` (uint8, nodata 0): 1 forest, 2 shrubland, 3 grassland, 4 bare / mine land,
  5 cropland, laid out as smooth random patches (seed 2026);
* ``agb_<site>.tif`` (float32 t/ha, nodata -9999): aboveground biomass by class (forest ≈ 45, shrub ≈ 12,
  grass ≈ 3, bare 0, crop 5 t/ha) with ±15 % noise.

and, for the Yongning restoration's evidence, its land cover before and after: ``landcover_yongning_2021.tif``
(the mine plot of ``demo_plots.geojson`` all class 4, bare / mine land) and ``landcover_yongning_2025.tif``
(the plot restored: shrubland inside, grassland on a 3-cell fringe where only the sown grass took), both on
``landcover_yongning.tif``'s grid and background.

Run: ``.venv/bin/python samples/make_rasters.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

HERE = Path(__file__).parent / "rasters"
CELL_DEG = 0.0002
SITES = {"jingyuan": (106.300, 35.520, 400, 300), "yongning": (105.990, 38.290, 400, 400)}  # west, north, cols, rows
BIOMASS_T_PER_HA = {1: 45.0, 2: 12.0, 3: 3.0, 4: 0.0, 5: 5.0}


def _patches(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    coarse = rng.integers(1, 6, size=(rows // 25 + 1, cols // 25 + 1))
    return np.kron(coarse, np.ones((25, 25), dtype=np.int64))[:rows, :cols].astype("uint8")


def _write(path: Path, array: np.ndarray, transform: Affine, nodata: float) -> None:
    profile = {
        "driver": "GTiff", "width": array.shape[1], "height": array.shape[0], "count": 1, "dtype": array.dtype.name,
        "crs": "EPSG:4490", "transform": transform, "nodata": nodata, "compress": "deflate", "tiled": True,
        "blockxsize": 128, "blockysize": 128,
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as out:
        out.write(array, 1)


def restoration_pair() -> None:
    """Write the Yongning plot's land cover before (2021, bare) and after (2025, restored) the restoration."""
    import json

    from rasterio.features import rasterize
    from shapely.geometry import shape

    plots = json.loads((HERE.parent / "demo_plots.geojson").read_text(encoding="utf-8"))["features"]
    polygon = shape(next(f for f in plots if f["properties"]["code"] == "NX-YN-KS-001")["geometry"])
    with rasterio.open(HERE / "landcover_yongning.tif") as source:
        background, transform = source.read(1), source.transform
    inside = rasterize([polygon], out_shape=background.shape, transform=transform, fill=0, default_value=1) == 1
    before = np.where(inside, 4, background).astype("uint8")
    core = inside.copy()
    for _ in range(3):  # erode by one cell a time: a cell stays core when its four neighbours are inside
        core[1:-1, 1:-1] &= core[:-2, 1:-1] & core[2:, 1:-1] & core[1:-1, :-2] & core[1:-1, 2:]
        core[[0, -1], :] = False
        core[:, [0, -1]] = False
    after = np.where(core, 2, np.where(inside, 3, background)).astype("uint8")
    _write(HERE / "landcover_yongning_2021.tif", before, transform, 0)
    _write(HERE / "landcover_yongning_2025.tif", after, transform, 0)


def main() -> None:
    """Write the four rasters into ``samples/rasters``, then the Yongning restoration's before and after."""
    HERE.mkdir(exist_ok=True)
    rng = np.random.default_rng(2026)
    for site, (west, north, cols, rows) in SITES.items():
        transform = Affine(CELL_DEG, 0.0, west, 0.0, -CELL_DEG, north)
        cover = _patches(rng, rows, cols)
        biomass = np.vectorize(BIOMASS_T_PER_HA.get)(cover).astype("float32")
        biomass *= rng.uniform(0.85, 1.15, size=biomass.shape).astype("float32")
        biomass = np.round(biomass, 1)  # 0.1 t/ha is the precision of the data; it also compresses well
        _write(HERE / f"landcover_{site}.tif", cover, transform, 0)
        _write(HERE / f"agb_{site}.tif", biomass, transform, -9999.0)
    restoration_pair()


if __name__ == "__main__":
    main()
