"""The demo as ``make run`` seeds it, in Chromium: the public registry's home shows the issued tonnes of both demo
projects — the Haicang forest and the Yongning restoration — and both outlines on its map; the projects page and
the public API list both with their batches (issue 26 item 4).

``SHANHAI_SCREENSHOTS=DIR`` writes ``demo-home-zh.png`` and ``demo-projects-en.png`` to ``DIR``.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from api.seed import seed_issued
from api.seed_fishery import seed_fishery_demo
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.settings import Settings
from shanhai.app import create_app
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, _need_chromium
from tests.browser.test_pages_in_chromium import Watch, wait_islands
from tests.conftest import SAMPLES, TEST_SECRET, free_port

SHOTS = os.environ.get("SHANHAI_SCREENSHOTS")
CODES = ("SH-64-000001", "SH-64-000002", "SH-35-000003")  # Haicang forest, Yongning restoration, Lianjiang fishery


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[str]:
    """Serve a copy of the template database after ``seed_issued`` — the demo of a fresh ``make run``."""
    _need_chromium()
    data = tmp_path_factory.mktemp("demo")
    shutil.copyfile(template_db, data / "shanhai.db")
    settings = Settings(environment="test", data_dir=data, database_url=f"sqlite:///{data / 'shanhai.db'}",
                        raster_dir=SAMPLES / "rasters", secret_key=TEST_SECRET)  # type: ignore[arg-type]  # fmt: skip
    clock = FixedClock(datetime(2026, 11, 25, 9, 30, tzinfo=UTC))
    engine = make_engine(settings.resolved_database_url)
    with make_session_factory(engine)() as session:
        assert seed_issued(session, SAMPLES, evidence_dir=settings.resolved_evidence_dir, clock=clock) == 2
        assert seed_issued(session, SAMPLES, evidence_dir=settings.resolved_evidence_dir, clock=clock) == 0
        assert seed_fishery_demo(session, clock=clock).created  # as `shanhai seed` (make run) does
        session.commit()
    engine.dispose()
    port = free_port()
    app = create_app(settings, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="shanhai-demo-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the in-thread server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def chromium(demo: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def issued_by_project(base: str) -> dict[str, int]:
    batches = httpx.get(f"{base}/public/v1/batches").json()["items"]
    found: dict[str, int] = {}
    for batch in batches:
        found[batch["project_code"]] = found.get(batch["project_code"], 0) + batch["quantity_t"]
    return found


def test_the_public_api_lists_both_issued_projects(demo: str) -> None:
    issued = issued_by_project(demo)
    assert set(issued) == set(CODES) and all(t > 0 for t in issued.values())
    projects = {
        f["properties"]["code"]: f["properties"] for f in httpx.get(f"{demo}/public/v1/projects").json()["features"]
    }
    assert {c: projects[c]["issued_t"] for c in CODES} == issued
    assert projects[CODES[1]]["scheme"] == "ecological_restoration"
    classes = {b["credit_class"] for b in httpx.get(f"{demo}/public/v1/batches").json()["items"]}
    assert classes == {"FCT", "ERS", "OFS"}
    assert {projects[c]["kind"] for c in CODES} == {"plots", "sea_areas"}


def test_home_shows_the_issued_totals_and_both_projects_on_the_map(chromium: Any, demo: str, tmp_path: Path) -> None:
    total = sum(issued_by_project(demo).values())
    context = chromium.new_context(base_url=demo, viewport={"width": 1280, "height": 900}, locale="zh-CN",
                                   extra_http_headers={"Accept-Language": "zh-CN"})  # fmt: skip
    page = context.new_page()
    watch = Watch(page, demo)
    page.goto("/")
    wait_islands(page)
    figure = page.locator(".total .figure").first.inner_text()
    assert int(figure.replace(",", "").replace(" ", "")) == total > 0
    assert page.get_by_text("Nothing issued yet.").count() == 0 and page.get_by_text("尚无签发").count() == 0
    codes = page.evaluate(
        "() => window.shanhaiMap.queryRenderedFeatures({layers: ['outlines-fill']}).map(f => f.properties.code)"
    )
    assert set(CODES) <= set(codes)
    shot = Path(SHOTS) if SHOTS else tmp_path
    shot.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot / "demo-home-zh.png"), full_page=True)
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)
    context.close()


def test_the_projects_page_lists_both_with_their_tonnes(chromium: Any, demo: str, tmp_path: Path) -> None:
    issued = issued_by_project(demo)
    context = chromium.new_context(base_url=demo, viewport={"width": 1280, "height": 900}, locale="en-GB",
                                   extra_http_headers={"Accept-Language": "en-GB"})  # fmt: skip
    page = context.new_page()
    watch = Watch(page, demo)
    page.goto("/registry/projects")
    wait_islands(page)
    text = page.locator("main").inner_text()
    for code in CODES:
        assert code in text and f"{issued[code]:,}" in text, (code, text)
    assert "Yongning" in text and "Haicang" in text
    shot = Path(SHOTS) if SHOTS else tmp_path
    page.screenshot(path=str(shot / "demo-projects-en.png"), full_page=True)
    page.goto(f"/registry/projects/{CODES[1]}")
    wait_islands(page)
    assert "ERS" in page.locator("main").inner_text()
    assert not watch.errors and not watch.outside, (watch.errors, watch.outside)
    context.close()
