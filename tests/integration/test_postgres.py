"""PostgreSQL 15 + PostGIS: the same migrations, a real geometry column, and a chain that never forks.

Marked ``postgres``: under CI=true these fail if the server is missing; elsewhere they skip.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from carbon.models import Plot, Project, ProjectStatus, Scheme
from core import audit
from core.audit import verify_chain
from core.auth import Organisation, OrgKind, User
from core.clock import FixedClock
from core.db import make_session_factory
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
