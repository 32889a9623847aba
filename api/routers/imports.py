"""Plot files (Shapefile zip, GeoPackage, KML, CSV-WKT, GeoJSON) uploaded as import jobs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from pydantic import Field

from api.deps import CeleryDep, ClockDep, CurrentUser, SessionDep, SettingsDep
from api.fields import Answer, InstantText
from api.params import IdPath
from api.tasks import enqueue_import
from carbon.imports import FINISHED, create_import, end_stale_imports, get_import, summary
from carbon.models import ImportStatus
from core.auth import OrgKind
from core.errors import InvalidInput, NotFound
from geodata.attributes import AreaUnit
from geodata.readers import ReadLimits

router = APIRouter(prefix="/api/v1", tags=["plot imports"])
AREA_UNIT_HELP = (
    "Unit of the declared-area column (mu or ha); overrides the column name's. Default: as the column's name "
    "says (MJ_MU, MJ_GQ, 面积(公顷)…), else mu, which the report then says."
)


class ImportProgress(Answer):
    """Features processed of the file's features."""

    done: int
    total: int | None


class PlotImportOut(Answer):
    """A plot-file import job: status, progress, the intake report and, once stored, the plot ids."""

    id: int
    project_id: int
    filename: str
    format: str = Field(description="The file's format as detected (shapefile, gpkg, kml, csv, geojson).")
    size_bytes: int
    sha256: str
    repair: bool
    area_unit: AreaUnit | None
    column_map: dict[str, str | None] | None = Field(
        description="The column chosen for each plot attribute, as uploaded; null: guessed from the column names."
    )
    status: ImportStatus
    progress: ImportProgress
    plot_ids: list[int] | None
    report: dict[str, Any] | None = Field(description="Per-feature outcome: accepted, repaired or refused (ADR 008).")
    error: dict[str, Any] | None = Field(description="Why a failed job failed: a problem's `slug`, `title`, `detail`…")
    created_at: InstantText
    finished_at: InstantText | None
    heartbeat_at: InstantText | None


def _stated_area_unit(in_form: AreaUnit | None, in_query: AreaUnit | None) -> AreaUnit | None:
    """Return the unit stated as a form field or a query parameter; both, and different, is refused."""
    if in_form is not None and in_query is not None and in_form != in_query:
        problem = {"pointer": "area_unit", "reason": f"form says {in_form!r}, query says {in_query!r}"}
        raise InvalidInput("area_unit is given twice with different values", [problem])
    return in_form or in_query


def _column_map(text: str | None) -> dict[str, Any] | None:
    """Return the column mapping sent as JSON text (the service checks its keys and columns)."""
    if text is None or not text.strip():
        return None
    try:
        value = json.loads(text)
    except ValueError as error:
        raise InvalidInput("column_map is not JSON", [{"pointer": "column_map", "reason": str(error)}]) from error
    if not isinstance(value, dict):
        raise InvalidInput("column_map must be a JSON object", [{"pointer": "column_map"}])
    return value


@router.post("/projects/{project_id}/plot-imports", status_code=202)
def upload_plot_file(
    project_id: IdPath,
    file: Annotated[UploadFile, File(description="Zipped Shapefile, GeoPackage, KML, CSV with WKT, or GeoJSON.")],
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    celery: CeleryDep,
    settings: SettingsDep,
    repair: Annotated[bool, Form(description="Repair invalid polygons with make_valid and report it.")] = False,
    area_unit: Annotated[AreaUnit | None, Form(description=AREA_UNIT_HELP)] = None,
    column_map: Annotated[
        str | None,
        Form(
            max_length=10_000,
            description="JSON object: plot attribute (code, name, declared_area, species, planting_year, stand_age, "
            "land_use, county) → the file's column, or null for none. Default: guessed from the column names.",
        ),
    ] = None,
    area_unit_in_query: Annotated[
        AreaUnit | None, Query(alias="area_unit", description=AREA_UNIT_HELP + " Also accepted here.")
    ] = None,
) -> PlotImportOut:
    """Upload a plot file as a job; poll ``GET /api/v1/plot-imports/{id}`` for progress and the report.

    All of the file's plots are stored or none; the report lists every feature as accepted, repaired or
    refused with its reasons. Without a broker the job has finished when this returns.
    """
    # The multipart parser has spooled the file to disk; it is copied to storage piece by piece, never read whole.
    limits = ReadLimits(max_expanded_bytes=settings.max_expanded_bytes, max_features=settings.max_features_per_file)
    job = create_import(
        session,
        project_id,
        file.filename or "upload",
        file.file,
        repair=repair,
        actor=principal,
        clock=clock,
        limits=limits,
        area_unit=_stated_area_unit(area_unit, area_unit_in_query),
        max_bytes=settings.max_file_upload_bytes,
        column_map=_column_map(column_map),
    )
    queued = summary(job)
    task = enqueue_import(celery, job.id)
    return PlotImportOut.model_validate(task.result if task.result is not None else queued)


@router.get("/plot-imports/{import_id}")
def read_plot_import(
    import_id: IdPath,
    request: Request,
    session: SessionDep,
    principal: CurrentUser,
    clock: ClockDep,
    settings: SettingsDep,
) -> PlotImportOut:
    """Return an import job: status, progress, per-feature report and, once stored, the plot ids.

    A job with no sign of life for ``SHANHAI_IMPORT_STALE_SECONDS`` is ended ``failed`` first, so no
    job is seen running forever, with or without a scheduler.
    """
    job = get_import(session, import_id)
    own = job.project.organisation_id == principal.organisation_id
    if not own and principal.role not in (OrgKind.REGISTRY, OrgKind.AUDITOR):
        raise NotFound(f"plot import {import_id} does not exist")
    if job.status not in FINISHED:
        session.rollback()
        stale_after = timedelta(seconds=settings.import_stale_seconds)
        end_stale_imports(request.app.state.session_factory, clock=clock, stale_after=stale_after, ids=[import_id])
        session.expire_all()
    return PlotImportOut.model_validate(summary(get_import(session, import_id)))
