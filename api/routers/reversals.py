"""Reversals found from the land (ADR 038): change patches, composites, thresholds, watch runs, loss events.

The registry decides the loss events (its reversal proposals): confirming cancels tonnes per the class's
reversal rule (``carbon.ledger.reversal``), rejecting keeps the event with the reason; the proponent is told
in its inbox. Bureaus and the registry bring evidence in and start runs; the proponent sees its own events.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, File, Form, Query, Request, Response, UploadFile
from pydantic import ValidationError
from shapely.geometry import mapping

from api.deps import CeleryDep, ClockDep, CurrentUser, SessionDep, SettingsDep
from api.fields import Answer, DateText, DecimalText, InstantText
from api.pagination import Page, PageQuery, slice_of
from api.params import IdPath
from api.tasks import enqueue_watch_run
from carbon.reversals.composites import RegisterComposite, list_composites, register_composite
from carbon.reversals.models import ChangePatch, ChangePatchFile, Composite, EventStatus, LossEvent, WatchRun
from carbon.reversals.patches import ImportChangePatches, import_patches
from carbon.reversals.proposals import (
    Decide,
    check_visible,
    confirm_event,
    event_map_png,
    get_event,
    reject_event,
)
from carbon.reversals.thresholds import (
    M2_PER_MU,
    SetThresholds,
    defaults_document,
    effective_thresholds,
    set_thresholds,
)
from carbon.reversals.watch import CreateWatch, create_run, get_run
from core.auth import OrgKind
from core.bounds import INT32_MAX
from core.errors import InvalidInput, NotFound
from geodata.readers import ReadLimits

router = APIRouter(prefix="/api/v1", tags=["reversals"])
PNG = "image/png"


class ChangePatchFileOut(Answer):
    """An imported change-patch file."""

    id: int
    name: str
    filename: str
    sha256: str
    region_code: str
    survey_year: int
    source_crs: str
    mapping: dict[str, Any]
    patch_count: int
    created_at: InstantText


class ChangePatchOut(Answer):
    """One change patch (geometry as GeoJSON, EPSG:4490)."""

    id: int
    patch_code: str
    change_type: str
    cause: str
    loss_kind: str
    change_date: DateText
    area_m2: float
    area_mu: float
    geometry: dict[str, Any]
    properties: dict[str, Any]


class CompositeOut(Answer):
    """A registered composite."""

    id: int
    name: str
    kind: str
    raster_layer_id: int
    region_code: str
    acquired_start: DateText
    acquired_end: DateText
    sensor: str
    vegetated_classes: list[int]
    description: str
    created_at: InstantText


class ThresholdsOut(Answer):
    """The thresholds in force for one credit class, and where they come from."""

    credit_class: str
    season_window_days: int
    min_before_ndvi: float
    ndvi_drop: float
    relative_drop: float
    min_area_m2: float
    source: str


class ThresholdTable(Answer):
    """The thresholds in force per class, with the cited defaults."""

    classes: list[ThresholdsOut]
    defaults: dict[str, Any]


class WatchRunOut(Answer):
    """A watch run: its pair, progress, thresholds and result."""

    id: int
    before_composite_id: int
    after_composite_id: int
    patch_file_ids: list[int]
    status: str
    progress: dict[str, int]
    plots_watched: int
    season_gap_days: int
    thresholds: dict[str, Any]
    events_raised: int | None
    error: dict[str, Any] | None
    created_at: InstantText
    finished_at: InstantText | None


class LossEventOut(Answer):
    """A loss event — the registry's reversal proposal: the loss, its evidence, the tonnes at risk, the decision."""

    id: int
    run_id: int
    plot_id: int
    project_id: int
    credit_class: str
    status: str
    plot_area_m2: float
    lost_area_m2: float
    lost_area_mu: float
    lost_area_ha: float
    ndvi_loss_m2: float
    patch_loss_m2: float
    before_date: DateText
    after_date: DateText
    change_date: DateText | None
    at_risk_tco2e: DecimalText
    tonnes_at_risk_t: int
    at_risk: list[dict[str, Any]]
    evidence: dict[str, Any]
    evidence_sha256: str
    map_url: str
    created_at: InstantText
    decided_at: InstantText | None
    decided_by_user_id: int | None
    decision_reason: str | None
    cancelled_t: int | None
    cancellation: dict[str, Any] | None


