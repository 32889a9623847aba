"""Time gep's InVEST-compatible Carbon and Annual Water Yield against InVEST 3.20.2 on the same inputs.

Both sides read the same files: the peers' deterministic Minning stack (``make_data.py``: ``lulc.tif``,
``precip.tif``, ``et0.tif``, ``root_depth.tif``, ``pawc.tif``, ``watersheds.gpkg``, ``carbon_pools.csv``,
``biophysical_table.csv``; EPSG:4544, 30 m, tiled 256², uncompressed) with the same parameters
(Carbon: storage only; Annual Water Yield: seasonality Z, default 1). Each side runs in its own fresh
subprocess, one after the other, alternating, ``--runs`` times:

* **InVEST**: ``natcap.invest.<model>.execute(args)`` (``n_workers=-1``: synchronous) in the peers'
  virtualenv, with the arguments of the peers' ``invest_carbon.py`` / ``invest_awy.py``; the time is the
  ``execute`` call alone (imports and the re-reading of its outputs for the totals are excluded).
* **gep**: :func:`run_carbon` / :func:`run_water_yield` below in this repository's virtualenv. The time
  covers what ``execute`` does that we need too: reading every input window by window (≈ ``--window-pixels``
  each, aligned on the 256² blocks; nodata → NaN, float64), the kernels of :mod:`gep.invest`, the exact
  totals (per watershed for AWY) and writing the per-pixel result (``c_storage_bas.tif`` / ``wyield.tif``,
  float64, tiled) — imports excluded. InVEST also writes intermediate rasters (AET, PET, fractp, aligned
  inputs …) that gep does not need.

Prints one JSON line per run, then a summary: medians of wall and CPU time (``process_time``: on a
shared machine the CPU time is the steadier comparison), the speed ratios (InVEST median / gep median),
every run's peak RSS (``VmHWM`` of each fresh subprocess) with the largest per side, and the relative
differences of the totals (carbon: Σ storage × pixel area; AWY: Σ ``wyield_vol`` over the watersheds and
per watershed).

    PEERS=/tmp/peers   # a copy of ../shared/peers after setup_venv.sh (make_data.py is run if needed)
    .venv/bin/python benchmarks/gep_invest_speed.py --peers $PEERS --size medium --runs 5
    # from a git worktree, put it first on the path (the venv's editable install points at another tree):
    PYTHONPATH=. /path/to/.venv/bin/python benchmarks/gep_invest_speed.py --peers $PEERS --models awy --runs 5
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gep.invest import carbon, water_yield

#: Pixels per window by default (``--window-pixels``): 256 full-width rows of the 4,000² stack. The working set
#: is ~15 float64 window-sized arrays (inputs, lookups, temporaries, masks), so ≈ 1 Mpx (256 rows × 4,000) keeps
#: AWY's peak below InVEST's; the earlier ≈ 4 Mpx strips (``--window-pixels 4000000``) peaked ~300 MB above it.
WINDOW_PIXELS = 1 << 20


def read_pools(path: Path) -> carbon.CarbonPools:
    """Return InVEST's carbon pools CSV as a gep table."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return carbon.CarbonPools(
        rows={
            int(r["lucode"]): carbon.CarbonPool(
                above=float(r["c_above"]), below=float(r["c_below"]), soil=float(r["c_soil"]), dead=float(r["c_dead"])
            )
            for r in rows
        }
    )


def read_biophysical(path: Path) -> water_yield.BiophysicalTable:
    """Return InVEST's biophysical CSV as a gep table."""
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return water_yield.BiophysicalTable(
        rows={
            int(r["lucode"]): water_yield.BiophysicalRow(
                vegetated=r["lulc_veg"] == "1", root_depth_mm=float(r["root_depth"]), kc=float(r["kc"])
            )
            for r in rows
        }
    )


