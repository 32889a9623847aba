"""Loss events as reversal proposals: raised with their evidence, confirmed (cancelling tonnes) or rejected.

**Raising** (:func:`raise_events`, at the end of a watch run). Per watched plot, the lost area is the larger of
what the composites show (pixels that lost cover under the class thresholds, by pixel centre, geodesic pixel
areas) and what the loss patches dated inside the interval cover (geodesic area of their union with the plot):
both observe the same loss, so they are not added. A plot whose lost area reaches its class's ``min_area_m2``
gets an event — the registry's proposal — with:

* the evidence: both composites (layer, SHA-256, acquisition window, sensor), the thresholds applied, the
  pixel figures, the patches met, the lost pixels as GeoJSON; its canonical SHA-256;
* the **tonnes at risk** (:func:`at_risk_of`): for each issued report covering the plot, the plot's share of
  the report — Σ its units' removals / Σ all units' removals, read from the report's trace with the units'
  plots from the report's inputs (``unit_plots``) — times the batch's issued tonnes times the lost share of the
  plot; the sum rounded **up** to whole tonnes (a reversal covers the loss; issuance floored), less what
  confirmed events of the plot cancelled already.

The proponent's organisation and the registry get an inbox notice; each event has its audit entry.

**Deciding** (registry only, once). :func:`confirm_event` cancels the tonnes through
:func:`carbon.ledger.reversal.cover` — the buffer pool first, then the proponent's tradable tonnes where the
class rule says so, refused whole when they cannot be covered — in one unit of work with the event's change,
its audit entry and the proponent's notice. :func:`reject_event` keeps the event with the reason.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import shapely
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from carbon.ledger import CLASS_OF_SCHEME, Batch, UnitOfWork, cover, serials
from carbon.models import MonitoringReport, Plot, ReportStatus
from carbon.reversals.evidence import loss_geojson, map_png, read_pair
from carbon.reversals.kernels import midpoint, plot_shares, unit_removals
from carbon.reversals.models import (
    ChangePatch,
    Composite,
    EventStatus,
    LossEvent,
    RunStatus,
    WatchRun,
)
from carbon.reversals.thresholds import M2_PER_MU, Thresholds
from carbon.reversals.watch import _layer_of, _loss, merged_sums, pending_plots
from core import audit, inbox
from core.auth import Organisation, OrgKind, Principal
from core.canonical import canonical_hash
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from geodata.area import measure
from geodata.rasters import resolve_path

THOUSANDTH = Decimal("0.001")


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type in ("Polygon", "MultiPolygon")]
    return unary_union(parts) if parts else shapely.Polygon()


def _patch_losses(
    session: Session, run: WatchRun, before: Composite, after: Composite, plots: Sequence[Plot]
) -> dict[int, tuple[float, list[tuple[dict[str, Any], BaseGeometry]], date | None]]:
    """Return per plot: the geodesic area of its union with the run's loss patches, the patches, the first date."""
    if not run.patch_file_ids or not plots:
        return {}
    patches = list(
        session.scalars(
            select(ChangePatch).where(
                ChangePatch.file_id.in_(run.patch_file_ids),
                ChangePatch.loss_kind != "gain",
                ChangePatch.change_date >= before.acquired_start,
                ChangePatch.change_date <= after.acquired_end,
            )
        )
    )
    if not patches:
        return {}
    tree = shapely.STRtree([p.geometry for p in plots])
    met: dict[int, list[ChangePatch]] = defaultdict(list)
    for patch in patches:
        for index in tree.query(patch.geometry, predicate="intersects"):
            met[int(index)].append(patch)
    found: dict[int, tuple[float, list[tuple[dict[str, Any], BaseGeometry]], date | None]] = {}
    for index, hits in met.items():
        plot = plots[index]
        pieces = [(p, _polygonal(plot.geometry.intersection(p.geometry))) for p in hits]
        pieces = [(p, g) for p, g in pieces if not g.is_empty]
        if not pieces:
            continue
        area_m2 = measure(_polygonal(unary_union([g for _p, g in pieces]))).area_m2
        facts = [
            ({"patch_id": p.id, "patch_code": p.patch_code, "cause": p.cause, "change_type": p.change_type,
              "loss_kind": p.loss_kind, "change_date": p.change_date.isoformat(),
              "area_in_plot_m2": round(measure(g).area_m2, 2)}, g)
            for p, g in pieces
        ]  # fmt: skip
        found[plot.id] = (area_m2, facts, min(p.change_date for p, _g in pieces))
    return found


