"""The reversal demo (``api.seed_reversal``): Haicang issued through the workflow first, then a burn scar found,
proposed and confirmed — the buffer pays, the ledger stays whole, the bureau is told."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.seed_reversal import seed_reversal
from carbon.ledger import ledger_violations
from carbon.reversals.models import EventStatus, LossEvent
from core.clock import FixedClock
from core.settings import Settings
from tests.conftest import TEST_SECRET
from tests.e2e.test_reversals import issue_haicang

Login = Callable[[str], dict[str, str]]


@pytest.fixture
def settings(tmp_path: Path, template_db: Path) -> Settings:
    shutil.copyfile(template_db, tmp_path / "shanhai.db")
    (tmp_path / "rasters").mkdir()
    return Settings(environment="test", data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'shanhai.db'}",
                    raster_dir=tmp_path / "rasters", secret_key=TEST_SECRET)  # type: ignore[arg-type]  # fmt: skip


def test_the_demo_ends_in_a_confirmed_reversal(
    client: TestClient, login: Login, session: Session, settings: Settings, clock: FixedClock
) -> None:
    assert seed_reversal(session, raster_dir=settings.raster_dir, clock=clock) is None  # Haicang not issued yet
    issue_haicang(client, login)
    session.rollback()
    event_id = seed_reversal(session, raster_dir=settings.raster_dir, clock=clock)
    assert event_id is not None
    event = session.get_one(LossEvent, event_id)
    assert event.status is EventStatus.CONFIRMED and event.cancelled_t == event.tonnes_at_risk_t > 0
    assert event.ndvi_loss_m2 > 0 and event.patch_loss_m2 > 0
    assert abs(event.ndvi_loss_m2 - event.patch_loss_m2) < event.ndvi_loss_m2 / 1500  # the same scar, both ways
    assert ledger_violations(session) == []
    session.rollback()
    assert seed_reversal(session, raster_dir=settings.raster_dir, clock=clock) is None  # idempotent
    kinds = [m["kind"] for m in client.get("/api/v1/inbox", headers=login("forestry_bureau")).json()["items"]]
    assert kinds[:2] == ["reversal.confirmed", "reversal.proposed"]
    shown = client.get(f"/api/v1/loss-events/{event_id}", headers=login("auditor")).json()
    assert shown["evidence"]["patches"][0]["cause"] == "森林火灾"
    picture = client.get(f"/api/v1/loss-events/{event_id}/map.png", headers=login("registry"))
    assert picture.status_code == 200
    (settings.data_dir / "reversal-demo-map.png").write_bytes(picture.content)
