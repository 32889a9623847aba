"""Plot import jobs always end, on SQLite and on PostgreSQL + PostGIS.

``run_import`` is driven as a worker would drive it (a session factory, commits of its own): expected
failures end the job ``failed`` with their own problem, unexpected ones with ``core/internal-error`` and a
reference id that is in the log, a job whose worker died is ended by the stale rule, and the upload is
stored and read back piece by piece.
"""

from __future__ import annotations

import io
import itertools
import logging
import math
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import carbon.imports
from carbon.imports import CHUNK_BYTES, create_import, end_stale_imports, get_import, run_import
from carbon.models import ImportStatus, PlotImport, PlotImportChunk, Scheme
from carbon.projects import CreateProject, create_project
from core.auth import Organisation, OrgKind, Principal, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import PayloadTooLarge
from core.migrate import alembic_config, upgrade
from core.settings import Settings
from geodata.readers import ReadLimits
from shanhai.app import create_app
from tests.conftest import PASSWORDS, celery_worker, fresh_postgres_database

LIMITS = ReadLimits()
FINAL = ("succeeded", "failed")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A session factory on a migrated database: a fresh SQLite file, or this run's PostgreSQL database."""
    if request.param == "postgres":
        pg_engine: Engine = request.getfixturevalue("pg_engine")
        yield make_session_factory(pg_engine)
        return
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))


@pytest.fixture
def bureau(factory: sessionmaker[Session], clock: FixedClock) -> tuple[Principal, int]:
    """A forestry bureau's user and a draft project of it (unique names: the PostgreSQL database is shared)."""
    tag = uuid.uuid4().hex[:8]
    with factory() as session:
        org = Organisation(
            name=f"bureau {tag}", kind=OrgKind.FORESTRY_BUREAU, province_code="35", created_at=clock.now()
        )
        user = User(organisation=org, username=f"u{tag}", display_name="u", password_hash="x", created_at=clock.now())
        session.add_all([org, user])
        session.commit()
        actor = principal_of(user, "test")
        cmd = CreateProject(
            name=f"forest {tag}", scheme=Scheme.FORESTRY_CARBON_TICKET, province_code="35",
            crediting_start=date(2026, 1, 1), crediting_end=date(2046, 1, 1),
        )  # fmt: skip
        project = create_project(session, cmd, actor=actor, clock=clock)
        return actor, project.id


def queue(
    factory: sessionmaker[Session], bureau: tuple[Principal, int], clock: FixedClock, name: str, data: bytes
) -> int:
    actor, project_id = bureau
    with factory() as session:
        job = create_import(session, project_id, name, io.BytesIO(data), repair=False, actor=actor, clock=clock)
        return job.id


def pieces(factory: sessionmaker[Session], import_id: int) -> int:
    with factory() as session:
        return session.scalar(select(func.count()).where(PlotImportChunk.import_id == import_id)) or 0


_CENTRES = itertools.count()


def circle_csv(vertices: int, x0: float | None = None, y0: float | None = None) -> bytes:
    """A CSV of one plot: a circle of ``vertices`` vertices (~1 km across), by default somewhere in Fujian's hills.

    The default centre is drawn from 117.2–118.18 °E × 25.4–26.576 °N, a box wholly inside Fujian (the shipped
    boundaries contain it): the box used before reached into Zhejiang in its north-east corner, and a plot drawn
    there was refused as outside the project's province, one run in a few dozen. Centres are taken in turn, so
    two plots of one test never overlap (a second claim on the same land would be refused).
    """
    k = next(_CENTRES) % 2_500
    x0 = 117.2 + k % 50 * 0.02 if x0 is None else x0
    y0 = 25.4 + k // 50 * 0.024 if y0 is None else y0
    angles = [2 * math.pi * i / vertices for i in range(vertices)]
    ring = [f"{x0 + 0.005 * math.cos(a):.9f} {y0 + 0.005 * math.sin(a):.9f}" for a in angles]
    return f'code,wkt\nC-1,"POLYGON (({", ".join([*ring, ring[0]])}))"\n'.encode()


def test_a_wkt_field_longer_than_the_csv_default_is_read(
    factory: sessionmaker[Session], bureau: tuple[Principal, int], clock: FixedClock
) -> None:
    data = circle_csv(5_000)
    assert len(data) > 131_072  # the csv module's default field size limit
    import_id = queue(factory, bureau, clock, "circle.csv", data)
    job = run_import(factory, import_id, clock=clock, limits=LIMITS)
    assert job["status"] == "succeeded", job["error"]
    assert len(job["plot_ids"]) == 1 and pieces(factory, import_id) == 0


def test_deep_nesting_ends_the_job_failed_with_a_clear_problem(
    factory: sessionmaker[Session], bureau: tuple[Principal, int], clock: FixedClock
) -> None:
    import_id = queue(factory, bureau, clock, "deep.geojson", b"[" * 100_000 + b"]" * 100_000)
    job = run_import(factory, import_id, clock=clock, limits=LIMITS)
    assert job["status"] == "failed" and job["finished_at"] is not None
    assert job["error"]["slug"] == "geodata/unreadable-file" and "nests deeper" in job["error"]["detail"]
    assert pieces(factory, import_id) == 0