def at_risk_of(session: Session, plot: Plot, lost_fraction: Decimal) -> tuple[list[dict[str, Any]], Decimal, int]:
    """Return the per-report breakdown, the exact tonnes at risk and the whole tonnes (rounded up, capped).

    Tonnes already cancelled by confirmed events of the plot are subtracted from the whole tonnes.
    """
    reports = session.scalars(
        select(MonitoringReport)
        .where(MonitoringReport.project_id == plot.project_id, MonitoringReport.status == ReportStatus.ISSUED)
        .order_by(MonitoringReport.id)
    )
    lines: list[dict[str, Any]] = []
    total, issued_total = Decimal(0), 0
    for report in reports:
        if plot.id not in report.plot_ids:
            continue
        batch = session.scalars(select(Batch).where(Batch.source == f"monitoring_report:{report.id}")).first()
        if batch is None:
            continue
        unit_plots = {str(u): int(p) for u, p in (report.inputs.get("unit_plots") or {}).items()}
        removals = unit_removals(report.record.get("trace") or [])
        if unit_plots and removals:
            share, basis = plot_shares(removals, unit_plots).get(plot.id, Decimal(0)), "trace"
        elif len(report.plot_ids) == 1:
            share, basis = Decimal(1), "only-plot"
        else:  # no unit in the trace names its plot: no guess, the line says so and counts nothing
            share, basis = Decimal(0), "share-not-in-trace"
        exact = Decimal(batch.quantity_t) * share * lost_fraction
        total += exact
        issued_total += batch.quantity_t
        lines.append({
            "report_id": report.id, "record_sha256": report.record_sha256, "batch_id": batch.id,
            "vintage_year": batch.vintage_year, "issued_t": batch.quantity_t, "buffer_t": batch.buffer_t,
            "plot_share": str(share.quantize(Decimal("0.000001"))), "share_basis": basis,
            "units": sorted(u for u, p in unit_plots.items() if p == plot.id),
            "lost_fraction": str(lost_fraction.quantize(Decimal("0.000001"))),
            "at_risk_tco2e": str(exact.quantize(THOUSANDTH)),
        })  # fmt: skip
    cancelled = session.scalar(
        select(func.coalesce(func.sum(LossEvent.cancelled_t), 0)).where(
            LossEvent.plot_id == plot.id, LossEvent.status == EventStatus.CONFIRMED
        )
    )
    whole = min(int(total.to_integral_value(rounding=ROUND_CEILING)), issued_total)
    return lines, total.quantize(THOUSANDTH), max(whole - int(cancelled or 0), 0)


def _registry_orgs(session: Session) -> list[int]:
    return list(session.scalars(select(Organisation.id).where(Organisation.kind == OrgKind.REGISTRY)))


def raise_events(session: Session, run_id: int, *, raster_dir: Path, clock: Clock) -> list[LossEvent]:
    """Finish a run: merge the tiles, raise the loss events with evidence and notices, audited; commits."""
    run = session.scalars(select(WatchRun).where(WatchRun.id == run_id).with_for_update()).one()
    if run.status is not RunStatus.RUNNING:
        return []
    before = session.get_one(Composite, run.before_composite_id)
    after = session.get_one(Composite, run.after_composite_id)
    sums = merged_sums(session, run_id)
    plots = list(
        session.scalars(select(Plot).where(Plot.id.in_(run.plot_ids)).options(joinedload(Plot.project))).unique()
    ) if run.plot_ids else []  # fmt: skip
    patch_losses = _patch_losses(session, run, before, after, plots)
    pending = pending_plots(session, [p.id for p in plots])
    events: list[LossEvent] = []
    skipped_pending: list[int] = []
    for plot in sorted(plots, key=lambda p: p.id):
        credit_class = CLASS_OF_SCHEME[plot.project.scheme].value
        thresholds = Thresholds(**run.thresholds[credit_class])
        ndvi_m2 = sums.get(plot.id, (0.0, 0.0))[0]
        patch_m2, patch_facts, first_day = patch_losses.get(plot.id, (0.0, [], None))
        lost_m2 = max(ndvi_m2, patch_m2)
        if lost_m2 <= 0 or lost_m2 < thresholds.min_area_m2:
            continue
        if plot.id in pending:
            skipped_pending.append(plot.id)
            continue
        events.append(
            _event(session, run, plot, credit_class, thresholds, (before, after), (ndvi_m2, patch_m2, lost_m2),
                   sums.get(plot.id, (0.0, 0.0))[1], patch_facts, first_day, raster_dir=raster_dir, clock=clock)
        )  # fmt: skip
    session.add_all(events)
    session.flush()
    registry = _registry_orgs(session)
    for event in events:
        _announce(session, event, registry, clock=clock)
    run.status, run.finished_at, run.events_raised = RunStatus.SUCCEEDED, clock.now(), len(events)
    summary = {"events": [e.id for e in events], "plots_watched": len(plots), "pending_plots": skipped_pending,
               "plots_with_valid_pixels": len(sums)}  # fmt: skip
    audit.append(session, actor="system:worker", action="watch_run.succeeded", subject=f"watch_run:{run.id}",
                 payload=summary, clock=clock)  # fmt: skip
    session.commit()
    return events


