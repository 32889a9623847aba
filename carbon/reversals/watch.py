"""Service: watch runs — issued plots against same-season composites and change patches, tile by tile.

``create_run`` checks everything before anything is written: the two composites may be compared
(:func:`carbon.reversals.composites.check_pair`, with the strictest season window among the classes of the
plots watched), they lie on one grid, the change-patch files exist. It records the run, the issued plots
whose boxes meet the composites' footprint, the thresholds in force per credit class (stored: a later change
of thresholds never alters a run) and one row per tile.

:func:`compute_tile` (run per tile by :mod:`carbon.reversals.jobs`, a Celery task per tile) burns the plots into
the window by pixel centre (:mod:`geodata.tiling`, the machinery GEP runs use), reads both composites, marks
the pixels that lost cover under each plot's class thresholds (:mod:`carbon.reversals.kernels`) and returns
per plot the lost and the valid area (geodesic pixel areas, m²). The call that records the last tile finishes
the run (:func:`carbon.reversals.proposals.raise_events`): it sums the tiles (:func:`merged_sums`,
``math.fsum``), intersects the plots with the loss patches dated inside the interval, and raises one loss
event per plot whose lost area reaches its class's minimum.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pyproj import CRS, Transformer
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from carbon.ledger import CLASS_OF_SCHEME
from carbon.models import MonitoringReport, Plot, Project, ReportStatus
from carbon.reversals.composites import REGISTRANTS, check_pair, get_composite
from carbon.reversals.kernels import cover_loss, ndvi_loss, plot_sums, valid_pixels
from carbon.reversals.models import (
    ChangePatchFile,
    Composite,
    CompositeKind,
    EventStatus,
    LossEvent,
    RunStatus,
    WatchRun,
    WatchRunTile,
)
from carbon.reversals.thresholds import Thresholds, effective_thresholds
from core import audit
from core.auth import Principal
from core.clock import Clock
from core.errors import InvalidInput, NotFound, PermissionDenied
from geodata.models import RasterLayer
from geodata.rasters import open_raster, resolve_path
from geodata.tiling import Grid, grid_of, label_window, pixel_areas, read_window, same_grid, window_bounds
from geodata.zonal import to_raster_crs

FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED})
CGCS2000 = CRS.from_epsg(4490)


class CreateWatch(BaseModel):
    """Command: watch the issued plots under two composites (and change patches) for loss."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    before: str = Field(min_length=1, max_length=100, description="The earlier composite's name.")
    after: str = Field(min_length=1, max_length=100, description="The later composite's name.")
    patch_files: list[str] = Field(default_factory=list, max_length=50, description="Change-patch files' names.")
    tile_size: int = Field(default=1024, ge=64, le=8192)


def issued_plot_ids(session: Session) -> set[int]:
    """Return the plots covered by an issued monitoring report."""
    rows = session.scalars(select(MonitoringReport.plot_ids).where(MonitoringReport.status == ReportStatus.ISSUED))
    return {int(plot_id) for plot_ids in rows for plot_id in plot_ids}


def _layer_of(session: Session, composite: Composite) -> RasterLayer:
    layer = session.get(RasterLayer, composite.raster_layer_id)
    if layer is None:  # a foreign key: cannot happen short of manual deletion
        raise NotFound(f"the raster layer of composite {composite.name} is gone")
    return layer


def _grid(session: Session, before: Composite, after: Composite, raster_dir: Path) -> Grid:
    paths = [resolve_path(raster_dir, _layer_of(session, c).path) for c in (before, after)]
    with open_raster(paths[0]) as first:
        grid = grid_of(first)
    with open_raster(paths[1]) as second:
        if second.crs is None or not CRS.from_wkt(second.crs.to_wkt()).equals(CRS.from_wkt(grid.crs_wkt)):
            raise InvalidInput("the composites are in different CRSs", [{"reason": "crs-mismatch"}])
        if not same_grid(second, grid):
            raise InvalidInput(
                f"composites {before.name} and {after.name} are not on one grid; resample one onto the other's grid",
                [{"reason": "composites-not-on-one-grid"}],
            )
    return grid


