"""ORM models of GEP accounting: region layers and their regions, accounting runs and their tiles.

Invariants:

* A region layer (counties, townships) is GEP's own: its regions are accounting units, never carbon
  claims, so they never meet the double-counting guard. Geometries are MultiPolygons in EPSG:4490.
* A region's ``code`` is unique within its layer; ``area_m2`` is geodesic on GRS80.
* A run names its region layer, its raster inputs (layer name and SHA-256 at the start), its
  configuration and its valuation record (both tables' id, version and hash). Its results are written
  only when every tile has finished: a failed run holds no result.
* A tile's result is written once (``done``) with the worker that computed it; the run's ``tiles_done``
  counts done tiles.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import JSON, Enum, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base
from core.sqltypes import UtcDateTime
from geodata.sqltypes import MultiPolygonGeometry


class RegionLevel(enum.StrEnum):
    """Administrative level of a region layer."""

    COUNTY = "county"
    TOWNSHIP = "township"


class RunStatus(enum.StrEnum):
    """Lifecycle of an accounting run."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    return Enum(kind, name=name, native_enum=False, length=20, values_callable=lambda k: [m.value for m in k])


class RegionLayer(Base):
    """A set of accounting regions uploaded from one polygon file."""

    __tablename__ = "gep_region_layer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    level: Mapped[RegionLevel] = mapped_column(_enum(RegionLevel, "gep_region_level"))
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))

    regions: Mapped[list[Region]] = relationship(back_populates="layer", order_by="Region.code")


class Region(Base):
    """One accounting region (a county or a township) of a region layer."""

    __tablename__ = "gep_region"
    __table_args__ = (UniqueConstraint("layer_id", "code", name="uq_gep_region_layer_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    layer_id: Mapped[int] = mapped_column(ForeignKey("gep_region_layer.id"), index=True)
    code: Mapped[str] = mapped_column(String(50))
    name: Mapped[str] = mapped_column(String(200))
    geometry: Mapped[BaseGeometry] = mapped_column(MultiPolygonGeometry())
    area_m2: Mapped[float] = mapped_column(Float)

    layer: Mapped[RegionLayer] = relationship(back_populates="regions")


class GepRun(Base):
    """An accounting run: a region layer × a raster stack for a year × price and coefficient tables."""

    __tablename__ = "gep_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    year: Mapped[int] = mapped_column(Integer)
    region_layer_id: Mapped[int] = mapped_column(ForeignKey("gep_region_layer.id"), index=True)
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "gep_run_status"))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON)
    valuation: Mapped[dict[str, Any]] = mapped_column(JSON)
    tiles_total: Mapped[int] = mapped_column(Integer)
    tiles_done: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    output_dir: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    region_layer: Mapped[RegionLayer] = relationship()


class GepRunTile(Base):
    """One tile of a run: its window and, once done, its exact per-region totals."""

    __tablename__ = "gep_run_tile"
    __table_args__ = (UniqueConstraint("run_id", "index", name="uq_gep_run_tile_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("gep_run.id"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    window: Mapped[list[int]] = mapped_column(JSON)
    done: Mapped[bool] = mapped_column(default=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: Who computed the tile: a Celery worker's host name, or ``process:<host>:<pid>`` (migration 0030).
    worker: Mapped[str | None] = mapped_column(String(200), nullable=True, default=None)