def _event(
    session: Session, run: WatchRun, plot: Plot, credit_class: str, thresholds: Thresholds,
    composites: tuple[Composite, Composite], areas: tuple[float, float, float], valid_m2: float,
    patch_facts: list[tuple[dict[str, Any], BaseGeometry]], first_day: date | None, *, raster_dir: Path, clock: Clock,
) -> LossEvent:  # fmt: skip
    before, after = composites
    ndvi_m2, patch_m2, lost_m2 = areas
    fraction = min(Decimal(repr(lost_m2)) / Decimal(repr(plot.area_m2)), Decimal(1))
    lines, exact, whole = at_risk_of(session, plot, fraction)
    layers = [_layer_of(session, c) for c in composites]
    grid, window, old, new, local = read_pair([resolve_path(raster_dir, layer.path) for layer in layers], plot.geometry)
    lost_pixels = _loss(before, old, new, thresholds)
    evidence = {
        "composites": [
            {"role": role, "name": c.name, "kind": c.kind.value, "layer": layer.name, "layer_sha256": layer.sha256,
             "acquired_start": c.acquired_start.isoformat(), "acquired_end": c.acquired_end.isoformat(),
             "sensor": c.sensor, "region_code": c.region_code}
            for role, c, layer in zip(("before", "after"), composites, layers, strict=True)
        ],
        "season_gap_days": run.season_gap_days,
        "thresholds": thresholds.as_json(),
        "figures": {
            "plot_area_m2": round(plot.area_m2, 2), "valid_m2": round(valid_m2, 2), "ndvi_loss_m2": round(ndvi_m2, 2),
            "patch_loss_m2": round(patch_m2, 2), "lost_area_m2": round(lost_m2, 2),
            "lost_area_mu": round(lost_m2 / float(M2_PER_MU), 3), "lost_area_ha": round(lost_m2 / 10_000, 4),
            "lost_fraction": str(fraction.quantize(Decimal("0.000001"))),
            "pixel_rule": "a pixel is the plot's when its centre lies in the plot; areas geodesic (GRS80)",
        },
        "patches": [facts for facts, _g in patch_facts],
        "map": loss_geojson(grid, window, lost_pixels, local, plot.geometry, patch_facts),
        "watch_run_id": run.id,
    }  # fmt: skip
    return LossEvent(
        run_id=run.id, plot_id=plot.id, project_id=plot.project_id, credit_class=credit_class,
        status=EventStatus.PROPOSED, plot_area_m2=plot.area_m2, lost_area_m2=lost_m2, ndvi_loss_m2=ndvi_m2,
        patch_loss_m2=patch_m2, before_date=midpoint(before.acquired_start, before.acquired_end),
        after_date=midpoint(after.acquired_start, after.acquired_end), change_date=first_day,
        at_risk_tco2e=exact, tonnes_at_risk_t=whole, at_risk=lines, evidence=evidence,
        evidence_sha256=canonical_hash(evidence), created_at=clock.now(),
    )  # fmt: skip


