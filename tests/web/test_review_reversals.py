"""Reversal proposals on the review desk (``/review/reversals/{id}``, ADR 041 as amended, ADR 038): the loss's
evidence, the tonnes at risk and what confirming cancels; the registry decides with the API's services and rules,
everyone else sees it read-only with the reason and is refused by the server as the API refuses them.

Shared with the browser journeys: :func:`propose_loss` raises a loss event on the issued Haicang plot from a
synthetic pair of its own (the demo's steps, ``api.seed_reversal``, without the confirmation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from api.seed_reversal import HAICANG_CODE, seed_reversal
from carbon.models import Plot
from carbon.reversals.composites import RegisterComposite, register_composite
from carbon.reversals.jobs import execute_in_process
from carbon.reversals.models import CompositeKind, EventStatus, LossEvent
from carbon.reversals.patches import ImportChangePatches, import_patches
from carbon.reversals.synthetic import SUMMER_2024, SUMMER_2025, SyntheticGrid, change_patch_document, write_pair
from carbon.reversals.watch import CreateWatch, create_run
from core.auth import Organisation, OrgKind, User, principal_of
from core.clock import Clock, FixedClock
from core.settings import Settings
from geodata.models import RasterKind
from geodata.rasters import RegisterRasterLayer, register_layer
from tests.conftest import settings_on
from tests.e2e.test_reversals import issue_haicang
from tests.web.helpers import csrf_of, log_in
from tests.web.test_review_desk import text

Login = Callable[[str], dict[str, str]]


def propose_loss(session: Session, *, raster_dir: Path, clock: Clock, stem: str, scar_px: tuple[int, int]) -> int:
    """Raise a loss event (proposed) on the issued Haicang plot: a burn scar of ``scar_px`` pixels in a synthetic
    2024/2025 summer pair named after ``stem``, found by a watch run of the registry; return its id."""

    def principal(kind: OrgKind):  # type: ignore[no-untyped-def]
        user = session.scalars(select(User).join(User.organisation).where(Organisation.kind == kind)
                               .order_by(User.id)).first()  # fmt: skip
        assert user is not None
        return principal_of(user, "test")

    plot = session.scalars(select(Plot).where(Plot.plot_code == HAICANG_CODE)).one()
    bureau, registry = principal(OrgKind.FORESTRY_BUREAU), principal(OrgKind.REGISTRY)
    grid = SyntheticGrid.around(plot.geometry.bounds)
    point = plot.geometry.representative_point()
    col, row = grid.pixel_of(point.x, point.y)
    scar = grid.pixel_box(col - scar_px[0] // 2, row - scar_px[1] // 2, *scar_px)
    files = write_pair(raster_dir, grid, scar, stem=stem)
    patches = change_patch_document([
        (scar, {"图斑号": f"640424-2025-{stem}", "变化类型": "林地变非林地", "变化原因": "森林火灾",
                "变化日期": "2025-04-12", "前地类": "乔木林地", "后地类": "火烧迹地"}),
    ])  # fmt: skip
    import_patches(session, ImportChangePatches(name=f"{stem}-patches", region_code="640424", survey_year=2025),
                   filename=f"森林督查变化图斑_{stem}.geojson", data=patches, actor=bureau, clock=clock)  # fmt: skip
    names = (f"{stem}-2024", f"{stem}-2025")
    for name, file, (start, end) in zip(names, files, (SUMMER_2024, SUMMER_2025), strict=True):
        layer = RegisterRasterLayer(name=name, kind=RasterKind.CONTINUOUS, units="NDVI", path=file,
                                    description="SYNTHETIC NDVI composite (test)")  # fmt: skip
        register_layer(session, layer, raster_dir=raster_dir, actor="system:test", clock=clock)
        composite = RegisterComposite(name=name, kind=CompositeKind.NDVI, raster_layer=name, region_code="640424",
                                      acquired_start=start, acquired_end=end, sensor="synthetic (test)",
                                      description="SYNTHETIC: a test, not an observation.")  # fmt: skip
        register_composite(session, composite, actor=bureau, clock=clock)
    watch = CreateWatch(before=names[0], after=names[1], patch_files=[f"{stem}-patches"])
    run = create_run(session, watch, actor=registry, clock=clock, raster_dir=raster_dir)
    run_id, plot_id = run.id, plot.id
    session.rollback()
    execute_in_process(sessionmaker(bind=session.get_bind()), run_id, raster_dir=raster_dir, clock=clock)
    event_id = session.scalars(
        select(LossEvent.id).where(LossEvent.run_id == run_id, LossEvent.plot_id == plot_id)
    ).one()
    session.rollback()
    return event_id


@pytest.fixture
def settings(tmp_path: Path, template_db: Path) -> Iterator[Settings]:
    """The seeded demo on SQLite, with a raster directory of this test's own (the synthetic pairs go there)."""
    (tmp_path / "rasters").mkdir()
    with settings_on("sqlite", template_db, tmp_path) as settings:
        yield settings.model_copy(update={"raster_dir": tmp_path / "rasters"})