def windows(width: int, height: int, pixels: int = WINDOW_PIXELS) -> list[tuple[int, int, int, int]]:
    """Return ``(col, row, width, height)`` windows aligned on the 256² GeoTIFF blocks, ≈ ``pixels`` each.

    Full-width strips of a multiple of 256 rows while a 256-row strip fits in ``pixels``; otherwise 256-row
    strips cut into a multiple of 256 columns.
    """
    if pixels >= 256 * width:
        rows = 256 * (pixels // (256 * width))
        return [(0, row, width, min(rows, height - row)) for row in range(0, height, rows)]
    cols = 256 * max(1, pixels // (256 * 256))
    return [
        (col, row, min(cols, width - col), min(256, height - row))
        for row in range(0, height, 256)
        for col in range(0, width, cols)
    ]


def _output_profile(source: Any) -> dict[str, Any]:
    return {
        "driver": "GTiff",
        "width": source.width,
        "height": source.height,
        "count": 1,
        "dtype": "float64",
        "nodata": float("nan"),
        "crs": source.crs,
        "transform": source.transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }


def run_carbon(data: Path, out: Path, pixels: int = WINDOW_PIXELS) -> dict[str, Any]:
    """Compute Carbon storage with gep: per-pixel t C/ha raster and the exact total (t C)."""
    import rasterio
    from rasterio.windows import Window

    from gep.plan import _read

    pools = read_pools(data / "carbon_pools.csv")
    out.mkdir(parents=True, exist_ok=True)
    parts: list[float] = []
    with rasterio.open(data / "lulc.tif") as lulc:
        area = abs(lulc.transform.a * lulc.transform.e)
        with rasterio.open(out / "c_storage_bas.tif", "w", **_output_profile(lulc)) as dst:
            for window in windows(lulc.width, lulc.height, pixels):
                storage = carbon.carbon_storage_t_per_ha(_read(lulc, window), pools)
                parts.append(carbon.total_t(storage, area))
                dst.write(storage, 1, window=Window(*window))
    return {"total_carbon_t": math.fsum(parts)}


def _watersheds(path: Path) -> list[tuple[int, Any]]:
    import pyogrio
    import shapely

    _meta, _fids, geometries, fields = pyogrio.raw.read(path, columns=["ws_id"])
    return [(int(ws), shapely.from_wkb(g)) for ws, g in zip(fields[0], geometries, strict=True)]


def run_water_yield(data: Path, out: Path, z: float, pixels: int = WINDOW_PIXELS) -> dict[str, Any]:
    """Compute Annual Water Yield with gep: per-pixel yield (mm) raster and the exact volume per watershed (m³)."""
    import rasterio
    from rasterio.features import rasterize
    from rasterio.windows import Window
    from rasterio.windows import transform as window_transform

    from gep.plan import _read

    table = read_biophysical(data / "biophysical_table.csv")
    sheds = _watersheds(data / "watersheds.gpkg")
    out.mkdir(parents=True, exist_ok=True)
    names = {"lulc": "lulc", "precip": "precip", "et0": "et0", "depth": "root_depth", "pawc": "pawc"}
    datasets = {key: rasterio.open(data / f"{stem}.tif") for key, stem in names.items()}
    parts: dict[int, list[float]] = {ws: [] for ws, _ in sheds}
    try:
        lulc = datasets["lulc"]
        area = abs(lulc.transform.a * lulc.transform.e)
        with rasterio.open(out / "wyield.tif", "w", **_output_profile(lulc)) as dst:
            for window in windows(lulc.width, lulc.height, pixels):
                x = {key: _read(dataset, window) for key, dataset in datasets.items()}
                wyield = water_yield.water_yield_mm(
                    x["lulc"],
                    precipitation_mm=x["precip"],
                    eto_mm=x["et0"],
                    restricting_depth_mm=x["depth"],
                    pawc=x["pawc"],
                    table=table,
                    seasonality_z=z,
                )
                dst.write(wyield, 1, window=Window(*window))
                shed = rasterize(
                    ((g, ws) for ws, g in sheds),
                    out_shape=wyield.shape,
                    transform=window_transform(Window(*window), lulc.transform),
                    fill=0,
                    dtype="int32",
                )
                for ws, _ in sheds:
                    inside = wyield[shed == ws]
                    if inside.size:  # a strip may miss a watershed
                        parts[ws].append(water_yield.water_yield_volume_m3(inside, area))
    finally:
        for dataset in datasets.values():
            dataset.close()
    volumes = {ws: math.fsum(p) for ws, p in parts.items()}
    return {"total_wyield_m3": math.fsum(volumes.values()), "ws_wyield_m3": {str(k): v for k, v in volumes.items()}}


def peak_rss_mb() -> float:
    """Return this process's peak RSS (``VmHWM``; unlike ``ru_maxrss`` it is not inherited across exec)."""
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def child(model: str, data: Path, out: Path, z: float, pixels: int) -> dict[str, Any]:
    """Run one gep model and time it (imports already done)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = run_carbon(data, out, pixels) if model == "carbon" else run_water_yield(data, out, z, pixels)
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    return {"tool": f"gep_{model}", "wall_s": round(seconds, 3), "cpu_s": round(cpu_s, 3),
            "peak_rss_mb": peak_rss_mb(), **result}  # fmt: skip


#: Runs InVEST in the peers' virtualenv: ``python -c INVEST model data workspace z``; prints one JSON line.
INVEST = """
import json, logging, math, shutil, sys, time
import numpy as np
logging.basicConfig(level=logging.WARNING)
import natcap.invest, pandas, rasterio
from natcap.invest import annual_water_yield, carbon
model, data, ws, z = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
shutil.rmtree(ws, ignore_errors=True)  # else InVEST's taskgraph cache skips the work
if model == "carbon":
    args = {"workspace_dir": ws, "lulc_bas_path": f"{data}/lulc.tif", "carbon_pools_path": f"{data}/carbon_pools.csv",
            "calc_sequestration": False, "do_valuation": False, "n_workers": -1}
    execute = carbon.execute
else:
    args = {"workspace_dir": ws, "lulc_path": f"{data}/lulc.tif",
            "depth_to_root_rest_layer_path": f"{data}/root_depth.tif",
            "precipitation_path": f"{data}/precip.tif", "pawc_path": f"{data}/pawc.tif", "eto_path": f"{data}/et0.tif",
            "watersheds_path": f"{data}/watersheds.gpkg", "biophysical_table_path": f"{data}/biophysical_table.csv",
            "seasonality_constant": z, "n_workers": -1}
    execute = annual_water_yield.execute
t0, c0 = time.perf_counter(), time.process_time()
execute(args)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
out = {"tool": "invest_" + model, "version": natcap.invest.__version__,
       "wall_s": round(wall, 3), "cpu_s": round(cpu, 3)}
with open("/proc/self/status") as f:
    out["peak_rss_mb"] = round(int([l for l in f if l.startswith("VmHWM:")][0].split()[1]) / 1024, 1)
if model == "carbon":
    with rasterio.open(f"{ws}/c_storage_bas.tif") as ds:
        px_ha = abs(ds.transform.a * ds.transform.e) / 1e4
        parts = [math.fsum(ds.read(1, window=w, masked=True).compressed().astype(np.float64) * px_ha)
                 for _, w in ds.block_windows(1)]
    out["total_carbon_t"] = math.fsum(parts)
else:
    table = pandas.read_csv(f"{ws}/output/watershed_results_wyield.csv")
    out["ws_wyield_m3"] = {str(int(r.ws_id)): float(r.wyield_vol) for r in table.itertuples()}
    out["total_wyield_m3"] = math.fsum(out["ws_wyield_m3"].values())
print(json.dumps(out))
"""


def _json_tail(command: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the machine type elsewhere."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    """Run InVEST and gep alternately, print every run and the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, default=Path(os.environ.get("PEERS", "../shared/peers")))
    parser.add_argument("--size", choices=("small", "medium", "large"), default="medium")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--z", type=float, default=1.0)
    parser.add_argument("--models", default="carbon,awy")
    parser.add_argument("--gdal-cache-mb", type=int, default=256, help="GDAL_CACHEMAX for both sides")
    parser.add_argument(
        "--window-pixels", type=int, default=WINDOW_PIXELS, help="gep's pixels per window (4000000: the old strips)"
    )
    parser.add_argument("--child", choices=("carbon", "awy"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    peers = args.peers.resolve()
    data = peers / "data" / args.size
    if args.child:
        print(json.dumps(child(args.child, data, args.out, args.z, args.window_pixels)))
        return
    peers_python = str(peers / ".venv" / "bin" / "python")
    env = {**os.environ, "GDAL_CACHEMAX": str(args.gdal_cache_mb)}
    if not (data / "manifest.json").is_file():
        subprocess.run([peers_python, "make_data.py", "--size", args.size], check=True, cwd=peers, env=env)
    out = peers / "out" / args.size
    times: dict[str, dict[str, dict[str, list[float]]]] = {}
    last: dict[str, dict[str, dict[str, Any]]] = {}
    for run in range(args.runs):
        for model in args.models.split(","):
            sides = [
                ("invest", [peers_python, "-c", INVEST, model, str(data), str(out / f"invest-{model}"), str(args.z)]),
                ("gep", [sys.executable, __file__, "--peers", str(peers), "--size", args.size,
                         "--child", model, "--out", str(out / f"gep-{model}"), "--z", str(args.z),
                         "--window-pixels", str(args.window_pixels)]),
            ]  # fmt: skip
            for side, command in sides if run % 2 == 0 else sides[::-1]:
                result = _json_tail(command, env)
                for clock in ("wall_s", "cpu_s", "peak_rss_mb"):
                    times.setdefault(model, {}).setdefault(side, {}).setdefault(clock, []).append(result[clock])
                last.setdefault(model, {})[side] = result
                keys = [
                    k for k in ("wall_s", "cpu_s", "peak_rss_mb", "total_carbon_t", "total_wyield_m3") if k in result
                ]
                print(json.dumps({"run": run, "model": model, "side": side} | {k: result[k] for k in keys}), flush=True)
    summary: dict[str, Any] = {
        "size": args.size,
        "runs": args.runs,
        "machine": f"nproc={os.cpu_count()}, {cpu_model()}, Python {platform.python_version()}, numpy {np.__version__}",
        "load_average": [round(v, 1) for v in os.getloadavg()],
    }
    for model, by_side in times.items():
        entry: dict[str, Any] = {"invest": last[model]["invest"]["version"]}
        for clock in ("wall_s", "cpu_s"):
            medians = {side: statistics.median(by_side[side][clock]) for side in ("invest", "gep")}
            entry[clock] = {
                "invest_runs": by_side["invest"][clock],
                "gep_runs": by_side["gep"][clock],
                "invest_median": medians["invest"],
                "gep_median": medians["gep"],
                "speedup": round(medians["invest"] / medians["gep"], 2),
            }
        peaks = {side: by_side[side]["peak_rss_mb"] for side in ("invest", "gep")}
        entry["peak_rss_mb"] = {
            "invest_runs": peaks["invest"],
            "gep_runs": peaks["gep"],
            "invest_max": max(peaks["invest"]),
            "gep_max": max(peaks["gep"]),
            "gep_over_invest": round(max(peaks["gep"]) / min(peaks["invest"]), 3),
        }
        key = "total_carbon_t" if model == "carbon" else "total_wyield_m3"
        ours, theirs = last[model]["gep"][key], last[model]["invest"][key]
        entry[key] = {"gep": ours, "invest": theirs, "rel_diff": abs(ours / theirs - 1)}
        if model == "carbon":
            manifest = json.loads((data / "manifest.json").read_text())
            entry["rel_diff_gep_vs_manifest"] = abs(ours / manifest["expected_total_carbon_MgC"] - 1)
        else:
            sheds = last[model]["invest"]["ws_wyield_m3"]
            entry["max_rel_diff_per_watershed"] = max(
                abs(last[model]["gep"]["ws_wyield_m3"][ws] / v - 1) for ws, v in sheds.items()
            )
        summary[model] = entry
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
