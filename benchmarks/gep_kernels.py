"""Time the full GEP indicator set on a large synthetic grid, tile by tile, with peak memory.

Runs every raster kernel of ``gep`` (water conservation, soil retention with LS from a DEM, sand
fixation, carbon/oxygen, climate regulation, InVEST carbon and water yield) over an N × N grid in
square tiles, as ``geodata`` will feed them, and sums each indicator with ``math.fsum`` per tile.
Inputs are deterministic value fields generated per tile (seeded by tile position), so results do not
depend on the tile size except for float rounding of the totals, which the script checks by
re-running the totals with a second tile size.

    .venv/bin/python benchmarks/gep_kernels.py --size 4000 --tile 1024 [--check-tile 512]

Prints one JSON line: grid, tile, seconds per indicator, Mpx/s for the whole set, peak RSS (MB),
and the indicator totals. Generation time is excluded from the kernel timings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import time
from collections.abc import Callable

import numpy as np

from gep.arrays import exact_sum
from gep.coefficients import ls_coefficients, rweq_constants
from gep.indicators import carbon_oxygen, climate_regulation, sand_fixation, soil_retention, terrain
from gep.indicators.water_conservation import NegativeBalancePolicy, water_conservation_m3
from gep.invest import carbon, water_yield
from gep.prices import load_table

CELL_M = 30.0
AREA_M2 = CELL_M * CELL_M
COEFFICIENTS = load_table("coefficients_default")
LS = ls_coefficients(COEFFICIENTS)
RWEQ = rweq_constants(COEFFICIENTS)
POOLS = carbon.CarbonPools(
    rows={
        c: carbon.CarbonPool(above=a, below=b, soil=s, dead=d)
        for c, a, b, s, d in ((1, 30, 8, 40, 3), (2, 6, 8, 28, 1.5), (3, 1, 3, 25, 0.5), (4, 3, 1, 30, 0))
    }
)
BIOPHYSICAL = water_yield.BiophysicalTable(
    rows={
        1: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=3500, kc=1.0),
        2: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=2000, kc=0.7),
        3: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=1500, kc=0.65),
        4: water_yield.BiophysicalRow(vegetated=False, root_depth_mm=0, kc=0.2),
    }
)


def tile_inputs(row0: int, col0: int, rows: int, cols: int) -> dict[str, np.ndarray]:
    """Deterministic inputs for a window; the DEM carries a one-pixel halo (smooth analytic surface)."""
    r, c = np.mgrid[row0 - 1 : row0 + rows + 1, col0 - 1 : col0 + cols + 1].astype(np.float64)
    dem = 1500.0 + 300.0 * np.sin(r / 300.0) * np.cos(c / 410.0) + 40.0 * np.sin(r / 37.0 + c / 53.0)
    r, c = r[1:-1, 1:-1], c[1:-1, 1:-1]
    wave = 0.5 + 0.5 * np.sin(r / 91.0) * np.cos(c / 67.0)  # 0..1
    return {
        "dem": dem,
        "precipitation_mm": 250.0 + 250.0 * wave,
        "runoff_mm": 10.0 + 30.0 * wave,
        "evapotranspiration_mm": 220.0 + 150.0 * (1 - wave),
        "erosivity": 800.0 + 1500.0 * wave,
        "erodibility": 0.02 + 0.02 * (1 - wave),
        "cover_factor": 0.05 + 0.5 * (1 - wave),
        "cover_percent": 80.0 * wave,
        "weather_factor_kg_per_m": 5.0 + 20.0 * (1 - wave),
        "nep_gc_per_m2": -20.0 + 300.0 * wave,
        "heat_kj_per_m2_per_day": 200.0 + 1500.0 * wave,
        "lulc": 1.0 + np.floor(3.999 * wave),
        "eto_mm": 1000.0 + 250.0 * (1 - wave),
        "restricting_depth_mm": 300.0 + 1500.0 * wave,
        "pawc": 0.05 + 0.15 * wave,
    }


def kernels() -> dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]]:
    """Return each indicator's per-tile kernel: inputs → per-pixel physical quantity."""
    policy = NegativeBalancePolicy.CLAMP_TO_ZERO

    def soil(x: dict[str, np.ndarray]) -> np.ndarray:
        ls = terrain.ls_factor(terrain.slope_radians(x["dem"], cell_x_m=CELL_M, cell_y_m=CELL_M), LS)
        return soil_retention.soil_retention_t(x["erosivity"], x["erodibility"], ls, x["cover_factor"], 1.0, AREA_M2)

    def sand(x: dict[str, np.ndarray]) -> np.ndarray:
        veg = sand_fixation.vegetation_factor(x["cover_percent"], -0.1151, cover_unit=sand_fixation.CoverUnit.PERCENT)
        fixation = sand_fixation.sand_fixation_g_per_m(x["weather_factor_kg_per_m"], 0.5, 0.8, 0.9, veg, RWEQ)
        return sand_fixation.sand_fixation_t(fixation, cell_size_m=CELL_M, area_m2=AREA_M2)

    return {
        "water_conservation_m3": lambda x: water_conservation_m3(
            x["precipitation_mm"], x["runoff_mm"], x["evapotranspiration_mm"], AREA_M2, policy=policy
        ),
        "soil_retention_t": soil,
        "sand_fixation_t": sand,
        "carbon_sequestration_tco2": lambda x: carbon_oxygen.carbon_sequestration_tco2(x["nep_gc_per_m2"], AREA_M2),
        "oxygen_release_to2": lambda x: carbon_oxygen.oxygen_release_to2(x["nep_gc_per_m2"], AREA_M2),
        "climate_regulation_kwh": lambda x: climate_regulation.vegetation_cooling_kwh(
            x["heat_kj_per_m2_per_day"], AREA_M2, days=90.0, energy_efficiency_ratio=3.0
        ),
        "invest_carbon_storage_t": lambda x: carbon.carbon_storage_t_per_ha(x["lulc"], POOLS) * (AREA_M2 / 1e4),
        "invest_water_yield_m3": lambda x: (
            water_yield.water_yield_mm(
                x["lulc"],
                precipitation_mm=x["precipitation_mm"],
                eto_mm=x["eto_mm"],
                restricting_depth_mm=x["restricting_depth_mm"],
                pawc=x["pawc"],
                table=BIOPHYSICAL,
                seasonality_z=5.0,
            )
            * (AREA_M2 / 1000.0)
        ),
    }


