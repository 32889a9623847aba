"""A full GEP accounting run on a 10,000 × 10,000 synthetic stack through the run machinery: time and peak memory.

1. Writes the synthetic stack to disk **window by window** (never whole in memory): the fields of
   :func:`gep.synthetic.fields` at a coarse resolution (``--coarse``, default 1,000²), upsampled per
   512-row strip (bilinear for continuous roles, nearest for land cover) into one tiled, DEFLATE GeoTIFF
   per role (EPSG:4490, the demo townships' extent, 3 × 3 synthetic townships).
2. Records everything as the server does: a migrated SQLite database, the raster layers registered
   (:func:`geodata.rasters.register_layer`), the townships uploaded (:func:`gep.regions.upload_region_layer`),
   the run created (:func:`gep.runs.create_run`) with **every indicator the engine supports**
   (:data:`gep.engine.INDICATOR_ROLES`; roles the stack has no raster for get a constant).
3. Starts a real Celery worker (``shanhai worker --pool solo``; ``GDAL_CACHEMAX`` is the worker's setting
   ``SHANHAI_GDAL_CACHE_MB``, 256 MB, unless ``--gdal-cache-mb``) on Redis, sends ``shanhai.gep.start_run``
   and waits: the worker computes every tile (windowed reads, kernels, exact totals, tile value rasters),
   merges, checks Σ, assembles the COGs.

Prints JSON lines: the stack (generation seconds, size on disk), then per run the wall time from sending the
task to the run's success, the tiles, the worker's peak RSS (``VmHWM`` from ``/proc``, the high-water mark
of the process that ran every tile and the assembly) and this process's, the GEP and the output sizes.
The working directory (default a new one under /tmp) is deleted at the end unless ``--keep``.

    .venv/bin/python benchmarks/gep_scale.py --size 10000 --tile 1024 --runs 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from gep.engine import INDICATOR_ROLES, ROLES
from gep.synthetic import FILES, NODATA, demo_tables, fields, township_collection

REPO = Path(__file__).resolve().parents[1]
STRIP_ROWS = 512
PRICES = "prices_guyuan_2025"
LEGEND = "legend_synthetic_jingyuan"
REDIS_URL = os.environ.get("SHANHAI_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


def _coordinates(fine: int, coarse: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return, for fine pixels ``start … start+count−1``, the lower coarse index, the upper one and the weight."""
    position = (np.arange(start, start + count, dtype=np.float64) + 0.5) * coarse / fine - 0.5
    position = np.clip(position, 0.0, coarse - 1.0)
    lower = np.floor(position).astype(np.int64)
    upper = np.minimum(lower + 1, coarse - 1)
    return lower, upper, position - lower


def upsample(coarse: np.ndarray, fine: int, row0: int, rows: int, *, nearest: bool) -> np.ndarray:
    """Return rows ``row0 … row0+rows−1`` of ``coarse`` upsampled to ``fine × fine``."""
    n = coarse.shape[0]
    if nearest:
        r = np.minimum(((np.arange(row0, row0 + rows) + 0.5) * n / fine).astype(np.int64), n - 1)
        c = np.minimum(((np.arange(fine) + 0.5) * n / fine).astype(np.int64), n - 1)
        return coarse[np.ix_(r, c)]
    r0, r1, wr = _coordinates(fine, n, row0, rows)
    c0, c1, wc = _coordinates(fine, n, 0, fine)
    by_row = coarse[r0] * (1.0 - wr)[:, None] + coarse[r1] * wr[:, None]
    out: np.ndarray = by_row[:, c0] * (1.0 - wc) + by_row[:, c1] * wc
    return out


def write_stack(directory: Path, size: int, *, coarse: int, cell_deg: float) -> dict[str, str]:
    """Write the stack strip by strip; return role → file name."""
    import rasterio
    from rasterio.windows import Window

    from gep.synthetic import raster_profile

    directory.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for role, array in fields(coarse, coarse).items():
        categorical = ROLES[role][1] == "categorical"
        dtype, nodata = ("uint8", 0) if categorical else ("float32", NODATA)
        profile = raster_profile(size, size, cell_deg, dtype, nodata)
        name = f"gep_{FILES[role]}.tif"
        with rasterio.open(directory / name, "w", **profile) as out:
            for row0 in range(0, size, STRIP_ROWS):
                rows = min(STRIP_ROWS, size - row0)
                block = upsample(array, size, row0, rows, nearest=categorical)
                block = np.where(np.isnan(block), nodata, block).astype(dtype)
                out.write(block, 1, window=Window(0, row0, size, rows))
        names[role] = name
    return names


def valued_indicators(prices: str) -> tuple[list[str], dict[str, Any]]:
    """Return the engine's indicators that the price table values, and the others with the reason."""
    from core.errors import InvalidInput
    from gep.prices import load_table
    from gep.spec import DEFAULT_INDICATORS
    from gep.valuation import valuation_record

    table, coefficients = load_table(prices), load_table("coefficients_default")
    valued, skipped = [], {}
    for code in INDICATOR_ROLES:
        try:
            valuation_record(DEFAULT_INDICATORS, [code], table, coefficients)
        except InvalidInput as error:
            skipped[code] = error.extensions().get("errors")
        else:
            valued.append(code)
    return valued, skipped


