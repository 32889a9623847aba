"""The review desk (issue 22): what verifiers and the registry decide, and the report they decide on.

``/review`` lists the items waiting for a decision — projects to validate and register, reports to verify and
to issue, reversal proposals — each with its age and whether the person may act; an item they may not decide is
shown read-only with the reason the workflow's own check gives (``carbon.workflow.refusal``), and a decision sent
anyway is refused by the same service the API calls (``carbon.workflow.report_step`` / ``project_step``).

``/review/reports/{id}`` shows the report's plots on the map (vector tiles of its project, its plots flagged:
overlaps with other claims, region warnings, declared against measured area), the calculation sheet and its
trace, the evidence, the history and the decision; issuing asks for a confirmation naming the tonnes, the buffer
share and the serial ranges (``carbon.workflow.issuance_preview``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import shapely
from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from access.deps import ClockDep, SessionDep, SettingsDep, authorize
from carbon.claims import overlaps_of_plot
from carbon.evidence import list_evidence
from carbon.ledger import CoverPreview, cover_preview
from carbon.models import MonitoringReport, Plot, Project, ProjectStatus, ReportStatus
from carbon.monitoring_records import get_report
from carbon.reversals.models import EventStatus, LossEvent
from carbon.reversals.proposals import (
    Decide,
    check_visible,
    confirm_event,
    decision_refusal,
    event_map_png,
    get_event,
    reject_event,
)
from carbon.workflow import StepRequest, issuance_preview, project_step, refusal, report_step, steps_of
from core.auth import Organisation, Principal, User
from core.errors import InvalidInput, NotFound
from web import i18n
from web.i18n import N_
from web.pages import CSRF_FIELD, check_csrf, locale_of, render
from web.plot_map import TileX, TileY, TileZ, plot_card, plot_tile_response

router = APIRouter(include_in_schema=False)
Person = Annotated[Principal, Depends(authorize)]
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1)]
CsrfField = Annotated[str, Form(alias=CSRF_FIELD, max_length=100)]
CommentField = Annotated[str, Form(max_length=10_000)]
#: Declared and measured areas differing by more than this share are flagged on the report's map.
AREA_TOLERANCE = 0.05
STEP_LABELS = {
    "validate": N_("Validate"), "register": N_("Register"), "reject": N_("Reject"), "verify": N_("Verify report"),
    "issue": N_("Issue"), "submit": N_("Submit"),
}  # fmt: skip


#: The workflow's refusals (English, as the API states them) in words for the page; the rule itself is kept beside.
REFUSALS = (
    ("never the proponent", N_("Your organisation is the proponent: its own work is verified and issued by others.")),
    ("one person never performs two steps",
     N_("You took an earlier step on this item: one person never takes two steps on the same item.")),
    ("only the proponent's own organisation", N_("Only the proponent's own organisation submits.")),
    ("is done by", N_("This step is done by: %(roles)s.")),
    ("cannot ", N_("The item is not in a state this step applies to.")),
)  # fmt: skip
ROLES = re.compile(r"is done by (.*)$")


def explain(rule: str | None, gettext: Callable[[str], str]) -> dict[str, str] | None:
    """Return a refusal in the page's language (``text``) beside the rule as the service states it (``rule``)."""
    if rule is None:
        return None
    for fragment, message in REFUSALS:
        if fragment in rule:
            found = ROLES.search(rule)
            roles = "、".join(gettext(r) for r in found.group(1).split(", ")) if found else ""
            return {"text": gettext(message) % {"roles": roles} if "%(roles)s" in message else gettext(message),
                    "rule": rule}  # fmt: skip
    return {"text": rule, "rule": rule}


def _age_days(now: datetime, since: datetime) -> int:
    return max(0, (now - since).days)


def _since(session: Session, kind: str, subject_id: int, fallback: datetime) -> datetime:
    steps = steps_of(session, kind, subject_id)
    return steps[-1].created_at if steps else fallback


