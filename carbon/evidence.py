"""Service: evidence attached to projects and monitoring reports — checked, stored by SHA-256, audited, read.

An upload streams into a temporary file of the store while it is hashed and counted (over ``max_bytes`` it is
refused at once), its type is sniffed from its first bytes (:mod:`carbon.evidence_types`) and confirmed by
opening it with the format's reader (a PDF parser, an image decoder, the ZIP directory of a workbook, GDAL for
a georeferenced land-cover raster). Only then is the row written with its audit entry — whose payload holds the
file's SHA-256 — and the bytes moved to ``<root>/sha256/<first two hex>/<hex>`` in the same step: the same
content is stored once, however often it is attached. A refused or failed upload leaves no row and no file.

Who may attach: the project's own organisation (forestry bureau or forest owner) any kind but the verifier's
report, to the project unless it was rejected and to a report while it awaits the verifier; a verifier only
the verifier's report (``verification_report``), to a project or to a report not yet issued. Who may list and
download: the project's own organisation, verifiers, the registry and auditors; anyone else is told the
project or attachment does not exist, as for plot imports. Rows are only inserted (ADR 037).
"""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.evidence_types import (
    ALLOWED,
    CSV,
    HEAD_BYTES,
    JPEG,
    PDF,
    PNG,
    RASTER_KINDS,
    TIFF,
    VERIFIER_KINDS,
    XLSX,
    ZIP,
    EvidenceKind,
    sniff,
)
from carbon.models import EvidenceAttachment, MonitoringReport, Project, ProjectStatus, ReportStatus
from carbon.monitoring_records import get_report
from carbon.projects import get_project
from core import audit
from core.auth import OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, NotFound, PayloadTooLarge, PermissionDenied, UnreadableFile, UnsupportedMediaType
from geodata.rasters import open_raster

PIECE_BYTES = 1024 * 1024
PROPONENTS = frozenset({OrgKind.FORESTRY_BUREAU, OrgKind.FOREST_OWNER})
#: Roles that read every project's evidence (besides the project's own organisation).
READERS = frozenset({OrgKind.VERIFIER, OrgKind.REGISTRY, OrgKind.AUDITOR})


@dataclass(frozen=True)
class EvidenceStore:
    """The content-addressed directory of evidence files."""

    root: Path

    def path_of(self, sha256: str) -> Path:
        """Return where the content with this SHA-256 (lower-case hex) is kept."""
        return self.root / "sha256" / sha256[:2] / sha256

    def temporary(self) -> IO[bytes]:
        """Return a new temporary file inside the store (so that keeping it is a rename, never a copy)."""
        spool = self.root / "incoming"
        spool.mkdir(parents=True, exist_ok=True)
        return tempfile.NamedTemporaryFile(dir=spool, delete=False)  # kept or removed by the caller


@dataclass(frozen=True)
class Upload:
    """A file as the client sent it, and what the client says it is evidence of."""

    filename: str
    stream: IO[bytes]
    kind: EvidenceKind
    description: str = ""


def may_read(project: Project, actor: Principal) -> bool:
    """Return whether ``actor`` may list and download the project's evidence."""
    return actor.organisation_id == project.organisation_id or actor.role in READERS


def readable_project(session: Session, project_id: int, actor: Principal) -> Project:
    """Return the project if ``actor`` may read its evidence, else raise :class:`NotFound` (existence hidden)."""
    project = get_project(session, project_id)
    if not may_read(project, actor):
        raise NotFound(f"project {project_id} has no evidence visible to the caller")
    return project


def _check_may_attach(project: Project, report: MonitoringReport | None, kind: EvidenceKind, actor: Principal) -> None:
    if actor.role is OrgKind.VERIFIER:
        if kind not in VERIFIER_KINDS:
            raise PermissionDenied("a verifier attaches its verification report only (kind verification_report)")
        if report is not None and report.status is ReportStatus.ISSUED:
            raise Conflict(f"monitoring report {report.id} is issued; its evidence is closed")
        return
    if actor.role not in PROPONENTS or actor.organisation_id != project.organisation_id:
        raise PermissionDenied("evidence is attached by the project's own organisation, or a verifier's report")
    if kind in VERIFIER_KINDS:
        raise PermissionDenied("only a verifier attaches a verification report")
    if project.status is ProjectStatus.REJECTED:
        raise Conflict(f"project {project.code} was rejected; it takes no more evidence")
    if report is not None and report.status is not ReportStatus.SUBMITTED:
        raise Conflict(
            f"monitoring report {report.id} is {report.status.value}: the proponent's evidence closes when the "
            "verifier decides"
        )


