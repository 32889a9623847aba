"""PostgreSQL 15 + PostGIS: the same migrations, a real geometry column, and a chain that never forks.

Marked ``postgres``: under CI=true these fail if the server is missing; elsewhere they skip.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from shapely.geometry import MultiPolygon, Polygon, box, mapping
from shapely.geometry.base import BaseGeometry
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import carbon.plots
from carbon.models import ClaimStatus, Plot, Project, ProjectStatus, Scheme
from carbon.plots import register_plots
from carbon.projects import CreateProject, create_project
from core import audit
from core.audit import verify_chain
from core.auth import Organisation, OrgKind, Principal, User, principal_of
from core.clock import FixedClock
from core.db import make_session_factory
from core.errors import Conflict, DoubleCounting
from geodata.area import measure
from geodata.geometry import geometry_sha256

pytestmark = pytest.mark.postgres

CLOCK = FixedClock(datetime(2026, 11, 25, tzinfo=UTC))
SQUARE = MultiPolygon([Polygon([(106.30, 35.50), (106.31, 35.50), (106.31, 35.51), (106.30, 35.51)])])


@pytest.fixture
def pg_session(pg_engine: Engine) -> Iterator[Session]:
    """A session whose work is rolled back after the test (savepoints inside one outer transaction)."""
    connection = pg_engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    yield session
    session.close()
    outer.rollback()
    connection.close()


def test_postgis_is_installed_and_the_column_is_geometry(pg_session: Session) -> None:
    assert pg_session.scalar(text("SELECT PostGIS_Version()"))
    column_type = pg_session.scalar(
        text(
            "SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            " WHERE attrelid = 'plot'::regclass AND attname = 'geometry'"
        )
    )
    assert column_type == "geometry(MultiPolygon,4490)"
    index = pg_session.scalar(text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_plot_geometry'"))
    assert index is not None and "USING gist" in index


def _project(session: Session) -> Project:
    org = Organisation(name="PG bureau", kind=OrgKind.FORESTRY_BUREAU, province_code="64", created_at=CLOCK.now())
    user = User(organisation=org, username="pg-user", display_name="pg", password_hash="x", created_at=CLOCK.now())
    project = Project(
        code="SH-64-PG0001",
        name="pg",
        description="",
        organisation=org,
        scheme=Scheme.FORESTRY_CARBON_TICKET,
        status=ProjectStatus.DRAFT,
        province_code="64",
        crediting_start=date(2026, 1, 1),
        crediting_end=date(2046, 1, 1),
        created_at=CLOCK.now(),
    )
    session.add_all([org, user])
    session.flush()
    project.created_by_user_id = user.id
    session.add(project)
    session.flush()
    return project


def test_plot_geometry_round_trips_and_postgis_agrees_on_the_area(pg_session: Session) -> None:
    project = _project(pg_session)
    m = measure(SQUARE)
    minx, miny, maxx, maxy = SQUARE.bounds
    plot = Plot(
        project_id=project.id, plot_code="PG-1", name="pg", properties={}, geometry=SQUARE,
        geometry_sha256=geometry_sha256(SQUARE), min_lon=minx, min_lat=miny, max_lon=maxx, max_lat=maxy,
        area_m2=m.area_m2, perimeter_m=m.perimeter_m, created_at=CLOCK.now(),
        created_by_user_id=project.created_by_user_id, measured_at=CLOCK.now(),
        claim_start=date(2026, 1, 1), claim_end=date(2046, 1, 1), claim_status=ClaimStatus.ACTIVE,
        external_registrations=[],
    )  # fmt: skip
    pg_session.add(plot)
    pg_session.commit()
    pg_session.expire_all()
    loaded = pg_session.get(Plot, plot.id)
    assert loaded is not None and loaded.geometry.equals(SQUARE)
    srid, postgis_area = pg_session.execute(
        text("SELECT ST_SRID(geometry), ST_Area(geometry::geography) FROM plot WHERE id = :id"), {"id": plot.id}
    ).one()
    assert srid == 4490
    # PostGIS computes geography area on WGS84; GRS80 differs by ~0.1 mm in the semi-minor axis.
    assert postgis_area == pytest.approx(m.area_m2, rel=1e-6)
    hits = pg_session.scalar(
        text(
            "SELECT count(*) FROM plot"
            " WHERE ST_Intersects(geometry, ST_MakeEnvelope(106.305, 35.505, 106.4, 35.6, 4490))"
        )
    )
    assert hits == 1


def test_concurrent_appends_never_fork_the_chain(pg_engine: Engine) -> None:
    factory = make_session_factory(pg_engine)
    with factory() as session:
        start = verify_chain(session).entries
    writers, per_writer = 6, 15
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                with factory() as session:
                    audit.append(
                        session, actor=f"user:{worker}", action="test.concurrent", subject=f"w{worker}:{i}",
                        payload={"worker": worker, "i": i}, clock=CLOCK,
                    )  # fmt: skip
                    session.commit()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with factory() as session:
        report = verify_chain(session)
        assert report.ok, report
        assert report.entries == start + writers * per_writer
        seqs = session.scalars(text("SELECT seq FROM audit_log ORDER BY seq")).all()
        assert list(seqs) == list(range(1, report.entries + 1))


def _proponent(session: Session, name: str) -> tuple[Principal, int]:
    org = Organisation(name=name, kind=OrgKind.FORESTRY_BUREAU, province_code="64", created_at=CLOCK.now())
    user = User(organisation=org, username=name, display_name=name, password_hash="x", created_at=CLOCK.now())
    session.add_all([org, user])
    session.flush()
    principal = principal_of(user, "test")
    cmd = CreateProject(
        name=name,
        scheme=Scheme.FORESTRY_CARBON_TICKET,
        province_code="64",
        crediting_start=date(2026, 1, 1),
        crediting_end=date(2046, 1, 1),
    )
    project = create_project(session, cmd, actor=principal, clock=CLOCK)
    return principal, project.id


def test_concurrent_overlapping_registrations_accept_exactly_one(
    pg_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    factory = make_session_factory(pg_engine)
    suffix = uuid.uuid4().hex[:8]
    with factory() as session:
        first = _proponent(session, f"race-a-{suffix}")
        second = _proponent(session, f"race-b-{suffix}")
    # Widen the window between the overlap check and the insert: without the lock both would pass.
    original = carbon.plots.find_conflicts

    def slow_find_conflicts(*args: Any, **kwargs: Any) -> Any:
        found = original(*args, **kwargs)
        time.sleep(0.5)
        return found

    monkeypatch.setattr(carbon.plots, "find_conflicts", slow_find_conflicts)
    x = 105.8 + int(suffix, 16) % 600 / 1000  # a fresh spot in Ningxia (Tongxin, Hongsibao) for each run
    shapes = [box(x, 37.0, x + 0.01, 37.01), box(x + 0.005, 37.0, x + 0.015, 37.01)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def register(who: tuple[Principal, int], geometry: BaseGeometry) -> None:
        principal, project_id = who
        document = {"type": "Feature", "properties": {}, "geometry": mapping(geometry)}
        with factory() as session:
            barrier.wait()
            try:
                register_plots(session, project_id, document, actor=principal, clock=CLOCK)
                outcomes.append("accepted")
            except DoubleCounting:
                outcomes.append("refused")
            except Exception as error:  # reported by the assertion below
                outcomes.append(repr(error))

    threads = [threading.Thread(target=register, args=args) for args in ((first, shapes[0]), (second, shapes[1]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted", "refused"]


def test_concurrent_issuance_for_one_report_makes_exactly_one_batch(pg_engine: Engine) -> None:
    from sqlalchemy.exc import IntegrityError

    from carbon.ledger import CreditClass, IssueBatch, issue_batch, ledger_violations

    factory = make_session_factory(pg_engine)
    suffix = uuid.uuid4().hex[:8]
    with factory() as session:
        _principal, project_id = _proponent(session, f"issue-{suffix}")
        registry = Organisation(
            name=f"registry-{suffix}", kind=OrgKind.REGISTRY, province_code="35", created_at=CLOCK.now()
        )
        user = User(
            organisation=registry, username=f"reg-{suffix}", display_name="r", password_hash="x", created_at=CLOCK.now()
        )
        session.add_all([registry, user])
        session.commit()
        issuer = principal_of(user, "test")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []
    cmd = IssueBatch(project_id, f"monitoring_report:{suffix}", CreditClass.FORESTRY_CARBON_TICKET, 2025, 500, 50)

    def issue() -> None:
        with factory() as session:
            barrier.wait()
            try:
                issue_batch(session, cmd, actor=issuer, clock=CLOCK)
                outcomes.append("issued")
            except (IntegrityError, Conflict):
                outcomes.append("refused")

    threads = [threading.Thread(target=issue) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["issued", "refused"]
    with factory() as session:
        assert ledger_violations(session) == []


def test_tree_heads_and_proofs_on_postgres(pg_session: Session) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from core.audit_tree import AuditTree
    from core.merkle import leaf_hash, verify_consistency, verify_inclusion
    from core.tree_head import verify_tree_head

    key = Ed25519PrivateKey.generate()
    tree = AuditTree()
    for i in range(5):
        audit.append(pg_session, actor="user:1", action="test.tree", subject=f"t:{i}", payload={"i": i}, clock=CLOCK)
    pg_session.commit()
    kept = tree.tree_head(pg_session, key, CLOCK)
    assert verify_tree_head(kept, key.public_key()) and kept.tree_size >= 5
    for i in range(3):
        audit.append(pg_session, actor="user:1", action="test.tree", subject=f"u:{i}", payload={"i": i}, clock=CLOCK)
    pg_session.commit()
    now = tree.tree_head(pg_session, key, CLOCK)
    assert now.tree_size == kept.tree_size + 3
    proof = tree.consistency_proof(pg_session, kept.tree_size)
    assert verify_consistency(
        kept.tree_size,
        now.tree_size,
        bytes.fromhex(kept.root_hash),
        bytes.fromhex(now.root_hash),
        [bytes.fromhex(p) for p in proof.proof],
    )
    inclusion = tree.inclusion_proof(pg_session, kept.tree_size, now.tree_size)
    assert verify_inclusion(
        leaf_hash(bytes.fromhex(inclusion.entry_hash)),
        inclusion.leaf_index,
        now.tree_size,
        [bytes.fromhex(p) for p in inclusion.audit_path],
        bytes.fromhex(now.root_hash),
    )
