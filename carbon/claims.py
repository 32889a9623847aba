"""The double-counting guard: no two active claims may cover the same ground in overlapping periods.

A claim is a plot in a project for a crediting period under the project's scheme (``carbon.models.Plot``).
A new claim is refused when it overlaps, by more than the tolerance, an active claim of *any* project,
owner or province whose period overlaps its own — or another feature of the same upload.

Tolerance (digitising slivers along shared boundaries): the overlap is tolerated when it is at most
``min(0.5 % of the smaller plot, 1 mu)``; the stricter of the two, so that a large plot cannot hide a
several-mu double claim behind 0.5 % of its area. Polygons that only touch have no overlap.

Concurrency: :func:`find_conflicts` must run after ``geodata.overlap.lock_area`` in the same transaction
that inserts the new plots, so two simultaneous registrations of overlapping plots queue and the second
sees the first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from shapely import STRtree
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.models import ClaimStatus, Plot, Project
from core.units import M2_PER_MU, mu_from_m2
from geodata.overlap import Overlap, geodesic_overlap, intersecting

TOLERANCE_SHARE = 0.005
TOLERANCE_M2 = float(M2_PER_MU)  # 1 mu


@dataclass(frozen=True)
class NewClaim:
    """A plot about to be claimed: its index in the upload, code and lon/lat geometry."""

    index: int
    plot_code: str | None
    geometry: BaseGeometry


def tolerated(overlap: Overlap) -> bool:
    """Return whether an overlap is within the sliver tolerance.

    >>> tolerated(Overlap(overlap_m2=600.0, area_a_m2=1e6, area_b_m2=1e6))
    True
    >>> tolerated(Overlap(overlap_m2=700.0, area_a_m2=1e6, area_b_m2=1e6))
    False
    """
    return overlap.overlap_m2 <= min(TOLERANCE_SHARE * overlap.smaller_m2, TOLERANCE_M2)


def _describe(new: NewClaim, overlap: Overlap) -> dict[str, Any]:
    return {
        "feature_index": new.index,
        "plot_code": new.plot_code,
        "overlap_m2": round(overlap.overlap_m2, 2),
        "overlap_mu": round(mu_from_m2(overlap.overlap_m2), 3),
        "overlap_percent_of_new": round(100 * overlap.overlap_m2 / overlap.area_a_m2, 3),
        "overlap_percent_of_existing": round(100 * overlap.overlap_m2 / overlap.area_b_m2, 3),
    }


def _against_stored(
    session: Session, new: NewClaim, start: date, end: date, *, exclude_id: int | None = None, report_all: bool = False
) -> list[dict[str, Any]]:
    query = (
        select(Plot)
        .join(Project)
        .where(Plot.claim_status == ClaimStatus.ACTIVE, Plot.claim_start < end, Plot.claim_end > start)
    )
    if exclude_id is not None:
        query = query.where(Plot.id != exclude_id)
    query = intersecting(query, Plot, new.geometry, session.get_bind().dialect.name)
    conflicts = []
    for other in session.scalars(query):
        overlap = geodesic_overlap(new.geometry, other.geometry)
        within = tolerated(overlap)
        if overlap.overlap_m2 > 0 and (report_all or not within):
            conflicts.append(
                _describe(new, overlap)
                | {
                    "within_tolerance": within,
                    "existing_plot_id": other.id,
                    "existing_plot_code": other.plot_code,
                    "existing_plot_name": other.name,
                    "existing_project_id": other.project_id,
                    "existing_project_code": other.project.code,
                    "existing_owner": other.project.organisation.name,
                    "existing_province_code": other.project.province_code,
                    "existing_claim_period": [other.claim_start.isoformat(), other.claim_end.isoformat()],
                }
            )
    return conflicts


def _within_upload(claims: list[NewClaim]) -> list[dict[str, Any]]:
    tree = STRtree([c.geometry for c in claims])
    pairs = tree.query([c.geometry for c in claims], predicate="intersects")
    conflicts = []
    for i, j in sorted({(int(i), int(j)) for i, j in pairs.T if i < j}):
        a, b = claims[i], claims[j]
        overlap = geodesic_overlap(b.geometry, a.geometry)
        if overlap.overlap_m2 > 0 and not tolerated(overlap):
            conflicts.append(
                _describe(b, overlap) | {"existing_feature_index": a.index, "existing_plot_code": a.plot_code}
            )
    return conflicts


def overlaps_of_plot(session: Session, plot: Plot) -> list[dict[str, Any]]:
    """Return every active claim overlapping a stored plot in an overlapping period, slivers included."""
    claim = NewClaim(-1, plot.plot_code, plot.geometry)
    found = _against_stored(session, claim, plot.claim_start, plot.claim_end, exclude_id=plot.id, report_all=True)
    for item in found:
        del item["feature_index"]
    return found


def find_conflicts(session: Session, claims: list[NewClaim], *, start: date, end: date) -> list[dict[str, Any]]:
    """Return every conflict of ``claims`` with active stored claims and with each other."""
    conflicts = [c for new in claims for c in _against_stored(session, new, start, end)]
    return conflicts + _within_upload(claims)
