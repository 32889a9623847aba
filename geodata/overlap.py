"""Indexed overlap search over a polygon layer, and exact geodesic overlap areas.

``geodata`` knows nothing of projects or claims: a *polygon layer* is any table with an integer ``id``,
a :class:`~geodata.sqltypes.MultiPolygonGeometry` column ``geometry`` and bounding-box columns
``min_lon``/``min_lat``/``max_lon``/``max_lat``. Two implementations of the index sit behind one
function:

* PostgreSQL + PostGIS: ``ST_Intersects`` on the GiST-indexed geometry column;
* SQLite: an R-tree virtual table ``<layer>_rtree`` kept in step by triggers (:func:`rtree_ddl`),
  followed by an exact shapely test.

Callers that must not race (the double-counting guard) take :func:`lock_area` first: a transaction-scoped
advisory lock per 1° cell on PostgreSQL, so two transactions touching the same cells queue while distant
ones proceed; on SQLite every write transaction is already serialised (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import Column, Float, Integer, MetaData, Select, Table, func, select, text, type_coerce
from sqlalchemy.orm import Session

from geodata.area import measure
from geodata.sqltypes import MultiPolygonGeometry

#: First key of the advisory locks taken by :func:`lock_area` ("SH").
LOCK_NAMESPACE = 0x5348
LOCK_CELL_DEG = 1.0


@dataclass(frozen=True)
class Overlap:
    """The exact geodesic overlap of two polygons."""

    overlap_m2: float
    area_a_m2: float
    area_b_m2: float

    @property
    def smaller_m2(self) -> float:
        """Return the area of the smaller of the two polygons."""
        return min(self.area_a_m2, self.area_b_m2)


def geodesic_overlap(a: BaseGeometry, b: BaseGeometry) -> Overlap:
    """Return the geodesic area of ``a ∩ b`` and of each polygon (lon/lat, GRS80).

    >>> from shapely.geometry import box
    >>> o = geodesic_overlap(box(0, 0, 0.01, 0.01), box(0.005, 0, 0.015, 0.01))
    >>> round(o.overlap_m2 / o.area_a_m2, 3)
    0.5
    """
    intersection = a.intersection(b)
    overlap_m2 = measure(intersection).area_m2 if not intersection.is_empty else 0.0
    return Overlap(overlap_m2, measure(a).area_m2, measure(b).area_m2)


def _rtree(layer: str) -> Table:
    return Table(
        f"{layer}_rtree",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("min_lon", Float),
        Column("max_lon", Float),
        Column("min_lat", Float),
        Column("max_lat", Float),
    )


def rtree_ddl(layer: str) -> list[str]:
    """Return the SQLite statements creating the R-tree of ``layer`` and the triggers that maintain it."""
    rtree = f"{layer}_rtree"
    values = "NEW.id, NEW.min_lon, NEW.max_lon, NEW.min_lat, NEW.max_lat"
    return [
        f"CREATE VIRTUAL TABLE {rtree} USING rtree(id, min_lon, max_lon, min_lat, max_lat)",
        f"CREATE TRIGGER {layer}_rtree_insert AFTER INSERT ON {layer} BEGIN INSERT INTO {rtree} VALUES ({values}); END",
        f"CREATE TRIGGER {layer}_rtree_update AFTER UPDATE OF min_lon, min_lat, max_lon, max_lat ON {layer} BEGIN "
        f"UPDATE {rtree} SET min_lon = NEW.min_lon, max_lon = NEW.max_lon, min_lat = NEW.min_lat, "
        f"max_lat = NEW.max_lat WHERE id = NEW.id; END",
        f"CREATE TRIGGER {layer}_rtree_delete AFTER DELETE ON {layer} BEGIN DELETE FROM {rtree} WHERE id = OLD.id; END",
        f"INSERT INTO {rtree} SELECT id, min_lon, max_lon, min_lat, max_lat FROM {layer}",
    ]


def rtree_drop_ddl(layer: str) -> list[str]:
    """Return the SQLite statements that remove what :func:`rtree_ddl` created."""
    return [
        f"DROP TRIGGER IF EXISTS {layer}_rtree_insert",
        f"DROP TRIGGER IF EXISTS {layer}_rtree_update",
        f"DROP TRIGGER IF EXISTS {layer}_rtree_delete",
        f"DROP TABLE IF EXISTS {layer}_rtree",
    ]


def intersecting(query: Select[Any], model: Any, geometry: BaseGeometry, dialect: str) -> Select[Any]:
    """Restrict ``query`` over a polygon layer ``model`` to rows whose geometry may intersect ``geometry``.

    On PostgreSQL the test is exact (``ST_Intersects``); on SQLite it is the R-tree bounding-box test and
    the caller confirms with shapely (:func:`geodesic_overlap` does).
    """
    if dialect == "postgresql":
        probe = type_coerce(geometry, MultiPolygonGeometry())
        return query.where(func.ST_Intersects(model.geometry, probe))
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    rtree = _rtree(model.__tablename__)
    boxes = select(rtree.c.id).where(
        rtree.c.min_lon <= max_lon,
        rtree.c.max_lon >= min_lon,
        rtree.c.min_lat <= max_lat,
        rtree.c.max_lat >= min_lat,
    )
    return query.where(model.id.in_(boxes))


def lock_cells(bounds: Sequence[float]) -> list[int]:
    """Return the sorted ids of the 1° cells a bounding box touches (the advisory-lock keys).

    >>> lock_cells((106.3, 35.5, 106.4, 35.6))
    [51891]
    >>> len(lock_cells((105.9, 35.9, 106.1, 36.1)))
    4
    """
    min_lon, min_lat, max_lon, max_lat = bounds
    xs = range(math.floor(min_lon / LOCK_CELL_DEG), math.floor(max_lon / LOCK_CELL_DEG) + 1)
    ys = range(math.floor(min_lat / LOCK_CELL_DEG), math.floor(max_lat / LOCK_CELL_DEG) + 1)
    return sorted((x + 180) * 181 + (y + 90) for x in xs for y in ys)


def lock_area(session: Session, geometries: Sequence[BaseGeometry]) -> None:
    """Serialise, until the transaction ends, every writer touching the cells of ``geometries``.

    Locks are taken in ascending key order, so two transactions can never deadlock on them.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    cells = sorted({cell for geometry in geometries for cell in lock_cells(geometry.bounds)})
    for cell in cells:
        session.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, :cell)"), {"namespace": LOCK_NAMESPACE, "cell": cell}
        )