def test_an_unexpected_error_ends_the_job_with_an_internal_error_and_a_logged_reference(
    factory: sessionmaker[Session],
    bureau: tuple[Principal, int],
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("injected fault")

    import_id = queue(factory, bureau, clock, "circle.csv", circle_csv(8))
    monkeypatch.setattr(carbon.imports, "intake_file", broken)
    with caplog.at_level(logging.ERROR, logger="carbon.imports"):
        job = run_import(factory, import_id, clock=clock, limits=LIMITS)
    assert job["status"] == "failed"
    error = job["error"]
    assert error["slug"] == "core/internal-error" and len(error["reference"]) == 32
    assert "injected fault" not in str(error)  # the trace goes to the log, not to the client
    [record] = [r for r in caplog.records if error["reference"] in r.getMessage()]
    assert record.exc_info is not None and "injected fault" in str(record.exc_info[1])
    assert pieces(factory, import_id) == 0


def test_a_job_whose_worker_died_is_ended_by_the_stale_rule(
    factory: sessionmaker[Session], bureau: tuple[Principal, int], clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    abandoned = queue(factory, bureau, clock, "circle.csv", circle_csv(8))
    with factory() as session:  # a worker claimed it, then died: no progress, no end
        job = get_import(session, abandoned)
        job.status, job.heartbeat_at = ImportStatus.RUNNING, clock.now()
        session.commit()
    clock.advance(timedelta(minutes=20))
    fresh = queue(factory, bureau, clock, "circle.csv", circle_csv(8))
    assert end_stale_imports(factory, clock=clock, stale_after=timedelta(minutes=30), ids=[abandoned, fresh]) == []
    clock.advance(timedelta(minutes=11))
    with caplog.at_level(logging.ERROR, logger="carbon.imports"):
        ended = end_stale_imports(factory, clock=clock, stale_after=timedelta(minutes=30), ids=[abandoned, fresh])
    assert ended == [abandoned]
    with factory() as session:
        job, other = get_import(session, abandoned), get_import(session, fresh)
        assert job.status is ImportStatus.FAILED and job.error is not None
        assert job.error["slug"] == "core/internal-error"
        assert any(job.error["reference"] in r.getMessage() for r in caplog.records)
        assert other.status is ImportStatus.QUEUED
    assert pieces(factory, abandoned) == 0
    # The worker that was thought dead comes back: the job's outcome stands, nothing is stored.
    again = run_import(factory, abandoned, clock=clock, limits=LIMITS)
    assert again["status"] == "failed" and again["plot_ids"] is None


class ReadRecorder(io.BytesIO):
    """A stream that remembers the largest single read asked of it."""

    largest = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.largest = max(self.largest, len(data))
        return data


def test_the_upload_is_stored_and_read_back_piece_by_piece(
    factory: sessionmaker[Session], bureau: tuple[Principal, int], clock: FixedClock
) -> None:
    actor, project_id = bureau
    data = circle_csv(100_000)  # ~2.8 MB: three pieces
    stream = ReadRecorder(data)
    with factory() as session:
        job = create_import(session, project_id, "big.csv", stream, repair=False, actor=actor, clock=clock)
        import_id = job.id
        assert job.size_bytes == len(data)
    assert stream.largest <= CHUNK_BYTES
    assert pieces(factory, import_id) == math.ceil(len(data) / CHUNK_BYTES)
    result = run_import(factory, import_id, clock=clock, limits=LIMITS)
    assert result["status"] == "failed"  # 100,000 vertices + closing one: over the limit, found while reading
    assert "more than 100000 vertices" in result["error"]["errors"][0]["reason"]


def test_an_upload_over_the_size_limit_is_refused_while_streaming_and_leaves_nothing(
    factory: sessionmaker[Session], bureau: tuple[Principal, int], clock: FixedClock
) -> None:
    actor, project_id = bureau
    data = circle_csv(100_000)
    with factory() as session:
        before = [session.scalar(select(func.count()).select_from(t)) for t in (PlotImport, PlotImportChunk)]
        with pytest.raises(PayloadTooLarge):
            create_import(
                session, project_id, "big.csv", io.BytesIO(data), repair=False, actor=actor, clock=clock,
                max_bytes=CHUNK_BYTES + 1,
            )  # fmt: skip
        session.rollback()
        assert [session.scalar(select(func.count()).select_from(t)) for t in (PlotImport, PlotImportChunk)] == before


@pytest.fixture
def broker_settings(settings: Settings, redis_url: str) -> Settings:
    """The seeded test database with a Redis broker and a queue of this test's own."""
    return settings.model_copy(update={"broker_url": redis_url, "task_queue": f"test-{uuid.uuid4().hex}"})


def row(vertices: int, i: int, y0: float, prefix: bytes) -> bytes:
    """The CSV line of the ``i``-th circle of a grid of 30 a row (0.02° apart) in Guyuan, Ningxia."""
    line = circle_csv(vertices, x0=105.9 + i % 30 * 0.02, y0=y0 + i // 30 * 0.02).split(b"\n", 1)[1]
    return line.replace(b"C-1", prefix + b"-%d" % i)


def wait_for_job(client: TestClient, headers: dict[str, str], import_id: int, until: tuple[str, ...]) -> Any:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = client.get(f"/api/v1/plot-imports/{import_id}", headers=headers).json()
        if job["status"] in until:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {import_id} still {job['status']}")


@pytest.mark.redis
def test_a_worker_process_ends_every_job_and_a_killed_worker_is_ended_by_the_stale_rule(
    broker_settings: Settings, tmp_path: Path
) -> None:
    clock = FixedClock(datetime.now(UTC))
    app = create_app(broker_settings.model_copy(update={"import_stale_seconds": 60}), clock=clock)
    with celery_worker(broker_settings, tmp_path / "worker.log") as worker, TestClient(app) as client:
        login = {"username": "nx-bureau", "password": PASSWORDS["nx-bureau"]}
        headers = {"Authorization": f"Bearer {client.post('/api/v1/auth/token', data=login).json()['access_token']}"}
        project = {"name": "Worker", "scheme": "forestry_carbon_ticket", "province_code": "64"}
        period = {"crediting_start": "2026-01-01", "crediting_end": "2046-01-01"}
        project_id = client.post("/api/v1/projects", json=project | period, headers=headers).json()["id"]

        def upload(name: str, data: bytes) -> int:
            response = client.post(
                f"/api/v1/projects/{project_id}/plot-imports", files={"file": (name, data)}, headers=headers
            )
            assert response.status_code == 202, response.text
            return int(response.json()["id"])

        deep = wait_for_job(client, headers, upload("deep.geojson", b"[" * 100_000 + b"]" * 100_000), FINAL)
        assert deep["error"]["slug"] == "geodata/unreadable-file"
        rows = b"".join(row(2_000, i, 36.0, b"W") for i in range(60))
        assert len(rows) > 3 * CHUNK_BYTES  # read back by the worker from several pieces
        done = wait_for_job(client, headers, upload("plots.csv", b"code,wkt\n" + rows), FINAL)
        assert done["status"] == "succeeded" and len(done["plot_ids"]) == 60, done["error"]
        # A worker killed mid-job: the job stays running, silent, until the stale rule ends it.
        big = b"code,wkt\n" + b"".join(row(20_000, i, 36.2, b"K") for i in range(40))
        killed = upload("slow.csv", big)
        wait_for_job(client, headers, killed, ("running",))
        worker.kill()
        worker.wait(timeout=30)
        assert client.get(f"/api/v1/plot-imports/{killed}", headers=headers).json()["status"] == "running"
        clock.advance(datetime.now(UTC) - clock.now() + timedelta(seconds=61))  # the worker's heartbeat is real time
        ended = client.get(f"/api/v1/plot-imports/{killed}", headers=headers).json()
        assert ended["status"] == "failed" and ended["error"]["slug"] == "core/internal-error"
    app.state.engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_an_unfinished_jobs_bytes_survive_migration_0016_both_ways(
    backend: str, tmp_path: Path, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with ExitStack() as stack:
        url = (
            f"sqlite:///{tmp_path / 'm.db'}"
            if backend == "sqlite"
            else stack.enter_context(fresh_postgres_database("_m"))
        )
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        monkeypatch.setattr(carbon.imports, "CHUNK_BYTES", 4)
        tag = uuid.uuid4().hex[:8]
        with factory() as session:
            org = Organisation(name=tag, kind=OrgKind.FORESTRY_BUREAU, province_code="64", created_at=clock.now())
            user = User(organisation=org, username=tag, display_name="u", password_hash="x", created_at=clock.now())
            session.add_all([org, user])
            session.commit()
            actor = principal_of(user, "test")
            cmd = CreateProject(
                name=tag, scheme=Scheme.FORESTRY_CARBON_TICKET, province_code="64",
                crediting_start=date(2026, 1, 1), crediting_end=date(2046, 1, 1),
            )  # fmt: skip
            project = create_project(session, cmd, actor=actor, clock=clock)
            create_import(
                session, project.id, "a.csv", io.BytesIO(b"code,wkt\n"), repair=False, actor=actor, clock=clock
            )
        engine.dispose()
        command.downgrade(alembic_config(url), "0014")
        engine = make_engine(url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT content FROM plot_import")).scalars().all() == [b"code,wkt\n"]
        engine.dispose()
        upgrade(url)
        engine = make_engine(url)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT seq, data FROM plot_import_chunk")).all() == [(0, b"code,wkt\n")]
        engine.dispose()
