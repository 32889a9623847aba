"""A project's tonnes beside the GEP of the regions its plots lie in — the join of ``carbon`` and ``gep``.

``carbon`` and ``gep`` are siblings and never import each other (docs/ARCHITECTURE.md); this module sits above
both and reads each through its own services: the project's plots, issued batches and reports from ``carbon``,
the finished GEP runs and their regions from ``gep``. For every finished run whose region layer meets the plots
it names the regions met, the share of the project's plot area inside each (geodesic, on CGCS2000) and the
region's GEP; for every region layer with runs of two or more years it gives the change from the earliest year
to the latest — the restoration's GEP gain as the accounts record it.

GEP is accounted per region, not per plot: the change of a region is the whole region's (the restoration's
part in it is not separated out). ``plot_share_of_region`` (the plots' area over the region's) is given so a
reader can judge how much of the region the project is; it is not an attribution.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from shapely import unary_union
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import Batch
from carbon.models import MonitoringReport, Project, ReportStatus
from carbon.plots import list_plots
from carbon.projects import get_project
from core.auth import OrgKind, Principal
from core.errors import NotFound
from geodata.area import measure
from gep.models import GepRun, Region, RunStatus

#: Roles that read any project's GEP join (they read every GEP run); a proponent reads its own projects'.
GEP_READING_ROLES = frozenset({OrgKind.ECOLOGY_BUREAU, OrgKind.AUDITOR, OrgKind.REGISTRY})
CENT = Decimal("0.01")


def _readable(session: Session, project_id: int, actor: Principal) -> Project:
    project = get_project(session, project_id)
    if actor.role not in GEP_READING_ROLES and actor.organisation_id != project.organisation_id:
        raise NotFound(f"project {project_id} is not one of the caller's organisation's projects")
    return project


def _tonnes(session: Session, project: Project) -> dict[str, Any]:
    batches = list(session.scalars(select(Batch).where(Batch.project_id == project.id).order_by(Batch.id)))
    reports = session.scalars(
        select(MonitoringReport).where(
            MonitoringReport.project_id == project.id, MonitoringReport.status == ReportStatus.ISSUED
        )
    )
    return {
        "issued_t": sum(b.quantity_t for b in batches),
        "buffer_t": sum(b.buffer_t for b in batches),
        "net_removal_tco2e": str(sum((r.net_removal_tco2e for r in reports), Decimal(0))),
        "batches": [
            {"id": b.id, "credit_class": b.credit_class.value, "vintage": b.vintage_year, "quantity_t": b.quantity_t}
            for b in batches
        ],
    }


def _regions_met(session: Session, run: GepRun, footprint: Any, footprint_m2: float) -> list[dict[str, Any]]:
    minx, miny, maxx, maxy = footprint.bounds
    candidates = session.scalars(select(Region).where(Region.layer_id == run.region_layer_id))
    summary = {row["region_code"]: row for row in (run.result or {}).get("summary", [])}
    met = []
    for region in candidates:
        rminx, rminy, rmaxx, rmaxy = region.geometry.bounds
        if rminx > maxx or rmaxx < minx or rminy > maxy or rmaxy < miny or not region.geometry.intersects(footprint):
            continue
        inside_m2 = measure(region.geometry.intersection(footprint)).area_m2
        if inside_m2 <= 0:
            continue
        gep = summary.get(region.code, {}).get("gep_yuan")
        met.append({
            "code": region.code,
            "name": region.name,
            "plot_area_inside_m2": round(inside_m2, 1),
            "share_of_plots": round(inside_m2 / footprint_m2, 6),
            "plot_share_of_region": round(inside_m2 / region.area_m2, 6) if region.area_m2 else None,
            "gep_yuan": str(Decimal(gep).quantize(CENT)) if gep is not None else None,
        })  # fmt: skip
    return met


def _changes(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_layer: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        by_layer[run["region_layer"]].append(run)
    changes = []
    for layer, found in sorted(by_layer.items()):
        years = sorted({r["year"] for r in found})
        if len(years) < 2:
            continue
        before = max((r for r in found if r["year"] == years[0]), key=lambda r: r["run_id"])  # latest run of a year
        after = max((r for r in found if r["year"] == years[-1]), key=lambda r: r["run_id"])
        old = {g["code"]: g for g in before["regions"]}
        regions = []
        for region in after["regions"]:
            if region["code"] not in old or region["gep_yuan"] is None or old[region["code"]]["gep_yuan"] is None:
                continue
            value_before, value_after = Decimal(old[region["code"]]["gep_yuan"]), Decimal(region["gep_yuan"])
            percent = ((value_after - value_before) / value_before * 100).quantize(CENT) if value_before else None
            regions.append({
                "code": region["code"], "name": region["name"], "value_before_yuan": str(value_before),
                "value_after_yuan": str(value_after), "value_change_yuan": str(value_after - value_before),
                "value_change_percent": str(percent) if percent is not None else None,
                "plot_share_of_region": region["plot_share_of_region"],
            })  # fmt: skip
        changes.append({"region_layer": layer, "before_run_id": before["run_id"], "before_year": years[0],
                        "after_run_id": after["run_id"], "after_year": years[-1], "regions": regions})  # fmt: skip
    return changes


def project_gep(session: Session, project_id: int, *, actor: Principal) -> dict[str, Any]:
    """Return the project's tonnes and the GEP (and its change) of the regions its plots lie in."""
    project = _readable(session, project_id, actor)
    plots = list_plots(session, project.id)
    runs: list[dict[str, Any]] = []
    if plots:
        footprint = unary_union([p.geometry for p in plots])
        footprint_m2 = measure(footprint).area_m2
        finished = session.scalars(select(GepRun).where(GepRun.status == RunStatus.SUCCEEDED).order_by(GepRun.id))
        for run in finished:
            regions = _regions_met(session, run, footprint, footprint_m2)
            if regions:
                runs.append({"run_id": run.id, "name": run.name, "year": run.year,
                             "region_layer": run.region_layer.name, "regions": regions})  # fmt: skip
    return {
        "project_id": project.id,
        "project_code": project.code,
        "scheme": project.scheme.value,
        "tonnes": _tonnes(session, project),
        "gep_runs": runs,
        "gep_changes": _changes(runs),
        "note": "GEP is accounted per region; a region's change is the whole region's, not the project's alone.",
    }
