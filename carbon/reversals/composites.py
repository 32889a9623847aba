"""Register NDVI and land-cover composites by date for a region, and decide which pairs may be compared.

A composite is a registered raster layer (``geodata.rasters``: a GeoTIFF of the server's raster directory) with
what monitoring needs to know of it: its kind (``ndvi`` or ``land_cover``), the region it covers (GB/T 2260 code),
the window of the images it was composited from, the sensor, and for land cover the classes that hold carbon.

Only **same-season** composites are compared (:func:`check_pair`): vegetation greens and browns over the year,
so a summer image against a winter one shows "loss" everywhere. Change-detection practice pairs anniversary
dates (Coppin et al. 2004, cited with the thresholds); here the middle days of the two acquisition windows must
lie within the credit class's ``season_window_days`` of each other in the year, the later composite must start
after the earlier ends, and both must be of the same kind and region.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.reversals.kernels import midpoint, season_gap_days
from carbon.reversals.models import Composite, CompositeKind
from core import audit
from core.auth import OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from geodata.models import RasterKind
from geodata.rasters import get_layer

#: Who registers composites: the bureaus that receive the imagery, and the registry.
REGISTRANTS = frozenset({OrgKind.FORESTRY_BUREAU, OrgKind.ECOLOGY_BUREAU, OrgKind.REGISTRY})


class RegisterComposite(BaseModel):
    """Command: register a raster layer as a dated composite of a region."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-.]*$")
    kind: CompositeKind
    raster_layer: str = Field(min_length=1, max_length=100, description="A registered raster layer's name.")
    region_code: str = Field(pattern=r"^\d{2}(\d{4})?$", description="GB/T 2260 province or county code.")
    acquired_start: date
    acquired_end: date
    sensor: str = Field(default="", max_length=100, examples=["Sentinel-2 MSI L2A", "Landsat 8 OLI"])
    vegetated_classes: list[int] = Field(
        default_factory=list, max_length=255, description="Land cover only: the classes that hold carbon."
    )
    description: str = Field(default="", max_length=5000)

    @model_validator(mode="after")
    def _consistent(self) -> RegisterComposite:
        if self.acquired_end < self.acquired_start:
            raise ValueError("acquired_end is before acquired_start")
        if self.kind is CompositeKind.LAND_COVER and not self.vegetated_classes:
            raise ValueError("a land-cover composite states its vegetated (carbon-holding) classes")
        if self.kind is CompositeKind.NDVI and self.vegetated_classes:
            raise ValueError("vegetated_classes are for land-cover composites only")
        return self


def register_composite(session: Session, cmd: RegisterComposite, *, actor: Principal, clock: Clock) -> Composite:
    """Register a composite (audited); commits.

    Raises:
        PermissionDenied: Not a bureau or the registry.
        NotFound: No such raster layer.
        Conflict: The name is taken.
        InvalidInput: An NDVI composite on a categorical layer, or a land-cover composite on a continuous one.
    """
    if actor.role not in REGISTRANTS:
        raise PermissionDenied("forestry or ecology bureaus and the registry register composites")
    layer = get_layer(session, cmd.raster_layer)
    if session.scalars(select(Composite.id).where(Composite.name == cmd.name)).first() is not None:
        raise Conflict(f"a composite named {cmd.name!r} exists")
    wanted = RasterKind.CATEGORICAL if cmd.kind is CompositeKind.LAND_COVER else RasterKind.CONTINUOUS
    if layer.kind is not wanted:
        raise InvalidInput(
            f"a {cmd.kind.value} composite needs a {wanted.value} layer; {layer.name} is {layer.kind.value}",
            [{"pointer": "/raster_layer", "reason": "layer-kind"}],
        )
    composite = Composite(
        name=cmd.name, kind=cmd.kind, raster_layer_id=layer.id, region_code=cmd.region_code,
        acquired_start=cmd.acquired_start, acquired_end=cmd.acquired_end, sensor=cmd.sensor,
        vegetated_classes=sorted(set(cmd.vegetated_classes)), description=cmd.description, created_at=clock.now(),
        created_by_user_id=actor.user_id,
    )  # fmt: skip
    session.add(composite)
    session.flush()
    payload = {**cmd.model_dump(mode="json"), "layer_sha256": layer.sha256}
    audit.append(session, actor=actor.actor, action="composite.registered", subject=f"composite:{composite.id}",
                 payload=payload, clock=clock)  # fmt: skip
    session.commit()
    return composite


def get_composite(session: Session, name: str) -> Composite:
    """Return a composite by name."""
    found = session.scalars(select(Composite).where(Composite.name == name)).first()
    if found is None:
        raise NotFound(f"composite {name!r} does not exist")
    return found


def list_composites(session: Session, region_code: str | None = None) -> list[Composite]:
    """Return the composites, by region and date."""
    query = select(Composite).order_by(Composite.region_code, Composite.acquired_start, Composite.id)
    if region_code is not None:
        query = query.where(Composite.region_code == region_code)
    return list(session.scalars(query))


def check_pair(before: Composite, after: Composite, window_days: int) -> int:
    """Return the season gap (days) of two composites that may be compared; refuse any other pair.

    Raises:
        InvalidInput: Different kinds or regions, the "after" composite not after the "before" one, or the
            middle days more than ``window_days`` apart in the year (a winter image against a summer one).
    """
    problems: list[dict[str, Any]] = []
    if before.kind != after.kind:
        problems.append({"reason": "different-kinds", "before": before.kind.value, "after": after.kind.value})
    if before.region_code != after.region_code:
        problems.append({"reason": "different-regions", "before": before.region_code, "after": after.region_code})
    if after.acquired_start <= before.acquired_end:
        problems.append({"reason": "after-not-later", "before_end": before.acquired_end.isoformat(),
                         "after_start": after.acquired_start.isoformat()})  # fmt: skip
    middle_before = midpoint(before.acquired_start, before.acquired_end)
    middle_after = midpoint(after.acquired_start, after.acquired_end)
    gap = season_gap_days(middle_before, middle_after)
    if gap > window_days:
        problems.append({
            "reason": "different-seasons", "before_middle": middle_before.isoformat(),
            "after_middle": middle_after.isoformat(), "gap_days": gap, "window_days": window_days,
        })  # fmt: skip
    if problems:
        detail = "; ".join(p["reason"] for p in problems)
        raise InvalidInput(
            f"composites {before.name} and {after.name} cannot be compared ({detail}): only same-season composites "
            f"of one kind and region, the later after the earlier, within {window_days} days in the year",
            problems,
        )
    return gap
