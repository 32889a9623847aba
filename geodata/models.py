"""ORM models of geodata's own layers: registered raster layers and administrative boundaries.

Raster layers are files on the server, registered by the operator or the registry under a name; users
refer to them by name only, never by path. ``path`` is relative to the configured raster directory.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from shapely.geometry.base import BaseGeometry
from sqlalchemy import JSON, Enum, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.sqltypes import UtcDateTime
from geodata.sqltypes import MultiPolygonGeometry


class RasterKind(enum.StrEnum):
    """How a raster's values are summarised: by class (land cover) or as quantities (biomass, NDVI)."""

    CATEGORICAL = "categorical"
    CONTINUOUS = "continuous"


class RasterLayer(Base):
    """A registered raster layer (GeoTIFF / Cloud-Optimised GeoTIFF)."""

    __tablename__ = "raster_layer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[RasterKind] = mapped_column(
        Enum(
            RasterKind, name="raster_kind", native_enum=False, length=20, values_callable=lambda k: [m.value for m in k]
        )
    )
    units: Mapped[str] = mapped_column(String(50))
    description: Mapped[str] = mapped_column(Text, default="")
    path: Mapped[str] = mapped_column(String(500))
    crs: Mapped[str] = mapped_column(Text)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    transform: Mapped[list[float]] = mapped_column(JSON)
    nodata: Mapped[float | None] = mapped_column(Float)
    class_names: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by: Mapped[str] = mapped_column(String(200))


class RegionDataset(Base):
    """One imported set of administrative boundaries; the newest row is the one in force (ADR 021).

    With no row, the boundaries shipped in ``geodata/data/regions.geojson`` are used.
    """

    __tablename__ = "region_dataset"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    licence: Mapped[str] = mapped_column(Text)
    datum: Mapped[str] = mapped_column(Text)
    tolerance_m: Mapped[float] = mapped_column(Float)
    as_of: Mapped[str] = mapped_column(String(100))
    feature_count: Mapped[int] = mapped_column(Integer)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime())
    imported_by: Mapped[str] = mapped_column(String(200))


class RegionBoundaryRow(Base):
    """The boundary of one GB/T 2260 province or county of the dataset in force, CGCS2000 lon/lat."""

    __tablename__ = "region_boundary"

    code: Mapped[str] = mapped_column(String(6), primary_key=True)
    level: Mapped[str] = mapped_column(String(10))
    name_zh: Mapped[str] = mapped_column(String(100))
    geometry: Mapped[BaseGeometry] = mapped_column(MultiPolygonGeometry())
