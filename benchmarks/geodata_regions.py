"""Benchmark: the plot-in-region rule (issue 14) on the shipped boundaries, without a database.

Times loading the shipped boundaries (once per process) and ``geodata.regions.assess`` for
10,000 ~1 ha squares on a grid in Longde and Jingyuan (Ningxia) — against the province only, and against
the province and Jingyuan county (the squares in Longde get a warning and a placement) — and for 1,000
plots straddling the Ningxia–Gansu border at 37° N (buffer and geodesic share computed for each).

    .venv/bin/python benchmarks/geodata_regions.py [--plots 10000]
"""

from __future__ import annotations

import argparse
import time

from shapely.geometry import box

from geodata.regions import POSITIONAL_TOLERANCE_M, assess, shipped_index


def main() -> None:
    """Run the three scenarios and print their times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plots", type=int, default=10_000)
    args = parser.parse_args()
    started = time.perf_counter()
    index = shipped_index()
    print(f"load shipped boundaries: {time.perf_counter() - started:.2f} s")
    grid = [
        box(
            106.1 + (i % 200) * 0.0015,
            35.55 + (i // 200) * 0.0015,
            106.101 + (i % 200) * 0.0015,
            35.551 + (i // 200) * 0.0015,
        )
        for i in range(args.plots)
    ]
    border = [box(105.10 + i * 1e-5, 36.99, 105.14 + i * 1e-5, 37.0) for i in range(args.plots // 10)]
    scenarios = [
        ("grid, province 64 only", grid, None),
        ("grid, county 640424", grid, "640424"),
        ("border", border, None),
    ]
    for name, plots, county in scenarios:
        started = time.perf_counter()
        found = [assess(index, p, "64", county, tolerance_m=POSITIONAL_TOLERANCE_M) for p in plots]
        elapsed = time.perf_counter() - started
        refused = sum(f.refused for f in found)
        warned = sum(f.outside_county for f in found)
        print(
            f"{name}: {len(plots)} plots in {elapsed:.2f} s ({1000 * elapsed / len(plots):.3f} ms/plot), "
            f"{refused} refused, {warned} warned"
        )


if __name__ == "__main__":
    main()
