"""The proponent's desk (forestry bureau, forest owner): own projects, plots on the map, file uploads read on the map.

Every page calls the services the JSON API calls (``carbon.projects``, ``carbon.imports``, ``carbon.workflow``,
``carbon.claims``), never HTTP to itself. A project of another organisation is "not found" here, as it is to the
API's upload and filing routes. Plots reach the map as vector tiles (``carbon.plot_tiles``, ADR 040); a clicked
plot's card (areas in 亩 and 公顷, declared against measured, claim, overlaps, region warnings) is a fragment.

An upload is one page: the file is read for its columns (the mapping step, with the 二类调查 names pre-selected),
then sent again with the chosen mapping as an import job (``carbon.imports.create_import``). On the embedded
default (no broker: Celery eager) the job runs on a background thread, so the page has progress to show; with a
broker it is queued like the API's. The job's fragment polls until the job ends, then draws its report on the
map: refused features where they are with the reason, double-counting conflicts against the plots they overlap
(m², 亩, %), outside-region refusals and warnings. The browser still holds the file, so "repair and retry" sends
it again with ``repair``.
"""

from __future__ import annotations

import json
import threading
from typing import Annotated, Any

import shapely
from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from carbon.imports import FINISHED, IMPORT_TASK, create_import, get_import, summary
from carbon.models import ImportStatus, Plot, PlotImport, Project, ProjectStatus
from carbon.monitoring_records import list_reports
from carbon.plot_tiles import plots_extent
from carbon.projects import get_project
from carbon.workflow import StepRequest, project_step
from core.auth import Principal
from core.errors import InvalidInput, NotFound
from geodata.attributes import AREA_UNITS, MAPPABLE_KEYS, AreaUnit
from geodata.intake import peek_columns
from geodata.readers import ReadLimits, check_container
from web.i18n import N_
from web.pages import CSRF_FIELD, check_csrf, render
from web.plot_map import TileX, TileY, TileZ, plot_card, plot_tile_response

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
ProjectId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CsrfField = Annotated[str, Form(alias=CSRF_FIELD, max_length=100)]
#: Rows of the plot table on the project page (the map shows every plot; the API lists them all).
PLOT_ROWS = 200
ATTRIBUTE_LABELS = {
    "code": N_("Plot code (小班号)"), "name": N_("Name"), "declared_area": N_("Declared area"),
    "species": N_("Species"), "planting_year": N_("Planting year"), "stand_age": N_("Stand age"),
    "land_use": N_("Land class"), "county": N_("County code"),
}  # fmt: skip
ROLE_LABELS = {
    "refused": N_("Refused"), "conflict": N_("Double counting"), "outside_region": N_("Outside the province"),
    "warned": N_("Warning"), "existing": N_("Plot already claimed"), "overlap": N_("Overlap"),
}  # fmt: skip


def own_project(session: Session, project_id: int, person: Principal) -> Project:
    """Return a project of the person's own organisation; any other is "not found" (its existence not revealed)."""
    project = get_project(session, project_id)
    if project.organisation_id != person.organisation_id:
        raise NotFound(f"project {project_id} does not exist")
    return project


def _map_config(request: Request, project: Project, extent: Any, overlay: dict[str, Any] | None) -> str:
    settings = request.app.state.settings
    basemap = None
    if settings.basemap_url is not None:
        basemap = {"url": settings.basemap_url, "attribution": settings.basemap_attribution}
    return json.dumps(
        {"tiles": f"/projects/{project.id}/tiles/{{z}}/{{x}}/{{y}}.mvt", "card": f"/projects/{project.id}/plots/",
         "extent": extent, "overlay": overlay, "basemap": basemap},
        ensure_ascii=False,
    )  # fmt: skip


@router.get("/projects", response_class=HTMLResponse)
def page_projects(request: Request, session: SessionDep, person: Person) -> HTMLResponse:
    """The projects of the person's organisation, with their plots, area and status."""
    counts = (
        select(Plot.project_id, func.count(Plot.id), func.coalesce(func.sum(Plot.area_m2), 0.0))
        .group_by(Plot.project_id)
        .subquery()
    )
    rows = session.execute(
        select(Project, counts.c[1], counts.c[2])
        .outerjoin(counts, counts.c.project_id == Project.id)
        .where(Project.organisation_id == person.organisation_id)
        .order_by(Project.id)
    ).all()
    projects = [{"project": p, "plots": n or 0, "area_m2": area or 0.0} for p, n, area in rows]
    return render(request, "bureau_projects.html", {"projects": projects}, principal=person)


