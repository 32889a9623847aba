"""Demo data for the embedded default.

One organisation of every kind with a user each, and a project with the two demo plots from
``samples/demo_plots.geojson``.

Seeding is idempotent: it does nothing when the demo organisations exist. The credentials are for a
local demonstration only and are printed by ``shanhai seed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.models import Scheme
from carbon.plots import register_plots
from carbon.projects import CreateProject, create_project
from core import audit
from core.auth import Organisation, OrgKind, User, hash_password, principal_of
from core.clock import Clock
from geodata.models import RasterKind, RasterLayer
from geodata.rasters import RegisterRasterLayer, register_layer

LANDCOVER_CLASSES = {"1": "forest", "2": "shrubland", "3": "grassland", "4": "bare or mine land", "5": "cropland"}


@dataclass(frozen=True)
class DemoOrg:
    """A demo organisation and its one user."""

    kind: OrgKind
    name: str
    province_code: str
    county_code: str | None
    username: str

    @property
    def password(self) -> str:
        """Return the demo password (public, for local demonstration only)."""
        return f"demo-{self.username}-2026"


DEMO_ORGS = (
    DemoOrg(
        OrgKind.FORESTRY_BUREAU,
        "宁夏回族自治区林业和草原局 (Ningxia Forestry and Grassland Bureau, demo)",
        "64",
        None,
        "nx-bureau",
    ),
    DemoOrg(
        OrgKind.FOREST_OWNER,
        "泾源县杨岭村股份经济合作社 (Yangling village cooperative, Jingyuan, demo)",
        "64",
        "640424",
        "jy-coop",
    ),
    DemoOrg(
        OrgKind.ECOLOGY_BUREAU,
        "宁夏回族自治区生态环境厅 (Ningxia Ecology and Environment Department, demo)",
        "64",
        None,
        "nx-ecology",
    ),
    DemoOrg(
        OrgKind.VERIFIER, "闽宁碳汇核查中心 (Minning Carbon Verification Centre, demo)", "11", "110108", "verifier"
    ),
    DemoOrg(OrgKind.REGISTRY, "山海碳汇登记簿 (Shanhai Registry, demo)", "35", "350102", "registry"),
    DemoOrg(OrgKind.OPERATOR, "山海交易结算 (Shanhai Exchange and Settlement, demo)", "35", "350102", "operator"),
    DemoOrg(
        OrgKind.ENTERPRISE,
        "厦门海沧港务物流有限公司 (Xiamen Haicang port logistics company, demo)",
        "35",
        "350205",
        "fj-enterprise",
    ),
    DemoOrg(OrgKind.BANK, "福建演示银行 (Fujian demo bank)", "35", "350102", "fj-bank"),
    DemoOrg(OrgKind.AUDITOR, "独立审计 (Independent auditor, demo)", "11", "110101", "auditor"),
)

DEMO_PROJECT = CreateProject(
    name="闽宁协作碳汇林与矿山修复 (Minning cooperation carbon forest and mine restoration)",
    scheme=Scheme.FORESTRY_CARBON_TICKET,
    province_code="64",
    crediting_start=date(2021, 1, 1),
    crediting_end=date(2051, 1, 1),
    description=(
        "Demo project: the 1,500-mu Xiamen Haicang carbon forest in Jingyuan county (Liupan mountains) and "
        "the 219.74-ha Yongning abandoned-mine restoration. Polygons are synthetic; see samples/README.md."
    ),
)


DEMO_RASTERS = [
    RegisterRasterLayer(
        name=f"{kind}-{site}",
        kind=RasterKind.CATEGORICAL if kind == "landcover" else RasterKind.CONTINUOUS,
        units="class" if kind == "landcover" else "t/ha",
        path=f"{kind}_{site}.tif",
        description=f"Synthetic {'land cover' if kind == 'landcover' else 'aboveground biomass'} around the "
        f"{site.capitalize()} demo plot (samples/make_rasters.py).",
        class_names=LANDCOVER_CLASSES if kind == "landcover" else {},
    )
    for site in ("jingyuan", "yongning")
    for kind in ("landcover", "agb")
]


def seed_rasters(session: Session, raster_dir: Path, *, clock: Clock) -> list[str]:
    """Register the demo raster layers found in ``raster_dir`` (idempotent); return the names registered."""
    names = []
    for cmd in DEMO_RASTERS:
        if (
            not (raster_dir / cmd.path).is_file()
            or session.scalars(select(RasterLayer).where(RasterLayer.name == cmd.name)).first()
        ):
            continue
        register_layer(session, cmd, raster_dir=raster_dir, actor="system:seed", clock=clock)
        names.append(cmd.name)
    return names


def seed_demo(session: Session, samples_dir: Path, *, clock: Clock) -> bool:
    """Create the demo data unless present; return whether anything was created."""
    if session.scalars(select(Organisation).where(Organisation.name == DEMO_ORGS[0].name)).first() is not None:
        return False
    now = clock.now()
    users: dict[OrgKind, User] = {}
    for demo in DEMO_ORGS:
        org = Organisation(
            name=demo.name,
            kind=demo.kind,
            province_code=demo.province_code,
            county_code=demo.county_code,
            created_at=now,
        )
        user = User(
            organisation=org,
            username=demo.username,
            display_name=f"Demo user of {demo.name}",
            password_hash=hash_password(demo.password),
            created_at=now,
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
        users[demo.kind] = user
    session.commit()
    bureau = principal_of(users[OrgKind.FORESTRY_BUREAU], "seed")
    project = create_project(session, DEMO_PROJECT, actor=bureau, clock=clock)
    document = json.loads((samples_dir / "demo_plots.geojson").read_text(encoding="utf-8"))
    register_plots(session, project.id, document, actor=bureau, clock=clock)
    return True


def credentials_text() -> str:
    """Return the demo credentials as a printable table."""
    lines = ["Demo users (local demonstration only):", f"  {'role':<16} {'username':<14} password"]
    lines += [f"  {d.kind.value:<16} {d.username:<14} {d.password}" for d in DEMO_ORGS]
    return "\n".join(lines)
