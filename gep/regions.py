"""Service: region layers (counties, townships) uploaded as polygon files, stored in EPSG:4490.

Regions go through geodata's readers and intake like plot files (any supported format and CRS, every
feature checked, all or nothing), but they are GEP's accounting units, not carbon claims: they are
stored in their own tables and never meet the double-counting guard. Administrative areas are large,
so the plot size limit is raised; every region needs a code, unique in its layer.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound
from geodata.intake import intake_file
from geodata.readers import ReadLimits
from geodata.validation import GeometryLimits
from gep.models import Region, RegionLayer, RegionLevel
from gep.plan import RegionShape

#: Regions may be as large as a county or a prefecture (up to 100,000 km²).
REGION_LIMITS = GeometryLimits(max_area_m2=1e11, max_vertices=500_000)


def upload_region_layer(
    session: Session,
    *,
    name: str,
    level: RegionLevel,
    filename: str,
    data: bytes,
    actor: str,
    clock: Clock,
    limits: ReadLimits | None = None,
) -> RegionLayer:
    """Read, check and store a region layer with its audit entry; nothing is stored if any feature fails.

    Raises:
        Conflict: A layer of that name exists.
        InvalidGeometry: A feature was refused (every problem listed).
        InvalidInput: A region has no code, or two regions share one.
    """
    if session.scalars(select(RegionLayer).where(RegionLayer.name == name)).first() is not None:
        raise Conflict(f"a region layer named {name!r} exists")
    intake = intake_file(data, filename, limits=REGION_LIMITS, read_limits=limits)
    intake.raise_if_refused()
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()
    for feature in intake.features:
        code = feature.plot_code
        if not code:
            problems.append({"feature_index": feature.index, "reason": "region-without-code"})
        elif code in seen:
            problems.append({"feature_index": feature.index, "code": code, "reason": "duplicate-region-code"})
        else:
            seen.add(code)
    if not intake.features:
        problems.append({"reason": "no-regions"})
    if problems:
        raise InvalidInput(f"{len(problems)} region problem(s); nothing was stored", problems)
    layer = RegionLayer(
        name=name,
        level=level,
        filename=filename[:255],
        sha256=hashlib.sha256(data).hexdigest(),
        created_at=clock.now(),
        created_by=actor,
    )
    session.add(layer)
    session.flush()
    for feature, report in zip(intake.features, (intake.reports[f.index] for f in intake.features), strict=True):
        session.add(
            Region(
                layer_id=layer.id,
                code=str(feature.plot_code),
                name=feature.name or str(feature.plot_code),
                geometry=feature.geometry,
                area_m2=float(report.area_m2 or 0.0),
            )
        )
    session.flush()
    audit.append(
        session,
        actor=actor,
        action="gep_region_layer.created",
        subject=f"gep_region_layer:{layer.id}",
        payload={"name": name, "level": level.value, "sha256": layer.sha256, "regions": sorted(seen)},
        clock=clock,
    )
    session.commit()
    return layer


def get_region_layer(session: Session, name: str) -> RegionLayer:
    """Return a region layer by name or raise :class:`NotFound`."""
    layer = session.scalars(select(RegionLayer).where(RegionLayer.name == name)).first()
    if layer is None:
        raise NotFound(f"no region layer named {name!r}")
    return layer


def list_region_layers(session: Session) -> list[RegionLayer]:
    """Return every region layer by name."""
    return list(session.scalars(select(RegionLayer).order_by(RegionLayer.name)))


def region_shapes(layer: RegionLayer) -> list[RegionShape]:
    """Return the layer's regions as engine inputs, by code."""
    return [RegionShape(r.code, r.name, r.geometry) for r in sorted(layer.regions, key=lambda r: r.code)]


def layer_summary(layer: RegionLayer) -> dict[str, Any]:
    """Return a region layer as a JSON-ready mapping (no geometries)."""
    return {
        "id": layer.id,
        "name": layer.name,
        "level": layer.level.value,
        "filename": layer.filename,
        "sha256": layer.sha256,
        "regions": [{"code": r.code, "name": r.name, "area_m2": r.area_m2} for r in layer.regions],
        "created_at": layer.created_at.isoformat(),
    }
