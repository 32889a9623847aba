"""Reversal monitoring at scale: 10,000 issued plots over a 10,000² pair of NDVI composites, against a GEP run.

1. Writes, strip by strip (never a whole raster in memory), three tiled DEFLATE GeoTIFFs on one EPSG:4490 grid
   (the synthetic GEP extent, 0.3° square): the NDVI composites of two summers (``carbon.reversals.synthetic``'s
   smooth field; the later one with a 20 × 20-pixel burn scar in every 97th plot) and an NEP layer for GEP.
2. Builds a migrated SQLite database once: a project of ``--plots`` square plots (a 100 × 100 lattice, edges off
   the pixel grid), one *issued* monitoring report covering them all (one sub-compartment per plot, its removal
   in the trace) and its batch — the rows the watch reads; the composites registered.
3. Per run, on a fresh copy of that database, in a child process of its own (its peak RSS is its ``VmHWM``):
   * **watch**: :func:`carbon.reversals.watch.create_run` then every tile in process
     (:func:`carbon.reversals.jobs.execute_in_process`) — burn the plots, read both composites, loss mask, sums,
     events with evidence and tonnes at risk;
   * **gep**: the baseline on the same grid and tiles — a GEP run (:mod:`gep.runs`) of the NEP indicators
     (``--gep-indicators``: carbon sequestration and oxygen release) over 3 × 3 townships, computed in process,
     value rasters assembled.

Prints JSON lines (per run: phase, seconds, peak RSS MB, tiles, events) and a summary with the medians and the
watch/GEP ratios. The working directory is deleted at the end unless ``--keep``.

    .venv/bin/python benchmarks/reversal_watch.py --size 10000 --plots 10000 --tile 1024 --runs 3
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gep.synthetic import NORTH, WEST  # noqa: E402

EXTENT_DEG = 0.3
STRIP_ROWS = 512
SCAR_EVERY, SCAR_PX = 97, 20
PRICES = "prices_guyuan_2025"


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
    return float("nan")


def lattice(size: int, plots: int) -> tuple[int, int, int]:
    """Return (plots per side, lattice step in pixels, plot side in pixels)."""
    side = math.ceil(math.sqrt(plots))
    step = size // side
    return side, step, int(step * 0.8)


def plot_boxes(size: int, plots: int) -> list[tuple[int, int, int, int]]:
    """Return each plot as (col, row, width, height) in pixels, offset by a third of a pixel (edges off the grid)."""
    side, step, width = lattice(size, plots)
    return [(i * step + step // 10, j * step + step // 10, width, width) for j in range(side) for i in range(side)][
        :plots
    ]


def write_rasters(directory: Path, size: int, plots: int) -> None:
    """Write before/after NDVI and NEP on one grid, strip by strip."""
    import rasterio
    from rasterio.windows import Window

    from carbon.reversals.synthetic import SyntheticGrid, ndvi_field
    from gep.synthetic import raster_profile

    cell = EXTENT_DEG / size
    scars = [(c + 10, r + 10) for k, (c, r, _w, _h) in enumerate(plot_boxes(size, plots)) if k % SCAR_EVERY == 0]
    profile = raster_profile(size, size, cell, "float32", -9999.0)
    with (
        rasterio.open(directory / "before.tif", "w", **profile) as before,
        rasterio.open(directory / "after.tif", "w", **profile) as after,
        rasterio.open(directory / "nep.tif", "w", **profile) as nep,
    ):
        for row0 in range(0, size, STRIP_ROWS):
            rows = min(STRIP_ROWS, size - row0)
            strip = SyntheticGrid(WEST, NORTH - row0 * cell, size, rows, cell)
            window = Window(0, row0, size, rows)
            old = ndvi_field(strip, 0.0)
            new = ndvi_field(strip, 1.0)
            for col, row in scars:
                top, bottom = max(row - row0, 0), min(row + SCAR_PX - row0, rows)
                if top < bottom:
                    new[top:bottom, col : col + SCAR_PX] = 0.12
            before.write(old.astype(np.float32), 1, window=window)
            after.write(new.astype(np.float32), 1, window=window)
            nep.write((300.0 * old).astype(np.float32), 1, window=window)


def build_database(directory: Path, size: int, plots: int) -> Path:
    """Migrate a SQLite database and record the plots, one issued report over them all, its batch, the layers."""
    from shapely.geometry import MultiPolygon, box

    from carbon.ledger import Batch, CreditClass
    from carbon.models import ClaimStatus, MonitoringReport, Plot, Project, ProjectStatus, ReportStatus, Scheme
    from carbon.reversals.composites import RegisterComposite, register_composite
    from carbon.reversals.models import CompositeKind
    from core.auth import Organisation, OrgKind, User, principal_of
    from core.clock import SystemClock
    from core.db import make_engine, make_session_factory
    from core.migrate import upgrade
    from geodata.area import measure
    from geodata.models import RasterKind
    from geodata.rasters import RegisterRasterLayer, register_layer

    path = directory / "template.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    clock, now = SystemClock(), datetime.now(UTC)
    cell = EXTENT_DEG / size
    with make_session_factory(engine)() as session:
        orgs = {kind: Organisation(name=f"bench {kind.value}", kind=kind, province_code="64", created_at=now)
                for kind in (OrgKind.FORESTRY_BUREAU, OrgKind.REGISTRY)}  # fmt: skip
        users = {kind: User(organisation=org, username=f"bench-{kind.value}", display_name="bench", password_hash="x",
                            created_at=now) for kind, org in orgs.items()}  # fmt: skip
        session.add_all([*orgs.values(), *users.values()])
        session.flush()
        bureau = users[OrgKind.FORESTRY_BUREAU]
        project = Project(code="BENCH-1", name="bench", organisation_id=bureau.organisation_id,
                          scheme=Scheme.FORESTRY_CARBON_TICKET, status=ProjectStatus.REGISTERED, province_code="64",
                          crediting_start=date(2021, 1, 1), crediting_end=date(2051, 1, 1), created_at=now,
                          created_by_user_id=bureau.id)  # fmt: skip
        session.add(project)
        session.flush()
        rows = []
        for k, (col, row, width, height) in enumerate(plot_boxes(size, plots)):
            shift = cell / 3
            west, north = WEST + col * cell + shift, NORTH - row * cell - shift
            polygon = MultiPolygon([box(west, north - height * cell, west + width * cell, north)])
            area = measure(polygon)
            rows.append(Plot(project_id=project.id, plot_code=f"P{k:05d}", properties={}, geometry=polygon,
                             geometry_sha256=f"{k:064d}", min_lon=polygon.bounds[0], min_lat=polygon.bounds[1],
                             max_lon=polygon.bounds[2], max_lat=polygon.bounds[3], area_m2=area.area_m2,
                             perimeter_m=area.perimeter_m, created_at=now, created_by_user_id=bureau.id,
                             measured_at=now, claim_start=date(2021, 1, 1), claim_end=date(2051, 1, 1),
                             claim_status=ClaimStatus.ACTIVE, external_registrations=[], warnings=[]))  # fmt: skip
        session.add_all(rows)
        session.flush()
        trace = [{"name": f"sub_compartment[U{p.id}].removal_tco2e", "value": "12.5"} for p in rows]
        report = MonitoringReport(
            project_id=project.id, period_start=date(2021, 1, 1), period_end=date(2025, 12, 31),
            methodology_id="FJ-FORESTRY-CARBON-TICKET", methodology_version="1", parameter_set_id="bench",
            parameter_set_version="1", parameter_set_sha256="0" * 64, provisional=True, plot_ids=[p.id for p in rows],
            inputs={"unit_plots": {f"U{p.id}": p.id for p in rows}}, record={"trace": trace}, record_sha256="0" * 64,
            status=ReportStatus.ISSUED, gross_removal_tco2e=Decimal(125000), net_removal_tco2e=Decimal(125000),
            uncertainty_deduction_tco2e=Decimal(0), creditable_tco2e=Decimal(125000), buffer_units_t=18750,
            issuable_units_t=106250, remainder_tco2e=Decimal(0), warnings=[], submitted_at=now,
            submitted_by_user_id=bureau.id,
        )  # fmt: skip
        session.add(report)
        session.flush()
        session.add(Batch(project_id=project.id, batch_number=1, source=f"monitoring_report:{report.id}",
                          credit_class=CreditClass.FORESTRY_CARBON_TICKET, province_code="64", vintage_year=2025,
                          quantity_t=125000, buffer_t=18750, issued_at=now,
                          issued_by_user_id=users[OrgKind.REGISTRY].id))  # fmt: skip
        session.commit()
        for name, (start, end) in (("before", (date(2024, 7, 1), date(2024, 8, 31))),
                                   ("after", (date(2025, 7, 1), date(2025, 8, 31)))):  # fmt: skip
            register_layer(session, RegisterRasterLayer(name=name, kind=RasterKind.CONTINUOUS, units="NDVI",
                           path=f"{name}.tif"), raster_dir=directory, actor="benchmark", clock=clock)  # fmt: skip
            register_composite(session, RegisterComposite(name=name, kind=CompositeKind.NDVI, raster_layer=name,
                               region_code="640424", acquired_start=start, acquired_end=end),
                               actor=principal_of(users[OrgKind.REGISTRY], "bench"), clock=clock)  # fmt: skip
        register_layer(session, RegisterRasterLayer(name="nep", kind=RasterKind.CONTINUOUS, units="gC/m2",
                       path="nep.tif"), raster_dir=directory, actor="benchmark", clock=clock)  # fmt: skip
    engine.dispose()
    return path


def phase_watch(directory: Path, database: Path, tile: int) -> dict[str, Any]:
    """Time one watch run on a copy of the database (in this process)."""
    from sqlalchemy import select

    from carbon.reversals.jobs import execute_in_process
    from carbon.reversals.models import WatchRun
    from carbon.reversals.watch import CreateWatch, create_run
    from core.auth import User, principal_of
    from core.clock import SystemClock
    from core.db import make_engine, make_session_factory

    engine = make_engine(f"sqlite:///{database}")
    factory, clock = make_session_factory(engine), SystemClock()
    started = time.perf_counter()
    with factory() as session:
        registry = session.scalars(select(User).where(User.username == "bench-registry")).one()
        run = create_run(session, CreateWatch(before="before", after="after", tile_size=tile),
                         actor=principal_of(registry, "bench"), clock=clock, raster_dir=directory)  # fmt: skip
        run_id = run.id
        session.rollback()
    execute_in_process(factory, run_id, raster_dir=directory, clock=clock)
    seconds = time.perf_counter() - started
    with factory() as session:
        done = session.get_one(WatchRun, run_id)
        figures = {"status": done.status.value, "tiles": done.tiles_total, "plots": len(done.plot_ids),
                   "events": done.events_raised, "error": done.error}  # fmt: skip
    engine.dispose()
    return {"phase": "watch", "seconds": round(seconds, 2), "peak_rss_mb": round(_peak_mb(), 1), **figures}


def phase_gep(directory: Path, database: Path, tile: int, indicators: list[str], size: int) -> dict[str, Any]:
    """Time one GEP run of ``indicators`` on the same grid and tiles (in this process)."""
    from sqlalchemy.orm import sessionmaker

    from core.clock import SystemClock
    from core.db import make_engine, make_session_factory
    from gep.models import GepRun, RegionLevel
    from gep.regions import upload_region_layer
    from gep.runs import CreateRun, create_run, execute_in_process
    from gep.synthetic import demo_tables, township_collection

    engine = make_engine(f"sqlite:///{database}")
    factory, clock = make_session_factory(engine), SystemClock()
    townships = township_collection(size, size, cell_deg=EXTENT_DEG / size, n=3)
    with factory() as session:
        upload_region_layer(session, name="bench-townships", level=RegionLevel.TOWNSHIP, filename="t.geojson",
                            data=json.dumps(townships).encode(), actor="benchmark", clock=clock)  # fmt: skip
    started = time.perf_counter()
    with factory() as session:
        cmd = CreateRun(region_layer="bench-townships", name="bench", year=2025, indicators=indicators,
                        inputs={"nep": "nep"}, prices=PRICES, tile_size=tile,
                        **demo_tables([f["properties"]["code"] for f in townships["features"]]))  # fmt: skip
        run = create_run(session, cmd, actor="benchmark", clock=clock, raster_dir=directory)
        run_id = run.id
        session.rollback()
    out = database.parent / "gep-out"
    execute_in_process(sessionmaker(bind=engine), run_id, raster_dir=directory, data_dir=out, clock=clock)
    seconds = time.perf_counter() - started
    with factory() as session:
        done = session.get_one(GepRun, run_id)
        figures = {"status": done.status.value, "tiles": done.tiles_total, "error": done.error}
    engine.dispose()
    return {"phase": "gep", "seconds": round(seconds, 2), "peak_rss_mb": round(_peak_mb(), 1), **figures}


def _child(args: argparse.Namespace, phase: str, database: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--phase", phase, "--workdir", str(args.workdir), "--database", str(database),
               "--size", str(args.size), "--tile", str(args.tile), "--gep-indicators", args.gep_indicators]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{phase} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    """Write the scene, build the database, run both phases alternately, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--plots", type=int, default=10_000)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gep-indicators", default="carbon_sequestration,oxygen_release")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--phase", choices=("watch", "gep"), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--database", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    indicators = [code for code in args.gep_indicators.split(",") if code]
    if args.phase == "watch":
        print(json.dumps(phase_watch(args.workdir, args.database, args.tile)))
        return 0
    if args.phase == "gep":
        print(json.dumps(phase_gep(args.workdir, args.database, args.tile, indicators, args.size)))
        return 0
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="reversal-bench-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        started = time.perf_counter()
        write_rasters(args.workdir, args.size, args.plots)
        template = build_database(args.workdir, args.size, args.plots)
        print(json.dumps({"setup": {"size": args.size, "plots": args.plots, "tile": args.tile,
                                    "seconds": round(time.perf_counter() - started, 1),
                                    "python": platform.python_version(), "machine": platform.machine()}}))  # fmt: skip
        results: dict[str, list[dict[str, Any]]] = {"watch": [], "gep": []}
        for index in range(args.runs):
            for phase in ("watch", "gep"):  # alternated, so that load on the shared machine hits both alike
                database = args.workdir / f"{phase}-{index}.db"
                shutil.copyfile(template, database)
                result = _child(args, phase, database)
                print(json.dumps({"run": index, **result}), flush=True)
                results[phase].append(result)
        watch_s = statistics.median(r["seconds"] for r in results["watch"])
        gep_s = statistics.median(r["seconds"] for r in results["gep"])
        watch_mb = statistics.median(r["peak_rss_mb"] for r in results["watch"])
        gep_mb = statistics.median(r["peak_rss_mb"] for r in results["gep"])
        print(json.dumps({"summary": {
            "watch_median_s": watch_s, "gep_median_s": gep_s, "time_ratio_watch_to_gep": round(watch_s / gep_s, 2),
            "watch_peak_rss_mb": watch_mb, "gep_peak_rss_mb": gep_mb,
            "memory_ratio_watch_to_gep": round(watch_mb / gep_mb, 2), "gep_indicators": indicators,
        }}))  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
