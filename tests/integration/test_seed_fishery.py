"""The fishery demo (``api.seed_fishery``) runs on a fresh database after the normal demo seed (SQLite, PostgreSQL).

It must go through the real workflow: the project registered by three organisations, the harvest report filed
by the cooperative, verified by another organisation's user and issued by the registry, with an OFS batch in the
cooperative's account; the ledger and the audit chain stay sound, and a second run changes nothing. On both
databases the same harvest cannot then be claimed again by another project.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from api.seed import DEMO_ORGS
from api.seed_fishery import FISHERY_ORG, harvest_report, sea_areas_geojson, seed_fishery_demo
from carbon.ledger import Batch, CreditClass, ledger_violations, open_blocks
from carbon.models import ClaimStatus, MonitoringReport, Plot, Project, ProjectKind, ReportStatus, WorkflowStep
from carbon.monitoring import FileReport, file_report
from carbon.plots import register_plots
from carbon.projects import CreateProject, create_project
from carbon.workflow import StepRequest, project_step
from core.audit import AuditEntry, verify_chain
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.errors import DoubleCounting
from tests.conftest import seeded_session

AT = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo_session(request: pytest.FixtureRequest, template_db: Path, tmp_path: Path) -> Iterator[Session]:
    """A session on a demo-seeded database of its own (a copy of the SQLite template, or a fresh PostgreSQL)."""
    with seeded_session(request.param, template_db, tmp_path, AT) as session:
        yield session


def test_the_fishery_demo_is_issued_through_the_workflow(demo_session: Session, clock: FixedClock) -> None:
    demo = seed_fishery_demo(demo_session, clock=clock)  # created now, or already by the demo seed
    project = demo_session.get(Project, demo.project_id)
    assert project is not None and project.kind is ProjectKind.SEA_AREAS and project.county_code == "350122"
    areas = list(demo_session.scalars(select(Plot).where(Plot.project_id == project.id)))
    assert len(areas) == 3 and all(a.licence_number and a.licence_kind for a in areas)
    report = demo_session.get(MonitoringReport, demo.report_id)
    assert report is not None and report.status is ReportStatus.ISSUED and report.provisional
    steps = list(demo_session.scalars(select(WorkflowStep).where(WorkflowStep.subject_kind == "monitoring_report",
                                                                  WorkflowStep.subject_id == report.id)))  # fmt: skip
    assert [s.step for s in steps] == ["verify", "issue"]
    assert len({report.submitted_by_user_id, *(s.user_id for s in steps)}) == 3  # three different people
    batch = demo_session.get(Batch, demo.batch_id)
    assert batch is not None and batch.credit_class is CreditClass.OCEAN_FISHERY and batch.vintage_year == 2025
    assert batch.quantity_t == report.issuable_units_t + report.buffer_units_t > 0
    cooperative = demo_session.scalars(select(User).where(User.username == FISHERY_ORG.username)).one()
    held = sum(b.quantity for b in open_blocks(demo_session, cooperative.organisation_id))
    assert held == report.issuable_units_t
    assert ledger_violations(demo_session) == []
    assert verify_chain(demo_session).ok
    entries = demo_session.scalar(select(func.count()).select_from(AuditEntry))
    assert seed_fishery_demo(demo_session, clock=clock) == replace(demo, created=False)  # idempotent
    assert demo_session.scalar(select(func.count()).select_from(AuditEntry)) == entries


def test_the_demo_harvest_cannot_be_claimed_again_by_another_project(demo_session: Session) -> None:
    clock = FixedClock(AT)
    demo = seed_fishery_demo(demo_session, clock=clock)
    # the demo project's claims are withdrawn; another proponent registers the same water and files 2025 again
    demo_session.execute(update(Plot).where(Plot.id.in_(demo.sea_area_ids)).values(claim_status=ClaimStatus.WITHDRAWN))
    demo_session.commit()
    users = {d.kind: demo_session.scalars(select(User).where(User.username == d.username)).one() for d in DEMO_ORGS}
    owner = principal_of(users[OrgKind.FOREST_OWNER], "test")
    command = CreateProject(name="Resold farm (test)", scheme="ocean_fishery", province_code="35",
                            county_code="350122", crediting_start="2024-01-01", crediting_end="2044-01-01")  # type: ignore[arg-type]  # fmt: skip
    project = create_project(demo_session, command, actor=owner, clock=clock)
    plots, _intake = register_plots(demo_session, project.id, sea_areas_geojson(), actor=owner, clock=clock)
    for step, kind in (
        ("submit", OrgKind.FOREST_OWNER),
        ("validate", OrgKind.VERIFIER),
        ("register", OrgKind.REGISTRY),
    ):
        project_step(demo_session, project.id, step, StepRequest(comment="ok"),
                     actor=principal_of(users[kind], "test"), clock=clock)  # fmt: skip
    request = harvest_report({p.plot_code or "": p.id for p in plots})
    entries = demo_session.scalar(select(func.count()).select_from(AuditEntry))
    with pytest.raises(DoubleCounting) as refused:
        file_report(demo_session, FileReport(project_id=project.id, **request), actor=owner, clock=clock)
    demo_session.rollback()
    assert {c["existing_report_id"] for c in refused.value.conflicts} == {demo.report_id}
    assert len(refused.value.conflicts) == 3  # each sea area, by the same sea area's licence and its overlap
    assert demo_session.scalar(select(func.count()).select_from(AuditEntry)) == entries  # nothing written
