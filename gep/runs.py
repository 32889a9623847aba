"""Service: GEP accounting runs — created after every check, tiled over workers, finished all or nothing.

``create_run`` builds the plan (:func:`gep.plan.plan_run` refuses bad inputs), then records the run,
its tiles, the inputs' names and hashes and the valuation record, with an audit entry. ``start_run``
marks it running; each tile is then computed by ``run_tile`` (a Celery task per tile, any worker; a
retried tile is harmless: its result is written once). The worker that finishes the last tile merges
the totals (``math.fsum`` of exact tile sums), builds the lines and the summary (Σ indicators = GEP and
Σ regions = total asserted), assembles the value rasters and marks the run succeeded. Any failure marks
the run failed with the problem, removes its files and keeps no result.

Workers must share ``data_dir`` (the value rasters are written there) and the raster directory.
"""

from __future__ import annotations

import os
import shutil
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_core import to_jsonable_python
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from core import audit
from core.canonical import LEGACY_SCHEME
from core.clock import Clock
from core.db import session_scope
from core.errors import InvalidInput, NotFound, ShanhaiError
from geodata.models import RasterKind
from geodata.rasters import get_layer, layer_file
from gep import tables
from gep.engine import class_types, compute_tile, merge_tiles, open_stack
from gep.models import GepRun, GepRunTile, RunStatus
from gep.outputs import RasterWriter
from gep.plan import Plan, RunConfig, Source, plan_run
from gep.prices import load_table
from gep.regions import get_region_layer, region_shapes
from gep.workbook import workbook_bytes as write_workbook

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED)
TABLES = tables.SEEA_TABLES


class CreateRun(RunConfig):
    """Command: a run of ``region_layer`` on registered raster layers (named in ``inputs``)."""

    region_layer: str = Field(min_length=1, max_length=100)


def raster_sources(session: Session, config: RunConfig, raster_dir: Path) -> dict[str, Source]:
    """Return the registered raster layers named by a run, checked (kind, unchanged file)."""
    sources: dict[str, Source] = {}
    problems: list[dict[str, Any]] = []
    for role in config.raster_roles:
        name = str(config.inputs[role])
        try:
            layer = get_layer(session, name)
        except NotFound:
            problems.append({"role": role, "layer": name, "reason": "no-such-raster-layer"})
            continue
        expected = "categorical" if role == "land_cover" else "continuous"
        if layer.kind != RasterKind(expected):
            problems.append({"role": role, "layer": name, "reason": "wrong-kind", "kind": layer.kind.value})
            continue
        sources[role] = Source(role, name, layer_file(raster_dir, layer), layer.sha256, layer.units)
    if problems:
        raise InvalidInput(f"{len(problems)} raster input problem(s)", problems)
    return sources


def _plan(
    session: Session, config: RunConfig, region_layer: str, raster_dir: Path, *, scan_pixels: bool = True
) -> Plan:
    layer = get_region_layer(session, region_layer)
    return plan_run(
        config,
        raster_sources(session, config, raster_dir),
        region_shapes(layer),
        load_table(config.prices),
        load_table(config.coefficients),
        scan_pixels=scan_pixels,
    )


def create_run(session: Session, cmd: CreateRun, *, actor: str, clock: Clock, raster_dir: Path) -> GepRun:
    """Check every input and record the run and its tiles (queued) with its audit entry.

    Raises:
        InvalidInput: Any refused input (the run is not recorded).
        NotFound: No such region layer.
    """
    config = RunConfig.model_validate(cmd.model_dump(exclude={"region_layer"}))
    plan = _plan(session, config, cmd.region_layer, raster_dir)
    layer = get_region_layer(session, cmd.region_layer)
    inputs = {
        role: {"layer": source.name, "sha256": source.sha256, "units": source.units}
        for role, source in plan.sources.items()
    }
    windows = plan.windows()
    run = GepRun(
        name=config.name,
        year=config.year,
        region_layer_id=layer.id,
        status=RunStatus.QUEUED,
        config=config.model_dump(mode="json"),
        inputs={
            "rasters": inputs,
            "warp": plan.warp,
            "cell_m": list(plan.cell_m),
            "region_layer": layer.name,
            "legend": plan.legend.reference() if plan.legend else None,
        },
        valuation=to_jsonable_python(plan.valuation),
        tiles_total=len(windows),
        tiles_done=0,
        output_dir="",
        created_at=clock.now(),
        created_by=actor,
    )
    session.add(run)
    session.flush()
    run.output_dir = f"gep/runs/{run.id}"
    session.add_all(GepRunTile(run_id=run.id, index=i, window=list(w), done=False) for i, w in enumerate(windows))
    audit.append(
        session,
        actor=actor,
        action="gep_run.created",
        subject=f"gep_run:{run.id}",
        payload={
            "name": run.name,
            "year": run.year,
            "region_layer": layer.name,
            "inputs": inputs,
            "legend": plan.legend.reference() if plan.legend else None,
            "prices": plan.valuation["prices"],
            "coefficients": plan.valuation["coefficients"],
            "valuation_sha256": plan.valuation["sha256"],
            "tiles": run.tiles_total,
        },
        clock=clock,
    )
    session.commit()
    return run


