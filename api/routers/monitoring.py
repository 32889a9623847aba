"""Methodologies with their cited parameter sets, and monitoring reports (preview, file, read, trace, sheet)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import HTMLResponse
from pydantic import Field

from api.deps import ClockDep, CurrentUser, SessionDep, SettingsDep
from api.fields import Answer, HashScheme
from api.pagination import Page, PageQuery, slice_of
from api.params import IdPath
from api.schemas import MonitoringReportOut
from api.sheets import calculation_sheet
from carbon.methods.base import Methodology
from carbon.monitoring import FileReport, ReportRequest, file_report, preview
from carbon.monitoring_adapters import ADAPTERS
from carbon.monitoring_records import REGISTRY, get_report, lifecycle_warnings, list_reports
from carbon.parameters.loader import available_parameter_sets, load_parameter_set
from carbon.projects import get_project

router = APIRouter(prefix="/api/v1", tags=["monitoring"])

REPORT_EXAMPLE = {
    "methodology_id": "FJ-FORESTRY-CARBON-TICKET",
    "methodology_version": "1",
    "period_start": "2026-01-01",
    "period_end": "2026-12-31",
    "plot_ids": [1],
    "inputs": {
        "sub_compartments": [
            {
                "sub_compartment_id": "NX-JY-HC-001",
                "area_m2": "1000000",
                "species": "pinus",
                "start": {"stock_volume_m3_per_ha": "9.0"},
                "end": {"stock_volume_m3_per_ha": "12.5"},
            }
        ],
        "relative_uncertainty": "0.08",
    },
}


class ParameterSetOut(Answer):
    """A cited parameter set of a methodology (with every parameter and table when one methodology is read)."""

    id: str
    version: str
    provisional: bool
    provisional_reason: str | None
    sha256: str
    hash_scheme: HashScheme = Field(
        default="shanhai-json/1", description="The canonicalization of sha256 (absent from older references)."
    )
    title: str
    default: bool
    parameters: dict[str, dict[str, Any]] | None = Field(
        default=None, description="Each parameter: value, unit, valid-from, citation, note."
    )
    tables: dict[str, dict[str, Any]] | None = Field(default=None, description="Each lookup table with its rows.")


class MethodologyOut(Answer):
    """A registered methodology and its parameter sets."""

    id: str
    version: str
    title: str
    credit_class: str
    monitoring_reports: bool
    raster_route: bool
    parameter_sets: list[ParameterSetOut]
    links: dict[str, str]


class ReportPreview(Answer):
    """A report computed as filing would compute it; nothing is stored."""

    record_sha256: str
    provisional: bool
    result: dict[str, str] = Field(description="Every headline quantity (unit in its name) as an exact decimal.")
    warnings: list[dict[str, Any]]
    inputs: dict[str, Any]
    record: dict[str, Any] = Field(description="The calculation record: inputs, cited parameters, every step.")


class ReportTrace(Answer):
    """A filed report's stored record and its SHA-256: what ``shanhai carbon compute FILE`` recomputes offline."""

    report_id: int
    project_code: str
    record_sha256: str
    inputs: dict[str, Any]
    record: dict[str, Any]


def _parameter_sets(methodology: Methodology[Any], *, cited: bool) -> list[dict[str, Any]]:
    set_id, default_version = methodology.default_parameter_set
    sets = []
    for found_id, version in available_parameter_sets():
        if found_id != set_id:
            continue
        parameter_set = load_parameter_set(found_id, version)
        entry: dict[str, Any] = {
            **parameter_set.ref,
            "title": parameter_set.title,
            "default": version == default_version,
        }
        if cited:
            entry["parameters"] = {k: p.cited() | {"note": p.note} for k, p in parameter_set.parameters.items()}
            entry["tables"] = {k: t.model_dump(mode="json") for k, t in parameter_set.tables.items()}
        sets.append(entry)
    return sets


