"""The fishery demo (``api.seed_fishery``) runs on a fresh embedded database after the normal demo seed.

It must go through the real workflow: the project registered by three organisations, the harvest report filed
by the cooperative, verified by another organisation's user and issued by the registry, with an OFS batch in the
cooperative's account; the ledger and the audit chain stay sound, and a second run changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.seed_fishery import FISHERY_ORG, seed_fishery_demo
from carbon.ledger import Batch, CreditClass, ledger_violations, open_blocks
from carbon.models import MonitoringReport, Plot, Project, ProjectKind, ReportStatus, WorkflowStep
from core.audit import AuditEntry, verify_chain
from core.auth import User
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.settings import Settings


@pytest.fixture
def demo_session(settings: Settings) -> Iterator[Session]:
    """A session on a private copy of the migrated, demo-seeded embedded (SQLite) database."""
    engine = make_engine(settings.database_url)
    with make_session_factory(engine)() as session:
        yield session
    engine.dispose()


def test_the_fishery_demo_is_issued_through_the_workflow(demo_session: Session, clock: FixedClock) -> None:
    demo = seed_fishery_demo(demo_session, clock=clock)
    assert demo is not None
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
    assert seed_fishery_demo(demo_session, clock=clock) is None  # idempotent
    assert demo_session.scalar(select(func.count()).select_from(AuditEntry)) == entries
