"""Benchmark (a): the double-counting check of one new plot against 100,000 stored claims on PostgreSQL.

Fills a fresh PostGIS database with N stored plots (~1 ha squares on a jittered grid over Ningxia, bulk
inserted), then times ``carbon.claims.find_conflicts`` — the GiST index query, loading the candidates,
the exact shapely test and the geodesic overlap areas — for new plots at random places, half of them
overlapping a stored plot. Prints the median and p95 in ms; target: median ≤ 20 ms.

    .venv/bin/python benchmarks/geodata_overlap.py [--plots 100000] [--probes 200] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import time
from datetime import UTC, date, datetime

import shapely
from shapely.geometry import box
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from carbon.claims import NewClaim, find_conflicts
from carbon.models import ClaimStatus, Plot, Project, ProjectStatus, Scheme
from core.auth import Organisation, OrgKind, User
from core.db import make_engine, make_session_factory
from core.migrate import upgrade
from geodata.area import measure
from geodata.geometry import geometry_sha256

NOW = datetime(2026, 11, 25, tzinfo=UTC)
START, END = date(2026, 1, 1), date(2046, 1, 1)
STEP_DEG = 0.0015


def fresh(url: str) -> None:
    """Drop and create the benchmark database."""
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    admin.dispose()


def fill(factory: object, count: int) -> tuple[float, float, int]:
    """Insert ``count`` plots; return the grid origin and its row length."""
    west, south, per_row = 105.0, 35.0, 700
    with factory() as session:  # type: ignore[operator]
        org = Organisation(name="bench", kind=OrgKind.FORESTRY_BUREAU, province_code="64", created_at=NOW)
        user = User(organisation=org, username="bench", display_name="b", password_hash="x", created_at=NOW)
        session.add_all([org, user])
        session.flush()
        project = Project(
            code="SH-64-BENCH", name="b", description="", organisation_id=org.id, scheme=Scheme.FORESTRY_CARBON_TICKET,
            status=ProjectStatus.DRAFT, province_code="64", crediting_start=START, crediting_end=END, created_at=NOW,
            created_by_user_id=user.id,
        )  # fmt: skip
        session.add(project)
        session.flush()
        rng = random.Random(7)
        for chunk in range(0, count, 5000):
            rows = []
            for i in range(chunk, min(chunk + 5000, count)):
                x = west + (i % per_row) * STEP_DEG + rng.uniform(0, 0.0003)
                y = south + (i // per_row) * STEP_DEG + rng.uniform(0, 0.0003)
                geometry = shapely.MultiPolygon([box(x, y, x + 0.001, y + 0.001)])
                m = measure(geometry)
                rows.append({
                    "project_id": project.id, "plot_code": f"P{i}", "name": None, "properties": {},
                    "geometry": geometry, "geometry_sha256": geometry_sha256(geometry), "min_lon": x, "min_lat": y,
                    "max_lon": x + 0.001, "max_lat": y + 0.001, "area_m2": m.area_m2, "perimeter_m": m.perimeter_m,
                    "created_at": NOW, "created_by_user_id": user.id, "measured_at": NOW, "claim_start": START,
                    "claim_end": END, "claim_status": ClaimStatus.ACTIVE, "external_registrations": [],
                    "declared_area_mu": None,
                })  # fmt: skip
            session.execute(insert(Plot), rows)
        session.commit()
        session.execute(text("ANALYZE plot"))
        session.commit()
    return west, south, per_row


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--plots", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/shanhai_bench_overlap")
    args = parser.parse_args()
    fresh(args.database_url)
    upgrade(args.database_url)
    engine = make_engine(args.database_url)
    factory = make_session_factory(engine)
    started = time.perf_counter()
    west, south, per_row = fill(factory, args.plots)
    fill_s = time.perf_counter() - started
    rows = args.plots // per_row
    rng = random.Random(11)
    timings_ms, conflicts_found = [], 0
    with factory() as session:
        for probe in range(args.probes):
            x = west + rng.uniform(0, per_row * STEP_DEG)
            y = south + rng.uniform(0, rows * STEP_DEG)
            size = 0.001 if probe % 2 else 0.0002  # half large enough to always hit a stored plot
            claim = NewClaim(0, "new", shapely.MultiPolygon([box(x, y, x + size, y + size)]))
            began = time.perf_counter()
            found = find_conflicts(session, [claim], start=START, end=END)
            timings_ms.append((time.perf_counter() - began) * 1000)
            conflicts_found += bool(found)
            session.rollback()
    engine.dispose()
    timings_ms.sort()
    print(f"machine: nproc={os.cpu_count()} {platform.machine()} python {platform.python_version()}")
    p95_ms = timings_ms[int(0.95 * len(timings_ms))]
    print(f"stored plots: {args.plots} (bulk insert {fill_s:.1f} s); probes: {args.probes}, hits: {conflicts_found}")
    print(f"find_conflicts median {statistics.median(timings_ms):.2f} ms, p95 {p95_ms:.2f} ms")


if __name__ == "__main__":
    main()