def _spool(store: EvidenceStore, stream: IO[bytes], max_bytes: int) -> tuple[Path, str, int, bytes]:
    """Copy the stream into the store's spool; return the file, its SHA-256, its size and its first bytes."""
    digest, size, head = hashlib.sha256(), 0, b""
    with store.temporary() as spooled:
        path = Path(spooled.name)
        try:
            for piece in iter(lambda: stream.read(PIECE_BYTES), b""):
                size += len(piece)
                if size > max_bytes:
                    raise PayloadTooLarge(f"the file exceeds the attachment limit of {max_bytes} bytes")
                if len(head) < HEAD_BYTES:
                    head += piece[: HEAD_BYTES - len(head)]
                digest.update(piece)
                spooled.write(piece)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise UnreadableFile("the file is empty", [{"pointer": "/file", "reason": "no bytes"}])
    return path, digest.hexdigest(), size, head


def _unreadable(what: str, error: Exception | str) -> UnreadableFile:
    return UnreadableFile(f"not a readable {what}: {error}", [{"pointer": "/file", "reason": str(error)}])


def _inspect_raster(path: Path) -> dict[str, Any]:
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # refused below, with a reason
        return _describe_raster(path)


def _describe_raster(path: Path) -> dict[str, Any]:
    with open_raster(path) as dataset:
        if dataset.crs is None or dataset.transform.is_identity:
            raise _unreadable("land-cover raster", "a GeoTIFF with a coordinate reference system is required")
        return {
            "width": dataset.width,
            "height": dataset.height,
            "bands": dataset.count,
            "dtype": dataset.dtypes[0],
            "crs": dataset.crs.to_string(),
            "bounds": [round(v, 9) for v in dataset.bounds],
        }


def _inspect_image(path: Path) -> dict[str, Any]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            size = image.size
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise _unreadable("image", error) from error
    return {"width": size[0], "height": size[1]}


def _inspect_pdf(path: Path) -> dict[str, Any]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        return {"pages": len(PdfReader(path).pages)}
    except (PyPdfError, OSError, ValueError, KeyError) as error:
        raise _unreadable("PDF", error) from error


def _inspect_workbook(path: Path) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except zipfile.BadZipFile as error:
        raise _unreadable("workbook", error) from error
    if not {"[Content_Types].xml", "xl/workbook.xml"} <= names:
        raise UnsupportedMediaType("a ZIP archive that is not an XLSX workbook", media_type=ZIP, allowed=[XLSX])
    return {}


def _inspect_text(path: Path) -> dict[str, Any]:
    for encoding in ("utf-8", "gb18030"):
        decoder = codecs.getincrementaldecoder(encoding)()
        try:
            with path.open("rb") as file:
                for piece in iter(lambda: file.read(PIECE_BYTES), b""):
                    decoder.decode(piece)
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            continue
        return {"encoding": encoding}
    raise _unreadable("CSV", "the text is neither UTF-8 nor GB18030/GBK")


def inspect(path: Path, head: bytes, kind: EvidenceKind) -> tuple[str, dict[str, Any]]:
    """Return the file's media type and what its reader found; refuse a type the kind does not accept."""
    media_type = sniff(head)
    if media_type == ZIP:
        _inspect_workbook(path)
        media_type = XLSX
    allowed = ALLOWED[kind]
    if media_type not in allowed:
        found = media_type or "not a recognised file type"
        raise UnsupportedMediaType(
            f"{kind.value} takes {', '.join(sorted(allowed))}; the file's content is {found}",
            media_type=media_type,
            allowed=allowed,
        )
    if kind in RASTER_KINDS:
        return media_type, _inspect_raster(path)
    if media_type in (JPEG, PNG, TIFF):
        return media_type, _inspect_image(path)
    if media_type == PDF:
        return media_type, _inspect_pdf(path)
    if media_type == CSV:
        return media_type, _inspect_text(path)
    return media_type, {}


