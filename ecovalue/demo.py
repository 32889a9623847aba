"""SYNTHETIC demo of eco-compensation and ecological-product collateral, on the demo GEP stack (not data).

:func:`seed_ecovalue` builds, on top of the demo data of ``shanhai seed`` (the demo organisations and the 2025
GEP run on ``jingyuan-townships-synthetic``), the worked example of issue 28:

* two county ecology bureaus, for 泾源县 Jingyuan (640424, upstream: the source of the Jing river and of the
  water the 宁夏中南部城乡饮水安全工程 takes to Guyuan) and 原州区 Yuanzhou (640402, downstream partner);
* runs of 2026 (an invented wetter year: precipitation × 1.08) and 2027 (an invented drought: × 0.70) on the
  same stack (``samples/rasters/gep_precipitation_mm_2026.tif``, ``…_2027.tif``);
* agreement ``JY-YZ-WC`` on the water conservation of the four townships (benchmark: the 2025 run; Yuanzhou pays
  Jingyuan for more water, Jingyuan pays back for less), and agreement ``JY-YZ-WQ`` on the annual mean of a
  Xin'an-style water-quality index P at the invented boundary section ``JY-YZ-S01`` (lower is better; the 2026
  readings are worse than 2025's, so Jingyuan pays Yuanzhou — the other way), with their 2026 statements;
* a right of the Yangling village cooperative to the water conservation of townships 1 and 2, valued by the 2026
  run and pledged to the demo bank (LTV limit 0.60, alert 0.70) for half its value, then re-valued by the 2027
  run: below the bank's threshold, so the bank and the cooperative get an inbox alert.

Idempotent: nothing is done when agreement ``JY-YZ-WC`` exists, or when the demo organisations, the 2025 run or
the later precipitation files are missing. The figures illustrate the machinery only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from core import audit
from core.auth import Organisation, OrgKind, Principal, User, hash_password, principal_of
from core.clock import Clock
from ecovalue.agreements import RecordReading, create_agreement, record_reading
from ecovalue.formula import AgreementTerms
from ecovalue.models import Agreement
from ecovalue.pledges import BankDecision, RequestPledge, SetPolicy, accept_pledge, request_pledge, set_policy
from ecovalue.rights import RegisterRight, Revalue, register_right, revalue_right
from ecovalue.statements import ComputeStatement, compute_statement
from geodata.models import RasterKind, RasterLayer
from geodata.rasters import RegisterRasterLayer, register_layer
from gep.models import GepRun, RunStatus
from gep.runs import CreateRun, create_run, execute_in_process
from gep.synthetic import YEAR_FACTORS, precipitation_file

REGION_LAYER = "jingyuan-townships-synthetic"
TOWNSHIPS = [f"SYN-JY-{n:02d}" for n in range(1, 5)]
UPSTREAM, DOWNSTREAM = "640424", "640402"
SECTION = "JY-YZ-S01"
#: Invented quarterly readings of the P index (Σ Cᵢ/Sᵢ over permanganate, NH₃-N, TP, TN ÷ 4) at the section.
READINGS = {
    2025: ["0.8200", "0.8500", "0.8800", "0.8500"],
    2026: ["0.9000", "0.9300", "0.9500", "0.9400"],
}
COUNTY_BUREAUS = (
    ("泾源县生态环境局 (Jingyuan county ecology bureau, demo)", UPSTREAM, "jy-ecology"),
    ("固原市生态环境局原州分局 (Yuanzhou district ecology bureau, demo)", DOWNSTREAM, "yz-ecology"),
)


def demo_password(username: str) -> str:
    """Return the demo password of a demo user (public, local demonstration only), as ``api.seed`` writes them."""
    return f"demo-{username}-2026"


@dataclass(frozen=True)
class DemoIds:
    """What :func:`seed_ecovalue` created."""

    runs: dict[int, int]
    agreements: dict[str, int]
    statements: dict[str, int]
    right_id: int
    pledge_id: int


def _bureau(session: Session, name: str, county: str, username: str, *, clock: Clock) -> User:
    user = session.scalars(select(User).where(User.username == username)).first()
    if user is not None:
        return user
    org = Organisation(name=name, kind=OrgKind.ECOLOGY_BUREAU, province_code="64", county_code=county,
                       created_at=clock.now())  # fmt: skip
    user = User(organisation=org, username=username, display_name=f"Demo user of {name}",
                password_hash=hash_password(demo_password(username)), created_at=clock.now())  # fmt: skip
    session.add_all([org, user])
    session.flush()
    audit.append(session, actor="system:seed", action="organisation.created", subject=f"organisation:{org.id}",
                 payload={"name": name, "kind": org.kind.value, "province_code": "64", "user": username},
                 clock=clock)  # fmt: skip
    session.commit()
    return user


def _later_run(
    session: Session, base: GepRun, year: int, *, actor: str, raster_dir: Path, data_dir: Path, clock: Clock
) -> int:
    layer = f"gep-jy-precipitation-{year}"
    if session.scalars(select(RasterLayer).where(RasterLayer.name == layer)).first() is None:
        cmd = RegisterRasterLayer(
            name=layer,
            kind=RasterKind.CONTINUOUS,
            units="mm",
            path=precipitation_file(year),
            description=f"SYNTHETIC precipitation of {year}: the demo stack's × {YEAR_FACTORS[year]} (not data).",
        )
        register_layer(session, cmd, raster_dir=raster_dir, actor=actor, clock=clock)
    config: dict[str, Any] = dict(base.config)
    config.update(
        region_layer=REGION_LAYER,
        year=year,
        name=f"Jingyuan {year} — synthetic demo stack, precipitation × {YEAR_FACTORS[year]}",
        inputs={**config["inputs"], "precipitation": layer},
    )
    run = create_run(session, CreateRun.model_validate(config), actor=actor, clock=clock, raster_dir=raster_dir)
    execute_in_process(sessionmaker(bind=session.get_bind()), run.id, raster_dir=raster_dir, data_dir=data_dir,
                       clock=clock)  # fmt: skip
    session.expire_all()
    return run.id


def water_terms(upstream_org: int, downstream_org: int, benchmark_run_id: int) -> AgreementTerms:
    """Return the terms of the demo agreement on water conservation."""
    return AgreementTerms.model_validate(
        {
            "code": "JY-YZ-WC",
            "title": "泾源—原州 水源涵养横向生态补偿 (Jingyuan–Yuanzhou water conservation compensation, demo)",
            "parties": [
                {"region_code": UPSTREAM, "side": "provider", "organisation_id": upstream_org},
                {"region_code": DOWNSTREAM, "side": "beneficiary", "organisation_id": downstream_org},
            ],
            "basis": {
                "kind": "gep",
                "region_layer": REGION_LAYER,
                "region_codes": TOWNSHIPS,
                "indicator": "water_conservation",
                "measure": "quantity",
                "benchmark_run_id": benchmark_run_id,
            },
            "benchmark_year": 2025,
            "period_start_year": 2026,
            "period_end_year": 2028,
            "formula": {
                "base_amount_yuan": "1000000",
                "rate_yuan_per_unit": "0.05",
                "floor_yuan": "0",
                "cap_yuan": "5000000",
                "better": "higher",
                "pays_back_when_missed": True,
            },
        }
    )


def quality_terms(upstream_org: int, downstream_org: int) -> AgreementTerms:
    """Return the terms of the demo agreement on the water-quality index P (lower is better)."""
    return AgreementTerms.model_validate(
        {
            "code": "JY-YZ-WQ",
            "title": "泾源—原州 跨界断面水质补偿 (Jingyuan–Yuanzhou boundary-section water quality, demo)",
            "parties": [
                {"region_code": UPSTREAM, "side": "provider", "organisation_id": upstream_org},
                {"region_code": DOWNSTREAM, "side": "beneficiary", "organisation_id": downstream_org},
            ],
            "basis": {
                "kind": "monitored",
                "section_code": SECTION,
                "indicator": "p_index",
                "unit": "index",
                "decimals": 4,
            },
            "benchmark_year": 2025,
            "period_start_year": 2026,
            "period_end_year": 2028,
            "formula": {
                "base_amount_yuan": "1000000",
                "rate_yuan_per_unit": "20000000",
                "cap_yuan": "3000000",
                "better": "lower",
            },
        }
    )


def _user(session: Session, username: str) -> Principal | None:
    user = session.scalars(select(User).where(User.username == username)).first()
    return principal_of(user, "seed") if user is not None else None


def seed_ecovalue(session: Session, *, raster_dir: Path, data_dir: Path, clock: Clock) -> DemoIds | None:
    """Build the demo (see the module docstring); return what it created, or ``None`` when nothing was done."""
    if session.scalars(select(Agreement.id).where(Agreement.code == "JY-YZ-WC")).first() is not None:
        return None
    province, coop, bank = (_user(session, name) for name in ("nx-ecology", "jy-coop", "fj-bank"))
    base = session.scalars(
        select(GepRun).where(GepRun.year == 2025, GepRun.status == RunStatus.SUCCEEDED).order_by(GepRun.id)
    ).first()
    files = all((raster_dir / precipitation_file(year)).is_file() for year in YEAR_FACTORS)
    if province is None or coop is None or bank is None or base is None or not files:
        return None
    up, down = (principal_of(_bureau(session, *bureau, clock=clock), "seed") for bureau in COUNTY_BUREAUS)
    runs = {2025: base.id}
    for year in YEAR_FACTORS:
        runs[year] = _later_run(session, base, year, actor=province.actor, raster_dir=raster_dir, data_dir=data_dir,
                                clock=clock)  # fmt: skip
    water = create_agreement(session, water_terms(up.organisation_id, down.organisation_id, runs[2025]),
                             actor=province, clock=clock)  # fmt: skip
    quality = create_agreement(session, quality_terms(up.organisation_id, down.organisation_id), actor=province,
                               clock=clock)  # fmt: skip
    for year, values in READINGS.items():
        for quarter, value in enumerate(values):
            sampled_on = date(year, 3 * quarter + 2, 15)
            reading = RecordReading(section_code=SECTION, indicator="p_index", sampled_on=sampled_on,
                                    value=Decimal(value), unit="index",
                                    method="quarterly grab samples, GB 3838-2002 analyses (demo)")  # fmt: skip
            record_reading(session, reading, actor=up, clock=clock)
    statements = {
        agreement.code: compute_statement(session, agreement.id, ComputeStatement(year=2026, run_id=runs[2026]
                                          if agreement is water else None), actor=province, clock=clock).id
        for agreement in (water, quality)
    }  # fmt: skip
    right = register_right(
        session,
        RegisterRight(owner_organisation_id=coop.organisation_id, county_code=UPSTREAM, run_id=runs[2026],
                      region_codes=TOWNSHIPS[:2], indicators=["water_conservation"], valuation_date=date(2027, 3, 31)),
        actor=province, clock=clock,
    )  # fmt: skip
    set_policy(session, SetPolicy(max_ltv=Decimal("0.60"), alert_ltv=Decimal("0.70")), actor=bank, clock=clock)
    loan = (Decimal(right.value_fen) / 200).quantize(Decimal("0.01"))  # half the value (fen ÷ 2 ÷ 100), in CNY
    pledge = request_pledge(session, right.id, RequestPledge(bank_organisation_id=bank.organisation_id, loan_cny=loan,
                            comment="Working capital for the cooperative's forest care (demo)."), actor=coop,
                            clock=clock)  # fmt: skip
    accept_pledge(session, pledge.id, BankDecision(comment="Accepted at 50 % LTV (demo)."), actor=bank, clock=clock)
    revalue_right(session, right.id, Revalue(run_id=runs[2027], valuation_date=date(2028, 3, 31)), actor=province,
                  clock=clock)  # fmt: skip
    return DemoIds(runs, {"JY-YZ-WC": water.id, "JY-YZ-WQ": quality.id}, statements, right.id, pledge.id)
