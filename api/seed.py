"""Demo data for the embedded default.

One organisation of every kind with a user each and two registered projects beside each other, each with
its demo plot from ``samples/demo_plots.geojson`` and its monitoring report: the young Haicang plantation
(forestry carbon ticket, Jingyuan) and the Yongning abandoned-mine restoration (ecological restoration,
NX-RESTORATION v2 from a bare-ground baseline). :func:`seed_demo` files the reports; :func:`seed_issued`
takes them through the real workflow — evidence attached by the bureau, verified by the verifier, issued by the
registry as batches with serials — so the public registry has issued tonnes of both (``shanhai seed`` and
``make run`` run both; the test suite's template database stops after :func:`seed_demo`). The report inputs
are illustrative (synthetic inventory figures chosen inside the reference's plausibility bands), not
measurements of the real sites.

Seeding is idempotent: organisations, projects and plots are created only when the demo organisations
are missing, a demo report only when its project has none, evidence only when not attached, and a report is
issued only once. The credentials are for a local demonstration only and are printed by ``shanhai seed``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from carbon.evidence import EvidenceStore, Upload, attach_evidence
from carbon.evidence_types import EvidenceKind
from carbon.models import EvidenceAttachment, MonitoringReport, Project, ReportStatus, Scheme
from carbon.monitoring import FileReport, file_report
from carbon.plots import register_plots
from carbon.projects import CreateProject, create_project
from carbon.workflow import StepRequest, project_step, report_step
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

HAICANG_PROJECT = CreateProject(
    name="闽宁协作海沧碳汇林 (Minning cooperation Haicang carbon forest)",
    scheme=Scheme.FORESTRY_CARBON_TICKET,
    province_code="64",
    county_code="640424",  # Jingyuan county (Liupan mountains)
    crediting_start=date(2021, 1, 1),
    crediting_end=date(2051, 1, 1),
    description=(
        "Demo project: the 1,500-mu Xiamen Haicang carbon forest in Jingyuan county (Liupan mountains), planted "
        "in 2021 with Chinese pine and larch. The polygon is synthetic; see samples/README.md."
    ),
)
YONGNING_PROJECT = CreateProject(
    name="永宁废弃矿山生态修复碳汇 (Yongning abandoned-mine restoration)",
    scheme=Scheme.ECOLOGICAL_RESTORATION,
    province_code="64",
    county_code="640121",  # Yongning county, Yinchuan
    crediting_start=date(2022, 4, 1),
    crediting_end=date(2042, 4, 1),
    description=(
        "Demo project: the 219.74-ha Yongning abandoned quarry, bare ground until 2022, restored with planted "
        "Caragana shrubs and sown alfalfa, credited under the local provisional restoration class (NX-RESTORATION "
        "v2). The polygon, land cover and survey figures are synthetic; see samples/README.md."
    ),
)
#: The demo projects with the plot code each registers from ``samples/demo_plots.geojson``.
DEMO_PROJECTS = ((HAICANG_PROJECT, "NX-JY-HC-001"), (YONGNING_PROJECT, "NX-YN-KS-001"))


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
] + [
    RegisterRasterLayer(
        name=f"landcover-yongning-{year}",
        kind=RasterKind.CATEGORICAL,
        units="class",
        path=f"landcover_yongning_{year}.tif",
        description=f"Synthetic land cover around the Yongning mine plot {when} (samples/make_rasters.py).",
        class_names=LANDCOVER_CLASSES,
    )
    for year, when in ((2021, "before the restoration: bare / mine land"), (2025, "after it: shrubs, sown grass"))
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
    """Return the two demo report requests (without the project id): Haicang's, then Yongning's.

    Haicang (1,500 mu, planted 2021): Chinese pine (油松) and Prince Rupprecht's larch (华北落叶松)
    from bare planting to the stock volumes of a five-year-old plantation (about 6 and 9 m³/ha),
    about 1.7 t CO2e/ha/yr. Yongning (219.74 ha abandoned quarry, bare ground until its restoration in 2022;
    NX-RESTORATION v2): Caragana planted on 85 % and alfalfa sown on all of it, crown cover from the baseline
    survey's 3 % (under the 5 % threshold) to 30 %, the soil from severely degraded to nominally managed,
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
        "methodology_version": "2",
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
                    "baseline": {
                        "surveyed_on": "2021-10-15",
                        "shrub_crown_cover": "0.03",
                        "soil_condition": "severely_degraded",
                        "source": "demo: pre-restoration transect survey; land cover 2021 (landcover_yongning_2021)",
                    },
                    "cover": [
                        {"species": "Caragana korshinskii (柠条)", "life_form": "shrub", "establishment": "planted",
                         "established_on": "2022-04-20", "area_share": "0.85"},
                        {"species": "Medicago sativa (紫花苜蓿)", "life_form": "herbaceous", "establishment": "sown",
                         "established_on": "2022-05-10", "area_share": "1"},
                    ],
                }
            ],
            "relative_uncertainty": "0.12",
        },
    }  # fmt: skip
    return [haicang, yongning]


