"""A project of 10,000 plots on the bureau's map in headless Chromium (issue 21: shown within 2 s).

Builds a migrated, demo-seeded SQLite database in a temporary directory, adds a project of N plots (default
10,000: irregular 24-vertex 小班 of about 3 ha each, on a 100 × 100 grid near Jingyuan, inserted directly — the
import pipeline is not what is timed here), serves the app with uvicorn in a thread, logs Debian's Chromium in
as the bureau and times ``goto('/projects/{id}')`` until the map is ``idle`` with the plots drawn (the rendered
features are counted). Baseline in the same run: the same page of a project with no plot (the map, the province
boundaries and MapLibre itself). Each figure is the median of ``--runs`` page loads (a fresh browser context per
load, so MapLibre and the tiles are fetched again), after one warm-up load. Also printed: the server time of the
densest tile (SQLite encoder, in-process, the plots kept in memory, then with the memory dropped), and with
``--postgres URL`` the same tile from PostGIS (``ST_AsMVT``) on a copy of the plots. Run::

    .venv/bin/python benchmarks/plot_tiles.py [--plots 10000] [--runs 5] [--postgres postgresql+psycopg://…]

Figures of this machine are in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import shapely
import uvicorn
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from api.seed import DEMO_ORGS, seed_demo  # noqa: E402
from carbon import plot_tiles  # noqa: E402
from carbon.models import ClaimStatus, Plot, Project, ProjectStatus, Scheme  # noqa: E402
from core.auth import User  # noqa: E402
from core.clock import FixedClock  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402
from geodata.area import measure  # noqa: E402
from geodata.geometry import geometry_sha256  # noqa: E402
from shanhai.app import create_app  # noqa: E402

PASSWORDS = {demo.username: demo.password for demo in DEMO_ORGS}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader",
]  # fmt: skip
AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def sub_compartment(rng: random.Random, lon: float, lat: float) -> shapely.MultiPolygon:
    """An irregular 24-vertex polygon of about 3 ha around (lon, lat)."""
    ring = []
    for k in range(24):
        angle = 2 * math.pi * k / 24
        radius = 0.00085 * rng.uniform(0.8, 1.15)
        ring.append((lon + radius * math.cos(angle) * 1.2, lat + radius * math.sin(angle)))
    return shapely.MultiPolygon([shapely.Polygon(ring)])


def add_projects(session: Session, plots: int) -> tuple[int, int]:
    """Add a project of ``plots`` plots and an empty one (the baseline) for the bureau; return their ids."""
    bureau = session.query(User).filter(User.username == "nx-bureau").one()
    ids = []
    for name in ("万块小班 (10k sub-compartments)", "空项目 (empty)"):
        project = Project(code=f"BENCH-{len(ids)}", name=name, description="", organisation_id=bureau.organisation_id,
                          scheme=Scheme.FORESTRY_CARBON_TICKET, status=ProjectStatus.DRAFT, province_code="64",
                          county_code="640424", crediting_start=date(2021, 1, 1), crediting_end=date(2051, 1, 1),
                          created_at=AT, created_by_user_id=bureau.id)  # fmt: skip
        session.add(project)
        session.flush()
        ids.append(project.id)
    rng = random.Random(2026)
    side = math.ceil(math.sqrt(plots))
    rows = []
    for index in range(plots):
        lon, lat = 106.20 + (index % side) * 0.0022, 35.40 + (index // side) * 0.0019
        geometry = sub_compartment(rng, lon, lat)
        west, south, east, north = geometry.bounds
        rows.append(Plot(project_id=ids[0], plot_code=f"XB-{index:05d}", name=None, properties={}, geometry=geometry,
                         geometry_sha256=geometry_sha256(geometry), min_lon=west, min_lat=south, max_lon=east,
                         max_lat=north, area_m2=measure(geometry).area_m2, perimeter_m=1.0, created_at=AT,
                         created_by_user_id=bureau.id, measured_at=AT, claim_start=date(2021, 1, 1),
                         claim_end=date(2051, 1, 1), claim_status=ClaimStatus.ACTIVE, external_registrations=[],
                         declared_area_mu=None, warnings=[]))  # fmt: skip
    session.add_all(rows)
    session.commit()
    return ids[0], ids[1]


def page_load(browser: Any, base: str, project_id: int) -> tuple[float, float, int]:
    """Return seconds to the plots shown and to the map's ``idle``, and how many plot features it draws.

    Shown: the map's first ``idle`` (plots drawn); then the province boundaries are added, until ``idle`` again.
    """
    context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto("/login")
    page.fill("#username", "nx-bureau")
    page.fill("#password", PASSWORDS["nx-bureau"])
    page.click("form.login button[type=submit]")
    page.wait_for_url("**/")
    started = time.perf_counter()
    page.goto(f"/projects/{project_id}")
    page.wait_for_selector(".desk-map[data-plots=shown]", state="attached", timeout=60_000)
    shown = time.perf_counter() - started
    page.wait_for_selector(".desk-map[data-state=idle]", state="attached", timeout=60_000)
    elapsed = time.perf_counter() - started
    drawn = page.evaluate(
        "() => new Set(window.shanhaiMaps.at(-1).queryRenderedFeatures({layers: ['plots-fill']}).map(f => f.id)).size"
    )
    context.close()
    return shown, elapsed, int(drawn)


def densest_tile(session: Session, project_id: int) -> tuple[int, int, int]:
    """Return the zoom-11 tile at the middle of the project's plots (the fitted view's zoom)."""
    extent = plot_tiles.plots_extent(session, project_id)
    assert extent is not None
    lon, lat = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
    z = 11
    n = 2**z
    return z, int((lon + 180) / 360 * n), int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)


def time_tile(session: Session, project_id: int, tile: tuple[int, int, int], *, cold: bool, runs: int) -> float:
    """Return the median seconds to encode ``tile`` (never from the tile cache; ``cold``: outlines read again)."""
    times = []
    for _ in range(runs):
        plot_tiles._tiles.clear()
        if cold:
            plot_tiles._kept.clear()
        started = time.perf_counter()
        plot_tiles.plot_tile(session, project_id, *tile)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def postgres_tile(url: str, sqlite_session: Session, project_id: int, tile: tuple[int, int, int], runs: int) -> float:
    """Copy the plots to a PostGIS database (migrated, demo-seeded) and time the same tile there."""
    upgrade(url)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        seed_demo(session, ROOT / "samples", clock=FixedClock(AT))
        big, _empty = add_projects(session, sqlite_session.query(Plot).filter(Plot.project_id == project_id).count())
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            plot_tiles.plot_tile(session, big, *tile)
            times.append(time.perf_counter() - started)
    engine.dispose()
    return statistics.median(times)


def main() -> None:
    """Build the data, time the page loads and the tile, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plots", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--postgres", help="an empty PostGIS database URL to time ST_AsMVT on the same plots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'shanhai.db'}"
        upgrade(url)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        with factory() as session:
            seed_demo(session, ROOT / "samples", clock=FixedClock(AT))
            started = time.perf_counter()
            big, empty = add_projects(session, args.plots)
            print(f"{args.plots} plots inserted in {time.perf_counter() - started:.1f} s")
        engine.dispose()
        settings = Settings(environment="test", data_dir=Path(tmp), database_url=url,
                            secret_key="benchmark-secret-key-of-at-least-32-chars!")  # type: ignore[arg-type]  # fmt: skip
        app = create_app(settings, clock=FixedClock(AT))
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
            page_load(browser, base, empty)  # warm-up: the browser's own start, the server's first imports
            baseline = [page_load(browser, base, empty) for _ in range(args.runs)]
            loads = [page_load(browser, base, big) for _ in range(args.runs)]
            browser.close()
        server.should_exit = True
        thread.join(timeout=10)
        base_shown = statistics.median(s for s, _, _ in baseline)
        base_idle = statistics.median(i for _, i, _ in baseline)
        shown = statistics.median(s for s, _, _ in loads)
        idle = statistics.median(i for _, i, _ in loads)
        drawn = min(n for _, _, n in loads)
        print(f"empty project's map (baseline): shown {base_shown:.2f} s, idle with boundaries {base_idle:.2f} s "
              f"(medians of {args.runs} loads)")  # fmt: skip
        print(f"{args.plots}-plot project's map: plots shown {shown:.2f} s (×{shown / base_shown:.2f} the baseline), "
              f"idle with boundaries {idle:.2f} s (×{idle / base_idle:.2f}); {drawn} plots drawn at the fitted view; "
              f"target 2 s: {'met' if shown <= 2 else 'MISSED'}")  # fmt: skip
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            tile = densest_tile(session, big)
            cold = time_tile(session, big, tile, cold=True, runs=args.runs)
            warm = time_tile(session, big, tile, cold=False, runs=args.runs)
            print(f"densest tile {tile} on SQLite: {cold * 1000:.0f} ms with the outlines read, "
                  f"{warm * 1000:.0f} ms with them kept")  # fmt: skip
            if args.postgres:
                on_postgis = postgres_tile(args.postgres, session, big, tile, args.runs)
                print(f"same tile on PostGIS (ST_AsMVT): {on_postgis * 1000:.0f} ms")
        engine.dispose()


if __name__ == "__main__":
    main()
