"""Demo data: a Fujian shellfish-and-seaweed fishery carbon-sink project with a season's harvest issued (issue 26).

Runs after :func:`api.seed.seed_demo` (it needs the demo verifier and registry). It adds:

* a fishery cooperative of Lianjiang county (连江县, 350122), proponent of the project, with a demo user;
* the project 黄岐湾贝藻养殖碳汇 under the ``ocean_fishery`` scheme, accounting aquaculture sea areas: three
  synthetic rectangles of Huangqi bay (黄岐湾), each with a synthetic 养殖证 or 海域使用权证 number;
* the project's lifecycle to registration, each step by another organisation's user;
* the 2025 season's harvest report (HY/T 0305-2021 structure): oysters on rafts, mussels on longlines, kelp on
  longlines and nori on rafts, tonnes of fresh weight — filed by the cooperative, verified by the verifier,
  issued by the registry, so the batch (credit class OFS) sits in the cooperative's account.

The harvest figures are illustrative (of the order of a cooperative's season in Lianjiang, whose farms produce
oysters, mussels, kelp and nori), not a real cooperative's records; the polygons and licence numbers are
synthetic. Seeding is idempotent: when the project exists nothing is written and what it holds is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.seed import DEMO_ORGS, DemoOrg, _demo_password_hash
from carbon.ledger import Batch
from carbon.models import MonitoringReport, Project, Scheme
from carbon.monitoring import FileReport, file_report
from carbon.plots import register_plots
from carbon.projects import CreateProject, create_project
from carbon.workflow import StepRequest, project_step, report_step
from core import audit
from core.auth import Organisation, OrgKind, Principal, User, principal_of
from core.clock import Clock

FISHERY_ORG = DemoOrg(
    OrgKind.FOREST_OWNER,
    "连江县黄岐渔业专业合作社 (Huangqi fishery cooperative, Lianjiang, demo)",
    "35",
    "350122",
    "lj-fishery",
)
FISHERY_PROJECT = CreateProject(
    name="黄岐湾贝藻养殖碳汇 (Huangqi bay shellfish and seaweed carbon sink, Lianjiang)",
    scheme=Scheme.OCEAN_FISHERY,
    province_code="35",
    county_code="350122",
    crediting_start=date(2024, 1, 1),
    crediting_end=date(2044, 1, 1),
    description=(
        "Demo project: non-fed mariculture of oysters, mussels, kelp and nori on three licensed sea areas of "
        "Huangqi bay, Lianjiang county, accounted by the carbon removed with the harvest (HY/T 0305-2021 "
        "structure, provisional coefficients). Sea areas, licence numbers and harvests are synthetic."
    ),
)
#: (code, name, licence kind, licence number, lon/lat box) of the demo sea areas — synthetic, in open water.
SEA_AREAS = (
    ("LJ-HQ-01", "黄岐湾牡蛎筏式养殖区", "aquaculture", "闽连江县府(海)养证[2023]第00812号",
     (119.860, 26.285, 119.868, 26.292)),
    ("LJ-HQ-02", "黄岐湾海带延绳养殖区", "aquaculture", "闽连江县府(海)养证[2023]第00813号",
     (119.870, 26.285, 119.878, 26.292)),
    ("LJ-HQ-03", "黄岐湾贻贝紫菜混养区", "sea_use_right", "国海证2023350122000457号",
     (119.860, 26.275, 119.870, 26.282)),
)  # fmt: skip


@dataclass(frozen=True)
class FisheryDemo:
    """The fishery demo: the project, its sea areas, the issued report, its batch, and whether this call made it."""

    project_id: int
    sea_area_ids: tuple[int, ...]
    report_id: int
    batch_id: int
    created: bool


def sea_areas_geojson() -> dict[str, Any]:
    """Return the demo sea areas as a GeoJSON FeatureCollection with their licences."""
    features = []
    for code, name, kind, number, (west, south, east, north) in SEA_AREAS:
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        features.append(
            {
                "type": "Feature",
                "properties": {"code": code, "name": name, "licence_kind": kind, "licence_number": number},
                "geometry": {"type": "Polygon", "coordinates": [ring]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def harvest_report(sea_area_ids: dict[str, int]) -> dict[str, Any]:
    """Return the 2025 season's harvest report request (without the project id)."""
    harvests = [
        ("LJ-HQ-01", "oyster", "raft", "2400", "2025 oyster landings, cooperative sales ledger (demo)"),
        ("LJ-HQ-02", "kelp", "longline", "3200", "2025 kelp harvest, April–May, weighed fresh at the quay (demo)"),
        ("LJ-HQ-03", "mussel", "longline", "600", "2025 mussel landings (demo)"),
        ("LJ-HQ-03", "nori", "raft", "150", "2025 nori cuttings, fresh weight (demo)"),
    ]
    return {
        "methodology_id": "HY-T-0305-2021",
        "methodology_version": "1",
        "period_start": "2025-01-01",
        "period_end": "2025-12-31",
        "plot_ids": sorted(sea_area_ids.values()),
        "inputs": {
            "harvests": [
                {
                    "sea_area_id": area,
                    "species": species,
                    "culture": "non_fed",
                    "culture_mode": mode,
                    "harvest_fresh_t": tonnes,
                    "source": source,
                }
                for area, species, mode, tonnes, source in harvests
            ],
            "buffer": {"risk_rating": "medium"},
        },
    }


