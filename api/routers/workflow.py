"""Lifecycle steps of projects and monitoring reports (validation, registration, verification, issuance)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy import select

from api.deps import ClockDep, CurrentUser, SessionDep
from api.fields import Answer, InstantText
from api.pagination import Page, PageQuery, slice_of
from api.params import IdPath
from carbon.ledger import Batch
from carbon.models import ProjectStatus, ReportStatus
from carbon.workflow import StepRequest, project_step, report_step, step_out, steps_of

router = APIRouter(prefix="/api/v1", tags=["workflow"])


class Step(Answer):
    """One lifecycle step: who moved the object from which status to which, when, with what comment."""

    step: str
    from_: str | None = Field(alias="from")
    to: str
    user_id: int | None
    organisation_id: int | None
    comment: str | None
    evidence: list[dict[str, Any]] = Field(description="What the step rests on (references, hashes), as recorded.")
    at: InstantText


class ProjectWorkflow(Answer):
    """A project's status after a step, and its steps so far."""

    project_id: int
    status: ProjectStatus
    steps: list[Step]


class ReportWorkflow(Answer):
    """A monitoring report's status after a step, its batch once issued, and its steps so far."""

    report_id: int
    status: ReportStatus
    batch_id: int | None
    steps: list[Step]


def _project_out(session: Any, project_id: int, status: str) -> ProjectWorkflow:
    return ProjectWorkflow.model_validate(
        {
            "project_id": project_id,
            "status": status,
            "steps": [step_out(s) for s in steps_of(session, "project", project_id)],
        }
    )


def _report_out(session: Any, report_id: int, status: str) -> ReportWorkflow:
    batch = session.scalars(select(Batch).where(Batch.source == f"monitoring_report:{report_id}")).first()
    return ReportWorkflow.model_validate(
        {
            "report_id": report_id,
            "status": status,
            "batch_id": batch.id if batch else None,
            "steps": [step_out(s) for s in steps_of(session, "monitoring_report", report_id)],
        }
    )


@router.post("/projects/{project_id}/submit")
def submit_project(
    project_id: IdPath, body: StepRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> ProjectWorkflow:
    """The proponent submits its project (from draft, or again after a rejection)."""
    project = project_step(session, project_id, "submit", body, actor=principal, clock=clock)
    return _project_out(session, project.id, project.status.value)


@router.post("/projects/{project_id}/validate")
def validate_project(
    project_id: IdPath, body: StepRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> ProjectWorkflow:
    """A verifier organisation (never the proponent's) validates a submitted project."""
    project = project_step(session, project_id, "validate", body, actor=principal, clock=clock)
    return _project_out(session, project.id, project.status.value)


@router.post("/projects/{project_id}/register")
def register_project(
    project_id: IdPath, body: StepRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> ProjectWorkflow:
    """The registry registers a validated project."""
    project = project_step(session, project_id, "register", body, actor=principal, clock=clock)
    return _project_out(session, project.id, project.status.value)


@router.post("/projects/{project_id}/reject")
def reject_project(
    project_id: IdPath, body: StepRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> ProjectWorkflow:
    """A verifier or the registry rejects a project with a reason; the proponent may resubmit."""
    project = project_step(session, project_id, "reject", body, actor=principal, clock=clock)
    return _project_out(session, project.id, project.status.value)


@router.get("/projects/{project_id}/workflow")
def read_project_workflow(
    project_id: IdPath, session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[Step]:
    """The project's lifecycle steps with comments and evidence."""
    steps, following = slice_of(request, steps_of(session, "project", project_id), page)
    return Page[Step](items=[Step.model_validate(step_out(s)) for s in steps], limit=page.limit, next=following)


@router.post("/monitoring-reports/{report_id}/verify")
def verify_monitoring_report(
    report_id: IdPath, body: StepRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> ReportWorkflow:
    """A verifier organisation (never the proponent's) verifies a submitted report."""
    report = report_step(session, report_id, "verify", body, actor=principal, clock=clock)
    return _report_out(session, report.id, report.status.value)


@router.post("/monitoring-reports/{report_id}/reject")
def reject_monitoring_report(
    report_id: IdPath, body: StepRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> ReportWorkflow:
    """A verifier rejects a submitted report with a reason."""
    report = report_step(session, report_id, "reject", body, actor=principal, clock=clock)
    return _report_out(session, report.id, report.status.value)


@router.post("/monitoring-reports/{report_id}/issue")
def issue_monitoring_report(
    report_id: IdPath, body: StepRequest, session: SessionDep, principal: CurrentUser, clock: ClockDep
) -> ReportWorkflow:
    """The registry issues a verified report's whole tonnes as a serialised batch (buffer share to the pool)."""
    report = report_step(session, report_id, "issue", body, actor=principal, clock=clock)
    return _report_out(session, report.id, report.status.value)


@router.get("/monitoring-reports/{report_id}/workflow")
def read_report_workflow(
    report_id: IdPath, session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[Step]:
    """The report's lifecycle steps with comments and evidence."""
    steps, following = slice_of(request, steps_of(session, "monitoring_report", report_id), page)
    return Page[Step](items=[Step.model_validate(step_out(s)) for s in steps], limit=page.limit, next=following)