def _demo_projects(session: Session) -> list[Project]:
    names = [cmd.name for cmd, _code in DEMO_PROJECTS]
    found = {p.name: p for p in session.scalars(select(Project).where(Project.name.in_(names)))}
    return [found[name] for name in names if name in found]


def seed_reports(session: Session, *, clock: Clock) -> int:
    """File each demo project's monitoring report unless the project has reports; return how many were filed."""
    projects = _demo_projects(session)
    plot_ids = {plot.plot_code: plot.id for project in projects for plot in project.plots}
    if set(plot_ids) != {code for _cmd, code in DEMO_PROJECTS}:
        return 0
    bureau = session.scalars(select(User).where(User.username == DEMO_ORGS[0].username)).one()
    actor: Principal = principal_of(bureau, "seed")
    requests = demo_reports(plot_ids["NX-JY-HC-001"], plot_ids["NX-YN-KS-001"])
    filed = 0
    for project, request in zip(projects, requests, strict=True):
        if session.scalars(select(MonitoringReport.id).where(MonitoringReport.project_id == project.id)).first():
            continue
        file_report(session, FileReport(project_id=project.id, **request), actor=actor, clock=clock)
        filed += 1
    return filed


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
    document = json.loads((samples_dir / "demo_plots.geojson").read_text(encoding="utf-8"))
    # Each project's lifecycle up to registration, each step by a different organisation's user; the
    # monitoring reports stay submitted here (seed_issued takes them through verification and issuance).
    steps = [
        ("submit", OrgKind.FORESTRY_BUREAU, "Project design document and plot survey attached."),
        ("validate", OrgKind.VERIFIER, "Eligibility and boundaries checked on site (demo)."),
        ("register", OrgKind.REGISTRY, "Registered (demo)."),
    ]
    for cmd, code in DEMO_PROJECTS:
        project = create_project(session, cmd, actor=bureau, clock=clock)
        features = [f for f in document["features"] if f["properties"]["code"] == code]
        register_plots(session, project.id, {"type": "FeatureCollection", "features": features}, actor=bureau,
                       clock=clock)  # fmt: skip
        for step, kind, comment in steps:
            project_step(session, project.id, step, StepRequest(comment=comment),
                         actor=principal_of(users[kind], "seed"), clock=clock)  # fmt: skip
    seed_reports(session, clock=clock)
    return True


#: The demo's evidence files in ``samples/``: (plot code, kind, file, description). All SYNTHETIC.
DEMO_EVIDENCE = (
    ("NX-YN-KS-001", EvidenceKind.LAND_COVER_BEFORE, "rasters/landcover_yongning_2021.tif",
     "Land cover 2021, before the restoration: the quarry is bare / mine land (class 4). SYNTHETIC demo raster."),
    ("NX-YN-KS-001", EvidenceKind.LAND_COVER_AFTER, "rasters/landcover_yongning_2025.tif",
     "Land cover 2025: planted Caragana shrubland (class 2), sown grass on the fringe (class 3). SYNTHETIC."),
)  # fmt: skip