@router.get("/projects/{project_id}", response_class=HTMLResponse)
def page_project(request: Request, session: SessionDep, person: Person, project_id: ProjectId) -> HTMLResponse:
    """One own project: its plots on the map (vector tiles), its reports and imports, submit for validation."""
    project = own_project(session, project_id, person)
    count, area = session.execute(
        select(func.count(Plot.id), func.coalesce(func.sum(Plot.area_m2), 0.0)).where(Plot.project_id == project.id)
    ).one()
    plots = list(session.scalars(select(Plot).where(Plot.project_id == project.id).order_by(Plot.id).limit(PLOT_ROWS)))
    imports = list(
        session.scalars(
            select(PlotImport).where(PlotImport.project_id == project.id).order_by(PlotImport.id.desc()).limit(20)
        )
    )
    context = {
        "project": project,
        "plot_count": count,
        "area_m2": area,
        "plots": plots,
        "plot_rows": PLOT_ROWS,
        "reports": list_reports(session, project.id),
        "imports": imports,
        "may_submit": project.status in (ProjectStatus.DRAFT, ProjectStatus.REJECTED),
        "request_submitted": request.query_params.get("submitted") == "1",
        "map_config": _map_config(request, project, plots_extent(session, project.id), None),
    }
    return render(request, "bureau_project.html", context, principal=person)


@router.get("/projects/{project_id}/tiles/{z}/{x}/{y}.mvt")
def page_project_tiles(
    session: SessionDep,
    person: Person,
    project_id: ProjectId,
    z: TileZ,
    x: TileX,
    y: TileY,
) -> Response:
    """One vector tile (MVT) of the project's active plots; ``204`` where none lies."""
    return plot_tile_response(session, own_project(session, project_id, person).id, z, x, y)


