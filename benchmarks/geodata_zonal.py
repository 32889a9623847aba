"""Benchmark (c): zonal statistics of 10,000 plots over a 10,000 × 10,000 raster, against exactextract itself.

Creates (once, cached in ``--workdir``) a tiled, DEFLATE-compressed float32 GeoTIFF of 10,000 × 10,000
30 m cells in UTM 48N (EPSG:32648) and 10,000 random polygons of 1–10 ha inside it. Then, each in a
fresh subprocess so that peak memory (ru_maxrss) is its own:

* ``raw``: ``exactextract.exact_extract`` with count/sum/mean/min/max on the polygons already in the
  raster's CRS — exactextract's own time for the work;
* ``ours``: ``geodata.zonal.zonal_statistics`` from CGCS2000 lon/lat polygons — reprojection, the same
  exactextract work, and the area and integral figures.

Targets: ours ≤ 1.5 × raw; peak memory ≤ 1 GB.

    .venv/bin/python benchmarks/geodata_zonal.py [--size 10000] [--plots 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CELL_M = 30.0
WEST, NORTH = 500_000.0, 4_200_000.0


def make_raster(path: Path, size: int) -> None:
    """Write a smooth synthetic biomass field, block by block (bounded memory)."""
    import rasterio
    from affine import Affine

    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 1, "dtype": "float32", "crs": "EPSG:32648",
        "transform": Affine(CELL_M, 0, WEST, 0, -CELL_M, NORTH), "nodata": -9999.0, "tiled": True,
        "blockxsize": 512, "blockysize": 512, "compress": "deflate", "BIGTIFF": "IF_SAFER",
    }  # fmt: skip
    cols = np.arange(size, dtype=np.float32)
    with rasterio.open(path, "w", **profile) as out:
        for row in range(0, size, 512):
            rows = np.arange(row, min(row + 512, size), dtype=np.float32)[:, None]
            block = 40 + 20 * np.sin(rows / 700) * np.cos(cols[None, :] / 900)
            out.write(block.astype("float32"), 1, window=((row, row + len(rows)), (0, size)))


def make_polygons(path: Path, size: int, count: int) -> None:
    """Random rectangles of 1–10 ha rotated by up to 45°, in metres, as WKT lines."""
    import shapely
    from shapely import affinity

    rng = np.random.default_rng(3)
    extent = size * CELL_M
    lines = []
    for _ in range(count):
        area_m2 = rng.uniform(1e4, 1e5)
        w = float(np.sqrt(area_m2 * rng.uniform(0.5, 2)))
        h = area_m2 / w
        x = WEST + rng.uniform(500, extent - 500 - w)
        y = NORTH - extent + rng.uniform(500, extent - 500 - h)
        shape = affinity.rotate(shapely.box(x, y, x + w, y + h), rng.uniform(0, 45))
        lines.append(shape.wkt)
    path.write_text("\n".join(lines))


def run_raw(raster: Path, polygons: Path) -> float:
    """Exactextract alone on projected polygons."""
    import rasterio
    import shapely
    from exactextract import exact_extract

    features = [
        {"type": "Feature", "properties": {"i": i}, "geometry": shapely.from_wkt(w).__geo_interface__}
        for i, w in enumerate(polygons.read_text().splitlines())
    ]
    started = time.perf_counter()
    with rasterio.open(raster) as dataset:
        exact_extract(dataset, features, ["count", "sum", "mean", "min", "max"], output="geojson")
    return time.perf_counter() - started


def run_ours(raster: Path, polygons: Path) -> float:
    """geodata.zonal from CGCS2000 lon/lat polygons (reprojected inside)."""
    import rasterio
    import shapely
    from pyproj import Transformer

    from geodata.zonal import zonal_statistics

    to_lonlat = Transformer.from_crs("EPSG:32648", "EPSG:4490", always_xy=True)

    def lonlat(xy: np.ndarray) -> np.ndarray:
        return np.column_stack(to_lonlat.transform(xy[:, 0], xy[:, 1]))

    geometries = [shapely.transform(shapely.from_wkt(w), lonlat) for w in polygons.read_text().splitlines()]
    started = time.perf_counter()
    with rasterio.open(raster) as dataset:
        zonal_statistics(dataset, geometries)
    return time.perf_counter() - started


def child(mode: str, raster: Path, polygons: Path) -> None:
    """Run one mode and print its time and peak memory as JSON."""
    seconds = run_raw(raster, polygons) if mode == "raw" else run_ours(raster, polygons)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "peak_mb": peak_mb}))


def main() -> None:
    """Prepare the data, run both modes in subprocesses, print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--plots", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/shanhai-bench-zonal"))
    parser.add_argument("--child", choices=["raw", "ours"])
    args = parser.parse_args()
    raster = args.workdir / f"biomass_{args.size}.tif"
    polygons = args.workdir / f"plots_{args.size}_{args.plots}.wkt"
    if args.child:
        child(args.child, raster, polygons)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    if not raster.exists():
        make_raster(raster, args.size)
    if not polygons.exists():
        make_polygons(polygons, args.size, args.plots)
    results: dict[str, list[dict[str, float]]] = {"raw": [], "ours": []}
    command = [
        sys.executable,
        __file__,
        "--size",
        str(args.size),
        "--plots",
        str(args.plots),
        "--workdir",
        str(args.workdir),
    ]
    for _ in range(args.runs):
        for mode in ("raw", "ours"):
            output = subprocess.run([*command, "--child", mode], check=True, capture_output=True, text=True).stdout
            results[mode].append(json.loads(output.strip().splitlines()[-1]))
    raw = statistics.median(r["seconds"] for r in results["raw"])
    ours = statistics.median(r["seconds"] for r in results["ours"])
    print(f"machine: nproc={os.cpu_count()} {platform.machine()} python {platform.python_version()}")
    print(f"raster {args.size} x {args.size}, {args.plots} plots, {args.runs} runs each")
    for mode in ("raw", "ours"):
        times = [round(r["seconds"], 2) for r in results[mode]]
        peak = max(r["peak_mb"] for r in results[mode])
        print(f"{mode:>4}: median {statistics.median(times):.2f} s {times}, peak memory {peak:.0f} MB")
    print(f"ratio ours / exactextract: {ours / raw:.2f}")


if __name__ == "__main__":
    main()