def _file_out(row: ChangePatchFile) -> ChangePatchFileOut:
    return ChangePatchFileOut(
        id=row.id, name=row.name, filename=row.filename, sha256=row.sha256, region_code=row.region_code,
        survey_year=row.survey_year, source_crs=row.source_crs, mapping=row.mapping, patch_count=row.patch_count,
        created_at=row.created_at.isoformat(),
    )  # fmt: skip


def _composite_out(row: Composite) -> CompositeOut:
    return CompositeOut(
        id=row.id, name=row.name, kind=row.kind.value, raster_layer_id=row.raster_layer_id,
        region_code=row.region_code, acquired_start=row.acquired_start.isoformat(),
        acquired_end=row.acquired_end.isoformat(), sensor=row.sensor, vegetated_classes=row.vegetated_classes,
        description=row.description, created_at=row.created_at.isoformat(),
    )  # fmt: skip


def _run_out(run: WatchRun) -> WatchRunOut:
    return WatchRunOut(
        id=run.id, before_composite_id=run.before_composite_id, after_composite_id=run.after_composite_id,
        patch_file_ids=run.patch_file_ids, status=run.status.value,
        progress={"done": run.tiles_done, "total": run.tiles_total}, plots_watched=len(run.plot_ids),
        season_gap_days=run.season_gap_days, thresholds=run.thresholds, events_raised=run.events_raised,
        error=run.error, created_at=run.created_at.isoformat(),
        finished_at=run.finished_at.isoformat() if run.finished_at else None,
    )  # fmt: skip


def event_out(event: LossEvent) -> LossEventOut:
    """Return a loss event as answered."""
    return LossEventOut(
        id=event.id, run_id=event.run_id, plot_id=event.plot_id, project_id=event.project_id,
        credit_class=event.credit_class, status=event.status.value, plot_area_m2=event.plot_area_m2,
        lost_area_m2=event.lost_area_m2, lost_area_mu=round(event.lost_area_m2 / float(M2_PER_MU), 3),
        lost_area_ha=round(event.lost_area_m2 / 10_000, 4), ndvi_loss_m2=event.ndvi_loss_m2,
        patch_loss_m2=event.patch_loss_m2, before_date=event.before_date.isoformat(),
        after_date=event.after_date.isoformat(),
        change_date=event.change_date.isoformat() if event.change_date else None,
        at_risk_tco2e=str(event.at_risk_tco2e), tonnes_at_risk_t=event.tonnes_at_risk_t, at_risk=event.at_risk,
        evidence=event.evidence, evidence_sha256=event.evidence_sha256,
        map_url=f"/api/v1/loss-events/{event.id}/map.png", created_at=event.created_at.isoformat(),
        decided_at=event.decided_at.isoformat() if event.decided_at else None,
        decided_by_user_id=event.decided_by_user_id, decision_reason=event.decision_reason,
        cancelled_t=event.cancelled_t, cancellation=event.cancellation,
    )  # fmt: skip