def get_run(session: Session, run_id: int) -> GepRun:
    """Return a run or raise :class:`NotFound`."""
    run = session.get(GepRun, run_id)
    if run is None:
        raise NotFound(f"GEP run {run_id} does not exist")
    return run


def list_runs(session: Session) -> list[GepRun]:
    """Return every run, newest first."""
    return list(session.scalars(select(GepRun).order_by(GepRun.id.desc())))


def start_run(factory: sessionmaker[Session], run_id: int) -> list[int]:
    """Mark a queued run running; return the indexes of its tiles still to compute (none if finished)."""
    with session_scope(factory) as session:
        run = get_run(session, run_id)
        if run.status in FINISHED:
            return []
        run.status = RunStatus.RUNNING
        session.commit()
        pending = session.scalars(
            select(GepRunTile.index).where(GepRunTile.run_id == run_id, GepRunTile.done.is_(False))
        )
        return sorted(pending)


def _stored_plan(session: Session, run: GepRun, raster_dir: Path) -> Plan:
    # Checked in full when the run was created; a tile re-plans without re-scanning every raster's pixels.
    config = RunConfig.model_validate(run.config)
    return _plan(session, config, run.inputs["region_layer"], raster_dir, scan_pixels=False)


def this_process() -> str:
    """Return the name a tile computed outside a Celery worker records as its worker."""
    return f"process:{socket.gethostname()}:{os.getpid()}"


def run_tile(
    factory: sessionmaker[Session],
    run_id: int,
    index: int,
    *,
    raster_dir: Path,
    data_dir: Path,
    clock: Clock,
    worker: str | None = None,
) -> dict[str, Any]:
    """Compute one tile and record it (with ``worker``, else this process); the last tile finishes the run."""
    try:
        with session_scope(factory) as session:
            run = get_run(session, run_id)
            if run.status is not RunStatus.RUNNING:
                return {"run_id": run_id, "tile": index, "status": run.status.value}
            plan = _stored_plan(session, run, raster_dir)
            out_dir = data_dir / run.output_dir
        window = plan.windows()[index]
        with open_stack(plan) as datasets:
            result = compute_tile(plan, datasets, window)
        RasterWriter(plan, out_dir).write_tile(index, window, result.values)
        with session_scope(factory) as session:
            tile = session.scalars(
                select(GepRunTile).where(GepRunTile.run_id == run_id, GepRunTile.index == index).with_for_update()
            ).one()
            if tile.done:
                return {"run_id": run_id, "tile": index, "status": "already-done"}
            tile.done, tile.result, tile.worker = True, result.as_json(), worker or this_process()
            session.execute(update(GepRun).where(GepRun.id == run_id).values(tiles_done=GepRun.tiles_done + 1))
            session.flush()
            done, total = session.execute(
                select(GepRun.tiles_done, GepRun.tiles_total).where(GepRun.id == run_id)
            ).one()
            session.commit()
        if done == total:
            finish_run(factory, run_id, plan=plan, data_dir=data_dir, clock=clock)
    except ShanhaiError as error:
        fail_run(factory, run_id, error, data_dir=data_dir, clock=clock)
    except Exception as error:  # a raster library error must still fail the run cleanly
        fail_run(factory, run_id, ShanhaiError(f"{type(error).__name__}: {error}"), data_dir=data_dir, clock=clock)
    with session_scope(factory) as session:
        return {"run_id": run_id, "tile": index, "status": get_run(session, run_id).status.value}


