"""Service: the lifecycles of projects and monitoring reports, with separation of duties.

Projects: draft → submitted (proponent) → validated (a verifier organisation) → registered (the registry);
rejected with a reason (verifier or registry) goes back to the proponent, who may resubmit.

Monitoring reports: submitted → verified or rejected (a verifier organisation) → issued (the registry),
which issues the batch (``carbon.ledger.issuance.issue``) in the same unit of work (ADR 031).

Rules, each named in the refusal:

* the verifier is never the proponent's organisation;
* the issuer and the registrar are the registry;
* one person never performs two steps on the same item (checked against ``workflow_step``);
* issuance needs a registered project and a verified report, and happens once per report.

Every step is one transaction with its ``workflow_step`` row (comment and evidence) and its audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import CLASS_OF_SCHEME, Batch, IssueBatch, UnitOfWork, issue
from carbon.models import MonitoringReport, Project, ProjectStatus, ReportStatus, WorkflowStep
from carbon.serials import SerialBlock
from core.auth import OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied


class Evidence(BaseModel):
    """A document or photo attached to a step: its name, hash and, for photos, where it was taken."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    media_type: str = Field(default="application/pdf", max_length=100)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    latitude: float | None = Field(default=None, ge=-90, le=90)


class StepRequest(BaseModel):
    """A comment and evidence for a lifecycle step (a reason is required to reject)."""

    model_config = ConfigDict(extra="forbid")

    comment: str = Field(default="", max_length=10_000)
    evidence: list[Evidence] = Field(default_factory=list, max_length=50)


@dataclass(frozen=True)
class Transition:
    """Who may move an item from which states to which state."""

    roles: frozenset[OrgKind]
    from_states: frozenset[str]
    to_state: str
    needs_comment: bool = False
    proponent_only: bool = False
    never_proponent: bool = False


PROPONENTS = frozenset({OrgKind.FORESTRY_BUREAU, OrgKind.FOREST_OWNER})
PROJECT_STEPS = {
    "submit": Transition(PROPONENTS, frozenset({"draft", "rejected"}), "submitted", proponent_only=True),
    "validate": Transition(frozenset({OrgKind.VERIFIER}), frozenset({"submitted"}), "validated", never_proponent=True),
    "register": Transition(frozenset({OrgKind.REGISTRY}), frozenset({"validated"}), "registered", never_proponent=True),
    "reject": Transition(
        frozenset({OrgKind.VERIFIER, OrgKind.REGISTRY}), frozenset({"submitted", "validated"}), "rejected",
        needs_comment=True, never_proponent=True,
    ),
}  # fmt: skip
REPORT_STEPS = {
    "verify": Transition(frozenset({OrgKind.VERIFIER}), frozenset({"submitted"}), "verified", never_proponent=True),
    "reject": Transition(
        frozenset({OrgKind.VERIFIER}), frozenset({"submitted"}), "rejected", needs_comment=True, never_proponent=True
    ),
    "issue": Transition(frozenset({OrgKind.REGISTRY}), frozenset({"verified"}), "issued", never_proponent=True),
}


def steps_of(session: Session, kind: str, subject_id: int) -> list[WorkflowStep]:
    """Return the steps of an item in order."""
    query = select(WorkflowStep).where(WorkflowStep.subject_kind == kind, WorkflowStep.subject_id == subject_id)
    return list(session.scalars(query.order_by(WorkflowStep.id)))


def _check(
    session: Session, kind: str, subject_id: int, step: str, rule: Transition, status: str, owner_org: int,
    actor: Principal, request: StepRequest,
) -> None:  # fmt: skip
    if actor.role not in rule.roles:
        raise PermissionDenied(f"{step} is done by {', '.join(sorted(r.value for r in rule.roles))}")
    if rule.proponent_only and actor.organisation_id != owner_org:
        raise PermissionDenied("rule: only the proponent's own organisation submits")
    if rule.never_proponent and actor.organisation_id == owner_org:
        raise PermissionDenied("rule: the verifier or issuer is never the proponent's organisation")
    if status not in rule.from_states:
        raise Conflict(f"cannot {step} a {kind} that is {status} (allowed from: {', '.join(sorted(rule.from_states))})")
    if rule.needs_comment and not request.comment.strip():
        raise InvalidInput(f"{step} needs a reason in the comment", [{"pointer": "/comment"}])
    if not rule.proponent_only and any(s.user_id == actor.user_id for s in steps_of(session, kind, subject_id)):
        raise PermissionDenied("rule: one person never performs two steps on the same item")


def _record(
    uow: UnitOfWork, kind: str, subject_id: int, step: str, before: str, after: str, actor: Principal,
    request: StepRequest, clock: Clock, payload: dict[str, Any] | None = None,
) -> WorkflowStep:  # fmt: skip
    row = WorkflowStep(
        subject_kind=kind, subject_id=subject_id, step=step, from_status=before, to_status=after,
        user_id=actor.user_id, organisation_id=actor.organisation_id, comment=request.comment,
        evidence=[e.model_dump() for e in request.evidence], created_at=clock.now(),
    )  # fmt: skip
    uow.session.add(row)
    uow.session.flush()
    details = {"step": step, "from": before, "to": after, "comment": request.comment,
               "evidence": [e.sha256 for e in request.evidence]} | (payload or {})  # fmt: skip
    uow.record(actor.actor, f"{kind}.{step}", f"{kind}:{subject_id}", details)
    return row


