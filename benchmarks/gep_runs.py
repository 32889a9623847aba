"""Time a full GEP accounting run on a 4,000 × 4,000 synthetic stack, in one tile and in 64 tiles.

Writes the synthetic stack (``gep.synthetic``, EPSG:4490, nine GeoTIFFs) and 3 × 3 synthetic
townships, then runs the same configuration (water conservation, soil retention with the one-pixel DEM
halo, oxygen release; land-cover extent) through the engine with ``tile_size`` = N (one tile) and N / 8
(64 tiles), each in a fresh subprocess so that peak memory is per run. Value rasters (float64 COGs) are
written too. Prints one JSON line per run (seconds, peak RSS in MB, tiles) and the largest relative
difference between the two runs' totals. GDAL's block cache is capped (``GDAL_CACHEMAX``, default here
128 MB; GDAL's own default is 5 % of RAM, which would dominate the peak).

    .venv/bin/python benchmarks/gep_runs.py [--size 4000] [--tiles-per-side 8] [--workdir DIR]

The tiles run one after another in one process here; spreading them over Celery workers is tested in
``tests/integration/test_gep_celery.py`` (800 × 800, 64 tiles, real worker, Redis) and, at 4,000², by
``benchmarks/gep_scale.py --size 4000 --tile 500 --compare-one-tile``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

INDICATORS = ["water_conservation", "soil_retention", "oxygen_release"]


def peak_rss_mb() -> float:
    """Return this process's peak RSS (MB) from ``VmHWM``.

    Not ``ru_maxrss``: Linux keeps it across ``execve``, so a child forked from a parent that had just
    generated the stack in memory reported the parent's size (2 GB for a 64-tile run that peaks at 0.35 GB).
    """
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _run(workdir: Path, size: int, tile_size: int) -> dict[str, Any]:
    import shapely.geometry as sg

    from gep.engine import RegionShape, RunConfig, Source, plan_run, run_in_process
    from gep.prices import load_table
    from gep.synthetic import FILES, township_collection

    cell = 0.3 / size
    names = {role: f"gep_{stem}.tif" for role, stem in FILES.items()}
    sources = {
        role: Source(role, name, workdir / name, hashlib.sha256((workdir / name).read_bytes()).hexdigest())
        for role, name in names.items()
    }
    regions = [
        RegionShape(f["properties"]["code"], f["properties"]["name"], sg.shape(f["geometry"]))
        for f in township_collection(size, size, cell_deg=cell, n=3)["features"]
    ]
    config = RunConfig(
        name="benchmark",
        year=2025,
        indicators=INDICATORS,
        inputs={**names, "practice_factor": 1.0},
        prices="prices_ganzi_2010",
        negative_balance="clamp-to-zero",  # type: ignore[arg-type]
        tile_size=tile_size,
    )
    plan = plan_run(config, sources, regions, load_table("prices_ganzi_2010"), load_table("coefficients_default"))
    started = time.perf_counter()
    merged, _rasters = run_in_process(plan, workdir / f"out-{tile_size}")
    seconds = time.perf_counter() - started
    return {
        "tile_size": tile_size,
        "tiles": len(plan.windows()),
        "seconds": round(seconds, 2),
        "peak_rss_mb": peak_rss_mb(),
        "totals": merged.totals,
        "gep_yuan": str(sum(line.gross_yuan for line in merged.lines)),
    }


def main() -> None:
    """Generate the stack, run both tilings in subprocesses, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--tiles-per-side", type=int, default=8)
    parser.add_argument("--workdir", type=Path, help="reuses a stack already written there")
    parser.add_argument("--gdal-cache-mb", type=int, default=128, help="GDAL_CACHEMAX of the runs (MB)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gep-runs-"))
    if args.child is not None:
        print(json.dumps(_run(workdir, args.size, args.child)))
        return
    from gep.synthetic import write_stack

    started = time.perf_counter()
    if not (workdir / "gep_land_cover.tif").is_file():
        write_stack(workdir, args.size, args.size, cell_deg=0.3 / args.size)
    print(json.dumps({"stack": f"{args.size}x{args.size}", "generated_s": round(time.perf_counter() - started, 1)}))
    env = {**os.environ, "GDAL_CACHEMAX": str(args.gdal_cache_mb)}
    results = []
    for tile_size in (args.size, math.ceil(args.size / args.tiles_per_side)):
        command = [sys.executable, __file__, "--size", str(args.size), "--workdir", str(workdir)]
        output = subprocess.run(
            [*command, "--child", str(tile_size)], check=True, capture_output=True, text=True, env=env
        )
        result = json.loads(output.stdout.strip().splitlines()[-1])
        results.append(result)
        print(json.dumps({k: v for k, v in result.items() if k != "totals"}))
    one, many = results
    worst = max(
        abs(many["totals"][code][region] - total) / abs(total) if total else 0.0
        for code, by_region in one["totals"].items()
        for region, total in by_region.items()
    )
    print(
        json.dumps(
            {
                "max_relative_difference": worst,
                "equal_to_1e-12": worst <= 1e-12,
                "same_gep_yuan": one["gep_yuan"] == many["gep_yuan"],
                "machine": f"nproc={os.cpu_count()}, {platform.processor() or platform.machine()}, "
                f"Python {platform.python_version()}",
            }
        )
    )


if __name__ == "__main__":
    main()