def _announce(session: Session, event: LossEvent, registry: list[int], *, clock: Clock) -> None:
    plot = session.get_one(Plot, event.plot_id)
    where = plot.plot_code or f"plot {plot.id}"
    mu, ha = event.lost_area_m2 / float(M2_PER_MU), event.lost_area_m2 / 10_000
    body = (f"{mu:.2f} 亩 ({ha:.4f} ha) of {where} lost cover between {event.before_date} and {event.after_date}; "
            f"{event.tonnes_at_risk_t} t at risk. Evidence SHA-256 {event.evidence_sha256}.")  # fmt: skip
    facts = {"loss_event_id": event.id, "plot_id": plot.id, "tonnes_at_risk_t": event.tonnes_at_risk_t}
    link = f"/api/v1/loss-events/{event.id}"
    subject = f"loss_event:{event.id}"
    notices = [(plot.project.organisation_id, "reversal.proposed", f"Loss found on {where}: reversal proposed")]
    notices += [(org, "reversal.to_review", f"Reversal proposal for {where} to review") for org in registry]
    for organisation_id, kind, title in notices:
        inbox.post(session, organisation_id, kind=kind, subject=subject, title=title, body=body, link=link,
                   data=facts, clock=clock)  # fmt: skip
    payload = {**facts, "project_id": event.project_id, "lost_area_m2": round(event.lost_area_m2, 2),
               "ndvi_loss_m2": round(event.ndvi_loss_m2, 2), "patch_loss_m2": round(event.patch_loss_m2, 2),
               "at_risk_tco2e": str(event.at_risk_tco2e), "evidence_sha256": event.evidence_sha256,
               "watch_run_id": event.run_id}  # fmt: skip
    audit.append(session, actor="system:worker", action="loss_event.proposed", subject=f"loss_event:{event.id}",
                 payload=payload, clock=clock)  # fmt: skip


class Decide(BaseModel):
    """The registry's decision on a proposal: its reason, and (to confirm) the tonnes if not those at risk."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: str = Field(min_length=1, max_length=5000)
    quantity_t: int | None = Field(
        default=None, ge=1, description="Confirm only: tonnes to cancel, when the registry's review differs."
    )


def get_event(session: Session, event_id: int) -> LossEvent:
    """Return a loss event."""
    event = session.get(LossEvent, event_id)
    if event is None:
        raise NotFound(f"loss event {event_id} does not exist")
    return event


def check_visible(session: Session, event: LossEvent, principal: Principal) -> None:
    """Refuse a caller other than the registry, auditors and the proponent's organisation (``404``)."""
    if principal.role in (OrgKind.REGISTRY, OrgKind.AUDITOR):
        return
    plot = session.get_one(Plot, event.plot_id)
    if plot.project.organisation_id != principal.organisation_id:
        raise NotFound(f"loss event {event.id} does not exist")


ONLY_THE_REGISTRY = "only the registry decides reversal proposals"


def decision_refusal(event: LossEvent, actor: Principal) -> str | None:
    """Return why ``actor`` may not decide ``event``, or ``None`` when they may.

    The rule :func:`confirm_event` and :func:`reject_event` apply, as they state it: the review desk shows it
    before anyone tries.
    """
    if actor.role is not OrgKind.REGISTRY:
        return ONLY_THE_REGISTRY
    if event.status is not EventStatus.PROPOSED:
        return f"loss event {event.id} was {event.status.value} already"
    return None


def _decidable(session: Session, event_id: int, actor: Principal, decision: Decide) -> LossEvent:
    if actor.role is not OrgKind.REGISTRY:
        raise PermissionDenied(ONLY_THE_REGISTRY)
    if not decision.reason.strip():
        raise InvalidInput("a decision states its reason", [{"pointer": "/reason"}])
    event = session.scalars(select(LossEvent).where(LossEvent.id == event_id).with_for_update()).first()
    if event is None:
        raise NotFound(f"loss event {event_id} does not exist")
    refused = decision_refusal(event, actor)
    if refused is not None:
        raise Conflict(refused)
    return event


