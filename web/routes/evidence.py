"""Evidence attachments on the desk: a project's and its reports' files (林权证 scans, field sheets, photos…).

The store, the type and size limits, the SHA-256 in the audit log and who may attach or read are the evidence
service's (``carbon.evidence``, ADR 037), the same the JSON API calls; this page lists a project's evidence and
its reports' with their hashes, attaches a file to the project or to one of its reports, and downloads a file
for a logged-in person (``Repr-Digest`` carries its SHA-256, as the API's download does).
"""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Request, UploadFile
from fastapi.responses import FileResponse, RedirectResponse
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from carbon.evidence import EvidenceStore, Upload, attach_evidence, evidence_file, get_evidence, list_evidence
from carbon.evidence_types import EXTENSIONS, VERIFIER_KINDS, EvidenceKind
from carbon.monitoring_records import list_reports
from core.auth import Principal
from core.errors import InvalidInput, NotFound
from core.settings import Settings
from web.i18n import N_
from web.pages import CSRF_FIELD, check_csrf, render
from web.routes.bureau import own_project

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
ProjectId = Annotated[int, Path(ge=1, le=2**31 - 1)]
KIND_LABELS = {
    EvidenceKind.FOREST_RIGHT_CERTIFICATE: N_("Forest-right certificate (林权证)"),
    EvidenceKind.LAND_USE_DOCUMENT: N_("Land-use document"),
    EvidenceKind.FIELD_SHEET: N_("Field sheet"),
    EvidenceKind.PHOTO: N_("Photo"),
    EvidenceKind.LAND_COVER_BEFORE: N_("Land cover before (GeoTIFF)"),
    EvidenceKind.LAND_COVER_AFTER: N_("Land cover after (GeoTIFF)"),
    EvidenceKind.VERIFICATION_REPORT: N_("Verification report"),
    EvidenceKind.OTHER: N_("Other"),
}


def store(settings: Settings) -> EvidenceStore:
    """Return the evidence store the settings configure (the one the API writes to)."""
    return EvidenceStore(settings.resolved_evidence_dir)


@router.get("/projects/{project_id}/evidence", response_class=HTMLResponse)
def page_project_evidence(request: Request, session: SessionDep, person: Person, project_id: ProjectId) -> HTMLResponse:
    """The project's evidence and its reports', and the form to attach more."""
    project = own_project(session, project_id, person)
    reports = list_reports(session, project.id)
    context = {
        "project": project,
        "attachments": list_evidence(session, project.id, actor=person),
        "by_report": [(r, list_evidence(session, project.id, actor=person, report_id=r.id)) for r in reports],
        "reports": [r for r in reports if r.status.value == "submitted"],
        "kinds": [k for k in EvidenceKind if k not in VERIFIER_KINDS],
        "kind_labels": KIND_LABELS,
        "attached": request.query_params.get("attached"),
    }
    return render(request, "evidence.html", context, principal=person)


@router.post("/projects/{project_id}/evidence")
def page_attach_evidence(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Person,
    project_id: ProjectId,
    file: Annotated[UploadFile, File()],
    kind: Annotated[str, Form(max_length=40)],
    csrf_token: Annotated[str, Form(alias=CSRF_FIELD, max_length=100)] = "",
    description: Annotated[str, Form(max_length=2000)] = "",
    report_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """Attach a file to the project (or one of its reports) through the evidence service; back to the list."""
    check_csrf(request, settings, csrf_token)
    project = own_project(session, project_id, person)
    try:
        chosen = EvidenceKind(kind)
    except ValueError as error:
        raise InvalidInput(f"unknown kind of evidence {kind!r}", [{"pointer": "/kind"}]) from error
    report = int(report_id) if report_id.isdigit() else None
    upload = Upload(file.filename or "evidence", file.file, chosen, description.strip())
    row = attach_evidence(session, project.id, upload, report_id=report, store=store(settings),
                          max_bytes=settings.max_attachment_bytes, actor=person, clock=clock)  # fmt: skip
    return RedirectResponse(f"/projects/{project.id}/evidence?attached={row.id}", status_code=303)


@router.get("/evidence/{attachment_id}")
def page_download_evidence(
    session: SessionDep, settings: SettingsDep, person: Person, attachment_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> FileResponse:
    """Download an attached file (its SHA-256 in ``Repr-Digest``), for whoever may read the project's evidence."""
    row = get_evidence(session, attachment_id, actor=person)
    path = evidence_file(store(settings), row)
    if not path.is_file():  # pragma: no cover - evidence_file refuses it already
        raise NotFound(f"attachment {attachment_id} does not exist")
    name = row.filename
    extensions = EXTENSIONS.get(row.media_type, ())
    if extensions and not name.lower().endswith(extensions):
        name += extensions[0]
    digest = base64.b64encode(bytes.fromhex(row.sha256)).decode("ascii")
    headers = {"Repr-Digest": f"sha-256=:{digest}:", "ETag": f'"{row.sha256}"', "Cache-Control": "private, no-store"}
    return FileResponse(path, media_type=row.media_type, filename=name, headers=headers)
