"""Shared fixtures: migrated SQLite databases, the app with a fixed clock, demo users, and the
PostgreSQL/Redis services (required under CI=true, skipped with a reason otherwise)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from api.seed import DEMO_ORGS, seed_demo, seed_gep, seed_rasters
from core import audit
from core.audit import AuditEntry, AuditHead
from core.clock import FixedClock, SystemClock
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from core.settings import Settings
from shanhai.app import create_app
from tests.statuses import StatusRecorder, undocumented

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
TEST_SECRET = "test-secret-key-that-is-long-enough-0123456789"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
POSTGRES_URL = os.environ.get("SHANHAI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/shanhai_test")
REDIS_URL = os.environ.get("SHANHAI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


#: Every (method, route, status) the app answers in this session (tests/statuses.py, issue 17 item 2).
STATUSES = StatusRecorder()


def pytest_configure(config: pytest.Config) -> None:
    access = logging.getLogger("shanhai.access")
    access.addHandler(STATUSES)
    if not access.isEnabledFor(logging.INFO):
        access.setLevel(logging.INFO)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run when a status seen is not documented for its operation (the xdist controller checks all)."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller checks the union
        workeroutput["shanhai_statuses"] = sorted(STATUSES.seen)
        return
    if not STATUSES.seen:
        return
    with tempfile.TemporaryDirectory() as data_dir:
        application = create_app(Settings(environment="test", data_dir=Path(data_dir), secret_key=TEST_SECRET))  # type: ignore[arg-type]
        document = application.openapi()
        application.state.engine.dispose()
    missing = undocumented(STATUSES.seen, document)
    if missing:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"undocumented statuses seen in the test suite ({len(missing)}):", red=True)
            for line in missing:
                reporter.write_line(f"  {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: object, error: object) -> None:
    """Collect an xdist worker's statuses into the controller's set."""
    STATUSES.seen.update(tuple(item) for item in getattr(node, "workeroutput", {}).get("shanhai_statuses", []))


def service_unavailable(what: str, error: Exception) -> None:
    """Fail under CI (the service must be there), skip with the reason elsewhere."""
    message = f"{what} is not available: {error}"
    if IN_CI:
        pytest.fail(f"CI=true requires it — {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated, demo-seeded SQLite file, built once and copied for each test."""
    path = tmp_path_factory.mktemp("template") / "shanhai.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        seed_demo(session, SAMPLES, clock=SystemClock())
        seed_rasters(session, SAMPLES / "rasters", clock=SystemClock())
        seed_gep(session, SAMPLES, raster_dir=SAMPLES / "rasters", data_dir=path.parent, clock=SystemClock())
    engine.dispose()
    return path


@pytest.fixture
def settings(tmp_path: Path, template_db: Path) -> Settings:
    """Settings on a private copy of the seeded template database."""
    db = tmp_path / "shanhai.db"
    shutil.copyfile(template_db, db)
    return Settings(
        environment="test",
        data_dir=tmp_path,
        database_url=f"sqlite:///{db}",
        raster_dir=SAMPLES / "rasters",
        secret_key=TEST_SECRET,  # type: ignore[arg-type]
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(datetime(2026, 11, 25, 9, 30, tzinfo=UTC))


@pytest.fixture
def app(settings: Settings, clock: FixedClock) -> Iterator[FastAPI]:
    application = create_app(settings, clock=clock)
    yield application
    application.state.engine.dispose()


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def session(app: FastAPI) -> Iterator[Session]:
    with app.state.session_factory() as db_session:
        yield db_session


PASSWORDS = {demo.username: demo.password for demo in DEMO_ORGS}
USER_OF_ROLE = {demo.kind.value: demo.username for demo in DEMO_ORGS}


@pytest.fixture
def login(client: TestClient) -> Callable[[str], dict[str, str]]:
    """Return a function giving the auth headers of a demo user (by user name or role)."""
    cache: dict[str, dict[str, str]] = {}

    def _login(who: str) -> dict[str, str]:
        username = USER_OF_ROLE.get(who, who)
        if username not in cache:
            response = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORDS[username]})
            assert response.status_code == 200, response.text
            cache[username] = {"Authorization": f"Bearer {response.json()['access_token']}"}
        return cache[username]

    return _login


@contextmanager
def fresh_postgres_database(suffix: str = "") -> Iterator[str]:
    """Create, migrate, yield (URL) and finally drop a PostgreSQL database of this test run only.

    Its name carries the process id (and ``suffix``), so parallel runs on one server never collide.
    """
    from sqlalchemy.engine import make_url

    url = make_url(POSTGRES_URL)
    url = url.set(database=f"{url.database}_{os.getpid()}{suffix}")
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{url.database}"'))
    except Exception as error:
        admin.dispose()
        service_unavailable("PostgreSQL", error)
    rendered = url.render_as_string(hide_password=False)
    upgrade(rendered)
    try:
        yield rendered
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)'))
        admin.dispose()


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_uvicorn(
    database_url: str, data_dir: Path, name: str, **env: str
) -> tuple[subprocess.Popen[bytes], str, Path]:
    """Start a uvicorn server of the app on ``database_url`` (extra ``SHANHAI_…`` settings in ``env``).

    Returns the process, its base URL and its log file; :func:`wait_healthy` waits for it, :func:`stop_uvicorn`
    ends it.
    """
    port = free_port()
    environment = os.environ | {
        "SHANHAI_ENVIRONMENT": "test",
        "SHANHAI_DATA_DIR": str(data_dir),
        "SHANHAI_DATABASE_URL": database_url,
        "SHANHAI_SECRET_KEY": TEST_SECRET,
        **env,
    }
    log_path = data_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "shanhai.app:create_app", "--host", "127.0.0.1",
             "--port", str(port), "--log-level", "warning"],
            cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    return process, f"http://127.0.0.1:{port}", log_path