def run(size: int, tile: int) -> tuple[dict[str, float], dict[str, float]]:
    """Return kernel seconds and fsum totals per indicator over the size × size grid."""
    seconds = dict.fromkeys(kernels(), 0.0)
    partial: dict[str, list[float]] = {name: [] for name in seconds}
    for row0 in range(0, size, tile):
        for col0 in range(0, size, tile):
            x = tile_inputs(row0, col0, min(tile, size - row0), min(tile, size - col0))
            for name, kernel in kernels().items():
                t0 = time.perf_counter()
                partial[name].append(exact_sum(kernel(x)))
                seconds[name] += time.perf_counter() - t0
    return seconds, {name: math.fsum(values) for name, values in partial.items()}


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
    """Parse the arguments, run, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4000)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--check-tile", type=int, default=0, help="re-run totals with this tile size and compare")
    args = parser.parse_args()
    t0 = time.perf_counter()
    seconds, totals = run(args.size, args.tile)
    wall = time.perf_counter() - t0
    result = {
        "grid": f"{args.size}x{args.size}",
        "pixels": args.size * args.size,
        "tile": args.tile,
        "wall_s_including_generation": round(wall, 2),
        "kernel_s": {k: round(v, 3) for k, v in seconds.items()},
        "kernel_s_total": round(sum(seconds.values()), 2),
        "mpx_per_s_full_set": round(args.size**2 / sum(seconds.values()) / 1e6, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "totals": totals,
        "machine": {
            "nproc": os.cpu_count(),
            "cpu": cpu_model(),
            "numpy": np.__version__,
        },
    }
    if args.check_tile:
        _, other = run(args.size, args.check_tile)
        result["max_rel_diff_vs_tile_" + str(args.check_tile)] = max(
            abs(other[k] - v) / abs(v) if v else abs(other[k]) for k, v in totals.items()
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