def queue(
    session: Session, person: Principal, now: datetime, gettext: Callable[[str], str]
) -> dict[str, list[dict[str, Any]]]:
    """Return the review queue: each item with its age in days, its steps and why the person may not act."""

    def item(kind: str, subject: Any, steps: tuple[str, ...], since: datetime, **extra: Any) -> dict[str, Any]:
        refusals = {s: explain(refusal(session, kind, subject.id, s, person), gettext) for s in steps}
        return {"subject": subject, "age_days": _age_days(now, since), "steps": steps, "refusals": refusals,
                "may_act": any(r is None for r in refusals.values()), **extra}  # fmt: skip

    projects = session.scalars(
        select(Project)
        .where(Project.status.in_((ProjectStatus.SUBMITTED, ProjectStatus.VALIDATED)))
        .order_by(Project.id)
    ).all()
    reports = session.scalars(
        select(MonitoringReport)
        .where(MonitoringReport.status.in_((ReportStatus.SUBMITTED, ReportStatus.VERIFIED)))
        .order_by(MonitoringReport.id)
    ).all()
    events = session.scalars(
        select(LossEvent).where(LossEvent.status == EventStatus.PROPOSED).order_by(LossEvent.id)
    ).all()
    to_validate, to_register, to_verify, to_issue = [], [], [], []
    for p in projects:
        since = _since(session, "project", p.id, p.created_at)
        if p.status is ProjectStatus.SUBMITTED:
            to_validate.append(item("project", p, ("validate", "reject"), since))
        else:
            to_register.append(item("project", p, ("register", "reject"), since))
    for r in reports:
        since = _since(session, "monitoring_report", r.id, r.submitted_at)
        if r.status is ReportStatus.SUBMITTED:
            to_verify.append(item("monitoring_report", r, ("verify", "reject"), since))
        else:
            to_issue.append(item("monitoring_report", r, ("issue",), since))
    latest = select(LossEvent).where(LossEvent.status != EventStatus.PROPOSED)
    decided = session.scalars(latest.order_by(LossEvent.decided_at.desc()).limit(10)).all()

    def reversal(e: LossEvent) -> dict[str, Any]:
        return {"subject": e, "age_days": _age_days(now, e.created_at), "project": session.get(Project, e.project_id),
                "visible": _visible(session, e, person),
                "refusal": explain_reversal(decision_refusal(e, person), gettext)}  # fmt: skip

    return {"to_validate": to_validate, "to_register": to_register, "to_verify": to_verify, "to_issue": to_issue,
            "reversals": [reversal(e) for e in events],
            "decided_reversals": [reversal(e) for e in decided]}  # fmt: skip


def _visible(session: Session, event: LossEvent, person: Principal) -> bool:
    try:
        check_visible(session, event, person)
    except NotFound:
        return False
    return True


@router.get("/review", response_class=HTMLResponse)
def page_review(request: Request, session: SessionDep, clock: ClockDep, person: Person) -> HTMLResponse:
    """The review queue of verifiers and the registry."""
    gettext = i18n.translations(locale_of(request)).gettext
    context = {"queue": queue(session, person, clock.now(), gettext), "step_labels": STEP_LABELS,
               "decided": request.query_params.get("decided", ""), "event_status": EVENT_STATUS}  # fmt: skip
    return render(request, "review.html", context, principal=person)


def _feature(geometry: dict[str, Any], role: str, title: str, lines: list[str], **extra: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"role": role, "title": title, "lines": lines,
                                                                     **extra}}  # fmt: skip


