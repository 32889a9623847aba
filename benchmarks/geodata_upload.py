"""Benchmark (b): upload of a 10,000-feature GeoPackage — read, validate, measure, overlap-check, store.

Builds a synthetic GeoPackage of N non-overlapping ~1 ha squares in Longde and Jingyuan (Ningxia), then times, on a
fresh migrated database (SQLite by default; ``--database-url`` for PostgreSQL + PostGIS):
``geodata.intake.intake_file`` (read + CRS + validation + areas + report) and
``carbon.plots.register_intake`` (double-counting guard against the stored claims and within the upload,
inserts, one audit entry per plot, one commit). Prints each phase and the total; target ≤ 20 s.

    .venv/bin/python benchmarks/geodata_upload.py [--features 10000] [--runs 3] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from shapely.geometry import box
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from carbon.models import Scheme
from carbon.plots import register_intake
from carbon.projects import CreateProject, create_project
from core.auth import Organisation, OrgKind, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from geodata.intake import intake_file
from geodata.readers import ReadLimits
from geodata.writers import write_layer

CLOCK = FixedClock(datetime(2026, 11, 25, tzinfo=UTC))


def make_gpkg(path: Path, count: int) -> None:
    """N squares of 0.001° (~90 m × 111 m) on a grid with gaps, from 106.1 E, 35.55 N (Longde and Jingyuan).

    The grid must lie in Ningxia, the bench project's province: plots outside it are refused (issue 14).
    """
    per_row = 200
    features = []
    for i in range(count):
        x = 106.1 + (i % per_row) * 0.0015
        y = 35.55 + (i // per_row) * 0.0015
        features.append(({"code": f"B-{i:05d}", "species": "油松", "面积_亩": 15.0}, box(x, y, x + 0.001, y + 0.001)))
    write_layer(path, features, crs="EPSG:4490", driver="GPKG")


def fresh_database(url: str | None, folder: Path) -> str:
    """Return a new empty database: a SQLite file in ``folder``, or ``url`` dropped and created again."""
    if url is None:
        return f"sqlite:///{folder / 'bench.db'}"
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()
    return url


def one_run(data: bytes, url: str | None) -> tuple[float, float]:
    """Return (read + validate seconds, total seconds) for one upload into a fresh database."""
    with tempfile.TemporaryDirectory() as folder:
        database = fresh_database(url, Path(folder))
        upgrade(database)
        engine = make_engine(database)
        factory = make_session_factory(engine)
        with factory() as session:
            org = Organisation(name="bench", kind=OrgKind.FORESTRY_BUREAU, province_code="64", created_at=CLOCK.now())
            user = User(organisation=org, username="bench", display_name="b", password_hash="x", created_at=CLOCK.now())
            session.add_all([org, user])
            session.commit()
            actor = principal_of(user, "bench")
            cmd = CreateProject(
                name="bench", scheme=Scheme.FORESTRY_CARBON_TICKET, province_code="64",
                crediting_start=date(2026, 1, 1), crediting_end=date(2046, 1, 1),
            )  # fmt: skip
            project = create_project(session, cmd, actor=actor, clock=CLOCK)
            started = time.perf_counter()
            intake = intake_file(data, "bench.gpkg", read_limits=ReadLimits(max_features=1_000_000))
            read_s = time.perf_counter() - started
            plots = register_intake(session, project, intake, actor=actor, clock=CLOCK)
            total_s = time.perf_counter() - started
            assert len(plots) == len(intake.features)
        engine.dispose()
    return read_s, total_s


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--features", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.gpkg"
        make_gpkg(path, args.features)
        data = path.read_bytes()
    runs = [one_run(data, args.database_url) for _ in range(args.runs)]
    reads, totals = [r for r, _ in runs], [t for _, t in runs]
    database = "SQLite" if args.database_url is None else "PostgreSQL + PostGIS"
    print(f"machine: nproc={os.cpu_count()} {platform.machine()} python {platform.python_version()}")
    print(f"database: {database}; {args.features} features")
    print(f"read+validate+measure (s): {[round(r, 2) for r in reads]} median {statistics.median(reads):.2f}")
    print(f"total incl. overlap+store (s): {[round(t, 2) for t in totals]} median {statistics.median(totals):.2f}")


if __name__ == "__main__":
    main()