def _methodology_out(methodology: Methodology[Any], *, cited: bool) -> MethodologyOut:
    return MethodologyOut.model_validate({
        "id": methodology.id,
        "version": methodology.version,
        "title": methodology.title,
        "credit_class": methodology.credit_class,
        "monitoring_reports": methodology.id in ADAPTERS,
        "raster_route": methodology.id in ADAPTERS and ADAPTERS[methodology.id].raster_route,
        "parameter_sets": _parameter_sets(methodology, cited=cited),
        "links": {"self": f"/api/v1/methodologies/{methodology.id}/{methodology.version}"},
    })  # fmt: skip


@router.get("/methodologies")
def list_methodologies(_principal: CurrentUser, request: Request, page: PageQuery) -> Page[MethodologyOut]:
    """List the registered methodologies and their parameter sets (id, version, provisional label, hash)."""
    keys, following = slice_of(request, list(REGISTRY.keys()), page)
    items = [_methodology_out(REGISTRY.get(*key), cited=False) for key in keys]
    return Page[MethodologyOut](items=items, limit=page.limit, next=following)


@router.get("/methodologies/{methodology_id}/{version}")
def read_methodology(methodology_id: str, version: str, _principal: CurrentUser) -> MethodologyOut:
    """Return one methodology with every parameter of its sets: value, unit, valid-from, citation, confirmation."""
    return _methodology_out(REGISTRY.get(methodology_id, version), cited=True)


@router.post("/projects/{project_id}/monitoring-reports/preview")
def preview_monitoring_report(
    project_id: IdPath,
    body: Annotated[ReportRequest, Body(examples=[REPORT_EXAMPLE])],
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> ReportPreview:
    """Compute a report exactly as filing would, and store nothing."""
    computed = preview(session, project_id, body, actor=principal, raster_dir=settings.raster_dir)
    return ReportPreview.model_validate({
        "record_sha256": computed.result.sha256,
        "provisional": computed.result.provisional,
        "result": {k: str(v) for k, v in computed.result.quantities.items()},
        "warnings": [
            *(w.as_dict() for w in computed.result.warnings),
            *lifecycle_warnings(get_project(session, project_id)),
        ],
        "inputs": computed.inputs,
        "record": computed.record,
    })  # fmt: skip


@router.post("/projects/{project_id}/monitoring-reports", status_code=201)
def file_monitoring_report(
    project_id: IdPath,
    body: Annotated[ReportRequest, Body(examples=[REPORT_EXAMPLE])],
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> MonitoringReportOut:
    """File a monitoring report for plots of the caller's own project: computed, stored with its trace and hash."""
    cmd = FileReport(project_id=project_id, **body.model_dump())
    report = file_report(session, cmd, actor=principal, clock=clock, raster_dir=settings.raster_dir)
    return MonitoringReportOut.of(report)


@router.get("/projects/{project_id}/monitoring-reports")
def list_monitoring_reports(
    project_id: IdPath, session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[MonitoringReportOut]:
    """List a project's monitoring reports in filing order."""
    reports, following = slice_of(request, list_reports(session, project_id), page)
    return Page[MonitoringReportOut](
        items=[MonitoringReportOut.of(r) for r in reports], limit=page.limit, next=following
    )


@router.get("/monitoring-reports/{report_id}")
def read_monitoring_report(report_id: IdPath, session: SessionDep, _principal: CurrentUser) -> MonitoringReportOut:
    """Return one monitoring report."""
    return MonitoringReportOut.of(get_report(session, report_id))


@router.get("/monitoring-reports/{report_id}/trace")
def read_monitoring_report_trace(report_id: IdPath, session: SessionDep, _principal: CurrentUser) -> ReportTrace:
    """Return the stored record (inputs, parameters with citations, every step) and its SHA-256.

    The response is what ``shanhai carbon compute FILE`` recomputes offline.
    """
    report = get_report(session, report_id)
    return ReportTrace(
        report_id=report.id,
        project_code=report.project.code,
        record_sha256=report.record_sha256,
        inputs=report.inputs,
        record=report.record,
    )


@router.get("/monitoring-reports/{report_id}/sheet", response_class=HTMLResponse)
def read_monitoring_report_sheet(report_id: IdPath, session: SessionDep, _principal: CurrentUser) -> HTMLResponse:
    """Return the human-readable calculation sheet (HTML): every step, variable, unit, citation, label and hash."""
    return HTMLResponse(calculation_sheet(get_report(session, report_id)))
