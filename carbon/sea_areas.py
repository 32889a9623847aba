"""Aquaculture sea areas: their licences, their place at sea, and the guard on a harvest claimed twice (ADR 036).

A sea-area project (``ProjectKind.SEA_AREAS``, the ``ocean_fishery`` scheme) registers each farmed sea area as a
plot (a claim: polygon × project × crediting period) carrying its title, the number of its 海域使用权证 (sea-use
right certificate) or 养殖证 (aquaculture licence). What registration checks beyond a land plot's:

* every sea area states its licence number and kind (a property ``licence_number`` with ``licence_kind``
  ``sea_use_right`` | ``aquaculture``, or a column named 海域使用权证号 / 养殖证号);
* it lies mostly outside land and near its declared coastal county (``geodata.sea``) — instead of the land
  plots' "in the province" rule, which a sea area fails by nature;
* no licence is claimed twice for overlapping periods: not in one upload, not by an active claim of any
  project (the polygons' own overlap is the double-counting guard of ``carbon.claims``, as for plots).

Double counting for fishery is the same **harvest** claimed twice. :func:`refuse_double_harvest` runs when a
fishery monitoring report is filed: a harvest claim is (sea area, period), and a report is refused when, for an
overlapping period, a report of any project that is not rejected already claims the same sea area, a sea area
under the same licence, or a sea area overlapping it beyond the sliver tolerance — which catches a harvest
re-claimed after its first sea area was withdrawn and registered again elsewhere.

Concurrency: both checks run after ``geodata.overlap.lock_area`` on the sea areas' cells, in the transaction
that writes, so two simultaneous claims on the same water queue and the second sees the first.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from shapely import STRtree
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.claims import tolerated
from carbon.models import ClaimStatus, LicenceKind, MonitoringReport, Plot, Project, ProjectKind, ReportStatus
from core.errors import DoubleCounting, InvalidInput
from geodata.overlap import geodesic_overlap, lock_area
from geodata.region_store import current_index
from geodata.sea import INTERTIDAL_TOLERANCE_SHARE, MAX_DISTANCE_FROM_COUNTY_M, assess_sea_area
from geodata.validation import PlotFeature

#: Property names giving a licence number, and the kind each implies (``None``: stated in ``licence_kind``).
LICENCE_KEYS: Mapping[str, LicenceKind | None] = {
    "licence_number": None,
    "license_number": None,
    "海域使用权证号": LicenceKind.SEA_USE_RIGHT,
    "海域使用权证": LicenceKind.SEA_USE_RIGHT,
    "养殖证号": LicenceKind.AQUACULTURE,
    "养殖证": LicenceKind.AQUACULTURE,
}
_LICENCE = re.compile(r"^[^\s]{4,60}$")
FISHERY_METHODOLOGIES = frozenset({"HY-T-0305-2021"})


@dataclass(frozen=True)
class Licence:
    """A sea area's title: normalised number and kind."""

    number: str
    kind: LicenceKind


def normalise_licence(number: str) -> str:
    """Return a licence number as compared: NFKC (full-width → ASCII), no white space, upper case.

    >>> normalise_licence(" 国海证 2019３５０１２２０００１２３号 ")
    '国海证2019350122000123号'
    >>> normalise_licence("闽连江(海)养证[2019]第00123号") == normalise_licence("闽连江（海）养证［2019］第00123号")
    True
    """
    folded = unicodedata.normalize("NFKC", number)
    return "".join(folded.split()).upper()


def licence_of(properties: Mapping[str, Any]) -> Licence | str:
    """Return a feature's licence, or the reason it has none that can be used."""
    found = [(key, kind) for key, kind in LICENCE_KEYS.items() if properties.get(key) not in (None, "")]
    if not found:
        return "a sea area states its 海域使用权证 or 养殖证 number (property licence_number with licence_kind)"
    numbers = {normalise_licence(str(properties[key])) for key, _kind in found}
    if len(numbers) > 1:
        return f"the feature states several licence numbers ({', '.join(sorted(numbers))}); give one per sea area"
    number = numbers.pop()
    if not _LICENCE.match(number):
        return f"licence number {number!r} is not a licence number (4–60 characters without spaces)"
    stated = properties.get("licence_kind")
    implied = {kind for _key, kind in found if kind is not None}
    if stated is not None:
        try:
            implied.add(LicenceKind(str(stated)))
        except ValueError:
            return f"licence_kind {stated!r} is not one of {', '.join(k.value for k in LicenceKind)}"
    if len(implied) != 1:
        return "state the licence kind: licence_kind sea_use_right (海域使用权证) or aquaculture (养殖证)"
    return Licence(number, implied.pop())


def _feature_problem(feature: PlotFeature, reason: str) -> dict[str, Any]:
    return {
        "feature_index": feature.index,
        "plot_code": feature.plot_code,
        "reason": reason,
        "location": list(feature.geometry.representative_point().coords[0]),
    }


def check_sea_areas(session: Session, project: Project, features: Sequence[PlotFeature]) -> list[Licence]:
    """Return each sea area's licence; refuse the upload if any lacks one or lies on land or far from its county.

    Raises:
        InvalidInput: Every problem of every feature (licence, land share, distance), nothing stored.
    """
    assert project.county_code is not None  # a sea-area project declares its coastal county (CreateProject)
    index = current_index(session)
    licences: list[Licence] = []
    problems = []
    for feature in features:
        licence = licence_of(feature.properties)
        if isinstance(licence, str):
            problems.append(_feature_problem(feature, licence))
        else:
            licences.append(licence)
        assessment = assess_sea_area(index, feature.geometry, project.county_code)
        for reason in assessment.problems():
            problem = _feature_problem(feature, reason)
            problem["land_share_percent"] = round(100 * assessment.land_share, 1)
            if assessment.distance_to_county_m is not None:
                problem["distance_to_county_km"] = round(assessment.distance_to_county_m / 1000, 2)
            problems.append(problem)
    if problems:
        raise InvalidInput(
            f"{len(problems)} problem(s) with the sea areas (intertidal tolerance "
            f"{round(100 * INTERTIDAL_TOLERANCE_SHARE)} %, at most {round(MAX_DISTANCE_FROM_COUNTY_M / 1000)} km "
            f"from county {project.county_code}); nothing was stored",
            problems,
        )
    return licences