def plot_flags(
    session: Session, plots: list[Plot], gettext: Callable[[str], str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Return each report plot's flags (overlaps, region warnings, declared vs measured) and the map's overlay."""
    rows: list[dict[str, Any]] = []
    features: list[dict[str, Any]] = []
    for plot in plots:
        outline = shapely.geometry.mapping(plot.geometry)
        title = plot.plot_code or f"#{plot.id}"
        overlaps = overlaps_of_plot(session, plot)
        declared = plot.declared_area_mu
        measured_mu = plot.area_m2 * 15 / 10_000
        difference = None if not declared else round(100 * (measured_mu - declared) / declared, 1)
        area_flag = difference is not None and abs(difference) > 100 * AREA_TOLERANCE
        rows.append({"plot": plot, "overlaps": overlaps, "warnings": plot.warnings or [],
                     "difference_percent": difference, "area_flag": area_flag})  # fmt: skip
        for o in overlaps:
            other = session.get(Plot, o["existing_plot_id"])
            if other is None:
                continue
            shared = shapely.make_valid(plot.geometry).intersection(shapely.make_valid(other.geometry))
            if shared.is_empty:
                continue
            features.append(_feature(
                shapely.geometry.mapping(shared), "overlap",
                f"{title} × {o.get('existing_plot_code') or ''} {o.get('existing_project_code') or ''}".strip(), [],
                overlap_m2=o["overlap_m2"], overlap_mu=o["overlap_mu"], percent_new=o["overlap_percent_of_new"],
                percent_existing=o["overlap_percent_of_existing"],
            ))  # fmt: skip
        if plot.warnings:
            lines = [str(w.get("message", "")) for w in plot.warnings]
            features.append(_feature(outline, "outside_region", title, lines, plot_code=plot.plot_code))
        if area_flag:
            line = gettext("Declared %(declared)s mu, measured %(measured)s mu (%(difference)s %%)") % {
                "declared": declared,
                "measured": round(measured_mu, 2),
                "difference": f"{difference:+}",
            }
            features.append(_feature(outline, "warned", title, [line], plot_code=plot.plot_code))
    return rows, {"type": "FeatureCollection", "features": features}


def _report(session: Session, report_id: int) -> MonitoringReport:
    return get_report(session, report_id)


def _map_config(request: Request, report: MonitoringReport, plots: list[Plot], overlay: dict[str, Any]) -> str:
    settings = request.app.state.settings
    basemap = None
    if settings.basemap_url is not None:
        basemap = {"url": settings.basemap_url, "attribution": settings.basemap_attribution}
    base = f"/review/reports/{report.id}"
    extent = list(shapely.total_bounds([p.geometry for p in plots])) if plots else None
    return json.dumps(
        {"tiles": f"{base}/tiles/{{z}}/{{x}}/{{y}}.mvt", "card": f"{base}/plots/",
         "extent": extent, "overlay": overlay, "basemap": basemap},
        ensure_ascii=False,
    )  # fmt: skip


def _history(session: Session, kind: str, subject_id: int) -> list[dict[str, Any]]:
    history = []
    for step in steps_of(session, kind, subject_id):
        user = session.get(User, step.user_id)
        org = session.get(Organisation, step.organisation_id)
        history.append({"step": step, "user": user.username if user else "", "organisation": org.name if org else ""})
    return history


@router.get("/review/reports/{report_id}", response_class=HTMLResponse)
def page_review_report(
    request: Request, session: SessionDep, clock: ClockDep, person: Person, report_id: ItemId
) -> HTMLResponse:
    """A report under review: plots and flags on the map, the calculation and its trace, evidence, history."""
    report = _report(session, report_id)
    plots = list(session.scalars(select(Plot).where(Plot.id.in_(report.plot_ids)).order_by(Plot.id)))
    gettext = i18n.translations(locale_of(request)).gettext
    rows, overlay = plot_flags(session, plots, gettext)
    steps = {ReportStatus.SUBMITTED: ("verify", "reject"), ReportStatus.VERIFIED: ("issue",)}.get(report.status, ())
    refusals = {s: explain(refusal(session, "monitoring_report", report.id, s, person), gettext) for s in steps}
    context = {
        "report": report, "record": report.record, "plots": rows, "refusals": refusals, "step_labels": STEP_LABELS,
        "preview": issuance_preview(session, report) if "issue" in steps else None,
        "evidence": list_evidence(session, report.project_id, actor=person, report_id=report.id),
        "project_evidence": list_evidence(session, report.project_id, actor=person),
        "history": _history(session, "monitoring_report", report.id),
        "map_config": _map_config(request, report, plots, overlay),
        "decided": request.query_params.get("decided", ""),
    }  # fmt: skip
    return render(request, "review_report.html", context, principal=person)


@router.get("/review/reports/{report_id}/tiles/{z}/{x}/{y}.mvt")
def page_review_tiles(
    session: SessionDep,
    person: Person,
    report_id: ItemId,
    z: TileZ,
    x: TileX,
    y: TileY,
) -> Response:
    """One vector tile (MVT) of the reviewed report's project's plots; ``204`` where none lies."""
    return plot_tile_response(session, _report(session, report_id).project_id, z, x, y)


@router.get("/review/reports/{report_id}/plots/{plot_id}/card", response_class=HTMLResponse)
def page_review_plot_card(
    request: Request, session: SessionDep, person: Person, report_id: ItemId, plot_id: ItemId
) -> HTMLResponse:
    """A plot's card on the review map: areas, declared vs measured, claim, overlaps, region warnings."""
    return plot_card(request, session, person, _report(session, report_id).project, plot_id)


@router.post("/review/reports/{report_id}/{step}")
def page_review_report_step(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Person,
    report_id: ItemId,
    step: Literal["verify", "reject", "issue"],
    csrf_token: CsrfField = "",
    comment: CommentField = "",
    confirm: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    """Verify, reject (with a reason) or issue (confirmed) the report: the workflow's step, as the API's."""
    check_csrf(request, settings, csrf_token)
    if step == "issue" and confirm != "yes":
        raise InvalidInput("confirm the tonnes, buffer share and serials to issue", [{"pointer": "/confirm"}])
    report_step(session, report_id, step, StepRequest(comment=comment), actor=person, clock=clock)
    return RedirectResponse(f"/review/reports/{report_id}?decided={step}", status_code=303)


@router.post("/review/projects/{project_id}/{step}")
def page_review_project_step(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Person,
    project_id: ItemId,
    step: Literal["validate", "register", "reject"],
    csrf_token: CsrfField = "",
    comment: CommentField = "",
) -> Response:
    """Validate, register or reject (with a reason) a project: the workflow's step, as the API's."""
    check_csrf(request, settings, csrf_token)
    project_step(session, project_id, step, StepRequest(comment=comment), actor=person, clock=clock)
    return RedirectResponse(f"/review?decided={step}", status_code=303)


# Reversal proposals (loss events, ADR 038): the evidence, the tonnes at risk and what confirming cancels; the
# registry decides with the services of ``api/routers/reversals.py`` (``confirm_event`` / ``reject_event``).
REVERSAL_REFUSALS = (
    ("only the registry", N_("Only the registry decides reversal proposals.")),
    ("already", N_("This proposal was decided already.")),
)  # fmt: skip
EVENT_STATUS = {"proposed": N_("Awaiting the registry's decision"), "confirmed": N_("Reversal confirmed"),
                "rejected": N_("Proposal dismissed")}  # fmt: skip
MAP_ROLES = {"plot": "affected", "lost_pixels": "lost", "change_patch": "change_patch"}


def explain_reversal(rule: str | None, gettext: Callable[[str], str]) -> dict[str, str] | None:
    """Return the reversal decision's refusal in the page's language beside the rule as the service states it."""
    if rule is None:
        return None
    for fragment, message in REVERSAL_REFUSALS:
        if fragment in rule:
            return {"text": gettext(message), "rule": rule}
    return {"text": rule, "rule": rule}


def _event(session: Session, person: Principal, event_id: int) -> LossEvent:
    """The loss event if the person may see it (the API's rule: registry, auditors, the proponent), else 404."""
    event = get_event(session, event_id)
    check_visible(session, event, person)
    return event


def _reversal_overlay(event: LossEvent, plot: Plot, gettext: Callable[[str], str]) -> dict[str, Any]:
    features = []
    for feature in (event.evidence.get("map") or {}).get("features", []):
        props = feature.get("properties") or {}
        role = MAP_ROLES.get(str(props.get("layer")), "warned")
        if role == "change_patch":
            title = str(props.get("patch_code") or "")
            lines = [f"{props.get('change_type', '')} · {props.get('cause', '')}", str(props.get("change_date", ""))]
        elif role == "lost":
            title, lines = gettext("Lost cover"), [gettext("Pixels that lost cover under the class thresholds")]
        else:
            title, lines = plot.plot_code or f"#{plot.id}", []
        features.append(_feature(feature["geometry"], role, title, lines))
    return {"type": "FeatureCollection", "features": features}


def _preview(session: Session, event: LossEvent) -> CoverPreview | None:
    if event.status is not EventStatus.PROPOSED or event.tonnes_at_risk_t <= 0:
        return None
    return cover_preview(session, event.project_id, event.tonnes_at_risk_t)


@router.get("/review/reversals/{event_id}", response_class=HTMLResponse)
def page_review_reversal(request: Request, session: SessionDep, person: Person, event_id: ItemId) -> HTMLResponse:
    """A reversal proposal: the loss's evidence, the plot on the map, the tonnes at risk and the decision."""
    event = _event(session, person, event_id)
    plot = session.get_one(Plot, event.plot_id)
    project = session.get_one(Project, event.project_id)
    gettext = i18n.translations(locale_of(request)).gettext
    settings = request.app.state.settings
    basemap = None
    if settings.basemap_url is not None:
        basemap = {"url": settings.basemap_url, "attribution": settings.basemap_attribution}
    base = f"/review/reversals/{event.id}"
    map_config = json.dumps(
        {"tiles": f"{base}/tiles/{{z}}/{{x}}/{{y}}.mvt", "card": f"{base}/plots/",
         "extent": list(plot.geometry.bounds), "overlay": _reversal_overlay(event, plot, gettext), "basemap": basemap},
        ensure_ascii=False,
    )  # fmt: skip
    decider = session.get(User, event.decided_by_user_id) if event.decided_by_user_id else None
    context = {
        "event": event, "plot": plot, "project": project, "evidence": event.evidence,
        "figures": event.evidence.get("figures", {}), "refusal": explain_reversal(decision_refusal(event, person),
                                                                                   gettext),
        "preview": _preview(session, event), "map_config": map_config, "decider": decider.username if decider else "",
        "decided": request.query_params.get("decided", ""), "event_status": EVENT_STATUS,
    }  # fmt: skip
    return render(request, "review_reversal.html", context, principal=person)


@router.get("/review/reversals/{event_id}/map.png", response_class=Response)
def page_review_reversal_map(session: SessionDep, settings: SettingsDep, person: Person, event_id: ItemId) -> Response:
    """The before/after picture of the loss (as the API's ``/loss-events/{id}/map.png``)."""
    event = _event(session, person, event_id)
    return Response(event_map_png(session, event, raster_dir=settings.raster_dir), media_type="image/png")


@router.get("/review/reversals/{event_id}/tiles/{z}/{x}/{y}.mvt")
def page_review_reversal_tiles(
    session: SessionDep,
    person: Person,
    event_id: ItemId,
    z: TileZ,
    x: TileX,
    y: TileY,
) -> Response:
    """One vector tile (MVT) of the loss event's project's plots; ``204`` where none lies."""
    return plot_tile_response(session, _event(session, person, event_id).project_id, z, x, y)


@router.get("/review/reversals/{event_id}/plots/{plot_id}/card", response_class=HTMLResponse)
def page_review_reversal_plot_card(
    request: Request, session: SessionDep, person: Person, event_id: ItemId, plot_id: ItemId
) -> HTMLResponse:
    """A plot's card on the reversal's map."""
    event = _event(session, person, event_id)
    return plot_card(request, session, person, session.get_one(Project, event.project_id), plot_id)


@router.post("/review/reversals/{event_id}/{decision}")
def page_review_reversal_decide(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    person: Person,
    event_id: ItemId,
    decision: Literal["confirm", "reject"],
    csrf_token: CsrfField = "",
    reason: Annotated[str, Form(max_length=5000)] = "",
    confirm: Annotated[str, Form(max_length=5)] = "",
    quantity_t: Annotated[int | None, Form(ge=0, le=2**53)] = None,
) -> Response:
    """Confirm (the named tonnes, checked) or reject (with the reason) a reversal proposal, as the API does."""
    check_csrf(request, settings, csrf_token)
    _event(session, person, event_id)
    if not reason.strip():
        raise InvalidInput("a decision states its reason", [{"pointer": "/reason"}])
    if decision == "confirm":
        if confirm != "yes" or quantity_t is None:
            raise InvalidInput("confirm the tonnes to cancel from the buffer pool", [{"pointer": "/confirm"}])
        confirm_event(session, event_id, Decide(reason=reason, quantity_t=quantity_t or None), actor=person,
                      clock=clock)  # fmt: skip
    else:
        reject_event(session, event_id, Decide(reason=reason), actor=person, clock=clock)
    return RedirectResponse(f"/review/reversals/{event_id}?decided={decision}", status_code=303)