def wait_healthy(process: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    """Wait (60 s at most) until the server at ``base`` answers ``/health``; raise with its log if it does not."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start: {log_path.read_text()}") from None
            time.sleep(0.2)


def stop_uvicorn(process: subprocess.Popen[bytes]) -> None:
    """Terminate a server started by :func:`start_uvicorn` (kill it after 10 s)."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def settings_on(kind: str, template_db: Path, tmp_path: Path) -> Iterator[Settings]:
    """Yield the app's settings on a copy of the seeded SQLite template (``kind`` ``"sqlite"``), or on a fresh
    PostgreSQL database seeded with the demo data and rasters (``"postgres"``)."""
    common = {"environment": "test", "data_dir": tmp_path, "raster_dir": SAMPLES / "rasters"}
    if kind == "sqlite":
        shutil.copyfile(template_db, tmp_path / "shanhai.db")
        yield Settings(database_url=f"sqlite:///{tmp_path / 'shanhai.db'}", secret_key=TEST_SECRET, **common)  # type: ignore[arg-type]
        return
    with fresh_postgres_database("_settings") as url:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            seed_demo(session, SAMPLES, clock=SystemClock())
            seed_rasters(session, SAMPLES / "rasters", clock=SystemClock())
        engine.dispose()
        yield Settings(database_url=url, secret_key=TEST_SECRET, **common)  # type: ignore[arg-type]


@contextmanager
def seeded_session(kind: str, template_db: Path, tmp_path: Path, at: datetime) -> Iterator[Session]:
    """Yield a session on a demo-seeded database of its own: a copy of ``template_db`` on SQLite, or a fresh
    PostgreSQL database seeded at ``at`` (``kind`` is ``"sqlite"`` or ``"postgres"``)."""
    if kind == "sqlite":
        path = tmp_path / "seeded.db"
        shutil.copyfile(template_db, path)
        engine = make_engine(f"sqlite:///{path}")
        with make_session_factory(engine)() as session:
            yield session
        engine.dispose()
        return
    with fresh_postgres_database("_seeded") as url:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            seed_demo(session, SAMPLES, clock=FixedClock(at))
            yield session
        engine.dispose()


def rewrite_audit_entry(session: Session, seq: int, payload: Any) -> None:
    """The insider: give entry ``seq`` a new payload, recompute every later hash and the chain head, and commit.

    Each entry keeps its canonicalization scheme, so the rewritten chain verifies: only a kept head can tell.
    """
    prev_hash = session.scalar(select(AuditEntry.prev_hash).where(AuditEntry.seq == seq))
    assert prev_hash is not None
    for entry in session.scalars(select(AuditEntry).where(AuditEntry.seq >= seq).order_by(AuditEntry.seq)).all():
        if entry.seq == seq:
            entry.payload = audit.payload_text(payload, entry.scheme)
        entry.prev_hash = prev_hash
        entry.entry_hash = audit.entry_hash(
            seq=entry.seq, recorded_at=entry.recorded_at, actor=entry.actor, action=entry.action,
            subject=entry.subject, payload=json.loads(entry.payload), prev_hash=prev_hash, scheme=entry.scheme,
        )  # fmt: skip
        prev_hash = entry.entry_hash
        session.flush()  # one row at a time: UNIQUE(prev_hash) must hold after each
    session.execute(update(AuditHead).values(entry_hash=prev_hash))
    session.commit()


@pytest.fixture(scope="session")
def pg_engine() -> Iterator[Engine]:
    """A migrated PostgreSQL + PostGIS database of this test run only, dropped at the end."""
    with fresh_postgres_database() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


@contextmanager
def celery_worker(settings: Settings, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``shanhai worker`` (solo pool) as a subprocess on the settings' broker, queue, database and data."""
    env = {
        **os.environ,
        "SHANHAI_ENVIRONMENT": "test",
        "SHANHAI_DATA_DIR": str(settings.data_dir),
        "SHANHAI_DATABASE_URL": str(settings.database_url),
        "SHANHAI_BROKER_URL": str(settings.broker_url),
        "SHANHAI_SECRET_KEY": TEST_SECRET,
        "SHANHAI_TASK_QUEUE": settings.task_queue,
        "SHANHAI_RASTER_DIR": str(settings.raster_dir),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "shanhai.cli", "worker", "--pool", "solo", "--loglevel", "INFO"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture(scope="session")
def redis_url() -> str:
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except Exception as error:
        service_unavailable("Redis", error)
    return REDIS_URL