def ensure_cooperative(session: Session, *, clock: Clock, demo: DemoOrg = FISHERY_ORG) -> User:
    """Return a demo organisation's user (the fishery cooperative by default), creating both when missing."""
    found = session.scalars(select(User).where(User.username == demo.username)).first()
    if found is not None:
        return found
    org = Organisation(
        name=demo.name,
        kind=demo.kind,
        province_code=demo.province_code,
        county_code=demo.county_code,
        created_at=clock.now(),
    )
    user = User(
        organisation=org,
        username=demo.username,
        display_name=f"Demo user of {demo.name}",
        password_hash=_demo_password_hash(demo),
        created_at=clock.now(),
    )
    session.add_all([org, user])
    session.flush()
    audit.append(
        session,
        actor="system:seed",
        action="organisation.created",
        subject=f"organisation:{org.id}",
        payload={
            "name": org.name,
            "kind": org.kind.value,
            "province_code": org.province_code,
            "user": demo.username,
        },
        clock=clock,
    )
    session.commit()
    return user


def _demo_principal(session: Session, kind: OrgKind) -> Principal:
    username = next(d.username for d in DEMO_ORGS if d.kind is kind)
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is None:
        raise LookupError(f"the demo {kind.value} user {username} is missing: run the demo seed first")
    return principal_of(user, "seed")


def seed_fishery_demo(session: Session, *, clock: Clock) -> FisheryDemo:
    """Create the fishery demo through the real workflow unless its project exists; return it (``created``).

    Raises:
        LookupError: The demo verifier or registry is missing (``api.seed.seed_demo`` has not run).
    """
    existing = session.scalars(select(Project).where(Project.name == FISHERY_PROJECT.name)).first()
    if existing is not None:
        return _existing(session, existing)
    verifier, registry = _demo_principal(session, OrgKind.VERIFIER), _demo_principal(session, OrgKind.REGISTRY)
    cooperative = principal_of(ensure_cooperative(session, clock=clock), "seed")
    project = create_project(session, FISHERY_PROJECT, actor=cooperative, clock=clock)
    plots, _intake = register_plots(session, project.id, sea_areas_geojson(), actor=cooperative, clock=clock)
    steps = [
        ("submit", cooperative, "Project design, sea-area licences (养殖证 / 海域使用权证) and farm survey attached."),
        ("validate", verifier, "Licences and sea areas checked against the county's sea-use register (demo)."),
        ("register", registry, "Registered (demo)."),
    ]
    for step, actor, comment in steps:
        project_step(session, project.id, step, StepRequest(comment=comment), actor=actor, clock=clock)
    request = harvest_report({p.plot_code or "": p.id for p in plots})
    report = file_report(session, FileReport(project_id=project.id, **request), actor=cooperative, clock=clock)
    report_step(session, report.id, "verify", StepRequest(comment="Landing records and sales ledgers sampled (demo)."),
                actor=verifier, clock=clock)  # fmt: skip
    report_step(session, report.id, "issue", StepRequest(comment="Issued (demo)."), actor=registry, clock=clock)
    batch_id = _batch_of(session, report.id)
    return FisheryDemo(project.id, tuple(p.id for p in plots), report.id, batch_id, created=True)


def _batch_of(session: Session, report_id: int) -> int:
    return session.scalars(select(Batch.id).where(Batch.source == f"monitoring_report:{report_id}")).one()


def _existing(session: Session, project: Project) -> FisheryDemo:
    report = session.scalars(
        select(MonitoringReport).where(MonitoringReport.project_id == project.id).order_by(MonitoringReport.id)
    ).first()
    if report is None:
        raise LookupError(f"the fishery demo project {project.code} has no harvest report: it was not seeded whole")
    areas = tuple(p.id for p in project.plots)
    return FisheryDemo(project.id, areas, report.id, _batch_of(session, report.id), created=False)
