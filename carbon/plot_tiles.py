"""Service: a project's plots as vector tiles (MVT) for the bureau's map, and the box they fill.

PostgreSQL builds each tile in the database (``ST_AsMVTGeom`` + ``ST_AsMVT`` on the GiST index); SQLite, the
embedded default, has no spatial extension: the project's plot outlines are read once into arrays (ids, codes,
bounding boxes, shapely geometries), kept per project while its plots do not change (count, last id, last
measurement), and each tile is cut from them by box and encoded by ``geodata.tiles``; encoded tiles are kept too
(same key), as a tile of unchanged plots is the same bytes. ADR 040 records why and
the benchmark (``benchmarks/plot_tiles.py``).

A tile's features carry the plot id (the feature id and ``plot_id``) and ``code``; the page asks for a plot's card
(areas, claim, overlaps, warnings) when one is clicked, so tiles stay small.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import shapely
from numpy.typing import NDArray
from sqlalchemy import LargeBinary, func, select, text, type_coerce
from sqlalchemy.orm import Session

from carbon.models import ClaimStatus, Plot
from geodata.tiles import check_tile, encode_tile, tile_bounds

LAYER: Final = "plots"
#: Projects whose outlines the SQLite path keeps in memory at once (least recently used dropped first).
KEPT_PROJECTS: Final = 8
#: Encoded tiles kept (SQLite path), keyed by project, its plots' version and the tile: a tile of unchanged plots
#: is the same bytes, so a second visit, another person of the bureau or a pan back costs no encoding.
KEPT_TILES: Final = 2048

_POSTGIS_TILE = text(
    """
    WITH bounds AS (SELECT ST_TileEnvelope(:z, :x, :y) AS box),
    cut AS (
      SELECT p.id, p.id AS plot_id, p.plot_code AS code,
             ST_AsMVTGeom(ST_Transform(p.geometry, 3857), bounds.box, 4096, 64, true) AS geom
      FROM plot p, bounds
      WHERE p.project_id = :project_id AND p.claim_status = :active
        AND p.geometry && ST_Transform(bounds.box, 4490)
    )
    SELECT ST_AsMVT(cut.*, :layer, 4096, 'geom', 'id') FROM cut WHERE geom IS NOT NULL
    """
)


@dataclass(frozen=True)
class _Outlines:
    ids: NDArray[np.int64]
    codes: list[str | None]
    boxes: NDArray[np.float64]  # min_lon, min_lat, max_lon, max_lat per plot
    geometries: NDArray[Any]


_kept: OrderedDict[tuple[int, tuple[Any, ...]], _Outlines] = OrderedDict()
_tiles: OrderedDict[tuple[int, tuple[Any, ...], int, int, int], bytes] = OrderedDict()
_lock = threading.Lock()


def _active(project_id: int) -> Any:
    return (Plot.project_id == project_id) & (Plot.claim_status == ClaimStatus.ACTIVE)


def plots_extent(session: Session, project_id: int) -> tuple[float, float, float, float] | None:
    """Return the lon/lat box of a project's active plots, or ``None`` when it has none."""
    row = session.execute(
        select(func.min(Plot.min_lon), func.min(Plot.min_lat), func.max(Plot.max_lon), func.max(Plot.max_lat)).where(
            _active(project_id)
        )
    ).one()
    return None if row[0] is None else (float(row[0]), float(row[1]), float(row[2]), float(row[3]))


def _version(session: Session, project_id: int) -> tuple[Any, ...]:
    row = session.execute(
        select(func.count(), func.max(Plot.id), func.max(Plot.measured_at)).where(_active(project_id))
    ).one()
    return tuple(row)


def _outlines(session: Session, project_id: int, version: tuple[Any, ...]) -> _Outlines:
    key = (project_id, version)
    with _lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key]
    rows = session.execute(
        select(Plot.id, Plot.plot_code, Plot.min_lon, Plot.min_lat, Plot.max_lon, Plot.max_lat,
               type_coerce(Plot.__table__.c.geometry, LargeBinary))
        .where(_active(project_id)).order_by(Plot.id)
    ).all()  # fmt: skip
    outlines = _Outlines(
        ids=np.array([r[0] for r in rows], dtype=np.int64),
        codes=[r[1] for r in rows],
        boxes=np.array([r[2:6] for r in rows], dtype=np.float64).reshape(-1, 4),
        geometries=shapely.from_wkb([r[6] for r in rows]) if rows else np.array([], dtype=object),
    )
    with _lock:
        for stale in [k for k in _kept if k[0] == project_id]:
            del _kept[stale]
        _kept[key] = outlines
        while len(_kept) > KEPT_PROJECTS:
            _kept.popitem(last=False)
    return outlines


def plot_tile(session: Session, project_id: int, z: int, x: int, y: int) -> bytes:
    """Return tile ``z/x/y`` of the project's active plots (empty bytes when none lies in it)."""
    if not check_tile(z, x, y):
        return b""
    if session.get_bind().dialect.name == "postgresql":
        params = {"z": z, "x": x, "y": y, "project_id": project_id, "active": ClaimStatus.ACTIVE.value, "layer": LAYER}
        tile = session.execute(_POSTGIS_TILE, params).scalar()
        return bytes(tile) if tile else b""
    version = _version(session, project_id)
    key = (project_id, version, z, x, y)
    with _lock:
        if key in _tiles:
            _tiles.move_to_end(key)
            return _tiles[key]
    tile = _encode(_outlines(session, project_id, version), z, x, y)
    with _lock:
        _tiles[key] = tile
        while len(_tiles) > KEPT_TILES:
            _tiles.popitem(last=False)
    return tile


def _encode(outlines: _Outlines, z: int, x: int, y: int) -> bytes:
    west, south, east, north = tile_bounds(z, x, y)
    margin_x, margin_y = (east - west) * 64 / 4096, (north - south) * 64 / 4096
    boxes = outlines.boxes
    hit = np.flatnonzero(
        (boxes[:, 0] <= east + margin_x)
        & (boxes[:, 2] >= west - margin_x)
        & (boxes[:, 1] <= north + margin_y)
        & (boxes[:, 3] >= south - margin_y)
    )
    if len(hit) == 0:
        return b""
    properties = [{"plot_id": int(outlines.ids[i]), "code": outlines.codes[i]} for i in hit.tolist()]
    return encode_tile(z, x, y, LAYER, list(outlines.geometries[hit]), properties, outlines.ids[hit].tolist())