def project_step(
    session: Session, project_id: int, step: str, request: StepRequest, *, actor: Principal, clock: Clock
) -> Project:
    """Move a project through its lifecycle (``submit``, ``validate``, ``register``, ``reject``)."""
    rule = PROJECT_STEPS.get(step)
    if rule is None:
        raise NotFound(f"no project step {step!r}")
    project = session.get(Project, project_id, with_for_update={"of": Project})
    if project is None:
        raise NotFound(f"project {project_id} does not exist")
    before = project.status.value
    _check(session, "project", project.id, step, rule, before, project.organisation_id, actor, request)
    project.status = ProjectStatus(rule.to_state)
    uow = UnitOfWork(session, clock)
    _record(uow, "project", project.id, step, before, rule.to_state, actor, request, clock)
    uow.commit()
    return project


def report_step(
    session: Session, report_id: int, step: str, request: StepRequest, *, actor: Principal, clock: Clock
) -> MonitoringReport:
    """Verify, reject or issue a monitoring report; ``issue`` issues its batch in the same transaction."""
    rule = REPORT_STEPS.get(step)
    if rule is None:
        raise NotFound(f"no monitoring-report step {step!r}")
    report = session.get(MonitoringReport, report_id, with_for_update={"of": MonitoringReport})
    if report is None:
        raise NotFound(f"monitoring report {report_id} does not exist")
    project = report.project
    before = report.status.value
    _check(session, "monitoring_report", report.id, step, rule, before, project.organisation_id, actor, request)
    payload: dict[str, Any] = {}
    uow = UnitOfWork(session, clock)  # the issuance and the step: one transaction, committed here
    if step == "issue":
        payload = {"batch_id": _issue(uow, report, project, actor).id}
    report.status = ReportStatus(rule.to_state)
    _record(uow, "monitoring_report", report.id, step, before, rule.to_state, actor, request, clock, payload)
    uow.commit()
    return report


def vintage_of(period_end: date) -> int:
    """Return the vintage year of a monitoring period: the year its last day falls in.

    >>> vintage_of(date(2026, 1, 1)), vintage_of(date(2025, 12, 31))
    (2025, 2025)
    """
    return (period_end - timedelta(days=1)).year if (period_end.month, period_end.day) == (1, 1) else period_end.year


def _issue(uow: UnitOfWork, report: MonitoringReport, project: Project, actor: Principal) -> Batch:
    if project.status is not ProjectStatus.REGISTERED:
        raise Conflict(f"rule: issuance needs a registered project; project {project.code} is {project.status.value}")
    quantity_t = report.issuable_units_t + report.buffer_units_t
    if quantity_t <= 0:
        raise Conflict("the report has no whole tonnes to issue")
    cmd = IssueBatch(
        project_id=project.id, source=f"monitoring_report:{report.id}", credit_class=CLASS_OF_SCHEME[project.scheme],
        vintage_year=vintage_of(report.period_end), quantity_t=quantity_t, buffer_t=report.buffer_units_t,
    )  # fmt: skip
    return issue(uow, cmd, actor=actor)


def step_out(step: WorkflowStep) -> dict[str, Any]:
    """Return a step as a JSON-ready mapping."""
    return {
        "step": step.step, "from": step.from_status, "to": step.to_status, "user_id": step.user_id,
        "organisation_id": step.organisation_id, "comment": step.comment, "evidence": step.evidence,
        "at": step.created_at.isoformat(),
    }  # fmt: skip


def refusal(session: Session, kind: str, subject_id: int, step: str, actor: Principal) -> str | None:
    """Return why ``actor`` may not do ``step`` on the item now (the refusal the step itself would give), or None.

    The desk shows an item the person may not decide read-only with this reason; the step still checks again.
    """
    rules = PROJECT_STEPS if kind == "project" else REPORT_STEPS
    rule = rules.get(step)
    item: Project | MonitoringReport | None = (
        session.get(Project, subject_id) if kind == "project" else session.get(MonitoringReport, subject_id)
    )
    if rule is None or item is None:
        return f"no {kind} step {step!r}"
    owner = item.organisation_id if isinstance(item, Project) else item.project.organisation_id
    request = StepRequest(comment="(desk check)")
    try:
        _check(session, kind, subject_id, step, rule, item.status.value, owner, actor, request)
    except (PermissionDenied, Conflict, InvalidInput) as refused:
        return str(refused)
    return None


@dataclass(frozen=True)
class IssuancePreview:
    """What issuing a verified report would issue: tonnes, the buffer share and the serial ranges."""

    quantity_t: int
    buffer_t: int
    proponent_t: int
    proponent_serials: str | None
    buffer_serials: str | None


def issuance_preview(session: Session, report: MonitoringReport) -> IssuancePreview:
    """Return the batch :func:`report_step` ``issue`` would write now (its next batch number, serials 1..n)."""
    project = report.project
    quantity_t = report.issuable_units_t + report.buffer_units_t
    buffer_t = report.buffer_units_t
    number = (session.scalar(select(func.max(Batch.batch_number)).where(Batch.project_id == project.id)) or 0) + 1
    vintage = vintage_of(report.period_end)
    credit_class = CLASS_OF_SCHEME[project.scheme].value

    def serial(start: int, end: int) -> str | None:
        if start > end:
            return None
        return SerialBlock(credit_class, project.province_code, project.id, vintage, number, start, end).format()

    proponent_t = quantity_t - buffer_t
    return IssuancePreview(quantity_t, buffer_t, proponent_t, serial(1, proponent_t),
                           serial(proponent_t + 1, quantity_t))  # fmt: skip
