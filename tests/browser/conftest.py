"""Browser fixtures: Debian's Chromium driven by Playwright for Python, against the app served in a thread.

Never ``playwright install`` (it downloads a browser): the tests launch ``/usr/bin/chromium``
(``SHANHAI_TEST_CHROMIUM`` to point elsewhere). Without it they skip with the reason, except under
``CI=true``, where they fail: ``.ci/run`` installs ``chromium`` and ``fonts-noto-cjk`` from Debian.

The server is uvicorn in a thread of this process, on a copy of the seeded template database, with a
:class:`~core.clock.FixedClock`: the demo report is verified and issued and 100 t are retired first (through a
separate app instance, over TestClient), so every page has something to show.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from core.clock import FixedClock
from core.settings import Settings
from shanhai.app import create_app
from tests.conftest import IN_CI, PASSWORDS, SAMPLES, TEST_SECRET, USER_OF_ROLE, free_port
from tests.e2e.test_retirement_certificate import issue_haicang, retire

CHROMIUM = Path(os.environ.get("SHANHAI_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--enable-unsafe-swiftshader",  # WebGL 2 on SwiftShader (web-ui.md)
]  # fmt: skip
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"


@dataclass(frozen=True)
class Site:
    """The served app: its base URL, settings, clock and the retirement made for the pages."""

    base: str
    settings: Settings
    clock: FixedClock
    certificate: dict[str, Any]


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium fonts-noto-cjk)"
    if IN_CI:
        pytest.fail(f"CI=true requires it — {message}")
    pytest.skip(message)


def _prepare(settings: Settings) -> dict[str, Any]:
    """Issue the demo report's tonnes and retire 100 t, through an app of its own (its lifespan ends here)."""
    app = create_app(settings, clock=FixedClock(datetime(2026, 11, 25, 9, 30, tzinfo=UTC)))
    try:
        with TestClient(app) as client, app.state.session_factory() as session:
            tokens: dict[str, dict[str, str]] = {}

            def login(who: str) -> dict[str, str]:
                name = USER_OF_ROLE.get(who, who)
                if name not in tokens:
                    answer = client.post("/api/v1/auth/token", data={"username": name, "password": PASSWORDS[name]})
                    tokens[name] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
                return tokens[name]

            issue_haicang(client, login, _session(session))
            return retire(client, login)  # type: ignore[no-any-return]
    finally:
        app.state.engine.dispose()


def _session(session: Session) -> Session:
    return session


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, template_db: Path) -> Iterator[Site]:
    _need_chromium()
    data = tmp_path_factory.mktemp("site")
    shutil.copyfile(template_db, data / "shanhai.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(environment="test", data_dir=data, database_url=f"sqlite:///{data / 'shanhai.db'}",
                        raster_dir=SAMPLES / "rasters", secret_key=TEST_SECRET,  # type: ignore[arg-type]
                        public_base_url=base, map_review_number="GS（2026）0000号 (test)")  # fmt: skip
    certificate = _prepare(settings)
    clock = FixedClock(datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    app = create_app(settings, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, name="shanhai-web-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the in-thread server did not start"
        time.sleep(0.05)
    yield Site(base, settings, clock, certificate)
    server.should_exit = True
    thread.join(timeout=10)
    app.state.engine.dispose()


@pytest.fixture(scope="module")
def browser(site: Site) -> Iterator[Any]:
    """Chromium for one module: Playwright's sync API keeps an asyncio loop running while it is open, which
    ``asyncio.run()`` in later tests would trip over, so it must close before other modules run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