def _status(session: Session, event_id: int) -> EventStatus:
    found = session.scalars(select(LossEvent.status).where(LossEvent.id == event_id)).one()
    session.rollback()
    return found


def test_the_demo_reversal_is_shown_decided_with_its_cancellation(
    client: TestClient, login: Login, session: Session, settings: Settings, clock: FixedClock
) -> None:
    issue_haicang(client, login)
    session.rollback()
    event_id = seed_reversal(session, raster_dir=settings.raster_dir, clock=clock)
    assert event_id is not None
    session.rollback()
    assert log_in(client, "registry").status_code == 303
    queue = client.get("/review")
    assert f'data-testid="decided-reversal-{event_id}"' in queue.text
    page = client.get(f"/review/reversals/{event_id}")
    assert page.status_code == 200, page.text
    body = text(page.text)
    assert "已确认冲销" in body and "森林火灾" in body and "0E-" not in body, body[:2000]
    assert 'data-testid="cancelled"' in page.text and "从缓冲库注销" in body
    assert 'id="confirm-event"' not in page.text and 'data-testid="decision"' in page.text
    picture = client.get(f"/review/reversals/{event_id}/map.png")
    assert picture.status_code == 200 and picture.content.startswith(b"\x89PNG")
    assert client.get(f"/review/reversals/{event_id}/tiles/0/0/0.mvt").status_code in (200, 204)


def test_the_registry_confirms_naming_the_tonnes_and_others_are_refused(
    client: TestClient, login: Login, session: Session, settings: Settings, clock: FixedClock
) -> None:
    issue_haicang(client, login)
    session.rollback()
    event_id = propose_loss(session, raster_dir=settings.raster_dir, clock=clock, stem="web-a", scar_px=(40, 30))
    event = session.get_one(LossEvent, event_id)
    tonnes = event.tonnes_at_risk_t
    session.rollback()
    assert tonnes > 0

    # the auditor sees it read-only and is refused; the verifier does not see it (the API's rule: 404)
    assert log_in(client, "auditor").status_code == 303
    page = client.get(f"/review/reversals/{event_id}")
    assert page.status_code == 200 and 'id="confirm-event"' not in page.text
    assert "only the registry decides reversal proposals" in page.text
    token = csrf_of(page.text)
    refused = client.post(f"/review/reversals/{event_id}/reject", data={"csrf_token": token, "reason": "no"})
    assert refused.status_code == 403, refused.text
    client.cookies.clear()
    assert log_in(client, "verifier").status_code == 303
    assert client.get(f"/review/reversals/{event_id}").status_code == 404
    assert f'href="/review/reversals/{event_id}"' not in client.get("/review").text
    client.cookies.clear()

    # the registry: the consequence named, refused without the confirmation or a reason, then confirmed
    assert log_in(client, "registry").status_code == 303
    assert f'href="/review/reversals/{event_id}"' in client.get("/review").text
    page = client.get(f"/review/reversals/{event_id}")
    summary = text(page.text)
    named = f"{tonnes:,}"
    assert f"确认将注销 {named} 吨：从缓冲库注销 {named} 吨，从项目业主的可交易碳汇量注销 0 吨" in summary, summary[
        -2500:
    ]
    token = csrf_of(page.text)
    action = f"/review/reversals/{event_id}/confirm"
    form = {"csrf_token": token, "reason": "burn scar", "quantity_t": str(tonnes)}
    assert client.post(action, data=form, follow_redirects=False).status_code == 422
    assert client.post(action, data={**form, "reason": " ", "confirm": "yes"}).status_code == 422
    assert _status(session, event_id) is EventStatus.PROPOSED
    done = client.post(action, data={**form, "confirm": "yes"}, follow_redirects=False)
    assert done.status_code == 303, done.text
    assert _status(session, event_id) is EventStatus.CONFIRMED
    assert session.get_one(LossEvent, event_id).cancelled_t == tonnes
    session.rollback()
    again = client.post(f"/review/reversals/{event_id}/reject", data={"csrf_token": token, "reason": "x"})
    assert again.status_code == 409
    shown = text(client.get(f"/review/reversals/{event_id}").text)
    assert f"{named} t" in shown and "SH-" in shown
