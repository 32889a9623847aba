"""ORM models of geodata's own layers: registered raster layers.

Raster layers are files on the server, registered by the operator or the registry under a name; users
refer to them by name only, never by path. ``path`` is relative to the configured raster directory.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Enum, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.sqltypes import UtcDateTime


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
