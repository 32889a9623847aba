"""Service: the boundary set in force (imported or shipped) and ``shanhai regions import``.

:func:`current_index` reads the newest ``region_dataset`` row (one small query) and returns the
process-wide :class:`~geodata.regions.RegionIndex` of that version, building it once; with no imported
dataset it returns the shipped one (ADR 021). :func:`import_boundaries` validates a whole file first
(codes against GB/T 2260, every province present, valid (multi)polygons, no duplicates), then replaces
the boundaries, records the dataset and appends one audit entry in one transaction: a deployment has
either the old set or the new one, never a mix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.exceptions import CRSError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core import audit
from core.clock import Clock
from core.errors import InvalidInput, UnreadableFile
from core.regions import divisions
from geodata.crs import china_outline
from geodata.gcj02 import gcj02_to_wgs84_array
from geodata.models import RegionBoundaryRow, RegionDataset
from geodata.readers import PlotFormat, ReadLimits, detect_format, read_plot_file
from geodata.regions import (
    POSITIONAL_TOLERANCE_M,
    Boundary,
    DatasetInfo,
    RegionIndex,
    as_multipolygon,
    check_codes,
    dataset_version,
    shipped_index,
)

_CACHE: dict[str, RegionIndex] = {}


def _newest(session: Session) -> RegionDataset | None:
    return session.scalars(select(RegionDataset).order_by(RegionDataset.id.desc()).limit(1)).first()


def current_index(session: Session) -> RegionIndex:
    """Return the index of the boundary set in force (imported, else shipped), built once per version."""
    dataset = _newest(session)
    if dataset is None:
        return shipped_index()
    cached = _CACHE.get(dataset.version)
    if cached is not None:
        return cached
    rows = session.scalars(select(RegionBoundaryRow).order_by(RegionBoundaryRow.code))
    boundaries = tuple(Boundary(r.code, r.name_zh, r.level, r.geometry) for r in rows)
    newest = _newest(session)
    if newest is None or newest.version != dataset.version:  # an import committed between the two reads
        return current_index(session)
    info = DatasetInfo(
        dataset.version, dataset.source, dataset.licence, dataset.datum, dataset.tolerance_m, dataset.as_of
    )
    index = RegionIndex(info, boundaries)
    _CACHE.clear()  # one imported version at a time per process
    _CACHE[dataset.version] = index
    return index


@dataclass(frozen=True)
class BoundaryImport:
    """What ``regions import`` needs besides the file."""

    path: Path
    source: str
    licence: str
    datum: str = "cgcs2000"  # cgcs2000 | wgs84 | gcj02 (converted to CGCS2000 on import)
    as_of: str = ""
    code_field: str = "code"
    tolerance_m: float = POSITIONAL_TOLERANCE_M


def _read_features(path: Path) -> list[tuple[dict[str, Any], BaseGeometry | None]]:
    data = path.read_bytes()
    kind = detect_format(path.name)
    if kind is PlotFormat.GEOJSON:
        try:
            document = json.loads(data.decode("utf-8-sig"))
            features = document["features"]
            raw = [(f.get("properties") or {}, shape(f["geometry"]) if f.get("geometry") else None) for f in features]
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise UnreadableFile(f"not a GeoJSON FeatureCollection: {error}") from error
        crs = None
    else:
        layer = read_plot_file(data, path.name, ReadLimits(max_features=10_000))
        raw, crs = layer.features, layer.crs
    if crs is None:
        return raw
    return [(p, None if g is None else _to_cgcs2000(g, crs)) for p, g in raw]


def _to_cgcs2000(geometry: BaseGeometry, crs: str) -> BaseGeometry:
    """Reproject to CGCS2000 lon/lat (boundaries are whole provinces: no plot-scale CRS heuristics here)."""
    try:
        transformer = _transformer(crs)
    except CRSError as error:
        raise UnreadableFile(f"the CRS cannot be read: {error}") from error
    return shapely.transform(geometry, lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))


@lru_cache(maxsize=4)
def _transformer(crs: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(crs), CRS.from_epsg(4490), always_xy=True)


def _boundaries(spec: BoundaryImport) -> list[Boundary]:
    known = divisions()
    boundaries: list[Boundary] = []
    problems: list[dict[str, Any]] = []
    for index, (properties, geometry) in enumerate(_read_features(spec.path)):
        code = str(properties.get(spec.code_field) or "").strip()
        division = known.get(code)
        if division is not None and division.level == "prefecture":
            continue  # prefectures are not used by the rule
        reason = None
        if division is None:
            reason = f"unknown GB/T 2260 code {code!r} in field {spec.code_field!r}"
        elif geometry is None or geometry.geom_type not in ("Polygon", "MultiPolygon") or geometry.is_empty:
            reason = "the boundary must be a non-empty Polygon or MultiPolygon"
        elif not geometry.is_valid:
            reason = f"invalid geometry: {shapely.is_valid_reason(geometry)}"
        elif not china_outline().intersects(geometry):
            reason = "the boundary lies outside China: are the coordinates lon/lat (x = longitude) in CGCS2000?"
        if reason is not None or division is None or geometry is None:
            problems.append({"feature_index": index, "code": code, "reason": reason})
            continue
        if spec.datum == "gcj02":
            geometry = shapely.make_valid(shapely.transform(geometry, gcj02_to_wgs84_array))
        boundaries.append(Boundary(code, division.name_zh, division.level, as_multipolygon(geometry)))
    codes = [b.code for b in boundaries]
    duplicates = sorted({c for c in codes if codes.count(c) > 1})
    problems += [{"code": c, "reason": "the code appears more than once"} for c in duplicates]
    problems += [{"reason": reason} for reason in check_codes(codes) if not reason.startswith("unknown")]
    if problems:
        raise InvalidInput(f"{len(problems)} problem(s) in the boundary file; nothing was imported", problems)
    return boundaries


def import_boundaries(session: Session, spec: BoundaryImport, *, actor: str, clock: Clock) -> RegionDataset:
    """Replace the boundaries in force by those of ``spec.path``, all or nothing, with an audit entry.

    Raises:
        UnreadableFile: The file cannot be read.
        InvalidInput: Any code, geometry or coverage problem (each listed); nothing is changed.
    """
    if spec.datum not in ("cgcs2000", "wgs84", "gcj02"):
        raise InvalidInput(f"unknown datum {spec.datum!r}: use cgcs2000, wgs84 or gcj02")
    boundaries = _boundaries(spec)
    version = dataset_version(boundaries)
    datum = "CGCS2000 lon/lat" + (" (converted from GCJ-02 on import)" if spec.datum == "gcj02" else "")
    session.execute(delete(RegionBoundaryRow))
    session.add_all(
        RegionBoundaryRow(code=b.code, level=b.level, name_zh=b.name_zh, geometry=b.geometry) for b in boundaries
    )
    dataset = RegionDataset(
        version=version,
        source=spec.source,
        licence=spec.licence,
        datum=datum,
        tolerance_m=spec.tolerance_m,
        as_of=spec.as_of,
        feature_count=len(boundaries),
        imported_at=clock.now(),
        imported_by=actor,
    )
    session.add(dataset)
    session.flush()
    payload = {
        "version": version,
        "file": spec.path.name,
        "source": spec.source,
        "datum": datum,
        "feature_count": len(boundaries),
    }
    audit.append(
        session,
        actor=actor,
        action="regions.imported",
        subject=f"region_dataset:{dataset.id}",
        payload=payload,
        clock=clock,
    )
    session.commit()
    return dataset
