"""Service: plot files uploaded as jobs, processed by a task with progress, stored all or nothing.

``create_import`` records the upload (and its bytes) and returns at once; ``run_import`` — called by a
Celery task with the job id, so any worker can run it and running it twice is harmless — reads the
file, checks every feature (progress is committed as it goes), and registers all plots in one
transaction with their audit entries. A refused upload ends ``failed`` with the problem and the
per-feature report; nothing of it is stored.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from carbon.models import ImportStatus, PlotImport
from carbon.plots import check_may_upload, register_intake
from carbon.projects import get_project
from core import audit
from core.auth import Principal, User, principal_of
from core.clock import Clock
from core.db import session_scope
from core.errors import NotFound, ShanhaiError
from geodata.attributes import AREA_UNITS, AreaUnit
from geodata.intake import Intake, intake_file
from geodata.readers import ReadLimits, check_container

FINISHED = (ImportStatus.SUCCEEDED, ImportStatus.FAILED)


def create_import(
    session: Session,
    project_id: int,
    filename: str,
    data: bytes,
    *,
    repair: bool,
    actor: Principal,
    clock: Clock,
    limits: ReadLimits | None = None,
    area_unit: AreaUnit | None = None,
) -> PlotImport:
    """Record an uploaded plot file as a queued job of the project (the caller then enqueues it).

    The container (archive rules, magic bytes) is checked here, so a corrupt or hostile file is refused
    at once and never queued. ``area_unit`` (mu or ha) is the unit of the declared-area column as the
    uploader states it; it overrides what the column's name says.
    """
    project = get_project(session, project_id)
    check_may_upload(project, actor)
    file_format = check_container(data, filename, limits)
    job = PlotImport(
        project_id=project.id,
        filename=filename[:255],
        file_format=file_format.value,
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        content=data,
        repair=repair,
        area_unit=area_unit,
        status=ImportStatus.QUEUED,
        features_done=0,
        created_at=clock.now(),
        created_by_user_id=actor.user_id,
    )
    session.add(job)
    session.flush()
    audit.append(
        session,
        actor=actor.actor,
        action="plot_import.created",
        subject=f"plot_import:{job.id}",
        payload={"project": project.code, "filename": job.filename, "sha256": job.sha256, "size_bytes": job.size_bytes},
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


def _set_progress(factory: sessionmaker[Session], import_id: int, done: int, total: int) -> None:
    with session_scope(factory) as session:
        job = get_import(session, import_id)
        job.features_done, job.features_total = done, total
        session.commit()


def _finish(
    factory: sessionmaker[Session], import_id: int, clock: Clock, error: ShanhaiError, intake: Intake | None
) -> None:
    with session_scope(factory) as session:
        job = get_import(session, import_id)
        job.status = ImportStatus.FAILED
        job.error = {"slug": error.slug, "title": error.title, "detail": error.detail, **error.extensions()}
        job.report = intake.summary() if intake is not None else None
        job.content = None
        job.finished_at = clock.now()
        audit.append(
            session,
            actor="system:worker",
            action="plot_import.failed",
            subject=f"plot_import:{job.id}",
            payload={"slug": error.slug, "detail": error.detail},
            clock=clock,
        )
        session.commit()


def run_import(factory: sessionmaker[Session], import_id: int, *, clock: Clock, limits: ReadLimits) -> dict[str, Any]:
    """Process a queued import job; idempotent (a finished job is returned as it is)."""
    with session_scope(factory) as session:
        job = get_import(session, import_id)
        if job.status in FINISHED or job.content is None:
            return summary(job)
        job.status = ImportStatus.RUNNING
        data, filename, repair = job.content, job.filename, job.repair
        area_unit = _area_unit(job.area_unit)
        session.commit()
    intake: Intake | None = None
    try:
        intake = intake_file(
            data, filename, repair=repair, read_limits=limits, area_unit=area_unit,
            progress=lambda done, total: _set_progress(factory, import_id, done, total),
        )  # fmt: skip
        with session_scope(factory) as session:
            job = get_import(session, import_id)
            project = get_project(session, job.project_id)
            user = session.get(User, job.created_by_user_id)
            assert user is not None
            actor = principal_of(user, "import")
            check_may_upload(project, actor)
            plots = register_intake(session, project, intake, actor=actor, clock=clock, commit=False)
            job.status = ImportStatus.SUCCEEDED
            job.report = intake.summary()
            job.plot_ids = [p.id for p in plots]
            job.features_done = job.features_total = len(intake.reports)
            job.content = None
            job.finished_at = clock.now()
            audit.append(
                session,
                actor=actor.actor,
                action="plot_import.succeeded",
                subject=f"plot_import:{job.id}",
                payload={"plot_ids": job.plot_ids, "sha256": job.sha256},
                clock=clock,
            )
            session.commit()  # the plots, their audit entries and the job's outcome: one transaction
    except ShanhaiError as error:
        _finish(factory, import_id, clock, error, intake)
    with session_scope(factory) as session:
        return summary(get_import(session, import_id))


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
        "status": job.status.value,
        "progress": {"done": job.features_done, "total": job.features_total},
        "plot_ids": job.plot_ids,
        "report": job.report,
        "error": job.error,
        "created_at": job.created_at.isoformat(),
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
    }
