"""Benchmark: a CCER monitoring report over 1,000 plots through the raster route.

Set-up (not timed): a 10,000 × 10,000 float32 tiled GeoTIFF (512 × 512 tiles, 10 m cells in UTM zone
48N, 100 km × 100 km, about 400 MB) of synthetic above-ground biomass is written to a temporary
directory and registered as a layer; a temporary SQLite database gets a project and 1,000 square plots
of about 10 ha spread over the raster.

Each timed run is ``carbon.monitoring.preview``, exactly what ``POST …/monitoring-reports/preview`` does
after authentication: load the project and plots, re-hash the layer file, exact zonal statistics of the
1,000 plots, a CCER-14-001 computation with 1,000 strata and its full trace, and the canonical record
hash. The target is ≤ 30 s. Prints the machine, every run and the median.

Run: ``.venv/bin/python benchmarks/carbon_raster_route.py [--plots N] [--size PIXELS] [--runs R]``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine
from pyproj import Transformer

from carbon.models import Scheme
from carbon.monitoring import ReportRequest, preview
from carbon.plots import register_plots
from carbon.projects import CreateProject, create_project
from core.auth import Organisation, OrgKind, Principal, User, hash_password, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from geodata.models import RasterKind
from geodata.rasters import RegisterRasterLayer, register_layer

TARGET_S = 30.0
CELL_M = 10.0
WEST_M, NORTH_M = 500_000.0, 4_200_000.0  # UTM 48N: about 105° E, 37.9° N (Ningxia)
PLOT_SIDE_M = 316.0  # ≈ 10 ha
CLOCK = FixedClock(datetime(2026, 11, 25, tzinfo=UTC))


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_raster(path: Path, size: int) -> None:
    """Write a smooth synthetic biomass field (20–100 t/ha), one block row at a time."""
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "float32",
        "crs": "EPSG:32648",
        "transform": Affine(CELL_M, 0.0, WEST_M, 0.0, -CELL_M, NORTH_M),
        "nodata": -9999.0,
        "tiled": True,
        "blockxsize": 512,
        "blockysize": 512,
    }
    columns = np.arange(size, dtype=np.float32)
    with rasterio.open(path, "w", **profile) as out:
        for row in range(0, size, 512):
            rows = np.arange(row, min(row + 512, size), dtype=np.float32)[:, None]
            block = 60 + 40 * np.sin(columns[None, :] / 700) * np.cos(rows / 900)
            out.write(block.astype(np.float32), 1, window=((row, row + len(rows)), (0, size)))


def plot_features(count: int, size: int) -> list[dict[str, Any]]:
    """Return ``count`` square plots on a regular grid inside the raster, as lon/lat GeoJSON features."""
    to_lonlat = Transformer.from_crs("EPSG:32648", "EPSG:4490", always_xy=True)
    per_row = math.ceil(math.sqrt(count))
    step_m = (size * CELL_M - 2_000) / per_row
    features = []
    for i in range(count):
        x = WEST_M + 1_000 + (i % per_row) * step_m
        y = NORTH_M - 1_000 - (i // per_row) * step_m
        corners = [(x, y), (x + PLOT_SIDE_M, y), (x + PLOT_SIDE_M, y - PLOT_SIDE_M), (x, y - PLOT_SIDE_M), (x, y)]
        ring = [list(to_lonlat.transform(cx, cy)) for cx, cy in corners]
        features.append(
            {
                "type": "Feature",
                "properties": {"code": f"B-{i:05d}"},
                "geometry": {"type": "Polygon", "coordinates": [ring[::-1]]},
            }
        )
    return features


@dataclass(frozen=True)
class Bench:
    """What the timed runs need: the database, the project, its plots and the filing actor."""

    factory: Any
    project_id: int
    plot_ids: list[int]
    areas_m2: dict[int, float]
    codes: dict[int, str]
    actor: Principal


def setup(folder: Path, plots: int, size: int) -> Bench:
    """Create the raster, database, project, plots and layer."""
    raster_dir = folder / "rasters"
    raster_dir.mkdir()
    began = time.perf_counter()
    write_raster(raster_dir / "agb.tif", size)
    print(f"set-up: raster {size} × {size} written in {time.perf_counter() - began:.1f} s")
    url = f"sqlite:///{folder / 'bench.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        org = Organisation(
            name="Bench bureau", kind=OrgKind.FORESTRY_BUREAU, province_code="64", created_at=CLOCK.now()
        )
        user = User(
            organisation=org,
            username="bench",
            display_name="bench",
            password_hash=hash_password("bench-password"),
            created_at=CLOCK.now(),
        )
        session.add_all([org, user])
        session.commit()
        actor = principal_of(user, "bench")
        project = create_project(
            session,
            CreateProject(
                name="Raster route benchmark",
                scheme=Scheme.CCER_AFFORESTATION,
                province_code="64",
                crediting_start=date(2026, 1, 1),
                crediting_end=date(2056, 1, 1),
            ),
            actor=actor,
            clock=CLOCK,
        )
        began = time.perf_counter()
        document = {"type": "FeatureCollection", "features": plot_features(plots, size)}
        registered, _ = register_plots(session, project.id, document, actor=actor, clock=CLOCK)
        print(f"set-up: {len(registered)} plots registered in {time.perf_counter() - began:.1f} s")
        layer = RegisterRasterLayer(name="agb-bench", kind=RasterKind.CONTINUOUS, units="t/ha", path="agb.tif")
        register_layer(session, layer, raster_dir=raster_dir, actor="system:bench", clock=CLOCK)
        return Bench(
            factory=factory,
            project_id=project.id,
            plot_ids=[p.id for p in registered],
            areas_m2={p.id: p.area_m2 for p in registered},
            codes={p.id: str(p.plot_code) for p in registered},
            actor=actor,
        )


def report_request(plot_ids: list[int], areas: dict[int, float], codes: dict[int, str]) -> ReportRequest:
    """Return a CCER request: one stratum per plot, the end biomass from the raster."""
    strata = [
        {
            "stratum_id": codes[i],
            "area_m2": str(math.floor(areas[i])),
            "species": "pinus",
            "start": {"stand_volume_m3_per_ha": "0"},
        }
        for i in plot_ids
    ]
    total = sum(math.floor(areas[i]) for i in plot_ids)
    return ReportRequest.model_validate(
        {
            "methodology_id": "CCER-14-001",
            "methodology_version": "V01",
            "period_start": "2026-01-01",
            "period_end": "2036-01-01",
            "plot_ids": plot_ids,
            "raster": {"layer": "agb-bench", "when": "end"},
            "inputs": {
                "project_start": "2026-01-01",
                "crediting_period_years": 30,
                "forest_category": "protection",
                "mean_annual_precipitation_mm": "280",
                "parcels": [
                    {
                        "parcel_id": "ALL",
                        "area_m2": str(total),
                        "land_class": "planned_afforestation_land",
                        "years_non_forest_before_start": "5",
                    }
                ],
                "strata": strata,
                "relative_uncertainty": "0.08",
            },
        }
    )


def main() -> None:
    """Set up, time the raster route and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plots", type=int, default=1_000)
    parser.add_argument("--size", type=int, default=10_000, help="raster width and height in pixels")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: nproc={os.cpu_count()}, cpu={cpu_model()}, python={platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="shanhai-bench-") as folder:
        bench = setup(Path(folder), args.plots, args.size)
        request = report_request(bench.plot_ids, bench.areas_m2, bench.codes)
        raster_dir = Path(folder) / "rasters"
        print(f"report: CCER-14-001, {len(bench.plot_ids)} plots/strata, raster route, {args.runs} runs")
        timings = []
        for run in range(args.runs):
            with bench.factory() as session:
                began = time.perf_counter()
                computed = preview(session, bench.project_id, request, actor=bench.actor, raster_dir=raster_dir)
                timings.append(time.perf_counter() - began)
            print(f"  run {run + 1}: {timings[-1]:.3f} s")
        bench.factory.kw["bind"].dispose()
        result = computed.result
        densities = [Decimal(v["density_t_per_ha"]) for v in computed.inputs["raster"]["strata"].values()]
        print(f"densities: {min(densities)}–{max(densities)} t/ha; trace steps: {len(result.steps)}")
        print(f"net removal: {result.quantities['net_removal_tco2e']} t CO2e; record sha256: {result.sha256}")
        median = statistics.median(timings)
        print(f"median: {median:.3f} s (target ≤ {TARGET_S:.0f} s) — {'OK' if median <= TARGET_S else 'TOO SLOW'}")


if __name__ == "__main__":
    main()