def confirm_event(session: Session, event_id: int, decision: Decide, *, actor: Principal, clock: Clock) -> LossEvent:
    """Confirm a proposal: cancel its tonnes per the reversal rules, audited, the proponent notified; commits.

    Raises:
        PermissionDenied: Not the registry.
        Conflict: Decided already.
        InsufficientUnits: The buffer (and, where the class rule allows, the proponent) cannot cover the tonnes.
    """
    event = _decidable(session, event_id, actor, decision)
    quantity_t = decision.quantity_t if decision.quantity_t is not None else event.tonnes_at_risk_t
    uow = UnitOfWork(session, clock)
    cancellation: dict[str, Any] = {"quantity_t": quantity_t, "rule": None, "from_buffer": [], "from_proponent": []}
    if quantity_t > 0:
        reason = f"loss event {event.id} (plot {event.plot_id}): {decision.reason}"
        reversal = cover(uow, event.project_id, quantity_t, reason, actor=actor)
        cancellation = {
            "quantity_t": quantity_t, "rule": reversal.rule.value,
            "from_buffer_t": sum(b.quantity for b in reversal.from_buffer),
            "from_proponent_t": sum(b.quantity for b in reversal.from_proponent),
            "from_buffer": serials(reversal.from_buffer), "from_proponent": serials(reversal.from_proponent),
        }  # fmt: skip
    event.status, event.decided_at, event.decided_by_user_id = EventStatus.CONFIRMED, clock.now(), actor.user_id
    event.decision_reason, event.cancelled_t, event.cancellation = decision.reason, quantity_t, cancellation
    payload = {"loss_event_id": event.id, "plot_id": event.plot_id, "project_id": event.project_id,
               "tonnes_at_risk_t": event.tonnes_at_risk_t, "cancelled_t": quantity_t, "reason": decision.reason,
               "evidence_sha256": event.evidence_sha256, "cancellation": cancellation}  # fmt: skip
    uow.record(actor.actor, "loss_event.confirmed", f"loss_event:{event.id}", payload)
    _notify_proponent(session, event, f"Reversal confirmed: {quantity_t} t cancelled", decision.reason, clock=clock)
    uow.commit()
    return event


def reject_event(session: Session, event_id: int, decision: Decide, *, actor: Principal, clock: Clock) -> LossEvent:
    """Reject a proposal, keeping it with the reason; audited, the proponent notified; commits."""
    event = _decidable(session, event_id, actor, decision)
    if decision.quantity_t is not None:
        raise InvalidInput("a rejection cancels nothing: leave quantity_t out", [{"pointer": "/quantity_t"}])
    event.status, event.decided_at, event.decided_by_user_id = EventStatus.REJECTED, clock.now(), actor.user_id
    event.decision_reason = decision.reason
    payload = {"loss_event_id": event.id, "plot_id": event.plot_id, "project_id": event.project_id,
               "reason": decision.reason, "evidence_sha256": event.evidence_sha256}  # fmt: skip
    audit.append(session, actor=actor.actor, action="loss_event.rejected", subject=f"loss_event:{event.id}",
                 payload=payload, clock=clock)  # fmt: skip
    _notify_proponent(session, event, "Reversal proposal rejected", decision.reason, clock=clock)
    session.commit()
    return event


def _notify_proponent(session: Session, event: LossEvent, title: str, reason: str, *, clock: Clock) -> None:
    plot = session.get_one(Plot, event.plot_id)
    where = plot.plot_code or f"plot {plot.id}"
    inbox.post(session, plot.project.organisation_id, kind=f"reversal.{event.status.value}",
               subject=f"loss_event:{event.id}", title=f"{title} ({where})", body=f"The registry's reason: {reason}",
               link=f"/api/v1/loss-events/{event.id}",
               data={"loss_event_id": event.id, "status": event.status.value, "cancelled_t": event.cancelled_t},
               clock=clock)  # fmt: skip


def event_map_png(session: Session, event: LossEvent, *, raster_dir: Path) -> bytes:
    """Return the before/after map of an event (re-read from the composites it names)."""
    run = session.get_one(WatchRun, event.run_id)
    composites = (
        session.get_one(Composite, run.before_composite_id),
        session.get_one(Composite, run.after_composite_id),
    )
    plot = session.get_one(Plot, event.plot_id)
    paths = [resolve_path(raster_dir, _layer_of(session, c).path) for c in composites]
    grid, window, old, new, local = read_pair(paths, plot.geometry)
    lost = _loss(composites[0], old, new, Thresholds(**event.evidence["thresholds"]))
    return map_png(composites, (old, new), lost, grid, window, local)
