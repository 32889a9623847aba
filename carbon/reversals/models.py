"""ORM models of reversal monitoring: change patches, composites, thresholds, watch runs, loss events.

Invariants:

* A change patch belongs to one imported change-patch file; its geometry is a valid MultiPolygon in
  EPSG:4490 lon/lat and its bounding-box columns equal the geometry's bounds; ``loss_kind`` is decided at
  import from the cause (``carbon.reversals.patches``) and ``gain`` patches never raise an event.
* A composite names one registered raster layer, a kind (``ndvi`` or ``land_cover``), a region code and its
  acquisition window (``acquired_start <= acquired_end``); land-cover composites state their vegetated classes.
* A watch run compares two composites of the same kind, region and grid whose windows are in the same season
  (``carbon.reversals.watch`` refuses any other pair before anything is written); it ends succeeded or failed.
* A loss event is raised once per (run, plot); it is ``proposed`` until the registry decides it, once:
  ``confirmed`` (with the tonnes cancelled and their serials) or ``rejected`` (with the reason). Areas are
  geodesic m²; tonnes are whole integers and exact decimals, never floats.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.sqltypes import ExactDecimal, UtcDateTime
from geodata.sqltypes import MultiPolygonGeometry


def _values(kind: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in kind]


class CompositeKind(enum.StrEnum):
    """What a composite's pixels hold."""

    NDVI = "ndvi"
    LAND_COVER = "land_cover"


class RunStatus(enum.StrEnum):
    """Lifecycle of a watch run."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class EventStatus(enum.StrEnum):
    """Lifecycle of a loss event, which is the registry's reversal proposal."""

    PROPOSED = "proposed"
    CONFIRMED = "confirmed"
    REJECTED = "rejected"


class ChangePatchFile(Base):
    """An imported change-patch file (森林督查变化图斑): its name, hash, survey year and attribute mapping."""

    __tablename__ = "change_patch_file"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    region_code: Mapped[str] = mapped_column(String(6))
    survey_year: Mapped[int] = mapped_column(Integer)
    source_crs: Mapped[str] = mapped_column(Text)
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON)
    patch_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))


class ChangePatch(Base):
    """One change patch: where, what changed (type, cause, loss kind), when, its area."""

    __tablename__ = "change_patch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("change_patch_file.id"), index=True)
    patch_code: Mapped[str] = mapped_column(String(100))
    change_type: Mapped[str] = mapped_column(String(100))
    cause: Mapped[str] = mapped_column(String(200))
    loss_kind: Mapped[str] = mapped_column(String(20))
    change_date: Mapped[date] = mapped_column(Date)
    area_m2: Mapped[float] = mapped_column(Float)
    geometry: Mapped[BaseGeometry] = mapped_column(MultiPolygonGeometry())
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_change_patch_bbox", "min_lon", "max_lon", "min_lat", "max_lat"),)


class Composite(Base):
    """An NDVI or land-cover composite of a region over an acquisition window, on a registered raster layer."""

    __tablename__ = "land_composite"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[CompositeKind] = mapped_column(
        Enum(CompositeKind, name="composite_kind", native_enum=False, length=20, values_callable=_values)
    )
    raster_layer_id: Mapped[int] = mapped_column(ForeignKey("raster_layer.id"))
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    acquired_start: Mapped[date] = mapped_column(Date)
    acquired_end: Mapped[date] = mapped_column(Date)
    sensor: Mapped[str] = mapped_column(String(100))
    vegetated_classes: Mapped[list[int]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))

    __table_args__ = (CheckConstraint("acquired_end >= acquired_start", name="acquired_order"),)


class LossThresholdPolicy(Base):
    """The registry's loss thresholds for a credit class (a class without a row uses the cited defaults)."""

    __tablename__ = "loss_threshold_policy"

    credit_class: Mapped[str] = mapped_column(String(10), primary_key=True)
    season_window_days: Mapped[int] = mapped_column(Integer)
    min_before_ndvi: Mapped[Decimal] = mapped_column(ExactDecimal(6, 3))
    ndvi_drop: Mapped[Decimal] = mapped_column(ExactDecimal(6, 3))
    relative_drop: Mapped[Decimal] = mapped_column(ExactDecimal(6, 3))
    min_area_mu: Mapped[Decimal] = mapped_column(ExactDecimal(12, 3))
    reason: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))


class WatchRun(Base):
    """A monitoring job: issued plots against two same-season composites and change patches, tile by tile."""

    __tablename__ = "land_watch_run"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    before_composite_id: Mapped[int] = mapped_column(ForeignKey("land_composite.id"))
    after_composite_id: Mapped[int] = mapped_column(ForeignKey("land_composite.id"))
    patch_file_ids: Mapped[list[int]] = mapped_column(JSON)
    status: Mapped[RunStatus] = mapped_column(
        Enum(RunStatus, name="watch_run_status", native_enum=False, length=20, values_callable=_values)
    )
    tile_size: Mapped[int] = mapped_column(Integer)
    tiles_total: Mapped[int] = mapped_column(Integer)
    tiles_done: Mapped[int] = mapped_column(Integer)
    plot_ids: Mapped[list[int]] = mapped_column(JSON)
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON)
    season_gap_days: Mapped[int] = mapped_column(Integer)
    events_raised: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class WatchRunTile(Base):
    """One tile of a watch run: done once, its per-plot sums (lost and valid m²) kept until the run merges."""

    __tablename__ = "land_watch_tile"

    run_id: Mapped[int] = mapped_column(ForeignKey("land_watch_run.id", ondelete="CASCADE"), primary_key=True)
    index: Mapped[int] = mapped_column(Integer, primary_key=True)
    done: Mapped[bool] = mapped_column(Boolean)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LossEvent(Base):
    """A loss found on an issued plot — the registry's reversal proposal, with its evidence and decision."""

    __tablename__ = "loss_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("land_watch_run.id"), index=True)
    plot_id: Mapped[int] = mapped_column(ForeignKey("plot.id"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    credit_class: Mapped[str] = mapped_column(String(10))
    status: Mapped[EventStatus] = mapped_column(
        Enum(EventStatus, name="loss_event_status", native_enum=False, length=20, values_callable=_values),
        index=True,
    )
    plot_area_m2: Mapped[float] = mapped_column(Float)
    lost_area_m2: Mapped[float] = mapped_column(Float)
    ndvi_loss_m2: Mapped[float] = mapped_column(Float)
    patch_loss_m2: Mapped[float] = mapped_column(Float)
    before_date: Mapped[date] = mapped_column(Date)
    after_date: Mapped[date] = mapped_column(Date)
    change_date: Mapped[date | None] = mapped_column(Date)
    at_risk_tco2e: Mapped[Decimal] = mapped_column(ExactDecimal(20, 3))
    tonnes_at_risk_t: Mapped[int] = mapped_column(BigInteger)
    at_risk: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON)
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decision_reason: Mapped[str | None] = mapped_column(Text)
    cancelled_t: Mapped[int | None] = mapped_column(BigInteger)
    cancellation: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (
        Index("uq_loss_event_run_plot", "run_id", "plot_id", unique=True),
        CheckConstraint("lost_area_m2 >= 0 AND tonnes_at_risk_t >= 0", name="loss_not_negative"),
        CheckConstraint("(status = 'proposed') = (decided_at IS NULL)", name="decided_once"),
        CheckConstraint("status != 'confirmed' OR cancelled_t IS NOT NULL", name="confirmed_cancels"),
        CheckConstraint("status != 'rejected' OR decision_reason IS NOT NULL", name="rejected_has_reason"),
    )