def refuse_licences_claimed(
    session: Session, project: Project, features: Sequence[PlotFeature], licences: Sequence[Licence]
) -> None:
    """Refuse a licence repeated in the upload or held by an active claim for an overlapping period.

    Raises:
        DoubleCounting: One conflict per repeated licence, naming the claim that holds it.
    """
    conflicts: list[dict[str, Any]] = []
    first: dict[str, PlotFeature] = {}
    for feature, licence in zip(features, licences, strict=True):
        if licence.number in first:
            conflicts.append(
                {
                    "feature_index": feature.index,
                    "plot_code": feature.plot_code,
                    "licence_number": licence.number,
                    "reason": f"licence {licence.number} is also stated by feature {first[licence.number].index}",
                }
            )
        first.setdefault(licence.number, feature)
    held = session.scalars(
        select(Plot).where(
            Plot.licence_number.in_(sorted(first)),
            Plot.claim_status == ClaimStatus.ACTIVE,
            Plot.claim_start < project.crediting_end,
            Plot.claim_end > project.crediting_start,
        )
    )
    for plot in held:
        feature = first[str(plot.licence_number)]
        conflicts.append(
            {
                "feature_index": feature.index,
                "plot_code": feature.plot_code,
                "licence_number": plot.licence_number,
                "existing_plot_id": plot.id,
                "existing_project_code": plot.project.code,
                "existing_claim_period": [plot.claim_start.isoformat(), plot.claim_end.isoformat()],
                "reason": f"licence {plot.licence_number} is already claimed by sea area {plot.id} of "
                f"{plot.project.code} for {plot.claim_start}..{plot.claim_end}",
            }
        )
    if conflicts:
        raise DoubleCounting(
            f"{len(conflicts)} licence(s) already claimed for an overlapping period; nothing was stored", conflicts
        )


def _harvest_claims(session: Session, start: date, end: date) -> list[MonitoringReport]:
    """Fishery reports, not rejected, whose period overlaps ``start..end`` (end exclusive, as report periods)."""
    query = select(MonitoringReport).where(
        MonitoringReport.methodology_id.in_(sorted(FISHERY_METHODOLOGIES)),
        MonitoringReport.status != ReportStatus.REJECTED,
        MonitoringReport.period_start < end,
        MonitoringReport.period_end > start,
    )
    return list(session.scalars(query.order_by(MonitoringReport.id)))


def _clash(mine: Plot, other: Plot) -> str | None:
    if mine.id == other.id:
        return "the same sea area"
    if mine.licence_number and mine.licence_number == other.licence_number:
        return f"the same licence {mine.licence_number}"
    overlap = geodesic_overlap(mine.geometry, other.geometry)
    if overlap.overlap_m2 > 0 and not tolerated(overlap):
        return f"an overlapping sea area ({round(overlap.overlap_m2)} m² in common)"
    return None


def refuse_double_harvest(
    session: Session, project: Project, sea_areas: Sequence[Plot], start: date, end: date
) -> None:
    """Refuse a harvest claim (sea areas × period) that another report already claims for an overlapping period.

    Raises:
        DoubleCounting: One conflict per sea area and earlier report claiming the same harvest.
    """
    if project.kind is not ProjectKind.SEA_AREAS:
        return
    lock_area(session, [p.geometry for p in sea_areas])
    earlier = _harvest_claims(session, start, end)
    if not earlier:
        return
    claimed = {plot_id for report in earlier for plot_id in report.plot_ids}
    others = list(session.scalars(select(Plot).where(Plot.id.in_(sorted(claimed)))))
    tree = STRtree([p.geometry for p in others]) if others else None
    conflicts = []
    for mine in sea_areas:
        near = {other for other in others if other.id == mine.id or _same_licence(mine, other)}
        if tree is not None:
            near |= {others[int(i)] for i in tree.query(mine.geometry, predicate="intersects")}
        for other in sorted(near, key=lambda p: p.id):
            reason = _clash(mine, other)
            if reason is None:
                continue
            for report in earlier:
                if other.id in report.plot_ids:
                    conflicts.append(_harvest_conflict(mine, other, report, reason))
    if conflicts:
        raise DoubleCounting(
            f"{len(conflicts)} harvest claim(s) already made for an overlapping period: the same harvest is "
            "claimed once",
            conflicts,
        )


def _same_licence(mine: Plot, other: Plot) -> bool:
    return bool(mine.licence_number) and mine.licence_number == other.licence_number


def _harvest_conflict(mine: Plot, other: Plot, report: MonitoringReport, reason: str) -> dict[str, Any]:
    return {
        "sea_area_id": mine.id,
        "sea_area_code": mine.plot_code,
        "licence_number": mine.licence_number,
        "reason": f"{reason}: report {report.id} of {report.project.code} claims the harvest of sea area "
        f"{other.id} for {report.period_start}..{report.period_end} ({report.status.value})",
        "existing_report_id": report.id,
        "existing_project_code": report.project.code,
        "existing_sea_area_id": other.id,
        "existing_period": [report.period_start.isoformat(), report.period_end.isoformat()],
        "existing_status": report.status.value,
    }
