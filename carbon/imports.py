"""Service: plot files uploaded as jobs, processed by a task with progress, stored all or nothing.

``create_import`` streams the upload into the database in pieces of :data:`CHUNK_BYTES` (so any
worker, on any machine, can read it, and the API never holds more than one piece in memory) and
returns at once; ``run_import`` — called by a Celery task with the job id, so any worker can run it and
running it twice is harmless — streams the pieces back to a temporary file, reads it (the readers
enforce the feature and vertex limits while parsing), checks every feature (progress is committed as
it goes, each time a heartbeat), and registers all plots in one transaction with their audit entries.

Every job ends: ``succeeded``, or ``failed`` with a problem — the domain error's own for a refused
file, ``core/internal-error`` with a reference id that is also in the log for anything unexpected.
A job whose worker died (no heartbeat for ``stale_after``) is ended ``failed`` the same way by
:func:`end_stale_imports`. A finished job's bytes are dropped; nothing of a failed upload is stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import IO, Any

import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Select, delete, func, insert, or_, select
from sqlalchemy.orm import Session, sessionmaker

from carbon.models import ImportStatus, PlotImport, PlotImportChunk
from carbon.plots import check_may_upload, register_intake
from carbon.projects import get_project
from core import audit
from core.auth import Principal, User, principal_of
from core.clock import Clock
from core.db import session_scope
from core.errors import InternalError, InvalidInput, NotFound, PayloadTooLarge, ShanhaiError, UnreadableFile
from geodata.attributes import AREA_UNITS, AreaUnit, ColumnMap, check_column_map
from geodata.intake import Intake, intake_file
from geodata.readers import ReadLimits, check_container

FINISHED = (ImportStatus.SUCCEEDED, ImportStatus.FAILED)
#: The Celery name of the import task (``api.worker`` registers it under this name).
IMPORT_TASK = "shanhai.plots.import_file"
#: The most outlines a job keeps for its report's map (refused, conflicting or warned features).
MAX_OUTLINES = 5000
#: Size of one stored piece of an upload (bytes): the most of it the API or a worker holds in memory.
CHUNK_BYTES = 1024 * 1024
#: A job with no sign of life (claim, progress) for this long is ended ``failed``.
DEFAULT_STALE_AFTER = timedelta(minutes=30)
STALE_DETAIL = "the worker processing the import stopped without ending it; upload the file again"
logger = logging.getLogger(__name__)


def create_import(
    session: Session,
    project_id: int,
    filename: str,
    stream: IO[bytes],
    *,
    repair: bool,
    actor: Principal,
    clock: Clock,
    limits: ReadLimits | None = None,
    area_unit: AreaUnit | None = None,
    max_bytes: int | None = None,
    column_map: ColumnMap | None = None,
) -> PlotImport:
    """Record an uploaded plot file (a seekable stream) as a queued job of the project; the caller enqueues it.

    The container (archive rules, magic bytes) is checked here, so a corrupt or hostile file is refused
    at once and never queued. ``area_unit`` (mu or ha) is the unit of the declared-area column as the
    uploader states it; it overrides what the column's name says. ``column_map`` is the person's choice of
    column for each plot attribute (``geodata.attributes.MAPPABLE_KEYS``; ``None``: guessed from the names).
    The file is copied into the database piece by piece, hashed and counted on the way; over ``max_bytes`` it
    is refused and nothing is written.

    Raises:
        InvalidInput: The column mapping names an unknown attribute or maps a column twice.
    """
    project = get_project(session, project_id)
    check_may_upload(project, actor)
    checked_map: dict[str, str | None] | None = None
    if column_map is not None:
        try:
            checked_map = check_column_map(column_map)
        except ValueError as error:
            raise InvalidInput(str(error), [{"pointer": "/column_map", "reason": str(error)}]) from error
    file_format = check_container(stream, filename, limits)
    job = PlotImport(
        project_id=project.id,
        filename=filename[:255],
        file_format=file_format.value,
        size_bytes=0,
        sha256="",
        repair=repair,
        area_unit=area_unit,
        column_map=checked_map,
        status=ImportStatus.QUEUED,
        features_done=0,
        created_at=clock.now(),
        created_by_user_id=actor.user_id,
    )
    session.add(job)
    session.flush()
    digest, size = hashlib.sha256(), 0
    stream.seek(0)
    for seq, piece in enumerate(iter(lambda: stream.read(CHUNK_BYTES), b"")):
        size += len(piece)
        if max_bytes is not None and size > max_bytes:
            raise PayloadTooLarge(f"the file exceeds the limit of {max_bytes} bytes")
        digest.update(piece)
        session.execute(insert(PlotImportChunk).values(import_id=job.id, seq=seq, data=piece))
    job.size_bytes, job.sha256 = size, digest.hexdigest()
    audit.append(
        session,
        actor=actor.actor,
        action="plot_import.created",
        subject=f"plot_import:{job.id}",
        payload={
            "project": project.code,
            "filename": job.filename,
            "sha256": job.sha256,
            "size_bytes": job.size_bytes,
            **({"column_map": checked_map} if checked_map is not None else {}),
        },
        clock=clock,
    )
    session.commit()
    return job


def get_import(session: Session, import_id: int) -> PlotImport:
    """Return an import job or raise :class:`NotFound`."""
    job = session.get(PlotImport, import_id)
    if job is None:
        raise NotFound(f"plot import {import_id} does not exist")
    return job


def _set_progress(factory: sessionmaker[Session], import_id: int, done: int, total: int, clock: Clock) -> None:
    with session_scope(factory) as session:
        job = get_import(session, import_id)
        job.features_done, job.features_total = done, total
        job.heartbeat_at = clock.now()
        session.commit()


def _spool(factory: sessionmaker[Session], import_id: int, target: IO[bytes]) -> None:
    """Copy the job's stored pieces, in order, to ``target`` (one piece in memory at a time)."""
    with session_scope(factory) as session:
        count = session.scalar(select(func.count()).where(PlotImportChunk.import_id == import_id)) or 0
        if count == 0:
            raise UnreadableFile("the uploaded file of this job is no longer stored; upload it again")
        for seq in range(count):
            piece = session.scalar(
                select(PlotImportChunk.data).where(PlotImportChunk.import_id == import_id, PlotImportChunk.seq == seq)
            )
            if piece is None:
                raise UnreadableFile(f"piece {seq} of the uploaded file is missing; upload it again")
            target.write(piece)
    target.flush()
    target.seek(0)


