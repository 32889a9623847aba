"""A real Celery worker process, with Redis as broker and result backend, runs the remeasure task.

Marked ``redis``: under CI=true this fails if Redis is missing; elsewhere it skips.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from carbon.models import Plot
from core.audit import AuditEntry, verify_chain
from core.clock import FixedClock
from core.settings import Settings
from shanhai.app import create_app
from tests.conftest import PASSWORDS, celery_worker

pytestmark = pytest.mark.redis


@pytest.fixture
def broker_settings(settings: Settings, redis_url: str) -> Settings:
    # A queue of its own: other test runs on this machine may share the Redis database.
    return settings.model_copy(update={"broker_url": redis_url, "task_queue": f"test-{uuid.uuid4().hex}"})


@pytest.fixture
def worker(broker_settings: Settings, tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    with celery_worker(broker_settings, tmp_path / "worker.log") as process:
        yield process


def test_worker_remeasures_a_plot(
    broker_settings: Settings, worker: subprocess.Popen[bytes], clock: FixedClock, tmp_path: Path
) -> None:
    app = create_app(broker_settings, clock=clock)
    with app.state.session_factory() as session:
        plot = session.scalars(select(Plot).order_by(Plot.id)).first()
        assert plot is not None
        true_area_m2 = plot.area_m2
        # Corrupt the stored area so that the task has something to correct.
        session.execute(update(Plot).where(Plot.id == plot.id).values(area_m2=1.0))
        session.commit()
        plot_id = plot.id
    with TestClient(app) as client:
        token = client.post(
            "/api/v1/auth/token", data={"username": "nx-bureau", "password": PASSWORDS["nx-bureau"]}
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        queued = client.post(f"/api/v1/plots/{plot_id}/remeasure", headers=headers)
        assert queued.status_code == 202, queued.text
        assert queued.json()["state"] in ("PENDING", "STARTED", "SUCCESS")
        task_id = queued.json()["task_id"]
        deadline = time.monotonic() + 60
        state = "PENDING"
        while time.monotonic() < deadline and state not in ("SUCCESS", "FAILURE"):
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()
            time.sleep(0.2)
            body = client.get(f"/api/v1/tasks/{task_id}", headers=headers).json()
            state = body["state"]
        assert state == "SUCCESS", (tmp_path / "worker.log").read_text()
        assert body["result"]["changed"] is True
        assert body["result"]["area_m2"] == pytest.approx(true_area_m2)
    with app.state.session_factory() as session:
        stored = session.get(Plot, plot_id)
        assert stored is not None and stored.area_m2 == pytest.approx(true_area_m2)
        entry = session.scalars(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()
        assert entry is not None and entry.action == "plot.remeasured" and entry.actor == "system:worker"
        assert verify_chain(session).ok
    app.state.engine.dispose()
    # The worker process, not the API process, ran the task.
    assert f"Task shanhai.plots.remeasure[{task_id}] succeeded" in (tmp_path / "worker.log").read_text()