def attach_evidence(
    session: Session,
    project_id: int,
    upload: Upload,
    *,
    report_id: int | None = None,
    store: EvidenceStore,
    max_bytes: int,
    actor: Principal,
    clock: Clock,
) -> EvidenceAttachment:
    """Check, store and record one evidence file of a project (or of its report ``report_id``).

    Raises:
        NotFound: The project or report does not exist (or the report is another project's).
        PermissionDenied: The caller may not attach this kind here.
        Conflict: The project or report takes no more evidence, or this content is attached there already.
        PayloadTooLarge: The file is over ``max_bytes``.
        UnsupportedMediaType: The content is not a type the kind accepts.
        UnreadableFile: The content starts like an accepted type but does not read as one.
    """
    project = get_project(session, project_id)
    report = get_report(session, report_id) if report_id is not None else None
    if report is not None and report.project_id != project.id:
        raise NotFound(f"monitoring report {report_id} is not a report of project {project.code}")
    _check_may_attach(project, report, upload.kind, actor)
    path, sha256, size, head = _spool(store, upload.stream, max_bytes)
    kept = store.path_of(sha256)
    created = False
    try:
        media_type, details = inspect(path, head, upload.kind)
        _refuse_repeat(session, project.id, report_id, sha256)
        attachment = EvidenceAttachment(
            project_id=project.id,
            report_id=report_id,
            kind=upload.kind,
            filename=Path(upload.filename or "evidence").name[:255] or "evidence",
            media_type=media_type,
            size_bytes=size,
            sha256=sha256,
            description=upload.description,
            details=details,
            organisation_id=actor.organisation_id,
            created_by_user_id=actor.user_id,
            created_at=clock.now(),
        )
        session.add(attachment)
        session.flush()
        audit.append(session, actor=actor.actor, action="evidence.attached", subject=f"evidence:{attachment.id}",
                     payload=_audit_payload(project, attachment), clock=clock)  # fmt: skip
        if not kept.exists():
            kept.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, kept)
            created = True
        session.commit()
    except BaseException:
        session.rollback()
        if created:
            kept.unlink(missing_ok=True)
        raise
    finally:
        path.unlink(missing_ok=True)
    return attachment


def _refuse_repeat(session: Session, project_id: int, report_id: int | None, sha256: str) -> None:
    same = select(EvidenceAttachment.id).where(
        EvidenceAttachment.project_id == project_id,
        EvidenceAttachment.sha256 == sha256,
        EvidenceAttachment.report_id.is_(None) if report_id is None else EvidenceAttachment.report_id == report_id,
    )
    existing = session.scalars(same).first()
    if existing is not None:
        raise Conflict(f"this file is already attached here as attachment {existing}")


def _audit_payload(project: Project, attachment: EvidenceAttachment) -> dict[str, Any]:
    return {
        "project": project.code,
        "report_id": attachment.report_id,
        "kind": attachment.kind.value,
        "filename": attachment.filename,
        "media_type": attachment.media_type,
        "size_bytes": attachment.size_bytes,
        "sha256": attachment.sha256,
        "description": attachment.description,
    }


def list_evidence(
    session: Session, project_id: int, *, actor: Principal, report_id: int | None = None
) -> list[EvidenceAttachment]:
    """Return the attachments of a project (its own, without its reports'), or of one of its reports."""
    readable_project(session, project_id, actor)
    query = select(EvidenceAttachment).where(EvidenceAttachment.project_id == project_id)
    if report_id is None:
        query = query.where(EvidenceAttachment.report_id.is_(None))
    else:
        query = query.where(EvidenceAttachment.report_id == report_id)
    return list(session.scalars(query.order_by(EvidenceAttachment.id)))


def list_report_evidence(session: Session, report_id: int, *, actor: Principal) -> list[EvidenceAttachment]:
    """Return the attachments of a monitoring report."""
    report = get_report(session, report_id)
    return list_evidence(session, report.project_id, actor=actor, report_id=report.id)


def get_evidence(session: Session, attachment_id: int, *, actor: Principal) -> EvidenceAttachment:
    """Return an attachment the actor may read, else raise :class:`NotFound`."""
    attachment = session.get(EvidenceAttachment, attachment_id)
    if attachment is None or not may_read(attachment.project, actor):
        raise NotFound(f"attachment {attachment_id} does not exist")
    return attachment


def evidence_file(store: EvidenceStore, attachment: EvidenceAttachment) -> Path:
    """Return the stored file of an attachment; a missing or altered file is refused, never served."""
    path = store.path_of(attachment.sha256)
    if not path.is_file() or path.stat().st_size != attachment.size_bytes:
        raise NotFound(f"the stored file of attachment {attachment.id} is missing; restore the evidence store")
    return path