def field_sheet_csv(report: MonitoringReport) -> bytes:
    """Return a demo field sheet (CSV, UTF-8 with BOM for spreadsheet programs) of a report's units and figures."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["# SYNTHETIC demo field sheet (外业调查表) of monitoring report", report.id])
    units = report.inputs.get("sub_compartments") or report.inputs.get("polygons") or []
    columns = sorted({k for unit in units for k, v in unit.items() if not isinstance(v, dict | list)})
    writer.writerow(columns)
    for unit in units:
        writer.writerow([unit.get(column, "") for column in columns])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def _attach_once(session: Session, project: Project, upload: Upload, data: bytes, *, report_id: int | None,
                 store: EvidenceStore, actor: Principal, clock: Clock) -> EvidenceAttachment:  # fmt: skip
    digest = hashlib.sha256(data).hexdigest()
    found = session.scalars(select(EvidenceAttachment).where(EvidenceAttachment.project_id == project.id,
                                                             EvidenceAttachment.sha256 == digest)).first()  # fmt: skip
    if found is not None:
        return found
    return attach_evidence(session, project.id, upload, report_id=report_id, store=store, max_bytes=len(data),
                           actor=actor, clock=clock)  # fmt: skip


def _evidence_of(session: Session, project: Project, report: MonitoringReport, samples_dir: Path,
                 store: EvidenceStore, actor: Principal, clock: Clock) -> list[dict[str, str]]:  # fmt: skip
    """Attach the report's field sheet and the project's demo files; return them as a step's evidence list."""
    sheet = field_sheet_csv(report)
    upload = Upload(f"field-sheet-{project.code}.csv", io.BytesIO(sheet), EvidenceKind.FIELD_SHEET,
                    "Field sheet of the monitoring report's units (SYNTHETIC demo figures).")  # fmt: skip
    attached = [_attach_once(session, project, upload, sheet, report_id=report.id, store=store, actor=actor,
                             clock=clock)]  # fmt: skip
    codes = {plot.plot_code for plot in project.plots}
    for code, kind, name, description in DEMO_EVIDENCE:
        if code in codes and (samples_dir / name).is_file():
            data = (samples_dir / name).read_bytes()
            upload = Upload(Path(name).name, io.BytesIO(data), kind, description)
            attached.append(_attach_once(session, project, upload, data, report_id=None, store=store, actor=actor,
                                         clock=clock))  # fmt: skip
    return [{"name": a.filename, "sha256": a.sha256, "media_type": a.media_type} for a in attached]


def seed_issued(session: Session, samples_dir: Path, *, evidence_dir: Path, clock: Clock) -> int:
    """Take each demo report through the real workflow to issued tonnes, with its evidence (idempotent).

    The bureau attaches the evidence (a field sheet; for Yongning the land cover before and after), the
    verifier (another organisation and user) verifies citing it, the registry issues the batch with its serials.
    Returns how many reports were issued now.
    """
    users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(
        ["nx-bureau", "verifier", "registry"])))}  # fmt: skip
    if len(users) < 3:
        return 0
    bureau, verifier, registry = (principal_of(users[n], "seed") for n in ("nx-bureau", "verifier", "registry"))
    store = EvidenceStore(evidence_dir)
    issued = 0
    for project in _demo_projects(session):
        report = session.scalars(select(MonitoringReport).where(MonitoringReport.project_id == project.id)
                                 .order_by(MonitoringReport.id)).first()  # fmt: skip
        if report is None or report.status is ReportStatus.ISSUED:
            continue
        if report.status is ReportStatus.SUBMITTED:
            evidence = _evidence_of(session, project, report, samples_dir, store, bureau, clock)
            comment = "Site visit and sample plots re-measured; evidence checked against the audit log (demo)."
            report_step(session, report.id, "verify", StepRequest.model_validate(
                {"comment": comment, "evidence": evidence}), actor=verifier, clock=clock)  # fmt: skip
        if report.status is ReportStatus.VERIFIED:
            report_step(session, report.id, "issue", StepRequest(comment="Issued (demo)."), actor=registry,
                        clock=clock)  # fmt: skip
            issued += 1
    return issued


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


def credentials_text(extra: tuple[DemoOrg, ...] = ()) -> str:
    """Return the demo credentials as a printable table (``extra``: demo organisations seeded elsewhere)."""
    lines = ["Demo users (local demonstration only):", f"  {'role':<16} {'username':<14} password"]
    lines += [f"  {d.kind.value:<16} {d.username:<14} {d.password}" for d in (*DEMO_ORGS, *extra)]
    return "\n".join(lines)
