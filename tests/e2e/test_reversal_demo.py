"""The reversal demo (``api.seed_reversal``): Haicang issued through the workflow first, then a burn scar found,
proposed and confirmed — the buffer pays, the ledger stays whole, the bureau is told."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.seed_reversal import seed_reversal
from carbon.ledger import ledger_violations
from carbon.reversals.models import EventStatus, LossEvent
from core.clock import FixedClock
from core.settings import Settings
from tests.conftest import settings_on
from tests.e2e.test_reversals import issue_haicang

Login = Callable[[str], dict[str, str]]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path, template_db: Path) -> Iterator[Settings]:
    """The seeded demo on SQLite or PostgreSQL, with a raster directory of this test's own."""
    (tmp_path / "rasters").mkdir()
    with settings_on(request.param, template_db, tmp_path) as settings:
        yield settings.model_copy(update={"raster_dir": tmp_path / "rasters"})


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