def _drop_bytes(session: Session, import_id: int) -> None:
    session.execute(delete(PlotImportChunk).where(PlotImportChunk.import_id == import_id))


def _finish(
    factory: sessionmaker[Session], import_id: int, clock: Clock, error: ShanhaiError, intake: Intake | None
) -> None:
    """End a job ``failed`` with ``error`` as its problem (unless it has already ended)."""
    with session_scope(factory) as session:
        job = session.get(PlotImport, import_id, with_for_update=True)
        if job is None or job.status in FINISHED:
            return
        job.status = ImportStatus.FAILED
        job.error = {"slug": error.slug, "title": error.title, "detail": error.detail, **error.extensions()}
        job.report = intake.summary() if intake is not None else None
        job.outlines = report_outlines(intake, error.extensions()) if intake is not None else None
        job.finished_at = clock.now()
        _drop_bytes(session, import_id)
        audit.append(
            session,
            actor="system:worker",
            action="plot_import.failed",
            subject=f"plot_import:{job.id}",
            payload={"slug": error.slug, "detail": error.detail},
            clock=clock,
        )
        session.commit()


def _unexpected(import_id: int, error: BaseException) -> InternalError:
    """Log an unexpected failure with a fresh reference id and return the problem that carries it."""
    reference = uuid.uuid4().hex
    logger.error("plot import %s failed unexpectedly [reference %s]", import_id, reference, exc_info=error)
    return InternalError("the import failed on an unexpected error; it has been logged", reference)


Claimed = tuple[str, bool, AreaUnit | None, dict[str, str | None] | None]


def _claim(factory: sessionmaker[Session], import_id: int, clock: Clock) -> Claimed | None:
    """Mark the job running (with a heartbeat); ``None`` when it has already ended."""
    with session_scope(factory) as session:
        job = get_import(session, import_id)
        if job.status in FINISHED:
            return None
        job.status = ImportStatus.RUNNING
        job.heartbeat_at = clock.now()
        claimed = job.filename, job.repair, _area_unit(job.area_unit), job.column_map
        session.commit()
    return claimed


def _register(factory: sessionmaker[Session], import_id: int, intake: Intake, clock: Clock) -> None:
    with session_scope(factory) as session:
        job = session.get(PlotImport, import_id, with_for_update=True)
        if job is None or job.status is not ImportStatus.RUNNING:
            return  # ended meanwhile (e.g. declared stale): its outcome stands
        project = get_project(session, job.project_id)
        user = session.get(User, job.created_by_user_id)
        assert user is not None
        actor = principal_of(user, "import")
        check_may_upload(project, actor)
        plots = register_intake(session, project, intake, actor=actor, clock=clock, commit=False)
        job.status = ImportStatus.SUCCEEDED
        job.report = intake.summary()
        job.outlines = report_outlines(intake, {})
        job.plot_ids = [p.id for p in plots]
        job.features_done = job.features_total = len(intake.reports)
        job.finished_at = clock.now()
        _drop_bytes(session, import_id)
        audit.append(
            session,
            actor=actor.actor,
            action="plot_import.succeeded",
            subject=f"plot_import:{job.id}",
            payload={"plot_ids": job.plot_ids, "sha256": job.sha256},
            clock=clock,
        )
        session.commit()  # the plots, their audit entries and the job's outcome: one transaction


