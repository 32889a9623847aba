"""Geodesic areas on GRS80, and the demo polygons' published areas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shapely.geometry import Polygon, box, shape

from geodata.area import measure
from geodata.geometry import geometry_sha256

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def test_one_degree_cell_at_the_equator() -> None:
    # Area of the 1°×1° cell [0,1]×[0,1] on GRS80, from the closed form for an ellipsoidal zone
    # (authalic-latitude formula): 12,308,778,361 m² (≈ 12,309 km²).
    assert measure(box(0, 0, 1, 1)).area_m2 == pytest.approx(12_308_778_361, rel=1e-6)


def test_orientation_and_start_vertex_do_not_matter() -> None:
    ring = [(106.3, 35.5), (106.31, 35.5), (106.31, 35.51), (106.3, 35.51)]
    a, b = Polygon(ring), Polygon(list(reversed(ring[1:] + ring[:1])))
    assert measure(a).area_m2 == pytest.approx(measure(b).area_m2)
    assert geometry_sha256(a) == geometry_sha256(b)


def test_demo_polygons_have_the_published_areas() -> None:
    features = json.loads((SAMPLES / "demo_plots.geojson").read_text(encoding="utf-8"))["features"]
    by_name = {f["properties"]["name"].split(" ")[0]: measure(shape(f["geometry"])) for f in features}
    assert by_name["Haicang"].area_mu == pytest.approx(1500, rel=1e-3)
    assert by_name["Yongning"].area_ha == pytest.approx(219.74, rel=1e-3)
