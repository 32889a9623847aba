"""Demo: a burn scar over part of the Haicang forest, found from the land and confirmed as a reversal.

Assumes the demo project's Haicang report is *issued* (``api.seed`` makes it so); does nothing otherwise, and
nothing twice. Steps, each through the same services the API calls, each audited:

1. two SYNTHETIC summer NDVI composites around the Haicang plot (2024 and 2025, ``carbon.reversals.synthetic``)
   with a burn scar — 50 × 30 pixels, about 15 ha — in the later one, registered as raster layers (system) and
   as composites of Jingyuan county (640424) by the forestry bureau;
2. a change-patch file of the 2025 forest supervision (森林督查) with the scar as a fire patch (变化原因 森林火灾),
   imported by the bureau;
3. a watch run by the registry, computed in process: one loss event on Haicang, its tonnes at risk read from the
   issued report's trace;
4. the registry confirms it: the tonnes are cancelled from the buffer pool; the bureau finds the notice in its
   inbox.

Hook: after the demo reports are issued, call ``seed_reversal(session, raster_dir=settings.raster_dir,
clock=...)``; it returns the confirmed loss event's id, or ``None`` when skipped.
"""

from __future__ import annotations

from pathlib import Path

from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from carbon.models import MonitoringReport, Plot, ReportStatus
from carbon.reversals.composites import RegisterComposite, register_composite
from carbon.reversals.jobs import execute_in_process
from carbon.reversals.models import Composite, CompositeKind, LossEvent
from carbon.reversals.patches import ImportChangePatches, import_patches
from carbon.reversals.proposals import Decide, confirm_event
from carbon.reversals.synthetic import SUMMER_2024, SUMMER_2025, SyntheticGrid, change_patch_document, write_pair
from carbon.reversals.watch import CreateWatch, create_run
from core.auth import Organisation, OrgKind, Principal, User, principal_of
from core.clock import Clock
from geodata.models import RasterKind
from geodata.rasters import RegisterRasterLayer, register_layer

HAICANG_CODE = "NX-JY-HC-001"
STEM = "reversal_demo_haicang"
COMPOSITES = ("demo-haicang-ndvi-2024-summer", "demo-haicang-ndvi-2025-summer")
PATCH_FILE = "demo-jingyuan-forest-inspection-2025"
#: The scar, in pixels of the synthetic grid: its top-left corner from the plot's representative point, its size.
SCAR_OFFSET_PX, SCAR_SIZE_PX = (-35, -10), (50, 30)


def _principal(session: Session, kind: OrgKind) -> Principal:
    user = session.scalars(
        select(User).join(User.organisation).where(Organisation.kind == kind).order_by(User.id)
    ).first()
    if user is None:
        raise LookupError(f"no demo user of kind {kind.value}")
    return principal_of(user, "seed")


def demo_scene(plot: Plot) -> tuple[SyntheticGrid, BaseGeometry]:
    """Return the demo grid around a plot and the scar polygon (whole pixels, inside the plot)."""
    grid = SyntheticGrid.around(plot.geometry.bounds)
    point = plot.geometry.representative_point()
    col, row = grid.pixel_of(point.x, point.y)
    scar = grid.pixel_box(col + SCAR_OFFSET_PX[0], row + SCAR_OFFSET_PX[1], *SCAR_SIZE_PX)
    return grid, scar


def write_demo_composites(raster_dir: Path, plot: Plot) -> tuple[str, str]:
    """Write the two demo composites into ``raster_dir`` unless present; return their file names."""
    names = (f"{STEM}_before.tif", f"{STEM}_after.tif")
    if not all((raster_dir / name).is_file() for name in names):
        grid, scar = demo_scene(plot)
        names = write_pair(raster_dir, grid, scar, stem=STEM)
    return names


def seed_reversal(session: Session, *, raster_dir: Path, clock: Clock) -> int | None:
    """Run the demo (idempotent): return the confirmed loss event's id, or ``None`` when skipped."""
    done = session.scalars(select(Composite.id).where(Composite.name == COMPOSITES[0])).first() is not None
    plot = session.scalars(select(Plot).where(Plot.plot_code == HAICANG_CODE)).first()
    issued = session.scalars(select(MonitoringReport).where(MonitoringReport.status == ReportStatus.ISSUED)).all()
    if done or plot is None or not any(plot.id in report.plot_ids for report in issued):
        session.rollback()  # end the read (on SQLite it holds the write lock)
        return None
    bureau, registry = _principal(session, OrgKind.FORESTRY_BUREAU), _principal(session, OrgKind.REGISTRY)
    files = write_demo_composites(raster_dir, plot)
    for name, file, (start, end) in zip(COMPOSITES, files, (SUMMER_2024, SUMMER_2025), strict=True):
        layer = RegisterRasterLayer(
            name=name, kind=RasterKind.CONTINUOUS, units="NDVI", path=file,
            description="SYNTHETIC summer NDVI composite around the Haicang demo plot (api/seed_reversal.py).",
        )  # fmt: skip
        register_layer(session, layer, raster_dir=raster_dir, actor="system:seed", clock=clock)
        composite = RegisterComposite(
            name=name, kind=CompositeKind.NDVI, raster_layer=name, region_code="640424", acquired_start=start,
            acquired_end=end, sensor="synthetic (demo)", description="SYNTHETIC: a demo, not an observation.",
        )  # fmt: skip
        register_composite(session, composite, actor=bureau, clock=clock)
    _grid, scar = demo_scene(plot)
    patches = change_patch_document([
        (scar, {"图斑号": "640424-2025-0001", "变化类型": "林地变非林地", "变化原因": "森林火灾",
                "变化日期": "2025-04-12", "前地类": "乔木林地", "后地类": "火烧迹地"}),
    ])  # fmt: skip
    import_patches(session, ImportChangePatches(name=PATCH_FILE, region_code="640424", survey_year=2025),
                   filename="森林督查变化图斑_2025_泾源.geojson", data=patches, actor=bureau, clock=clock)  # fmt: skip
    run = create_run(session, CreateWatch(before=COMPOSITES[0], after=COMPOSITES[1], patch_files=[PATCH_FILE]),
                     actor=registry, clock=clock, raster_dir=raster_dir)  # fmt: skip
    run_id, plot_id = run.id, plot.id
    session.rollback()  # the tiles are written by sessions of their own
    execute_in_process(sessionmaker(bind=session.get_bind()), run_id, raster_dir=raster_dir, clock=clock)
    event = session.scalars(select(LossEvent).where(LossEvent.run_id == run_id, LossEvent.plot_id == plot_id)).one()
    reason = "Demo: the April 2025 fire's burn scar, confirmed on site by the county forestry station (synthetic)."
    confirm_event(session, event.id, Decide(reason=reason), actor=registry, clock=clock)
    return event.id
