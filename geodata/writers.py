"""Write plot layers (GeoPackage, Shapefile) with pyogrio, for downloads, samples and tests."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry


def _column(values: list[Any]) -> np.ndarray:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, bool) for v in present):
        return np.array([bool(v) if v is not None else False for v in values])
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present) and len(present) == len(values):
        return np.array(values, dtype=np.int64)
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return np.array([float(v) if v is not None else np.nan for v in values], dtype=np.float64)
    return np.array(["" if v is None else str(v) for v in values], dtype=object)


def write_layer(
    path: Path,
    features: Sequence[tuple[Mapping[str, Any], BaseGeometry]],
    *,
    crs: str,
    driver: str,
    encoding: str | None = None,
    layer: str = "plots",
) -> None:
    """Write polygon features with their attributes (scalar values; others as text) to ``path``."""
    import pyogrio

    names: list[str] = []
    for properties, _geometry in features:
        names.extend(k for k in properties if k not in names)
    columns = [_column([p.get(name) for p, _g in features]) for name in names]
    geometries = [
        g if isinstance(g, MultiPolygon) else MultiPolygon([g]) if isinstance(g, Polygon) else g for _p, g in features
    ]
    wkb = np.array([shapely.to_wkb(g) for g in geometries], dtype=object)
    options: dict[str, Any] = {"encoding": encoding} if encoding else {}
    if driver == "GPKG":
        options["layer"] = layer
    pyogrio.raw.write(
        str(path), wkb, columns, np.array(names, dtype=object), crs=crs, driver=driver,
        geometry_type="MultiPolygon", **options,
    )  # fmt: skip


def geopackage_bytes(features: Sequence[tuple[Mapping[str, Any], BaseGeometry]], *, crs: str = "EPSG:4490") -> bytes:
    """Return a GeoPackage holding ``features`` as its ``plots`` layer."""
    with tempfile.TemporaryDirectory(prefix="shanhai-export-") as folder:
        path = Path(folder) / "plots.gpkg"
        write_layer(path, features, crs=crs, driver="GPKG")
        return path.read_bytes()