def finish_run(factory: sessionmaker[Session], run_id: int, *, plan: Plan, data_dir: Path, clock: Clock) -> None:
    """Merge the tiles, build and check the tables, assemble the rasters, mark the run succeeded.

    The rasters are assembled outside any transaction (minutes at 10,000², and on SQLite a transaction that
    wrote would hold the database's one write lock all that time, so readers polling the run saw "database
    is locked"); only the final status change is a short write that re-checks the run is still running.
    Exactly one call finishes a run: the one whose tile made ``tiles_done`` reach ``tiles_total``.
    """
    with session_scope(factory) as session:
        run = get_run(session, run_id)
        if run.status is not RunStatus.RUNNING:
            return
        tiles = session.scalars(select(GepRunTile).where(GepRunTile.run_id == run_id).order_by(GepRunTile.index))
        results = [t.result or {} for t in tiles]
        out_dir, tiles_total = data_dir / run.output_dir, run.tiles_total
        session.rollback()
    merged = merge_tiles(plan, results)
    rasters = RasterWriter(plan, out_dir).assemble(tiles_total, merged.factors)
    summary = tables.gep_summary(merged.lines)
    result = to_jsonable_python(
        {
            "lines": [line.model_dump(mode="json") for line in merged.lines],
            "summary": [row.model_dump(mode="json") for row in summary],
            "totals": merged.totals,
            "extent_m2": merged.extent,
            "by_class": merged.by_class,
            "by_type": merged.by_type,
            "class_types": class_types(plan, merged),
            "rasters": rasters,
        }
    )
    with session_scope(factory) as session:
        run = session.scalars(select(GepRun).where(GepRun.id == run_id).with_for_update()).one()
        if run.status is not RunStatus.RUNNING:  # failed or cancelled while assembling: its files go too
            session.rollback()
            shutil.rmtree(out_dir, ignore_errors=True)
            return
        run.result = result
        run.status = RunStatus.SUCCEEDED
        run.finished_at = clock.now()
        audit.append(
            session,
            actor="system:worker",
            action="gep_run.succeeded",
            subject=f"gep_run:{run.id}",
            payload={"gep_yuan": str(summary[-1].gep_yuan), "valuation_sha256": run.valuation["sha256"]},
            clock=clock,
        )
        session.commit()


def fail_run(factory: sessionmaker[Session], run_id: int, error: ShanhaiError, *, data_dir: Path, clock: Clock) -> None:
    """Mark a run failed with the problem, drop its files and partial tile results (idempotent)."""
    with session_scope(factory) as session:
        run = get_run(session, run_id)
        if run.status in FINISHED:
            return
        run.status = RunStatus.FAILED
        run.error = to_jsonable_python(
            {"slug": error.slug, "title": error.title, "detail": error.detail, **error.extensions()}
        )
        run.result = None
        run.finished_at = clock.now()
        for tile in session.scalars(select(GepRunTile).where(GepRunTile.run_id == run_id)):
            tile.result = None
        audit.append(
            session,
            actor="system:worker",
            action="gep_run.failed",
            subject=f"gep_run:{run.id}",
            payload={"slug": error.slug, "detail": error.detail},
            clock=clock,
        )
        session.commit()
        shutil.rmtree(data_dir / run.output_dir, ignore_errors=True)


def execute_in_process(
    factory: sessionmaker[Session], run_id: int, *, raster_dir: Path, data_dir: Path, clock: Clock
) -> None:
    """Run every tile of a run in this process (seeding, eager tests)."""
    for index in start_run(factory, run_id):
        run_tile(factory, run_id, index, raster_dir=raster_dir, data_dir=data_dir, clock=clock)