def _vm(pid: int | str, key: str) -> float:
    """Return a ``/proc/<pid>/status`` memory figure in MB (``VmHWM``, ``VmRSS``)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return math.nan


def _cpu_s(pid: int) -> float:
    """Return the user + system CPU seconds of a live process (``/proc/<pid>/stat``)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields_after_name = handle.read().rsplit(")", 1)[1].split()
    return (int(fields_after_name[11]) + int(fields_after_name[12])) / os.sysconf("SC_CLK_TCK")


def _du_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def _one_tile(session: Any, run: Any, raster_dir: Path, tiled: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Run the same configuration in one tile in this process; compare its totals with the worker's."""
    from gep.engine import RunConfig, run_in_process
    from gep.runs import _plan

    config = RunConfig.model_validate(run.config | {"tile_size": 8192})
    plan = _plan(session, config, run.inputs["region_layer"], raster_dir)
    assert len(plan.windows()) == 1, "one tile"
    started, cpu = time.perf_counter(), time.process_time()
    merged, _ = run_in_process(plan)
    worst = max(
        abs(tiled[code][region] - total) / abs(total) if total else abs(tiled[code][region])
        for code, by_region in merged.totals.items()
        for region, total in by_region.items()
    )
    return {
        "one_tile_s": round(time.perf_counter() - started, 1),
        "one_tile_cpu_s": round(time.process_time() - cpu, 1),
        "one_tile_peak_rss_mb": _vm("self", "VmHWM"),
        "max_relative_difference_vs_one_tile": worst,
        "equal_to_1e-12": worst <= 1e-12,
    }


def run_once(
    workdir: Path,
    names: dict[str, str],
    *,
    size: int,
    tile: int,
    gdal_cache_mb: int | None,
    compare_one_tile: bool = False,
    only: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """Record the layers and the run in a fresh database, run it on a real worker; return the figures."""
    from sqlalchemy.exc import OperationalError

    from api.worker import START_GEP_RUN, create_celery
    from core.clock import SystemClock
    from core.db import make_engine, make_session_factory
    from core.migrate import upgrade
    from core.settings import Settings
    from geodata.models import RasterKind
    from geodata.rasters import RegisterRasterLayer, register_layer
    from gep.models import GepRun, RegionLevel, RunStatus
    from gep.regions import upload_region_layer
    from gep.runs import CreateRun, create_run

    run_dir = workdir / f"run-{uuid.uuid4().hex[:8]}"
    run_dir.mkdir()
    url = f"sqlite:///{run_dir / 'shanhai.db'}"
    upgrade(url)
    settings = Settings(
        environment="development",
        data_dir=run_dir,
        database_url=url,
        raster_dir=workdir / "rasters",
        broker_url=REDIS_URL,
        task_queue=f"gep-scale-{uuid.uuid4().hex}",
    )
    engine = make_engine(url)
    factory = make_session_factory(engine)
    clock = SystemClock()
    inputs: dict[str, str | float] = {}
    with factory() as session:
        for role, file_name in names.items():
            kind = RasterKind.CATEGORICAL if ROLES[role][1] == "categorical" else RasterKind.CONTINUOUS
            layer = f"scale-{role.replace('_', '-')}"
            cmd = RegisterRasterLayer(name=layer, kind=kind, units=ROLES[role][0], path=file_name)
            register_layer(session, cmd, raster_dir=settings.raster_dir, actor="benchmark", clock=clock)
            inputs[role] = layer
        townships = township_collection(size, size, cell_deg=0.3 / size, n=3)
        upload_region_layer(
            session,
            name="scale-townships",
            level=RegionLevel.TOWNSHIP,
            filename="townships.geojson",
            data=json.dumps(townships).encode(),
            actor="benchmark",
            clock=clock,
        )
        indicators, skipped = valued_indicators(PRICES)
        if only:
            indicators = [code for code in indicators if code in only]
        for role in {r for code in indicators for r in INDICATOR_ROLES[code]} - set(inputs):
            inputs[role] = 1.0  # a constant (practice factor P = 1: no support practice)
        cmd_run = CreateRun(
            region_layer="scale-townships",
            name=f"scale {size}² × {len(indicators)} indicators",
            year=2025,
            indicators=indicators,
            inputs=inputs,
            prices=PRICES,
            negative_balance="clamp-to-zero",  # type: ignore[arg-type]
            land_cover_legend=LEGEND,
            cover_unit="percent",  # type: ignore[arg-type]
            **demo_tables([f["properties"]["code"] for f in townships["features"]]),
            tile_size=tile,
        )
        run = create_run(session, cmd_run, actor="benchmark", clock=clock, raster_dir=settings.raster_dir)
        run_id, tiles = run.id, run.tiles_total
    env = {
        **os.environ,
        "SHANHAI_ENVIRONMENT": "development",
        "SHANHAI_DATA_DIR": str(run_dir),
        "SHANHAI_DATABASE_URL": url,
        "SHANHAI_BROKER_URL": REDIS_URL,
        "SHANHAI_TASK_QUEUE": settings.task_queue,
        "SHANHAI_RASTER_DIR": str(settings.raster_dir),
    }
    if gdal_cache_mb is not None:
        env["GDAL_CACHEMAX"] = str(gdal_cache_mb)
    log_path = run_dir / "worker.log"
    with log_path.open("wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "shanhai.cli", "worker", "--pool", "solo", "--loglevel", "INFO"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            celery = create_celery(settings, factory, clock)
            while b" ready." not in log_path.read_bytes():  # imported and connected: time the run only
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker did not start:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
            started, cpu_before = time.perf_counter(), _cpu_s(worker.pid)
            celery.send_task(START_GEP_RUN, args=[run_id])
            status, worker_peak = RunStatus.QUEUED, 0.0
            while status not in (RunStatus.SUCCEEDED, RunStatus.FAILED):
                if worker.poll() is not None:
                    raise RuntimeError(f"the worker died:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.5)
                worker_peak = max(worker_peak, _vm(worker.pid, "VmHWM"))
                try:
                    with factory() as session:
                        found = session.get(GepRun, run_id)
                        assert found is not None
                        status, done = found.status, found.tiles_done
                        session.rollback()
                except OperationalError:  # SQLite: a tile's short write outlasted the busy timeout on a loaded host
                    continue
            seconds = time.perf_counter() - started
            worker_peak = max(worker_peak, _vm(worker.pid, "VmHWM"))
            worker_cpu = _cpu_s(worker.pid) - cpu_before
        finally:
            worker.terminate()
            worker.wait(timeout=60)
    with factory() as session:
        found = session.get(GepRun, run_id)
        assert found is not None
        if found.status is not RunStatus.SUCCEEDED:
            raise RuntimeError(f"the run failed: {found.error}")
        result = found.result or {}
        one_tile: dict[str, Any] = {}
        if compare_one_tile:
            one_tile = _one_tile(session, found, settings.raster_dir, result["totals"])
    engine.dispose()
    figures = {
        "grid": f"{size}x{size}",
        "tile": tile,
        "tiles": tiles,
        "tiles_done": done,
        "indicators": indicators,
        "not_valued_by_the_price_table": skipped,
        "wall_s": round(seconds, 1),
        "worker_cpu_s": round(worker_cpu, 1),
        "worker_peak_rss_mb": worker_peak,
        "bench_peak_rss_mb": _vm("self", "VmHWM"),
        "gep_yuan": result["summary"][-1]["gep_yuan"],
        "outputs_mb": _du_mb(run_dir / "gep"),
        **one_tile,
    }
    shutil.rmtree(run_dir, ignore_errors=True)
    return figures


def main() -> None:
    """Write the stack, run it ``--runs`` times on a real worker, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--tile", type=int, default=1024)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--coarse", type=int, default=1000, help="resolution of the synthetic fields")
    parser.add_argument(
        "--gdal-cache-mb", type=int, help="GDAL_CACHEMAX of the worker (default: the worker's setting, 256)"
    )
    parser.add_argument("--workdir", type=Path, help="reuses a stack already written there")
    parser.add_argument(
        "--compare-one-tile",
        action="store_true",
        help="also run the same run in one tile in this process and compare the totals (to 1e-12)",
    )
    parser.add_argument("--indicators", default="", help="comma-separated subset (default: every one)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="gep-scale-", dir="/tmp"))
    rasters = workdir / "rasters"
    try:
        started = time.perf_counter()
        if (rasters / f"gep_{FILES['land_cover']}.tif").is_file():
            names = {role: f"gep_{stem}.tif" for role, stem in FILES.items()}
        else:
            names = write_stack(rasters, args.size, coarse=args.coarse, cell_deg=0.3 / args.size)
        print(
            json.dumps(
                {
                    "stack": f"{args.size}x{args.size}",
                    "rasters": len(names),
                    "generated_s": round(time.perf_counter() - started, 1),
                    "stack_mb": _du_mb(rasters),
                    "generator_peak_rss_mb": _vm("self", "VmHWM"),
                }
            ),
            flush=True,
        )
        walls = []
        for _ in range(args.runs):
            figures = run_once(
                workdir,
                names,
                size=args.size,
                tile=args.tile,
                gdal_cache_mb=args.gdal_cache_mb,
                compare_one_tile=args.compare_one_tile,
                only=frozenset(filter(None, args.indicators.split(","))),
            )
            walls.append(figures["wall_s"])
            print(json.dumps(figures), flush=True)
        print(
            json.dumps(
                {
                    "median_wall_s": sorted(walls)[len(walls) // 2],
                    "runs": walls,
                    "machine": f"nproc={os.cpu_count()}, Python {platform.python_version()}, numpy {np.__version__}",
                    "load_average": [round(v, 1) for v in os.getloadavg()],
                }
            )
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