def run_import(factory: sessionmaker[Session], import_id: int, *, clock: Clock, limits: ReadLimits) -> dict[str, Any]:
    """Process a queued import job; idempotent (a finished job is returned as it is).

    The job always ends: any failure, expected or not, ends it ``failed`` with a problem.
    """
    claimed = _claim(factory, import_id, clock)
    if claimed is not None:
        filename, repair, area_unit, column_map = claimed
        intake: Intake | None = None
        try:
            with tempfile.TemporaryFile(prefix="shanhai-import-") as spool:
                _spool(factory, import_id, spool)
                intake = intake_file(
                    spool, filename, repair=repair, read_limits=limits, area_unit=area_unit, column_map=column_map,
                    progress=lambda done, total: _set_progress(factory, import_id, done, total, clock),
                )  # fmt: skip
            _register(factory, import_id, intake, clock)
        except ShanhaiError as error:
            _finish(factory, import_id, clock, error, intake)
        except Exception as error:  # whatever it was, the job ends and its trace is logged
            _finish(factory, import_id, clock, _unexpected(import_id, error), intake)
    with session_scope(factory) as session:
        return summary(get_import(session, import_id))


def end_stale_imports(
    factory: sessionmaker[Session],
    *,
    clock: Clock,
    stale_after: timedelta = DEFAULT_STALE_AFTER,
    ids: list[int] | None = None,
) -> list[int]:
    """End ``failed`` every unfinished job (of ``ids``, default all) silent for ``stale_after``; return their ids.

    A sign of life is the job's last heartbeat (claim or progress) or, while it is queued, its
    creation. Such a job's worker died or its task was lost: it ends with ``core/internal-error`` and
    a reference id that is in the log, and its bytes are dropped — the bureau uploads the file again.
    """
    cutoff = clock.now() - stale_after
    query = _stale_jobs(cutoff) if ids is None else _stale_jobs(cutoff).where(PlotImport.id.in_(ids))
    with session_scope(factory) as session:
        stale = list(session.scalars(query))
    ended: list[int] = []
    for import_id in stale:
        with session_scope(factory) as session:
            still = session.scalar(_stale_jobs(cutoff).where(PlotImport.id == import_id))
        if still is None:
            continue  # it showed a sign of life meanwhile
        reference = uuid.uuid4().hex
        logger.error("plot import %s silent since before %s: ended [reference %s]", import_id, cutoff, reference)
        _finish(factory, import_id, clock, InternalError(STALE_DETAIL, reference), None)
        ended.append(import_id)
    return ended


def _stale_jobs(cutoff: datetime) -> Select[int]:
    sign_of_life = func.coalesce(PlotImport.heartbeat_at, PlotImport.created_at)
    return select(PlotImport.id).where(
        or_(PlotImport.status == ImportStatus.QUEUED, PlotImport.status == ImportStatus.RUNNING),
        sign_of_life < cutoff,
    )


def report_outlines(intake: Intake, problem: Mapping[str, Any]) -> dict[str, Any]:
    """Return the outlines (GeoJSON, lon/lat) of the features a job's report speaks of, for its map.

    Features refused (with their geometry when they had one, as its boundary line when invalid), in a
    double-counting conflict or outside the region (by ``feature_index`` in the problem's ``conflicts``/``errors``),
    and warned ones, each with its index, code and what is said of it; at most :data:`MAX_OUTLINES`.
    """
    geometries: dict[int, BaseGeometry] = {f.index: f.geometry for f in intake.features}
    geometries.update(intake.refused_geometries)
    named: dict[int, str] = {r.index: "refused" for r in intake.refused}
    for item in problem.get("conflicts", []) or []:
        if isinstance(item.get("feature_index"), int):
            named.setdefault(item["feature_index"], "conflict")
            if isinstance(item.get("existing_feature_index"), int):
                named.setdefault(item["existing_feature_index"], "conflict")
    for item in problem.get("errors", []) or []:
        if isinstance(item.get("feature_index"), int):
            named.setdefault(item["feature_index"], "outside_region" if "lies_in" in item else "refused")
    for report in intake.reports:
        if report.warnings:
            named.setdefault(report.index, "warned")
    features = []
    codes = {r.index: r.plot_code for r in intake.reports}
    for index, role in sorted(named.items())[:MAX_OUTLINES]:
        geometry = geometries.get(index)
        if geometry is None:
            continue
        # An invalid outline (a bow-tie's lobes cancel out) is kept as its boundary line: maps drop such polygons.
        rounded = shapely.set_precision(geometry, 1e-7) if geometry.is_valid else geometry.boundary
        properties = {"feature_index": index, "plot_code": codes.get(index), "role": role}
        geojson = json.loads(shapely.to_geojson(rounded))
        features.append({"type": "Feature", "geometry": geojson, "properties": properties})
    return {"type": "FeatureCollection", "features": features}


def _area_unit(stored: str | None) -> AreaUnit | None:
    return next((unit for unit in AREA_UNITS if unit == stored), None)


def summary(job: PlotImport) -> dict[str, Any]:
    """Return the job as a JSON-ready mapping (never its bytes)."""
    return {
        "id": job.id,
        "project_id": job.project_id,
        "filename": job.filename,
        "format": job.file_format,
        "size_bytes": job.size_bytes,
        "sha256": job.sha256,
        "repair": job.repair,
        "area_unit": job.area_unit,
        "column_map": job.column_map,
        "status": job.status.value,
        "progress": {"done": job.features_done, "total": job.features_total},
        "plot_ids": job.plot_ids,
        "report": job.report,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
    }
