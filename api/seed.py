"""Demo data for the embedded default.

One organisation of every kind with a user each, a project with the two demo plots from
``samples/demo_plots.geojson``, and a monitoring report for each plot: a forestry carbon ticket for the
young Haicang plantation and an ecological-restoration report for the Yongning mine site. The report
inputs are illustrative (synthetic inventory figures chosen inside the reference's plausibility bands),
not measurements of the real sites.

Seeding is idempotent: organisations, project and plots are created only when the demo organisations
are missing, and the demo reports only when the demo project has none. The credentials are for a
local demonstration only and are printed by ``shanhai seed``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from carbon.models import MonitoringReport, Project, Scheme
from carbon.monitoring import FileReport, file_report
from carbon.plots import register_plots
from carbon.projects import CreateProject, create_project
from carbon.workflow import StepRequest, project_step
from core import audit
from core.auth import Organisation, OrgKind, Principal, User, hash_password, principal_of
from core.clock import Clock
from core.passwords import require_acceptable_password
from geodata.models import RasterKind, RasterLayer
from geodata.rasters import RegisterRasterLayer, register_layer
from gep.engine import ROLES
from gep.legend import load_legend
from gep.models import GepRun, RegionLayer, RegionLevel
from gep.regions import upload_region_layer
from gep.runs import CreateRun, create_run, execute_in_process
from gep.spec import DEFAULT_INDICATORS
from gep.synthetic import FILES as GEP_FILES
from gep.synthetic import demo_tables

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


def _demo_password_hash(demo: DemoOrg) -> str:
    require_acceptable_password(demo.password, username=demo.username)  # the demo obeys the policy it shows
    return hash_password(demo.password)


DEMO_ORGS = (
    DemoOrg(
        OrgKind.FORESTRY_BUREAU,
        "宁夏回族自治区林业和草原局 (Ningxia Forestry and Grassland Bureau, demo)",
        "64",
        "640106",  # Jinfeng district, Yinchuan (the regional capital)
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
        "640106",  # Jinfeng district, Yinchuan
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
    # The project's county is the Haicang carbon forest's (its main plot, NX-JY-HC-001); the Yongning plot
    # lies in Yongning county (640121). A project records one county (samples/README.md).
    county_code="640424",
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


#: The synthetic GEP land cover's classes (gep/data/legend_synthetic_jingyuan.toml).
GEP_LEGEND = "legend_synthetic_jingyuan"
GEP_LANDCOVER_CLASSES = {str(code): k.name for code, k in load_legend(GEP_LEGEND).classes.items()}
GEP_RASTERS = [
    RegisterRasterLayer(
        name=f"gep-jy-{role.replace('_', '-')}",
        kind=RasterKind.CATEGORICAL if role == "land_cover" else RasterKind.CONTINUOUS,
        units=ROLES[role][0],
        path=f"gep_{stem}.tif",
        description=f"SYNTHETIC GEP demo input ({role}) over Jingyuan county (samples/make_gep_stack.py); not data.",
        class_names=GEP_LANDCOVER_CLASSES if role == "land_cover" else {},
    )
    for role, stem in GEP_FILES.items()
]
GEP_REGION_LAYER = "jingyuan-townships-synthetic"
#: The demo townships' codes (samples/gep_townships_jingyuan.geojson: 2 × 2 synthetic townships).
GEP_DEMO_TOWNSHIPS = [f"SYN-JY-{n:02d}" for n in range(1, 5)]
GEP_DEMO_RUN = CreateRun(
    region_layer=GEP_REGION_LAYER,
    name="Jingyuan 2025 — synthetic demo stack, provisional Guyuan prices",
    year=2025,
    indicators=list(DEFAULT_INDICATORS.codes()),
    inputs={**{role: f"gep-jy-{role.replace('_', '-')}" for role in GEP_FILES}, "practice_factor": 1.0},
    prices="prices_guyuan_2025",
    negative_balance="clamp-to-zero",
    land_cover_legend=GEP_LEGEND,
    cover_unit="percent",
    **demo_tables(GEP_DEMO_TOWNSHIPS),
    tile_size=100,
)


def seed_rasters(session: Session, raster_dir: Path, *, clock: Clock) -> list[str]:
    """Register the demo raster layers found in ``raster_dir`` (idempotent); return the names registered."""
    names = []
    for cmd in [*DEMO_RASTERS, *GEP_RASTERS]:
        if (
            not (raster_dir / cmd.path).is_file()
            or session.scalars(select(RasterLayer).where(RasterLayer.name == cmd.name)).first()
        ):
            continue
        register_layer(session, cmd, raster_dir=raster_dir, actor="system:seed", clock=clock)
        names.append(cmd.name)
    return names


def demo_reports(haicang_plot_id: int, yongning_plot_id: int) -> list[dict[str, Any]]:
    """Return the two demo report requests (without the project id).

    Haicang (1,500 mu, planted 2021): Chinese pine (油松) and Prince Rupprecht's larch (华北落叶松)
    from bare planting to the stock volumes of a five-year-old plantation (about 6 and 9 m³/ha),
    about 1.7 t CO2e/ha/yr. Yongning (219.74 ha abandoned quarry, restored from 2022): Caragana crown
    cover from under the 5 % threshold to 30 % and the soil from severely degraded to nominally managed,
    about 0.8 t CO2e/ha/yr in shrubs and 1.8 t CO2e/ha/yr in all.
    """
    haicang = {
        "methodology_id": "FJ-FORESTRY-CARBON-TICKET",
        "methodology_version": "1",
        "period_start": "2021-01-01",
        "period_end": "2025-12-31",
        "plot_ids": [haicang_plot_id],
        "unit_plots": {"HC-001-pinus": haicang_plot_id, "HC-001-larix": haicang_plot_id},
        "inputs": {
            "sub_compartments": [
                {
                    "sub_compartment_id": "HC-001-pinus",
                    "area_m2": "600000",
                    "owner": "泾源县杨岭村股份经济合作社",
                    "origin": "planted",
                    "species": "pinus",
                    "start": {"stock_volume_m3_per_ha": "0"},
                    "end": {"stock_volume_m3_per_ha": "6.0"},
                },
                {
                    "sub_compartment_id": "HC-001-larix",
                    "area_m2": "400000",
                    "owner": "泾源县杨岭村股份经济合作社",
                    "origin": "planted",
                    "species": "larix",
                    "start": {"stock_volume_m3_per_ha": "0"},
                    "end": {"stock_volume_m3_per_ha": "9.0"},
                },
            ],
            "relative_uncertainty": "0.08",
            "uncertainty_source": "demo: 5-year re-inventory of the 2021 planting, 8 % declared sampling error",
        },
    }
    yongning = {
        "methodology_id": "NX-RESTORATION",
        "methodology_version": "1",
        "period_start": "2022-04-01",
        "period_end": "2025-12-31",
        "plot_ids": [yongning_plot_id],
        "inputs": {
            "restoration_start": "2022-04-01",
            "polygons": [
                {
                    "polygon_id": "NX-YN-KS-001",
                    "area_m2": "2197400",
                    "activity": "mine_site",
                    "land_class": "abandoned quarry (废弃矿山)",
                    "shrub_crown_cover_start": "0.03",
                    "shrub_crown_cover_end": "0.30",
                    "forest_biomass_t_per_ha": "40",
                    "soil": {
                        "method": "default_factors",
                        "climate_soil": "temperate_dry.sandy",
                        "condition_before": "severely_degraded",
                        "condition_after": "nominally_managed",
                    },
                }
            ],
            "relative_uncertainty": "0.12",
        },
    }
    return [haicang, yongning]


def seed_reports(session: Session, *, clock: Clock) -> int:
    """File the demo monitoring reports unless the demo project has reports; return how many were filed."""
    project = session.scalars(select(Project).where(Project.name == DEMO_PROJECT.name)).first()
    if (
        project is None
        or session.scalars(select(MonitoringReport.id).where(MonitoringReport.project_id == project.id)).first()
    ):
        return 0
    codes = {plot.plot_code: plot.id for plot in project.plots}
    bureau = session.scalars(select(User).where(User.username == DEMO_ORGS[0].username)).one()
    actor: Principal = principal_of(bureau, "seed")
    requests = demo_reports(codes["NX-JY-HC-001"], codes["NX-YN-KS-001"])
    for request in requests:
        file_report(session, FileReport(project_id=project.id, **request), actor=actor, clock=clock)
    return len(requests)


def seed_demo(session: Session, samples_dir: Path, *, clock: Clock) -> bool:
    """Create the demo data unless present; return whether anything was created."""
    if session.scalars(select(Organisation).where(Organisation.name == DEMO_ORGS[0].name)).first() is not None:
        return seed_reports(session, clock=clock) > 0
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
            password_hash=_demo_password_hash(demo),
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
    # The project's lifecycle up to registration, each step by a different organisation's user; the
    # monitoring reports below stay submitted, for the verifier and the registry to take in the demo.
    steps = [
        ("submit", OrgKind.FORESTRY_BUREAU, "Project design document and plot survey attached."),
        ("validate", OrgKind.VERIFIER, "Eligibility and boundaries checked on site (demo)."),
        ("register", OrgKind.REGISTRY, "Registered (demo)."),
    ]
    for step, kind, comment in steps:
        project_step(session, project.id, step, StepRequest(comment=comment), actor=principal_of(users[kind], "seed"),
                     clock=clock)  # fmt: skip
    seed_reports(session, clock=clock)
    return True


def seed_gep(session: Session, samples_dir: Path, *, raster_dir: Path, data_dir: Path, clock: Clock) -> int | None:
    """Upload the synthetic townships and run one small GEP run in-process, unless a run exists.

    Returns the run's id, or ``None`` when nothing was done (already seeded, or the demo stack is absent).
    """
    if session.scalars(select(GepRun.id)).first() is not None:
        return None
    townships = samples_dir / "gep_townships_jingyuan.geojson"
    user = session.scalars(select(User).where(User.username == "nx-ecology")).first()
    if user is None or not townships.is_file() or not (raster_dir / GEP_RASTERS[0].path).is_file():
        return None
    actor = principal_of(user, "seed").actor
    if session.scalars(select(RegionLayer).where(RegionLayer.name == GEP_REGION_LAYER)).first() is None:
        upload_region_layer(
            session,
            name=GEP_REGION_LAYER,
            level=RegionLevel.TOWNSHIP,
            filename=townships.name,
            data=townships.read_bytes(),
            actor=actor,
            clock=clock,
        )
    run = create_run(session, GEP_DEMO_RUN, actor=actor, clock=clock, raster_dir=raster_dir)
    factory = sessionmaker(bind=session.get_bind())
    execute_in_process(factory, run.id, raster_dir=raster_dir, data_dir=data_dir, clock=clock)
    session.expire_all()
    return run.id


def credentials_text() -> str:
    """Return the demo credentials as a printable table."""
    lines = ["Demo users (local demonstration only):", f"  {'role':<16} {'username':<14} password"]
    lines += [f"  {d.kind.value:<16} {d.username:<14} {d.password}" for d in DEMO_ORGS]
    return "\n".join(lines)
