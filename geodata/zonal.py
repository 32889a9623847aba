"""Exact, coverage-weighted zonal statistics of polygons over a raster (exactextract).

Every statistic weights each cell by the fraction of it the polygon covers, so a polygon's result does
not depend on where its edges fall within cells. Nodata cells are left out (of means and counts as well
as sums). Areas are in m² on the ground:

* projected rasters (metre units): the cell area is ``|a·e|`` of the geotransform;
* geographic rasters: each covered cell's geodesic area on GRS80 from its latitude
  (``geodata.pixel_area``) — never degrees².

Polygons come in EPSG:4490 lon/lat and are reprojected into the raster's CRS.

Results per polygon: ``cells`` (Σ coverage of valid cells), ``sum``, ``mean``, ``min``, ``max``,
``area_m2`` (valid area covered), ``integral`` (Σ value × coverage × cell area in m², i.e. value·m², e.g.
t/ha × m² → divide by 10⁴ for tonnes) and, for categorical rasters, ``classes``: class → area (m², mu) and
share of the valid area.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
from pyproj import CRS, Transformer
from shapely.geometry.base import BaseGeometry

from core.errors import InvalidInput
from core.units import mu_from_m2
from geodata.pixel_area import cell_area_at_m2

BASE_OPS = ["count", "sum", "mean", "min", "max"]
CELL_OPS = ["coverage", "values", "center_y"]


def to_raster_crs(geometries: Sequence[BaseGeometry], crs: CRS) -> list[BaseGeometry]:
    """Return EPSG:4490 geometries in a raster's CRS (unchanged for CGCS2000/WGS84 lon/lat rasters).

    Used by zonal statistics here and by GEP runs to rasterize their regions onto the run grid.
    """
    source = CRS.from_epsg(4490)
    if crs.equals(source) or (crs.is_geographic and crs.ellipsoid and crs.ellipsoid.name in ("GRS 1980", "WGS 84")):
        return list(geometries)  # CGCS2000 and WGS84 lon/lat agree to well under a cell
    transformer = Transformer.from_crs(source, crs, always_xy=True)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack([x, y])

    return [shapely.transform(g, project) for g in geometries]


def _cell_area_m2(dataset: Any) -> float | None:
    """Constant cell area of a projected raster in m², ``None`` for geographic rasters."""
    if dataset.crs.is_geographic:
        return None
    units = CRS.from_user_input(dataset.crs.to_wkt()).axis_info[0].unit_name
    if units not in ("metre", "meter"):
        raise InvalidInput(f"projected rasters must be in metres, not {units}", [])
    a, _b, _c, _d, e, _f = list(dataset.transform)[:6]
    return float(abs(a * e))


def _finite(value: Any) -> float | None:
    number = float(value) if value is not None else math.nan
    return float(number) if math.isfinite(number) else None


def _classes(values: np.ndarray, areas: np.ndarray, names: dict[str, str]) -> dict[str, Any]:
    total = float(areas.sum())
    classes: dict[str, Any] = {}
    for value in np.unique(values):
        area = float(areas[values == value].sum())
        key = str(int(value)) if float(value).is_integer() else str(value)
        classes[key] = {
            "name": names.get(key),
            "area_m2": area,
            "area_mu": mu_from_m2(area),
            "share": area / total if total else 0.0,
        }
    return classes


def _summarise(
    props: dict[str, Any], cell_m2: float | None, categorical: bool, names: dict[str, str]
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "cells": float(props["count"]),
        "sum": _finite(props["sum"]),
        "mean": _finite(props["mean"]),
        "min": _finite(props["min"]),
        "max": _finite(props["max"]),
    }
    if cell_m2 is not None:
        result["area_m2"] = float(props["count"]) * cell_m2
        result["integral"] = float(props["sum"]) * cell_m2
        if categorical:
            values = np.asarray(props["values"])
            result["classes"] = _classes(values, np.asarray(props["coverage"]) * cell_m2, names)
        return result
    weighted_m2 = np.asarray(props["coverage"]) * props["__cell_area"](np.asarray(props["center_y"]))
    values = np.asarray(props["values"], dtype=np.float64)
    result["area_m2"] = math.fsum(weighted_m2)
    result["integral"] = math.fsum(values * weighted_m2)
    if categorical:
        result["classes"] = _classes(values, weighted_m2, names)
    return result


def zonal_statistics(
    dataset: Any,
    geometries: Sequence[BaseGeometry],
    *,
    categorical: bool = False,
    class_names: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Return the statistics of each lon/lat polygon over the open rasterio ``dataset`` (band 1)."""
    from exactextract import exact_extract

    crs = CRS.from_user_input(dataset.crs.to_wkt())
    cell_m2 = _cell_area_m2(dataset)
    ops = BASE_OPS + (CELL_OPS if cell_m2 is None or categorical else [])
    features = [
        {"type": "Feature", "properties": {"i": i}, "geometry": g.__geo_interface__}
        for i, g in enumerate(to_raster_crs(geometries, crs))
    ]
    rows = exact_extract(dataset, features, ops, output="geojson") if features else []
    a, _b, _c, _d, e, _f = list(dataset.transform)[:6]

    def cell_area(center_y: np.ndarray) -> np.ndarray:
        return cell_area_at_m2(center_y, abs(e), abs(a))

    results = []
    for row in rows:
        props = dict(row["properties"]) | {"__cell_area": cell_area}
        results.append(_summarise(props, cell_m2, categorical, class_names or {}))
    return results
