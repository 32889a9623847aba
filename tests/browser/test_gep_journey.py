"""The ecology bureau's GEP journey in Chromium (issue 24), with Redis and a real Celery worker, zh and en.

Chinese: the bureau starts a run on the demo stack from /gep/runs/new, watches its progress (tiles done of total,
per worker: the worker process's name), opens an indicator's value raster on the map (tiles from the run's COG
render, the legend shows the unit, a click reads the value of the COG's pixel there), starts a 2026 run on the
wetter synthetic precipitation and compares the two (difference map and change table). English: the same pages
read back, a click read again. Throughout: no console error, no request leaving the server, axe-core clean.

Marked ``redis`` like tests/integration/test_gep_celery.py: under CI=true this fails if Redis is missing.
``SHANHAI_SCREENSHOTS=docs/screenshots`` writes the screenshots (``gep-*``).
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rasterio
import uvicorn

from core.clock import FixedClock
from core.settings import Settings
from shanhai.app import create_app
from tests.browser.conftest import Site, _need_chromium
from tests.browser.test_pages_in_chromium import LOCALES, SHOTS, Watch, axe_violations, log_in
from tests.conftest import PASSWORDS, SAMPLES, TEST_SECRET, USER_OF_ROLE, celery_worker, free_port

pytestmark = pytest.mark.redis

MAP = ".gep-map[data-state=idle]"
#: Inside the demo townships (synthetic stack over Jingyuan, 106.2–106.5° E, 35.35–35.65° N).
POINT = (106.3123, 35.4871)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, template_db: Path, redis_url: str) -> Iterator[Site]:
    """The app served in a thread with a broker, and a real worker process on the same database and data."""
    _need_chromium()
    data = tmp_path_factory.mktemp("gep-site")
    shutil.copyfile(template_db, data / "shanhai.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(environment="test", data_dir=data, database_url=f"sqlite:///{data / 'shanhai.db'}",
                        raster_dir=SAMPLES / "rasters", secret_key=TEST_SECRET,  # type: ignore[arg-type]
                        public_base_url=base, broker_url=redis_url, task_queue=f"test-{uuid.uuid4().hex}",
                        map_review_number="GS（2026）0000号 (test)")  # fmt: skip
    clock = FixedClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    app = create_app(settings, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="shanhai-gep-test-server", daemon=True)
    with celery_worker(settings, data / "worker.log"):
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "the in-thread server did not start"
            time.sleep(0.05)
        yield Site(base, settings, clock, {})
        server.should_exit = True
        thread.join(timeout=10)
    app.state.engine.dispose()


def shot(page: Any, name: str, language: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"gep-{name}-{language}.png"), full_page=True)


def check(page: Any, problems: dict[str, list[str]], name: str) -> None:
    if found := axe_violations(page):
        problems[name] = found


def register_2026_precipitation(site: Site) -> None:
    """The registry registers the synthetic wetter 2026 precipitation (a raster layer, over the JSON API)."""
    user = USER_OF_ROLE["registry"]
    form = urllib.parse.urlencode({"username": user, "password": PASSWORDS[user]}).encode()
    with urllib.request.urlopen(urllib.request.Request(site.base + "/api/v1/auth/token", data=form)) as answer:
        token = json.load(answer)["access_token"]
    body = {"name": "gep-jy-precipitation-2026", "kind": "continuous", "units": "mm",
            "path": "gep_precipitation_mm_2026.tif", "description": "SYNTHETIC 2026 precipitation (x1.08)"}  # fmt: skip
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    request = urllib.request.Request(
        site.base + "/api/v1/raster-layers", data=json.dumps(body).encode(), headers=headers
    )
    with urllib.request.urlopen(request) as answer:  # our own server, 127.0.0.1
        assert answer.status == 201


def start_run(page: Any, name: str, year: int, precipitation: str | None = None) -> int:
    page.goto("/gep/runs/new")
    page.fill("#run-name", name)
    page.fill("#run-year", str(year))
    if precipitation:
        page.select_option("#raster-precipitation", f"precipitation={precipitation}")
    page.click("#start-run")
    page.wait_for_url("**/gep/runs/*")
    return int(page.url.rsplit("/", 1)[1])


def wait_map(page: Any) -> None:
    try:
        page.wait_for_selector(MAP, state="attached", timeout=60_000)
    except Exception as error:
        state = page.evaluate("() => [...document.querySelectorAll('.gep-map')].map(m => ({...m.dataset}))")
        raise AssertionError(f"the GEP map did not reach idle: {state}") from error


def click_at(page: Any, lon: float, lat: float) -> str:
    """Click the map at lon/lat; return the pixel value the popup shows (its data attribute)."""
    canvas = page.locator(".gep-map canvas").first
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    x, y = page.evaluate(
        "([lon, lat]) => { const p = window.shanhaiMaps.at(-1).project([lon, lat]); return [p.x, p.y]; }", [lon, lat]
    )
    page.mouse.click(box["x"] + x, box["y"] + y)
    value = page.wait_for_selector(".maplibregl-popup-content .pixel-value")
    return str(value.get_attribute("data-value"))


def cog_value(site: Site, run: int, indicator: str) -> float:
    path = site.settings.data_dir / "gep" / "runs" / str(run) / f"value_{indicator}.tif"
    with rasterio.open(path) as data:
        assert data.overviews(1) == [] or data.overviews(1)[0] == 2
        return float(next(data.sample([POINT]))[0])


def test_the_ecology_bureau_journey(browser: Any, site: Site) -> None:
    register_2026_precipitation(site)
    runs: dict[str, int] = {}
    for language in ("zh", "en"):
        accept = {"Accept-Language": LOCALES[language]}
        ctx = browser.new_context(base_url=site.base, viewport={"width": 1280, "height": 900},
                                  locale=LOCALES[language], extra_http_headers=accept)  # fmt: skip
        page = ctx.new_page()
        watch = Watch(page, site.base)
        tiles: list[int] = []

        def seen(response: Any, tiles: list[int] = tiles) -> None:
            if "/tiles/" in response.url and response.url.endswith(".png"):
                tiles.append(response.status)

        page.on("response", seen)
        problems: dict[str, list[str]] = {}
        log_in(page, USER_OF_ROLE["ecology_bureau"])

        if language == "zh":
            # 1. a run on the demo stack, started from the form; its progress watched while the worker computes it
            page.goto("/gep/runs/new")
            check(page, problems, "new")
            shot(page, "new", language)
            runs["before"] = start_run(page, "泾源 2025 (演示栈)", 2025)
            assert page.locator("[data-testid=tiles-done]").count() == 1
            assert "/ 4" in page.inner_text("progress") or "4" in page.inner_text("[data-testid=tiles-done]")
            wait_map(page)
            workers = page.inner_text("[data-testid=workers]")
            assert "celery@" in workers and "4" in workers, workers
            runs["after"] = start_run(page, "泾源 2026 (湿润年, 合成)", 2026, "gep-jy-precipitation-2026")
            wait_map(page)
        else:
            page.goto("/gep/runs/new")
            check(page, problems, "new")
            shot(page, "new", language)
        # 2. an indicator's value raster on the map: tiles render, the legend's unit, a click reads the COG's pixel
        page.goto(f"/gep/runs/{runs['before']}")
        wait_map(page)
        assert "water_conservation" == page.eval_on_selector("#layer-select", "e => e.value")
        assert tiles and all(status in (200, 204) for status in tiles) and 200 in tiles, tiles
        legend = page.inner_text("#legend")
        assert ("元/像元" if language == "zh" else "yuan per pixel") in legend, legend
        value = click_at(page, *POINT)
        assert float(value) == cog_value(site, runs["before"], "water_conservation")
        page.fill("#opacity", "50")
        check(page, problems, "run")
        shot(page, "run", language)
        # 3. year on year: the 2026 run against the 2025 run, as a difference map and a table
        page.goto(f"/gep/runs/{runs['after']}")
        wait_map(page)
        page.select_option("#compare", str(runs["before"]))
        page.click("#compare-runs")
        wait_map(page)
        assert page.locator("[data-testid=change-table] tbody tr").count() > 0
        assert f"/gep/runs/{runs['before']}/compare/{runs['after']}/tiles/" in page.eval_on_selector(
            ".gep-map", "e => e.dataset.config"
        )
        check(page, problems, "compare")
        shot(page, "compare", language)
        page.goto("/gep/runs")
        assert page.locator("[data-testid=gep-runs] tbody tr").count() >= 3
        check(page, problems, "runs")
        shot(page, "runs", language)

        assert not watch.errors, watch.errors
        assert not watch.outside, watch.outside
        assert not problems, problems
        ctx.close()