def summary(run: GepRun) -> dict[str, Any]:
    """Return a run as a JSON-ready mapping: status, progress, inputs, valuation, headline."""
    headline = None
    if run.result is not None:
        headline = run.result["summary"]
    return {
        "id": run.id,
        "name": run.name,
        "year": run.year,
        "region_layer": run.inputs.get("region_layer"),
        "status": run.status.value,
        "progress": {"done": run.tiles_done, "total": run.tiles_total},
        "config": run.config,
        "inputs": run.inputs,
        "valuation": run.valuation,
        "summary": headline,
        "rasters": sorted((run.result or {}).get("rasters", {})),
        "error": run.error,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def progress_by_worker(session: Session, run_id: int) -> dict[str, int]:
    """Return the tiles done by each worker of a run (the run page's live progress)."""
    rows = session.execute(
        select(GepRunTile.worker, func.count(GepRunTile.id))
        .where(GepRunTile.run_id == run_id, GepRunTile.done.is_(True))
        .group_by(GepRunTile.worker)
    )
    return {worker or "unknown": int(count) for worker, count in rows}


def _lines(run: GepRun) -> list[tables.SupplyLine]:
    if run.status is not RunStatus.SUCCEEDED or run.result is None:
        raise NotFound(f"GEP run {run.id} has no results (status {run.status.value})")
    return [tables.SupplyLine.model_validate(line) for line in run.result["lines"]]


def seea_tables(run: GepRun) -> dict[str, list[dict[str, object]]]:
    """Return every SEEA-EA table of a finished run (sums asserted).

    Raises:
        NotFound: The run has no results.
    """
    lines = _lines(run)
    assert run.result is not None
    unit_values = {code: Decimal(str(v["yuan_per_unit"])) for code, v in run.valuation["unit_values"].items()}
    return tables.seea_tables(
        lines,
        by_type=run.result.get("by_type", {}),
        unit_values=unit_values,
        extent_m2=run.result["extent_m2"],
        class_types=run.result.get("class_types"),
    )


def table_csv(run: GepRun, table: str) -> str:
    """Return one SEEA-EA table of a finished run as CSV (:data:`TABLES`).

    Raises:
        NotFound: No such table, or the run has no results.
    """
    if table not in TABLES:
        raise NotFound(f"no table {table!r}; tables: {', '.join(TABLES)}")
    return tables.to_csv(seea_tables(run)[table])


def workbook(run: GepRun, compare_to: GepRun | None = None) -> bytes:
    """Return the SEEA-EA tables of a finished run as an Excel workbook, with a comparison if asked.

    Raises:
        NotFound: Either run has no results.
    """
    comparison = tables.compare_runs(_lines(run), _lines(compare_to)) if compare_to is not None else None
    about: dict[str, object] = {
        "run": f"{run.id} — {run.name}",
        "year": run.year,
        "region layer": run.inputs.get("region_layer"),
        "prices": _reference(run.valuation["prices"]),
        "coefficients": _reference(run.valuation["coefficients"]),
        "land-cover legend": _reference(run.inputs.get("legend")),
        "valuation sha256": f"{run.valuation['sha256']} ({run.valuation.get('hash_scheme', LEGACY_SCHEME)})",
        "compared with": f"run {compare_to.id} — {compare_to.name} (after minus before: this run is 'before')"
        if compare_to is not None
        else "",
        "note": "Numbers are Excel doubles; the CSV tables are the exact Decimal form.",
    }
    return write_workbook(seea_tables(run), about=about, comparison=comparison)


def _reference(table: dict[str, str] | None) -> str:
    if not table:
        return ""
    return f"{table['id']} v{table['version']} sha256 {table['sha256']} ({table.get('hash_scheme', LEGACY_SCHEME)})"


def compare_rows(before: GepRun, after: GepRun) -> list[dict[str, object]]:
    """Return the change by region and indicator between two finished runs (rows of :func:`compare_csv`)."""
    return tables.compare_runs(_lines(before), _lines(after))


def compare_csv(before: GepRun, after: GepRun) -> str:
    """Return the change by region and indicator between two finished runs, as CSV."""
    return tables.to_csv(tables.compare_runs(_lines(before), _lines(after)))


def raster_path(run: GepRun, indicator: str, data_dir: Path) -> Path:
    """Return the value raster (元 per pixel, float64 COG) of an indicator of a finished run."""
    if run.result is None or indicator not in run.result.get("rasters", {}):
        raise NotFound(f"GEP run {run.id} has no value raster for {indicator!r}")
    path: Path = data_dir / run.output_dir / str(run.result["rasters"][indicator])
    if not path.is_file():
        raise NotFound(f"the value raster of {indicator!r} is not on this server's data directory")
    return path
