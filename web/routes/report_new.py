"""Filing a monitoring report from the 小班 table: pick a methodology, upload the table or fill rows, preview, file.

The table layouts and their reading are ``carbon.report_tables``; preview and filing are the API's services
(``carbon.monitoring.preview`` and ``file_report``), so the page computes exactly what the API would and files
the same record. A problem (a row's missing value, a period outside the crediting period, double filing…) is
shown beside the form, by row and column where it has one; nothing is stored until "File" succeeds, which opens
the report's calculation sheet.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from carbon.models import Plot, Project
from carbon.monitoring import FileReport, ReportRequest, file_report, preview
from carbon.report_tables import M2_PER_MU, TABLES, TableSpec, read_table, template_csv, template_rows, template_xlsx
from core.auth import Principal
from core.errors import Conflict, InvalidInput, NotFound, ShanhaiError, validation_problems
from web.pages import check_csrf, render
from web.routes.bureau import own_project

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
ProjectId = Annotated[int, Path(ge=1, le=2**31 - 1)]
#: Rows of the fill-in grid (pre-filled with the project's plots, first ones first).
GRID_ROWS = 30


def _spec(methodology: str | None) -> TableSpec:
    spec = TABLES.get(methodology or "")
    if spec is None:
        raise NotFound(f"no table layout for methodology {methodology!r}")
    return spec


def _plots(session: Session, project: Project, limit: int | None = None) -> list[tuple[str, Decimal]]:
    query = select(Plot.plot_code, Plot.area_m2).where(Plot.project_id == project.id).order_by(Plot.id)
    rows = session.execute(query.limit(limit) if limit else query).all()
    return [(code, Decimal(str(area)) / M2_PER_MU) for code, area in rows if code]  # m² ÷ m²/亩 = 亩


def _form_context(session: Session, project: Project, spec: TableSpec, values: dict[str, Any]) -> dict[str, Any]:
    return {"project": project, "spec": spec, "tables": TABLES, "values": values,
            "grid": template_rows(spec, _plots(session, project, GRID_ROWS))[1:],
            "problems": values.get("problems", []), "error": values.get("error")}  # fmt: skip


@router.get("/projects/{project_id}/reports/new", response_class=HTMLResponse)
def page_report_new(
    request: Request, session: SessionDep, person: Person, project_id: ProjectId, methodology: str | None = None
) -> HTMLResponse:
    """The form: methodology, period, the table (a file or rows), preview and file."""
    project = own_project(session, project_id, person)
    spec = _spec(methodology or next(iter(TABLES)))
    values = {"period_start": project.crediting_start.isoformat(), "period_end": "", "relative_uncertainty": ""}
    return render(request, "report_new.html", _form_context(session, project, spec, values), principal=person)


@router.get("/projects/{project_id}/reports/template/{methodology}.{kind}")
def page_report_template(
    session: SessionDep, person: Person, project_id: ProjectId, methodology: str, kind: Literal["csv", "xlsx"]
) -> Response:
    """The methodology's table as a template, one row per plot of the project (code and area pre-filled)."""
    project = own_project(session, project_id, person)
    spec = _spec(methodology)
    rows = template_rows(spec, _plots(session, project))
    name = f"{project.code}-{spec.methodology_id}.{kind}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if kind == "csv":
        return Response(template_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(template_xlsx(spec, rows), media_type=media, headers=headers)


def _grid_rows(spec: TableSpec, form: FormData) -> list[dict[str, str]]:
    rows = []
    for index in range(1000):
        if f"r{index}_{spec.columns[0].key}" not in form:
            break
        row = {c.key: str(form.get(f"r{index}_{c.key}") or "") for c in spec.columns}
        if any(v.strip() for v in row.values()):
            rows.append(row)
    return rows


def _request_of(session: Session, project: Project, spec: TableSpec, form: FormData) -> ReportRequest:
    """Build the report request from the form: the table (file, else rows), the period and report-level values."""
    upload = form.get("table")
    if isinstance(upload, UploadFile) and upload.filename:
        rows = read_table(spec, upload.file, upload.filename)
    else:
        rows = _grid_rows(spec, form)
    report = {key: str(form.get(key) or "") for key in spec.report_fields}
    inputs = spec.inputs(rows, report)
    codes = [str(u[spec.columns[0].key]) for u in inputs[spec.units_field]]
    plots = dict(
        session.execute(
            select(Plot.plot_code, Plot.id).where(Plot.project_id == project.id, Plot.plot_code.in_(codes))
        ).all()
    )
    unknown = [code for code in codes if code not in plots]
    if unknown:
        raise InvalidInput(
            f"no plot of project {project.code} has the code {', '.join(unknown[:20])}",
            [
                {"pointer": f"/rows/{codes.index(c) + 2}/{spec.columns[0].key}", "reason": "no such plot"}
                for c in unknown
            ],
        )
    try:
        return ReportRequest(
            methodology_id=spec.methodology_id, methodology_version=spec.methodology_version,
            period_start=date.fromisoformat(str(form.get("period_start") or "")),
            period_end=date.fromisoformat(str(form.get("period_end") or "")),
            plot_ids=sorted(set(plots.values())), inputs=inputs,
        )  # fmt: skip
    except ValidationError as error:
        raise InvalidInput("the period is not valid", validation_problems(error.errors())) from error
    except ValueError as error:
        raise InvalidInput("give the monitoring period as two dates", [{"pointer": "/period_start"}]) from error


def _status(error: ShanhaiError) -> int:
    return 409 if isinstance(error, Conflict) else 404 if isinstance(error, NotFound) else 422


def _values(form: FormData) -> dict[str, Any]:
    return {k: str(v) for k, v in form.items() if isinstance(v, str)}


async def _form(request: Request, settings: Any) -> FormData:
    form = await request.form(max_files=2, max_fields=20_000)
    check_csrf(request, settings, str(form.get("csrf_token") or ""))
    return form


@router.post("/projects/{project_id}/reports/preview", response_class=HTMLResponse)
async def page_report_preview(
    request: Request, session: SessionDep, settings: SettingsDep, person: Person, project_id: ProjectId
) -> HTMLResponse:
    """Compute the report as it would be filed (nothing stored) and show its calculation sheet."""
    form = await _form(request, settings)

    def compute() -> dict[str, Any]:
        # The request's own session: on SQLite a second one would wait for its write lock.
        project = own_project(session, project_id, person)
        spec = _spec(str(form.get("methodology") or ""))
        try:
            built = _request_of(session, project, spec, form)
            computed = preview(session, project.id, built, actor=person,
                               raster_dir=request.app.state.settings.raster_dir)  # fmt: skip
        except ShanhaiError as error:
            return {"error": error, "problems": getattr(error, "problems", []), "spec": spec}
        return {"record": computed.record, "plots": len(built.plot_ids), "spec": spec}

    try:
        context = await run_in_threadpool(compute)
    finally:
        await form.close()
    return render(request, "_report_preview.html", context, principal=person)


@router.post("/projects/{project_id}/reports")
async def page_report_file(request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep,
                           person: Person, project_id: ProjectId) -> Response:  # fmt: skip
    """File the report (the API's service); open its calculation sheet, or show the form again with the problems."""
    form = await _form(request, settings)

    def file() -> Response:
        # The request's own session (see above).
        project = own_project(session, project_id, person)
        spec = _spec(str(form.get("methodology") or ""))
        try:
            built = _request_of(session, project, spec, form)
            command = FileReport(project_id=project.id, **built.model_dump())
            report = file_report(session, command, actor=person, clock=clock,
                                 raster_dir=request.app.state.settings.raster_dir)  # fmt: skip
        except ShanhaiError as error:
            session.rollback()
            values = {**_values(form), "error": error, "problems": getattr(error, "problems", [])}
            context = _form_context(session, project, spec, values)
            return render(request, "report_new.html", context, principal=person, status_code=_status(error))
        target = f"/reports/{report.id}/sheet"
        if request.headers.get("HX-Request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    try:
        return await run_in_threadpool(file)
    finally:
        await form.close()
