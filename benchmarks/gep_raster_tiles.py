"""Map tiles of a 10,000² GEP value COG at every zoom (issue 24): p95 per zoom against rio-tiler's bare read.

Writes a synthetic float64 value raster (元 per pixel: a smooth field with a NaN border, as a run's value raster
outside its regions) of ``--size``² pixels over the demo townships' extent, converts it to a COG with the
overviews every run's value COGs get (``gep.outputs.COG_OVERVIEWS``), then for each zoom rio-tiler gives the
raster (min to max) times ``--tiles`` tiles drawn at random inside its bounds:

* ``tile``: :func:`gep.raster_tiles.value_tile` — what ``/gep/runs/{id}/tiles/...png`` answers (read, colour
  scale, PNG);
* ``bare``: ``rio_tiler.io.Reader(path).tile(x, y, z)`` on the same tiles and file — the baseline, read only;
* ``view``: the same bare read through the WGS84-labelled view the server reads (so ``tile``/``view`` is the
  cost of the colour scale and the PNG).

Each run reports per zoom the median and p95 (ms); the figures printed are the median over ``--runs`` runs, with
the ratio tile/bare measured in the same run. ``--no-overviews`` also times the coarsest zoom on a copy without
overviews (what the overviews save).

    .venv/bin/python benchmarks/gep_raster_tiles.py                  # 10,000², 20 tiles per zoom, 3 runs
    .venv/bin/python benchmarks/gep_raster_tiles.py --size 4000 --runs 5
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gep import raster_tiles
from gep.outputs import COG_OVERVIEWS

WEST, NORTH, SPAN_DEG = 106.2, 35.65, 0.3  # the demo townships' extent (samples/gep_townships_jingyuan.geojson)


def write_cog(path: Path, size: int, *, overviews: bool = True) -> None:
    """Write the synthetic value raster as a COG (with the runs' overviews unless ``overviews`` is false)."""
    import rasterio
    from affine import Affine
    from rasterio.shutil import copy as rio_copy
    from rasterio.windows import Window

    staging = path.with_suffix(".staging.tif")
    profile = {"driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float64", "nodata": np.nan,
               "crs": "EPSG:4490", "transform": Affine(SPAN_DEG / size, 0, WEST, 0, -SPAN_DEG / size, NORTH),
               "tiled": True, "blockxsize": 256, "blockysize": 256}  # fmt: skip
    rng = np.random.default_rng(24)
    with rasterio.open(staging, "w", **profile) as out:
        rows = 1024
        cols = np.arange(size) / size
        for row in range(0, size, rows):
            height = min(rows, size - row)
            y = (np.arange(row, row + height) / size)[:, np.newaxis]
            block = 50 + 30 * np.sin(6 * cols) * np.cos(5 * y) + rng.random((height, size))
            border = (y < 0.02) | (y > 0.98) | (cols < 0.02) | (cols > 0.98)
            out.write(np.where(border, np.nan, block), 1, window=Window(0, row, size, height))
    options = dict(COG_OVERVIEWS) if overviews else {"blocksize": "256", "overviews": "NONE"}
    rio_copy(staging, path, driver="COG", compress="DEFLATE", predictor="3", **options)
    staging.unlink()


def bare_tile(path: Path, z: int, x: int, y: int) -> None:
    """The baseline: rio-tiler's tile read alone, no colouring or encoding."""
    from rio_tiler.io import Reader

    with Reader(str(path)) as src:
        src.tile(x, y, z, tilesize=256, indexes=1, resampling_method="nearest")


def view_tile(path: Path, z: int, x: int, y: int) -> None:
    """rio-tiler's read alone through the view the server reads (a CGCS2000 file labelled WGS84)."""
    from rio_tiler.io import Reader

    with Reader(raster_tiles._tiling_source(path)) as src:
        src.tile(x, y, z, tilesize=256, indexes=1, resampling_method="nearest")


def our_tile(path: Path, z: int, x: int, y: int) -> None:
    """What the tile route answers: read, colour scale, PNG."""
    assert raster_tiles.value_tile(path, z, x, y) is not None


def tiles_of(path: Path, count: int, seed: int) -> dict[int, list[tuple[int, int, int]]]:
    """Return ``count`` random tiles inside the raster per zoom it has."""
    import morecantile

    info = raster_tiles.raster_info(path)
    west, south, east, north = info.bounds
    tms = morecantile.tms.get("WebMercatorQuad")
    rng = random.Random(seed)
    chosen: dict[int, list[tuple[int, int, int]]] = {}
    inner = 0.05 * (east - west)  # inside the NaN border
    for zoom in range(info.min_zoom, info.max_zoom + 1):
        chosen[zoom] = []
        for _ in range(count):
            tile = tms.tile(rng.uniform(west + inner, east - inner), rng.uniform(south + inner, north - inner), zoom)
            chosen[zoom].append((tile.z, tile.x, tile.y))
    return chosen


def timed(read: Callable[[Path, int, int, int], None], path: Path, tiles: list[tuple[int, int, int]]) -> list[float]:
    """Return the milliseconds of each read."""
    seconds = []
    for z, x, y in tiles:
        start = time.perf_counter()
        read(path, z, x, y)
        seconds.append((time.perf_counter() - start) * 1000)
    return seconds


def p95(values: list[float]) -> float:
    """Return the 95th percentile."""
    return float(np.percentile(values, 95))


def main() -> None:
    """Write the COG once, time every zoom, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--tiles", type=int, default=20, help="tiles per zoom per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-overviews", action="store_true", help="also time the coarsest zoom without overviews")
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()), help="where the COG is kept")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    path = args.dir / f"gep_value_bench_{args.size}.tif"
    if not path.exists():
        start = time.perf_counter()
        write_cog(path, args.size)
        print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.0f} s")
    import rasterio

    with rasterio.open(path) as data:
        print(f"COG {data.width}×{data.height}, overviews {data.overviews(1)}, blocks {data.block_shapes[0]}")
    raster_tiles.raster_info(path)  # the colour scale is read once per file (kept), as the server does
    per_zoom: dict[int, dict[str, list[float]]] = {}
    for run in range(args.runs):
        for zoom, tiles in tiles_of(path, args.tiles, seed=run).items():
            ours, bare, view = (
                timed(our_tile, path, tiles),
                timed(bare_tile, path, tiles),
                timed(view_tile, path, tiles),
            )
            keys = ("median", "p95", "bare_p95", "ratio", "view_p95", "view_ratio")
            figures = per_zoom.setdefault(zoom, {key: [] for key in keys})
            figures["median"].append(statistics.median(ours))
            figures["p95"].append(p95(ours))
            figures["bare_p95"].append(p95(bare))
            figures["ratio"].append(p95(ours) / p95(bare))
            figures["view_p95"].append(p95(view))
            figures["view_ratio"].append(p95(ours) / p95(view))
    print(f"\n{args.tiles} tiles per zoom, median of {args.runs} runs (ms)")
    print(f"{'zoom':>4} {'tile median':>12} {'tile p95':>9} {'bare p95':>9} {'ratio':>6} {'view p95':>9} {'ratio':>6}")
    worst = 0.0
    for zoom, f in sorted(per_zoom.items()):
        tile_p95 = statistics.median(f["p95"])
        worst = max(worst, tile_p95)
        print(f"{zoom:>4} {statistics.median(f['median']):>12.1f} {tile_p95:>9.1f} "
              f"{statistics.median(f['bare_p95']):>9.1f} {statistics.median(f['ratio']):>6.2f} "
              f"{statistics.median(f['view_p95']):>9.1f} {statistics.median(f['view_ratio']):>6.2f}")  # fmt: skip
    print(f"worst zoom's p95: {worst:.1f} ms (target ≤ 100 ms)")
    if args.no_overviews:
        bare_path = args.dir / f"gep_value_bench_{args.size}_no_overviews.tif"
        if not bare_path.exists():
            write_cog(bare_path, args.size, overviews=False)
        zoom = min(per_zoom)
        tiles = tiles_of(path, 3, seed=0)[zoom]
        with_overviews, without = timed(our_tile, path, tiles), timed(our_tile, bare_path, tiles)
        print(f"zoom {zoom} without overviews: median {statistics.median(without):.0f} ms "
              f"(with: {statistics.median(with_overviews):.0f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
