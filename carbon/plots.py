"""Service: register plot polygons in a project, read them, and re-measure them.

Registration validates every feature first (``geodata.validation``), checks that each lies in the
project's province (an aquaculture sea area instead: its licence, mostly outside land and near its coastal
county, ``carbon.sea_areas``) (refused, ``geodata/outside-region``, when less than half of it does after the
boundaries' positional tolerance) and county (a stored warning otherwise; ``geodata.regions``), measures
each on the CGCS2000 ellipsoid, and writes all plots and one audit entry per plot in a single transaction:
an upload is stored whole or not at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.claims import NewClaim, find_conflicts
from carbon.models import ClaimStatus, Plot, Project, ProjectKind
from carbon.projects import get_project
from carbon.sea_areas import Licence, check_sea_areas, refuse_licences_claimed
from core import audit
from core.auth import OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, DoubleCounting, NotFound, OutsideRegion, PermissionDenied
from core.regions import province_name
from core.task_owners import record_task
from geodata.area import measure
from geodata.attributes import AreaUnit
from geodata.geometry import geometry_sha256
from geodata.intake import Intake, intake_geojson
from geodata.overlap import lock_area
from geodata.region_store import current_index
from geodata.regions import RegionAssessment, assess, english_name
from geodata.validation import PlotFeature

T = TypeVar("T")
#: The Celery name of the re-measurement task (``api.worker`` registers it under this name).
REMEASURE_TASK = "shanhai.plots.remeasure"


def check_may_upload(project: Project, actor: Principal) -> None:
    """Refuse uploads to a project of another organisation."""
    if project.organisation_id != actor.organisation_id:
        raise PermissionDenied("plots can only be uploaded to a project of the caller's own organisation")


def _check_codes(session: Session, project: Project, features: list[PlotFeature]) -> None:
    codes = [f.plot_code for f in features if f.plot_code is not None]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    existing = {
        code
        for code in session.scalars(
            select(Plot.plot_code).where(Plot.project_id == project.id, Plot.plot_code.in_(codes))
        )
        if code is not None
    }
    clashes = sorted(set(duplicates) | existing)
    if clashes:
        raise Conflict(f"plot codes already used in project {project.code}: {', '.join(clashes)}")


def _check_double_counting(session: Session, project: Project, features: list[PlotFeature]) -> None:
    geometries = [f.geometry for f in features]
    lock_area(session, geometries)
    claims = [NewClaim(f.index, f.plot_code, f.geometry) for f in features]
    conflicts = find_conflicts(session, claims, start=project.crediting_start, end=project.crediting_end)
    if conflicts:
        raise DoubleCounting(
            f"{len(conflicts)} overlap(s) with active claims for an overlapping period; nothing was stored", conflicts
        )


OUTSIDE_COUNTY = "geodata/outside-county"


def _province_label(province_code: str) -> str:
    """Return "宁夏回族自治区 (Ningxia)" for "64"."""
    name_zh = province_name(province_code) or province_code
    name_en = english_name(f"{province_code}0000")
    return f"{name_zh} ({name_en})" if name_en else name_zh


def _percent(share: float) -> float:
    return round(100 * share, 1)


def _refusal(feature: PlotFeature, project: Project, found: RegionAssessment) -> dict[str, Any]:
    placement = found.placement
    where = placement.describe() if placement else "outside China"
    wanted = _province_label(project.province_code)
    return {
        "feature_index": feature.index,
        "plot_code": feature.plot_code,
        "reason": f"only {_percent(found.province_share)} % of the plot lies in {wanted}; most of it lies in {where}",
        "share_in_province_percent": _percent(found.province_share),
        "lies_in": where,
        "lies_in_province_code": placement.province.code[:2] if placement and placement.province else None,
        "lies_in_county_code": placement.county.code if placement and placement.county else None,
        "location": list(feature.geometry.representative_point().coords[0]),
    }


def _county_warning(project: Project, found: RegionAssessment) -> dict[str, Any]:
    placement = found.placement
    where = placement.describe() if placement else "outside China"
    share = _percent(found.county_share or 0.0)
    return {
        "code": OUTSIDE_COUNTY,
        "message": f"only {share} % of the plot lies in the project's county {project.county_code}; "
        f"most of it lies in {where}",
        "county_code": project.county_code,
        "share_in_county_percent": share,
        "lies_in": where,
        "lies_in_county_code": placement.county.code if placement and placement.county else None,
    }


def check_in_region(session: Session, project: Project, features: list[PlotFeature]) -> list[list[dict[str, Any]]]:
    """Return each feature's region warnings; refuse the upload if any plot lies mostly outside the province.

    Raises:
        OutsideRegion: Less than half of a plot (after the tolerance) lies in the project's province; one
            problem per such plot, naming where most of it lies and the share inside.
    """
    index = current_index(session)
    tolerance_m = index.info.tolerance_m
    refusals, warnings = [], []
    for feature in features:
        found = assess(index, feature.geometry, project.province_code, project.county_code, tolerance_m=tolerance_m)
        if found.refused:
            refusals.append(_refusal(feature, project, found))
        warnings.append([_county_warning(project, found)] if found.outside_county else [])
    if refusals:
        where = ", ".join(sorted({r["lies_in"] for r in refusals}))
        raise OutsideRegion(
            f"{len(refusals)} plot(s) lie mostly outside the project's province "
            f"{_province_label(project.province_code)} (they lie in {where}); "
            "nothing was stored",
            refusals,
        )
    return warnings


def _declared_mu(feature: PlotFeature) -> float | None:
    value = feature.properties.get("declared_area_mu")
    return value if isinstance(value, float) else None


def _new_plot(
    project: Project,
    feature: PlotFeature,
    actor: Principal,
    clock: Clock,
    warnings: list[dict[str, Any]],
    licence: Licence | None,
) -> Plot:
    measurement = measure(feature.geometry)
    min_lon, min_lat, max_lon, max_lat = feature.geometry.bounds
    now = clock.now()
    return Plot(
        project_id=project.id,
        plot_code=feature.plot_code,
        name=feature.name,
        properties=feature.properties,
        geometry=feature.geometry,
        geometry_sha256=geometry_sha256(feature.geometry),
        min_lon=min_lon,
        min_lat=min_lat,
        max_lon=max_lon,
        max_lat=max_lat,
        area_m2=measurement.area_m2,
        perimeter_m=measurement.perimeter_m,
        created_at=now,
        created_by_user_id=actor.user_id,
        measured_at=now,
        claim_start=project.crediting_start,
        claim_end=project.crediting_end,
        claim_status=ClaimStatus.ACTIVE,
        external_registrations=list(feature.properties.get("external_registrations", [])),
        declared_area_mu=_declared_mu(feature),
        warnings=warnings,
        licence_number=licence.number if licence else None,
        licence_kind=licence.kind if licence else None,
    )


def register_plots(
    session: Session,
    project_id: int,
    document: Any,
    *,
    actor: Principal,
    clock: Clock,
    max_features: int = 10_000,
    repair: bool = False,
    area_unit: AreaUnit | None = None,
) -> tuple[list[Plot], Intake]:
    """Register every feature of a GeoJSON Feature/FeatureCollection as a plot of the project.

    Returns the new plots and the per-feature report. ``area_unit`` is the unit (mu or ha) of the
    features' declared-area property, as the uploader states it (see ``geodata.attributes``).

    Raises:
        NotFound: No such project.
        PermissionDenied: The project is not the actor's organisation's.
        InvalidGeometry: Any feature is refused; ``problems`` lists each defect and nothing is stored.
        OutsideRegion: A plot lies mostly outside the project's province.
        Conflict: A plot code is repeated or already used in the project.
        DoubleCounting: A feature overlaps an active claim (of any project) or another feature.
    """
    project = get_project(session, project_id)
    check_may_upload(project, actor)
    intake = intake_geojson(document, repair=repair, max_features=max_features, area_unit=area_unit)
    return register_intake(session, project, intake, actor=actor, clock=clock), intake


def register_intake(
    session: Session, project: Project, intake: Intake, *, actor: Principal, clock: Clock, commit: bool = True
) -> list[Plot]:
    """Store the features of a checked upload as plots (claims) of ``project``, all or nothing.

    The caller has checked that ``actor`` may upload to ``project``. Commits once, unless ``commit`` is
    false: then a composing service adds its own rows to the same transaction and commits.
    """
    intake.raise_if_refused()
    features = intake.features
    licences: list[Licence | None] = [None] * len(features)
    if project.kind is ProjectKind.SEA_AREAS:
        # at sea: mostly outside land and near the declared coastal county, instead of "in the province"
        licences = list(check_sea_areas(session, project, features))
        warnings: list[list[dict[str, Any]]] = [[] for _ in features]
    else:
        warnings = check_in_region(session, project, features)
    _check_codes(session, project, features)
    _check_double_counting(session, project, features)
    if project.kind is ProjectKind.SEA_AREAS:
        refuse_licences_claimed(session, project, features, [lic for lic in licences if lic is not None])
    reports = {report.index: report for report in intake.reports}
    for feature, feature_warnings in zip(features, warnings, strict=True):
        if feature.index in reports:
            reports[feature.index].warnings.extend(w["message"] for w in feature_warnings)
    plots = [
        _new_plot(project, f, actor, clock, w, lic) for f, w, lic in zip(features, warnings, licences, strict=True)
    ]
    session.add_all(plots)
    session.flush()
    events = [
        audit.Event(
            actor.actor,
            "plot.registered",
            f"plot:{plot.id}",
            {
                "project": project.code,
                "plot_code": plot.plot_code,
                "geometry_sha256": plot.geometry_sha256,
                "area_m2": round(plot.area_m2, 4),
                "source_crs": intake.source_crs,
            }
            | (
                {"licence_number": plot.licence_number, "licence_kind": plot.licence_kind.value}
                if plot.licence_kind
                else {}
            ),
        )
        for plot in plots
    ]
    audit.append_many(session, events, clock=clock)
    if commit:
        session.commit()
    return plots


def get_plot(session: Session, plot_id: int) -> Plot:
    """Return a plot or raise :class:`NotFound`."""
    plot = session.get(Plot, plot_id)
    if plot is None:
        raise NotFound(f"plot {plot_id} does not exist")
    return plot


def list_plots(session: Session, project_id: int) -> list[Plot]:
    """Return the plots of a project (which must exist) in registration order."""
    get_project(session, project_id)
    return list(session.scalars(select(Plot).where(Plot.project_id == project_id).order_by(Plot.id)))


def request_remeasure(
    session: Session, plot_id: int, enqueue: Callable[[str, int], T], *, actor: Principal, clock: Clock
) -> T:
    """Check that the actor may re-measure the plot, store the task's owner, and hand (task id, plot id) to ``enqueue``.

    A plot is re-measured by its project's organisation or by the registry. The owner is committed before
    queueing (``core.task_owners``), which also ends the transaction so that a task running in-process (no
    broker) can open its own write transaction on an embedded database.

    Raises:
        NotFound: No plot ``plot_id``.
        PermissionDenied: The plot belongs to another organisation and the actor is not the registry.
    """
    plot = get_plot(session, plot_id)
    if plot.project.organisation_id != actor.organisation_id and actor.role is not OrgKind.REGISTRY:
        raise PermissionDenied(
            f"plot {plot_id} belongs to another organisation: only its own or the registry re-measure it"
        )
    task_id = record_task(session, REMEASURE_TASK, owner=actor, clock=clock)
    session.commit()
    return enqueue(task_id, plot_id)


def remeasure_plot(session: Session, plot_id: int, *, actor: str, clock: Clock) -> dict[str, Any]:
    """Re-validate and re-measure a stored plot; record a change in the audit log.

    Idempotent: running it twice changes nothing the second time. Returns what was found.
    """
    plot = get_plot(session, plot_id)
    measurement = measure(plot.geometry)
    reason_ok = plot.geometry.is_valid
    changed = abs(measurement.area_m2 - plot.area_m2) > 1e-6 or abs(measurement.perimeter_m - plot.perimeter_m) > 1e-6
    if changed:
        previous = plot.area_m2
        plot.area_m2 = measurement.area_m2
        plot.perimeter_m = measurement.perimeter_m
        plot.measured_at = clock.now()
        audit.append(
            session,
            actor=actor,
            action="plot.remeasured",
            subject=f"plot:{plot.id}",
            payload={"previous_area_m2": round(previous, 4), "area_m2": round(plot.area_m2, 4)},
            clock=clock,
        )
    session.commit()
    return {
        "plot_id": plot.id,
        "valid": reason_ok,
        "area_m2": plot.area_m2,
        "area_ha": measurement.area_ha,
        "area_mu": measurement.area_mu,
        "changed": changed,
    }