@router.get("/projects/{project_id}/plots/{plot_id}/card", response_class=HTMLResponse)
def page_plot_card(
    request: Request,
    session: SessionDep,
    person: Person,
    project_id: ProjectId,
    plot_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> HTMLResponse:
    """A plot's card for the map's popup: code, name, areas, declared vs measured, claim, overlaps, warnings."""
    return plot_card(request, session, person, own_project(session, project_id, person), plot_id)


@router.post("/projects/{project_id}/submit")
def page_project_submit(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Person,
    project_id: ProjectId,
    csrf_token: CsrfField = "",
    comment: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    """Submit the project for validation (the workflow's ``submit`` step, audited as the API's)."""
    check_csrf(request, settings, csrf_token)
    project = own_project(session, project_id, person)
    project_step(session, project.id, "submit", StepRequest(comment=comment), actor=person, clock=clock)
    return RedirectResponse(f"/projects/{project.id}?submitted=1", status_code=303)


# --- uploads -------------------------------------------------------------------------------------------------


def _limits(request: Request) -> ReadLimits:
    settings = request.app.state.settings
    return ReadLimits(max_expanded_bytes=settings.max_expanded_bytes, max_features=settings.max_features_per_file)


@router.get("/projects/{project_id}/upload", response_class=HTMLResponse)
def page_upload_form(request: Request, session: SessionDep, person: Person, project_id: ProjectId) -> HTMLResponse:
    """Upload a plot file: choose it, map its columns, watch the import, read its report on the map."""
    project = own_project(session, project_id, person)
    return render(request, "upload.html", {"project": project}, principal=person)


@router.post("/projects/{project_id}/upload/columns", response_class=HTMLResponse)
def page_upload_columns(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    person: Person,
    project_id: ProjectId,
    file: Annotated[UploadFile, File()],
    csrf_token: CsrfField = "",
) -> HTMLResponse:
    """The column-mapping step: the file's columns with sample values, the usual names pre-selected."""
    check_csrf(request, settings, csrf_token)
    project = own_project(session, project_id, person)
    session.rollback()  # the file is read outside any transaction (SQLite: no write lock held meanwhile)
    filename = file.filename or "upload"
    if settings.max_file_upload_bytes and (file.size or 0) > settings.max_file_upload_bytes:
        raise InvalidInput(f"the file exceeds the limit of {settings.max_file_upload_bytes} bytes")
    check_container(file.file, filename, _limits(request))
    file.file.seek(0)
    peek = peek_columns(file.file, filename, _limits(request))
    context = {"project": project, "peek": peek, "keys": MAPPABLE_KEYS, "labels": ATTRIBUTE_LABELS,
               "area_units": AREA_UNITS, "filename": filename}  # fmt: skip
    return render(request, "_columns.html", context, principal=person)


def start_import(request: Request, import_id: int) -> None:
    """Run or queue an import job: a background thread on the embedded default (eager Celery), else the broker."""
    celery = request.app.state.celery
    task = celery.tasks[IMPORT_TASK]
    if celery.conf.task_always_eager:
        threading.Thread(target=task.apply, args=((import_id,),), name=f"plot-import-{import_id}", daemon=True).start()
    else:
        task.delay(import_id)


MapField = Annotated[str, Form(max_length=255)]


@router.post("/projects/{project_id}/upload", response_class=HTMLResponse)
def page_upload(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Person,
    project_id: ProjectId,
    file: Annotated[UploadFile, File()],
    csrf_token: CsrfField = "",
    area_unit: Annotated[str, Form(max_length=2)] = "",
    repair: Annotated[str, Form(max_length=5)] = "",
    map_code: MapField | None = None,
    map_name: MapField | None = None,
    map_declared_area: MapField | None = None,
    map_species: MapField | None = None,
    map_planting_year: MapField | None = None,
    map_stand_age: MapField | None = None,
    map_land_use: MapField | None = None,
    map_county: MapField | None = None,
) -> Response:
    """Create the import job with the chosen mapping and start it; answer with its progress fragment."""
    check_csrf(request, settings, csrf_token)
    own_project(session, project_id, person)
    chosen = {"code": map_code, "name": map_name, "declared_area": map_declared_area, "species": map_species,
              "planting_year": map_planting_year, "stand_age": map_stand_age, "land_use": map_land_use,
              "county": map_county}  # fmt: skip
    column_map = {k: v or None for k, v in chosen.items()} if any(v is not None for v in chosen.values()) else None
    unit: AreaUnit | None = "mu" if area_unit == "mu" else "ha" if area_unit == "ha" else None
    job = create_import(
        session, project_id, file.filename or "upload", file.file, repair=repair in ("on", "true", "1"), actor=person,
        clock=clock, limits=_limits(request), area_unit=unit, max_bytes=settings.max_file_upload_bytes,
        column_map=column_map,
    )  # fmt: skip
    import_id = job.id
    start_import(request, import_id)
    if request.headers.get("HX-Request") != "true":
        return RedirectResponse(f"/projects/{project_id}/imports/{import_id}", status_code=303)
    return _import_fragment(request, session, person, project_id, import_id)


def _import_context(
    request: Request, session: Session, person: Principal, project_id: int, import_id: int
) -> dict[str, Any]:
    project = own_project(session, project_id, person)
    job = get_import(session, import_id)
    if job.project_id != project.id:
        raise NotFound(f"plot import {import_id} does not exist")
    data = summary(job)
    finished = job.status in FINISHED
    overlay = report_overlay(session, job) if finished else None
    reports = (data.get("report") or {}).get("features", [])
    problems = (job.error or {}).get("errors") or []
    conflicts = (job.error or {}).get("conflicts") or []
    return {
        "project": project, "job": data, "finished": finished, "succeeded": job.status is ImportStatus.SUCCEEDED,
        "features": reports, "problems": problems, "conflicts": conflicts,
        "in_upload": request.headers.get("HX-Current-URL", "").split("?")[0].endswith("/upload"),
        "map_config": _map_config(request, project, _overlay_extent(overlay) or plots_extent(session, project.id),
                                  overlay) if finished else None,
    }  # fmt: skip


def _import_fragment(
    request: Request, session: Session, person: Principal, project_id: int, import_id: int
) -> HTMLResponse:
    context = _import_context(request, session, person, project_id, import_id)
    return render(request, "_import.html", context, principal=person)


@router.get("/projects/{project_id}/imports/{import_id}", response_class=HTMLResponse)
def page_import(
    request: Request,
    session: SessionDep,
    person: Person,
    project_id: ProjectId,
    import_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
) -> HTMLResponse:
    """An import job: its progress while it runs, then its per-feature report on the map."""
    if request.headers.get("HX-Request") == "true":
        return _import_fragment(request, session, person, project_id, import_id)
    context = _import_context(request, session, person, project_id, import_id)
    return render(request, "import.html", context, principal=person)


def _feature(geometry: dict[str, Any], role: str, title: str, lines: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"role": role, "title": title, "lines": lines, **extra},
    }


def report_overlay(session: Session, job: PlotImport) -> dict[str, Any]:
    """Return the report's features for the map: the job's outlines, refused locations, conflicting plots, overlaps.

    Each feature says its ``role`` (refused, conflict, outside_region, warned, existing, overlap) and the ``lines``
    its popup shows (the reasons; for an overlap its m², 亩 and % of each plot as properties).
    """
    features: list[dict[str, Any]] = []
    error = job.error or {}
    region_problems = error.get("errors", []) or []
    conflicts = error.get("conflicts", []) or []
    reports = {r["index"]: r for r in ((job.report or {}).get("features") or [])}
    outlines = {f["properties"]["feature_index"]: f for f in ((job.outlines or {}).get("features") or [])}
    for index, outline in outlines.items():
        report = reports.get(index, {})
        lines = [p["reason"] for p in report.get("problems", [])] + list(report.get("warnings", []))
        lines += [p.get("reason", "") for p in region_problems if p.get("feature_index") == index]
        title = report.get("plot_code") or f"#{index}"
        features.append(_feature(outline["geometry"], outline["properties"]["role"], title, lines,
                                 feature_index=index, plot_code=report.get("plot_code")))  # fmt: skip
    for index, report in reports.items():
        if report["status"] != "refused":
            continue  # a refused feature gets a point at each problem's location, beside any outline
        for problem in report["problems"]:
            if problem.get("location"):
                point = {"type": "Point", "coordinates": problem["location"]}
                title = report.get("plot_code") or f"#{index}"
                features.append(_feature(point, "refused", title, [problem["reason"]], feature_index=index,
                                         plot_code=report.get("plot_code")))  # fmt: skip
    features += _conflict_features(session, conflicts, outlines)
    return {"type": "FeatureCollection", "features": features}


def _conflict_features(
    session: Session, conflicts: list[dict[str, Any]], outlines: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return the claimed plots an upload overlaps and each overlap (the shared part), for the map."""
    uploaded = {
        i: shapely.geometry.shape(f["geometry"]) for i, f in outlines.items() if "Polygon" in f["geometry"]["type"]
    }
    ids = sorted({c["existing_plot_id"] for c in conflicts if "existing_plot_id" in c})
    claimed = {p.id: p for p in session.scalars(select(Plot).where(Plot.id.in_(ids)))} if ids else {}
    features = [
        _feature(shapely.geometry.mapping(plot.geometry), "existing",
                 f"{plot.plot_code or plot.id} · {plot.project.code}", [plot.project.organisation.name])
        for plot in claimed.values()
    ]  # fmt: skip
    for conflict in conflicts:
        new = uploaded.get(conflict.get("feature_index", -1))
        if "existing_plot_id" in conflict:
            plot = claimed.get(conflict["existing_plot_id"])
            other = plot.geometry if plot is not None else None
        else:
            other = uploaded.get(conflict.get("existing_feature_index", -1))
        if new is None or other is None:
            continue
        shared = shapely.make_valid(new).intersection(shapely.make_valid(other))
        if shared.is_empty:
            continue
        title = f"{conflict.get('plot_code') or ''} × {conflict.get('existing_plot_code') or ''}"
        title += f" {conflict.get('existing_project_code') or ''}"
        features.append(
            _feature(
                shapely.geometry.mapping(shared), "overlap", title.strip(), [],
                overlap_m2=conflict["overlap_m2"], overlap_mu=conflict["overlap_mu"],
                percent_new=conflict["overlap_percent_of_new"],
                percent_existing=conflict["overlap_percent_of_existing"],
            )
        )  # fmt: skip
    return features


def _overlay_extent(overlay: dict[str, Any] | None) -> list[float] | None:
    if not overlay or not overlay["features"]:
        return None
    shapes = [shapely.geometry.shape(f["geometry"]) for f in overlay["features"]]
    return list(shapely.total_bounds(shapes))
