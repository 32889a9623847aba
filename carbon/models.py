"""ORM models of carbon projects and their plots.

Invariants:

* A plot belongs to exactly one project; its geometry is a valid MultiPolygon in EPSG:4490 lon/lat.
* ``area_m2`` and ``perimeter_m`` are geodesic on GRS80 (``geodata.area``); ``geometry_sha256`` is the
  hash of the normalised WKB, so the same polygon always has the same hash.
* ``plot_code`` is unique within its project when given.
* The bounding-box columns equal the geometry's bounds (they serve index search on SQLite).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import JSON, CheckConstraint, DateTime, Enum, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.auth import Organisation
from core.db import Base
from geodata.sqltypes import MultiPolygonGeometry


class Scheme(enum.StrEnum):
    """The crediting scheme a project is developed under."""

    FORESTRY_CARBON_TICKET = "forestry_carbon_ticket"
    CCER_AFFORESTATION = "ccer_afforestation"
    ECOLOGICAL_RESTORATION = "ecological_restoration"
    OCEAN_FISHERY = "ocean_fishery"


class ProjectStatus(enum.StrEnum):
    """Lifecycle state of a project."""

    DRAFT = "draft"
    SUBMITTED = "submitted"
    VALIDATED = "validated"
    REGISTERED = "registered"
    REJECTED = "rejected"


def _values(kind: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in kind]


class Project(Base):
    """A carbon project of a proponent organisation."""

    __tablename__ = "project"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    scheme: Mapped[Scheme] = mapped_column(
        Enum(Scheme, name="scheme", native_enum=False, length=40, values_callable=_values)
    )
    status: Mapped[ProjectStatus] = mapped_column(
        Enum(ProjectStatus, name="project_status", native_enum=False, length=20, values_callable=_values)
    )
    province_code: Mapped[str] = mapped_column(String(2))
    county_code: Mapped[str | None] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))

    organisation: Mapped[Organisation] = relationship(lazy="joined")
    plots: Mapped[list[Plot]] = relationship(back_populates="project", order_by="Plot.id")


class Plot(Base):
    """A plot polygon registered in a project."""

    __tablename__ = "plot"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    plot_code: Mapped[str | None] = mapped_column(String(100))
    name: Mapped[str | None] = mapped_column(String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(JSON)
    geometry: Mapped[BaseGeometry] = mapped_column(MultiPolygonGeometry())
    geometry_sha256: Mapped[str] = mapped_column(String(64), index=True)
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    area_m2: Mapped[float] = mapped_column(Float)
    perimeter_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    measured_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    project: Mapped[Project] = relationship(back_populates="plots")

    __table_args__ = (
        CheckConstraint("area_m2 > 0", name="area_positive"),
        Index("uq_plot_project_code", "project_id", "plot_code", unique=True),
        Index("ix_plot_bbox", "min_lon", "max_lon", "min_lat", "max_lat"),
    )