def _json_form(text: str, pointer: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(f"{pointer[1:]} is not JSON: {error}", [{"pointer": pointer}]) from error
    if not isinstance(value, dict):
        raise InvalidInput(f"{pointer[1:]} is a JSON object", [{"pointer": pointer}])
    return value


@router.post("/change-patch-files", status_code=201)
def import_change_patch_file(
    file: Annotated[UploadFile, File(description="Change patches: GeoJSON, zipped Shapefile, GeoPackage, KML, CSV.")],
    name: Annotated[str, Form(min_length=1, max_length=100)],
    region_code: Annotated[str, Form(description="GB/T 2260 province or county code.")],
    survey_year: Annotated[int, Form()],
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    mapping_json: Annotated[str, Form(alias="mapping", description="JSON: canonical key → column.")] = "",
    cause_kinds_json: Annotated[str, Form(alias="cause_kinds", description="JSON: cause value → loss kind.")] = "",
) -> ChangePatchFileOut:
    """Import a 森林督查 change-patch file: every feature is checked, all stored or none (problems listed)."""
    try:
        cmd = ImportChangePatches(
            name=name, region_code=region_code, survey_year=survey_year,
            mapping=_json_form(mapping_json, "/mapping"), cause_kinds=_json_form(cause_kinds_json, "/cause_kinds"),
        )  # fmt: skip
    except ValidationError as error:
        problems = [{"pointer": "/" + "/".join(map(str, e["loc"])), "reason": e["msg"]} for e in error.errors()]
        raise InvalidInput("the change-patch import's fields are invalid", problems) from error
    limits = ReadLimits(max_expanded_bytes=settings.max_expanded_bytes, max_features=settings.max_features_per_file)
    row = import_patches(session, cmd, filename=file.filename or "patches.geojson", data=file.file.read(),
                         actor=principal, clock=clock, limits=limits)  # fmt: skip
    return _file_out(row)


@router.get("/change-patch-files")
def list_change_patch_files(
    session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[ChangePatchFileOut]:
    """List the imported change-patch files, newest first."""
    rows = list(session.query(ChangePatchFile).order_by(ChangePatchFile.id.desc()))
    items, following = slice_of(request, rows, page)
    return Page[ChangePatchFileOut](items=[_file_out(r) for r in items], limit=page.limit, next=following)


@router.get("/change-patch-files/{file_id}/patches")
def list_change_patches(
    file_id: IdPath, session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[ChangePatchOut]:
    """List a file's patches with their geometry (GeoJSON, EPSG:4490) and the loss kind each was given."""
    if session.get(ChangePatchFile, file_id) is None:
        raise NotFound(f"change-patch file {file_id} does not exist")
    rows = list(session.query(ChangePatch).filter(ChangePatch.file_id == file_id).order_by(ChangePatch.id))
    items, following = slice_of(request, rows, page)
    out = [
        ChangePatchOut(
            id=p.id,
            patch_code=p.patch_code,
            change_type=p.change_type,
            cause=p.cause,
            loss_kind=p.loss_kind,
            change_date=p.change_date.isoformat(),
            area_m2=p.area_m2,
            area_mu=round(p.area_m2 / float(M2_PER_MU), 3),
            geometry=dict(mapping(p.geometry)),
            properties=p.properties,
        )
        for p in items
    ]
    return Page[ChangePatchOut](items=out, limit=page.limit, next=following)


@router.post("/composites", status_code=201)
def register_land_composite(
    body: RegisterComposite, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> CompositeOut:
    """Register a raster layer as a dated NDVI or land-cover composite of a region."""
    return _composite_out(register_composite(session, body, actor=principal, clock=clock))


@router.get("/composites")
def list_land_composites(
    session: SessionDep,
    _principal: CurrentUser,
    request: Request,
    page: PageQuery,
    region_code: Annotated[str | None, Query(pattern=r"^\d{2}(\d{4})?$")] = None,
) -> Page[CompositeOut]:
    """List the composites by region and date."""
    items, following = slice_of(request, list_composites(session, region_code), page)
    return Page[CompositeOut](items=[_composite_out(c) for c in items], limit=page.limit, next=following)


@router.get("/loss-thresholds")
def read_loss_thresholds(session: SessionDep, _principal: CurrentUser) -> ThresholdTable:
    """Return the loss thresholds in force per credit class and the cited defaults."""
    classes = [ThresholdsOut(credit_class=c, **t.as_json()) for c, t in sorted(effective_thresholds(session).items())]
    return ThresholdTable(classes=classes, defaults=defaults_document())


@router.put("/loss-thresholds/{credit_class}")
def set_loss_thresholds(
    credit_class: str, body: SetThresholds, principal: CurrentUser, session: SessionDep, clock: ClockDep
) -> ThresholdsOut:
    """Set a credit class's loss thresholds (the registry; audited with the values before and after)."""
    set_thresholds(session, credit_class, body, actor=principal, clock=clock)
    return ThresholdsOut(credit_class=credit_class, **effective_thresholds(session)[credit_class].as_json())


@router.post("/watch-runs", status_code=202)
def create_watch_run(
    body: CreateWatch,
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
    celery: CeleryDep,
    settings: SettingsDep,
) -> WatchRunOut:
    """Start a monitoring run over two same-season composites (and change patches); poll it for progress.

    A pair that may not be compared (a winter composite against a summer one, other kinds, regions or grids)
    is refused here and nothing is recorded. Without a broker the run has finished when this returns.
    """
    run = create_run(session, body, actor=principal, clock=clock, raster_dir=settings.raster_dir)
    run_id = run.id
    enqueue_watch_run(celery, run_id)
    session.expire_all()
    return _run_out(get_run(session, run_id))


@router.get("/watch-runs")
def list_watch_runs(
    session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[WatchRunOut]:
    """List the watch runs, newest first."""
    rows = list(session.query(WatchRun).order_by(WatchRun.id.desc()))
    items, following = slice_of(request, rows, page)
    return Page[WatchRunOut](items=[_run_out(r) for r in items], limit=page.limit, next=following)


@router.get("/watch-runs/{run_id}")
def read_watch_run(run_id: IdPath, session: SessionDep, _principal: CurrentUser) -> WatchRunOut:
    """Return a watch run: status, progress, thresholds, events raised."""
    return _run_out(get_run(session, run_id))


@router.get("/loss-events")
def list_loss_events(
    session: SessionDep,
    principal: CurrentUser,
    request: Request,
    page: PageQuery,
    status: Annotated[EventStatus | None, Query()] = None,
    project_id: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
) -> Page[LossEventOut]:
    """List loss events (reversal proposals), newest first: all for the registry and auditors, else your own."""
    from carbon.models import Project

    query = session.query(LossEvent).order_by(LossEvent.id.desc())
    if status is not None:
        query = query.filter(LossEvent.status == status)
    if project_id is not None:
        query = query.filter(LossEvent.project_id == project_id)
    if principal.role not in (OrgKind.REGISTRY, OrgKind.AUDITOR):
        own = session.query(Project.id).filter(Project.organisation_id == principal.organisation_id)
        query = query.filter(LossEvent.project_id.in_(own.scalar_subquery()))
    items, following = slice_of(request, list(query), page)
    return Page[LossEventOut](items=[event_out(e) for e in items], limit=page.limit, next=following)


@router.get("/loss-events/{event_id}")
def read_loss_event(event_id: IdPath, session: SessionDep, principal: CurrentUser) -> LossEventOut:
    """Return a loss event with its evidence, tonnes at risk (per issued report) and decision."""
    event = get_event(session, event_id)
    check_visible(session, event, principal)
    return event_out(event)


@router.get("/loss-events/{event_id}/map.png", response_class=Response, responses={200: {"content": {PNG: {}}}})
def read_loss_event_map(
    event_id: IdPath, session: SessionDep, principal: CurrentUser, settings: SettingsDep
) -> Response:
    """Return the before/after map: NDVI (or vegetated cover) before | after, lost pixels red, plot outline white."""
    event = get_event(session, event_id)
    check_visible(session, event, principal)
    return Response(event_map_png(session, event, raster_dir=settings.raster_dir), media_type=PNG)


DECIDE_EXAMPLE = {"reason": "Burn scar confirmed on site by the county forestry station (report 2026-37)."}


@router.post("/loss-events/{event_id}/confirm")
def confirm_loss_event(
    event_id: IdPath,
    body: Annotated[Decide, Body(examples=[DECIDE_EXAMPLE])],
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
) -> LossEventOut:
    """Confirm a reversal proposal: cancel its tonnes from the buffer per the class's reversal rule (registry)."""
    return event_out(confirm_event(session, event_id, body, actor=principal, clock=clock))


@router.post("/loss-events/{event_id}/reject")
def reject_loss_event(
    event_id: IdPath,
    body: Annotated[Decide, Body(examples=[DECIDE_EXAMPLE])],
    principal: CurrentUser,
    session: SessionDep,
    clock: ClockDep,
) -> LossEventOut:
    """Reject a reversal proposal with the reason; the event is kept, nothing is cancelled (registry)."""
    return event_out(reject_event(session, event_id, body, actor=principal, clock=clock))
