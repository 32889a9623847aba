"""What monitoring reports take, per methodology: the report adapters and the kind-specific input checks.

Each listed methodology has an :class:`Adapter` (issue 26): where its units, period and registrations are in its
inputs, and the kind of unit it accounts (``ProjectKind``). A fishery report takes each harvest by sea area and
culture mode; an IPCC report credits a stock difference over its period with an explicit buffer (ADR 036).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from carbon.models import ProjectKind
from core.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Adapter:
    """How a methodology's inputs name their period, their units and their registrations, and what it accounts.

    ``units_field`` is a path (``calculation.strata``) to the list of units; ``start_field``/``end_field``
    ``None``: the inputs carry no period of their own (the report's is checked against theirs instead);
    ``areas``: whether the units declare areas (``area_m2``) checked against their plots'.
    """

    units_field: str
    unit_id_field: str
    start_field: str | None = "monitoring_start"
    end_field: str | None = "monitoring_end"
    registrations_field: str | None = "external_registrations"
    raster_route: bool = False
    kind: ProjectKind = ProjectKind.PLOTS
    areas: bool = True


#: Every listed methodology's report adapter: what monitoring reports take, per methodology (issue 26).
ADAPTERS: Mapping[str, Adapter] = {
    "CCER-14-001": Adapter("strata", "stratum_id", registrations_field=None, raster_route=True),
    "FJ-FORESTRY-CARBON-TICKET": Adapter("sub_compartments", "sub_compartment_id"),
    "NX-RESTORATION": Adapter("polygons", "polygon_id"),
    "HY-T-0305-2021": Adapter(
        "harvests", "sea_area_id", "period_start", "period_end", None, kind=ProjectKind.SEA_AREAS, areas=False
    ),
    "ipcc-2006-2019-forest-land": Adapter(
        "calculation.strata", "stratum_id", None, None, None, kind=ProjectKind.INVENTORY_UNITS
    ),
}
#: A stock difference's ``interval_years`` may differ from the report period by this much (dates of survey).
INTERVAL_TOLERANCE_YEARS = Decimal("0.1")
DAYS_PER_YEAR = Decimal("365.25")


def check_harvests(document: Mapping[str, Any]) -> None:
    """A fishery report takes each harvest by sea area, species and culture mode: refuse one missing either."""
    harvests = document.get("harvests")
    if not isinstance(harvests, list):
        return  # the methodology's model reports the shape
    problems = [
        {"pointer": f"/inputs/harvests/{index}/{field}", "reason": f"a reported harvest states its {field}"}
        for index, harvest in enumerate(harvests)
        if isinstance(harvest, dict)
        for field in ("sea_area_id", "culture_mode")
        if harvest.get(field) in (None, "")
    ]
    if problems:
        raise InvalidInput("each harvest names its sea area and its culture mode", problems)


def check_inventory(document: Mapping[str, Any], period_start: date, period_end: date) -> None:
    """An IPCC report credits a stock difference over the report period, with an explicit buffer."""
    problems = []
    if document.get("buffer") is None:
        problems.append(
            {"pointer": "/inputs/buffer", "reason": "a report credits the removal: give buffer {share, reason}"}
        )
    calculation = document.get("calculation")
    interval = calculation.get("interval_years") if isinstance(calculation, Mapping) else None
    if interval is not None:
        try:
            interval_years: Decimal | None = Decimal(str(interval))
        except ArithmeticError:
            interval_years = None  # the methodology's model reports it
        if interval_years is not None and not interval_years.is_finite():
            interval_years = None  # NaN or infinity: the methodology's model reports it
        period_years = Decimal((period_end - period_start).days) / DAYS_PER_YEAR
        if interval_years is not None and abs(interval_years - period_years) > INTERVAL_TOLERANCE_YEARS:
            problems.append(
                {
                    "pointer": "/inputs/calculation/interval_years",
                    "reason": f"the inventories are {interval_years} years apart but the report period is "
                    f"{period_years:.2f} years: the stock difference covers the report period",
                }
            )
    if problems:
        raise InvalidInput("an IPCC report credits a stock difference over its period", problems)
