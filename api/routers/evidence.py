"""Evidence attachments of projects and monitoring reports: upload (multipart), list, read, download (ADR 037)."""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from pydantic import Field

from api.deps import ClockDep, CurrentUser, SessionDep, SettingsDep
from api.fields import Answer, InstantText
from api.pagination import Page, PageQuery, slice_of
from api.params import IdPath
from carbon.evidence import (
    EvidenceStore,
    Upload,
    attach_evidence,
    evidence_file,
    get_evidence,
    list_evidence,
    list_report_evidence,
)
from carbon.evidence_types import EXTENSIONS, EvidenceKind
from carbon.models import EvidenceAttachment
from carbon.monitoring_records import get_report
from core.settings import Settings

router = APIRouter(prefix="/api/v1", tags=["evidence"])
#: The path every upload route of this router ends with (the body-size limit knows them by it).
UPLOAD_SUFFIX = "/attachments"
KIND_HELP = (
    "What the file is evidence of: forest_right_certificate (林权证), land_use_document, field_sheet, photo, "
    "land_cover_before / land_cover_after (GeoTIFF), verification_report (verifiers only), other."
)
DESCRIPTION_HELP = "What the file shows (certificate number, sheet, where a photo was taken)."


class AttachmentOut(Answer):
    """An evidence attachment: what it is, its sniffed media type, size and SHA-256, who attached it when."""

    id: int
    project_id: int
    report_id: int | None
    kind: EvidenceKind
    filename: str
    media_type: str = Field(description="Sniffed from the content, not taken from the name or the client.")
    size_bytes: int
    sha256: str = Field(description="SHA-256 of the bytes (hex), also in the attachment's audit entry.")
    description: str
    details: dict[str, Any] = Field(description="What the format's reader found: pages, pixels, CRS and bounds…")
    organisation_id: int
    created_by_user_id: int
    created_at: InstantText
    links: dict[str, str]

    @classmethod
    def of(cls, row: EvidenceAttachment) -> AttachmentOut:
        """Return the answer for an attachment row."""
        return cls(
            id=row.id,
            project_id=row.project_id,
            report_id=row.report_id,
            kind=row.kind,
            filename=row.filename,
            media_type=row.media_type,
            size_bytes=row.size_bytes,
            sha256=row.sha256,
            description=row.description,
            details=row.details,
            organisation_id=row.organisation_id,
            created_by_user_id=row.created_by_user_id,
            created_at=row.created_at.isoformat(),
            links={"self": f"/api/v1/attachments/{row.id}", "content": f"/api/v1/attachments/{row.id}/content"},
        )


def store_of(settings: Settings) -> EvidenceStore:
    """Return the evidence store the settings configure."""
    return EvidenceStore(settings.resolved_evidence_dir)


Kind = Annotated[EvidenceKind, Form(description=KIND_HELP)]
Description = Annotated[str, Form(max_length=2000, pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
                                  description=DESCRIPTION_HELP)]  # fmt: skip
EvidenceFile = Annotated[UploadFile, File(description="PDF, JPEG, PNG, TIFF/GeoTIFF, XLSX or CSV (by kind).")]


@router.post(f"/projects/{{project_id}}{UPLOAD_SUFFIX}", status_code=201, name="upload_project_attachment")
def upload_project_attachment(
    project_id: IdPath,
    file: EvidenceFile,
    kind: Kind,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    description: Description = "",
) -> AttachmentOut:
    """Attach evidence to a project: a forest-right certificate, field sheets, photos, land-cover rasters.

    The type is sniffed from the content and must suit the kind; the file's SHA-256 goes into the audit log.
    """
    upload = Upload(file.filename or "evidence", file.file, kind, description)
    row = attach_evidence(session, project_id, upload, store=store_of(settings),
                          max_bytes=settings.max_attachment_bytes, actor=principal, clock=clock)  # fmt: skip
    return AttachmentOut.of(row)


@router.get("/projects/{project_id}/attachments", name="list_project_attachments")
def list_project_attachments(
    project_id: IdPath, session: SessionDep, principal: CurrentUser, request: Request, page: PageQuery
) -> Page[AttachmentOut]:
    """List the project's own evidence (its reports' evidence is listed on each report)."""
    rows, following = slice_of(request, list_evidence(session, project_id, actor=principal), page)
    return Page[AttachmentOut](items=[AttachmentOut.of(r) for r in rows], limit=page.limit, next=following)


@router.post(f"/monitoring-reports/{{report_id}}{UPLOAD_SUFFIX}", status_code=201, name="upload_report_attachment")
def upload_report_attachment(
    report_id: IdPath,
    file: EvidenceFile,
    kind: Kind,
    principal: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    description: Description = "",
) -> AttachmentOut:
    """Attach evidence to a monitoring report (the proponent while it awaits the verifier; the verifier's report)."""
    project_id = get_report(session, report_id).project_id
    upload = Upload(file.filename or "evidence", file.file, kind, description)
    row = attach_evidence(session, project_id, upload, report_id=report_id, store=store_of(settings),
                          max_bytes=settings.max_attachment_bytes, actor=principal, clock=clock)  # fmt: skip
    return AttachmentOut.of(row)


@router.get("/monitoring-reports/{report_id}/attachments", name="list_report_attachments")
def list_report_attachments(
    report_id: IdPath, session: SessionDep, principal: CurrentUser, request: Request, page: PageQuery
) -> Page[AttachmentOut]:
    """List a monitoring report's evidence."""
    rows, following = slice_of(request, list_report_evidence(session, report_id, actor=principal), page)
    return Page[AttachmentOut](items=[AttachmentOut.of(r) for r in rows], limit=page.limit, next=following)


@router.get("/attachments/{attachment_id}", name="read_attachment")
def read_attachment(attachment_id: IdPath, session: SessionDep, principal: CurrentUser) -> AttachmentOut:
    """Return one attachment's record."""
    return AttachmentOut.of(get_evidence(session, attachment_id, actor=principal))


@router.get(
    "/attachments/{attachment_id}/content",
    name="download_attachment",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file as it was attached."}},
)
def download_attachment(
    attachment_id: IdPath, session: SessionDep, principal: CurrentUser, settings: SettingsDep
) -> FileResponse:
    """Download the attached file; ``Repr-Digest`` carries its SHA-256 (RFC 9530) to check against the audit log."""
    row = get_evidence(session, attachment_id, actor=principal)
    path = evidence_file(store_of(settings), row)
    name = row.filename
    extensions = EXTENSIONS.get(row.media_type, ())
    if extensions and not name.lower().endswith(extensions):
        name += extensions[0]
    digest = base64.b64encode(bytes.fromhex(row.sha256)).decode("ascii")
    return FileResponse(
        path,
        media_type=row.media_type,
        filename=name,
        headers={"Repr-Digest": f"sha-256=:{digest}:", "ETag": f'"{row.sha256}"'},
    )