def lonlat_bounds(grid: Grid, bounds: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """Return grid-CRS bounds as EPSG:4490 lon/lat bounds (densified for projected grids)."""
    crs = CRS.from_wkt(grid.crs_wkt)
    if crs.is_geographic:
        return bounds
    west, south, east, north = Transformer.from_crs(crs, CGCS2000, always_xy=True).transform_bounds(*bounds)
    return float(west), float(south), float(east), float(north)


def _plots_in(session: Session, box: tuple[float, float, float, float], wanted: set[int] | None) -> list[Plot]:
    west, south, east, north = box
    query = select(Plot).where(Plot.max_lon >= west, Plot.min_lon <= east, Plot.max_lat >= south, Plot.min_lat <= north)
    plots = session.scalars(query.options(joinedload(Plot.project)).order_by(Plot.id)).unique()
    return [p for p in plots if wanted is None or p.id in wanted]


def create_run(session: Session, cmd: CreateWatch, *, actor: Principal, clock: Clock, raster_dir: Path) -> WatchRun:
    """Check the pair, record the run and its tiles (queued) with its audit entry; commits.

    Raises:
        PermissionDenied: Not a bureau or the registry.
        NotFound: An unknown composite or change-patch file.
        InvalidInput: The composites may not be compared (kinds, regions, seasons, grids).
    """
    if actor.role not in REGISTRANTS:
        raise PermissionDenied("forestry or ecology bureaus and the registry start monitoring runs")
    before, after = get_composite(session, cmd.before), get_composite(session, cmd.after)
    files = list(session.scalars(select(ChangePatchFile).where(ChangePatchFile.name.in_(cmd.patch_files))))
    unknown = sorted(set(cmd.patch_files) - {f.name for f in files})
    if unknown:
        raise NotFound(f"change-patch files {unknown} do not exist")
    grid = _grid(session, before, after, raster_dir)
    footprint = lonlat_bounds(grid, window_bounds(grid, (0, 0, grid.width, grid.height)))
    plots = _plots_in(session, footprint, issued_plot_ids(session))
    thresholds = effective_thresholds(session)
    classes = {CLASS_OF_SCHEME[p.project.scheme].value for p in plots}
    window_days = min((thresholds[c].season_window_days for c in classes or thresholds), default=0)
    gap = check_pair(before, after, window_days)
    windows = grid.windows(cmd.tile_size)
    run = WatchRun(
        before_composite_id=before.id, after_composite_id=after.id, patch_file_ids=sorted(f.id for f in files),
        status=RunStatus.QUEUED, tile_size=cmd.tile_size, tiles_total=len(windows), tiles_done=0,
        plot_ids=[p.id for p in plots], thresholds={c: t.as_json() for c, t in sorted(thresholds.items())},
        season_gap_days=gap, created_at=clock.now(), created_by_user_id=actor.user_id,
    )  # fmt: skip
    session.add(run)
    session.flush()
    session.add_all([WatchRunTile(run_id=run.id, index=i, done=False) for i in range(len(windows))])
    payload = {"before": before.name, "after": after.name, "patch_files": sorted(cmd.patch_files),
               "plots": len(plots), "tiles": len(windows), "season_gap_days": gap, "window_days": window_days,
               "thresholds": run.thresholds}  # fmt: skip
    audit.append(session, actor=actor.actor, action="watch_run.created", subject=f"watch_run:{run.id}",
                 payload=payload, clock=clock)  # fmt: skip
    session.commit()
    return run


def get_run(session: Session, run_id: int) -> WatchRun:
    """Return a watch run."""
    run = session.get(WatchRun, run_id)
    if run is None:
        raise NotFound(f"watch run {run_id} does not exist")
    return run


def _plot_classes(session: Session, plots: Iterable[Plot]) -> dict[int, str]:
    return {p.id: CLASS_OF_SCHEME[p.project.scheme].value for p in plots}


def compute_tile(session: Session, run: WatchRun, index: int, *, raster_dir: Path) -> dict[str, list[float]]:
    """Return, for each watched plot with valid pixels in tile ``index``, ``[lost m², valid m²]``."""
    before = session.get_one(Composite, run.before_composite_id)
    after = session.get_one(Composite, run.after_composite_id)
    paths = [resolve_path(raster_dir, _layer_of(session, c).path) for c in (before, after)]
    with open_raster(paths[0]) as first, open_raster(paths[1]) as second:
        grid = grid_of(first)
        window = grid.windows(run.tile_size)[index]
        box = lonlat_bounds(grid, window_bounds(grid, window))
        plots = _plots_in(session, box, set(run.plot_ids))
        ids, classes = [p.id for p in plots], _plot_classes(session, plots)
        geometries, thresholds = [p.geometry for p in plots], dict(run.thresholds)
        rule = Composite(kind=before.kind, vegetated_classes=list(before.vegetated_classes))  # detached copy
        session.rollback()  # the reads are done: never hold a transaction (on SQLite, the write lock) over rasters
        if not ids:
            return {}
        labels = label_window(grid, window, to_raster_crs(geometries, CRS.from_wkt(grid.crs_wkt)))
        if not labels.any():
            return {}
        old, new = read_window(first, window), read_window(second, window)
    areas = pixel_areas(grid, window)
    valid = valid_pixels(old, new)
    found: dict[str, list[float]] = {}
    for credit_class in sorted(set(classes.values())):
        lost = _loss(rule, old, new, Thresholds(**thresholds[credit_class]))
        sums = plot_sums(labels, lost, valid, areas, len(ids))
        for label, plot_id in enumerate(ids, start=1):
            if classes[plot_id] == credit_class and sums[label, 1] > 0:
                found[str(plot_id)] = [float(sums[label, 0]), float(sums[label, 1])]
    return found


def _loss(composite: Composite, old: Any, new: Any, thresholds: Thresholds) -> Any:
    if composite.kind is CompositeKind.LAND_COVER:
        return cover_loss(old, new, composite.vegetated_classes)
    return ndvi_loss(
        old,
        new,
        min_before_ndvi=thresholds.min_before_ndvi,
        ndvi_drop=thresholds.ndvi_drop,
        relative_drop=thresholds.relative_drop,
    )


def merged_sums(session: Session, run_id: int) -> dict[int, tuple[float, float]]:
    """Return per plot the lost and valid m² summed over the run's tiles (``math.fsum``: any tiling, same sums)."""
    parts: dict[int, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for result in session.scalars(select(WatchRunTile.result).where(WatchRunTile.run_id == run_id)):
        for plot_id, (lost, valid) in ((result or {}).get("plots") or {}).items():
            parts[int(plot_id)][0].append(lost)
            parts[int(plot_id)][1].append(valid)
    return {plot_id: (math.fsum(lost), math.fsum(valid)) for plot_id, (lost, valid) in parts.items()}


def pending_plots(session: Session, plot_ids: Iterable[int]) -> set[int]:
    """Return the plots among ``plot_ids`` with a loss event still proposed."""
    wanted = list(plot_ids)
    if not wanted:
        return set()
    rows = session.scalars(
        select(LossEvent.plot_id).where(LossEvent.status == EventStatus.PROPOSED, LossEvent.plot_id.in_(wanted))
    )
    return set(rows)


def project_of(session: Session, plot: Plot) -> Project:
    """Return a plot's project."""
    return plot.project
