"""The plot-in-region rule on hand-made boundaries (pure), the GCJ-02 inversion, and the shipped data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Polygon, box, shape
from shapely.geometry.polygon import orient

from geodata.gcj02 import gcj02_to_wgs84, gcj02_to_wgs84_array, wgs84_to_gcj02, wgs84_to_gcj02_array
from geodata.regions import Boundary, DatasetInfo, RegionIndex, assess, check_codes, shipped_index

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
INFO = DatasetInfo("test", "hand-made", "none", "CGCS2000", 250.0, "2026")
# Two "provinces" side by side at 106°E (west "64", east "35"), a county in the west one
WEST = Boundary("640000", "宁夏回族自治区", "province", box(105.0, 35.0, 106.0, 36.0))
EAST = Boundary("350000", "福建省", "province", box(106.0, 35.0, 107.0, 36.0))
COUNTY = Boundary("640424", "泾源县", "county", box(105.5, 35.0, 106.0, 36.0))
OTHER_COUNTY = Boundary("640121", "永宁县", "county", box(105.0, 35.0, 105.5, 36.0))
INDEX = RegionIndex(INFO, (WEST, EAST, COUNTY, OTHER_COUNTY))


def straddling(share_west: float) -> Polygon:
    """A 0.1° × 0.01° plot across the 106° border with about ``share_west`` of it west of the border."""
    return box(106.0 - 0.1 * share_west, 35.5, 106.0 + 0.1 * (1 - share_west), 35.51)


@pytest.mark.parametrize(("share_west", "refused"), [(0.3, True), (0.45, True), (0.55, False), (0.8, False)])
def test_half_rule_on_a_straddling_plot(share_west: float, refused: bool) -> None:
    found = assess(INDEX, straddling(share_west), "64", None, tolerance_m=0.0)
    assert found.refused is refused
    assert found.province_share == pytest.approx(share_west, abs=0.01)
    if refused:
        assert found.placement is not None and found.placement.describe() == "福建省 (Fujian, 35)"


def test_tolerance_widens_the_region_in_metres() -> None:
    # 0.003° of longitude at 35.5°N is about 272 m: 45 % inside, the rest within 250 m? No: 0.0025° ≈ 227 m
    plot = box(106.0 - 0.002, 35.5, 106.0 + 0.0025, 35.501)
    assert assess(INDEX, plot, "64", None, tolerance_m=0.0).refused
    assert not assess(INDEX, plot, "64", None, tolerance_m=250.0).refused
    assert assess(INDEX, plot, "64", None, tolerance_m=250.0).province_share == pytest.approx(1.0)
    far = box(106.0 - 0.002, 35.5, 106.0 + 0.01, 35.501)  # 0.01° ≈ 906 m east: beyond the tolerance
    assert assess(INDEX, far, "64", None, tolerance_m=250.0).refused


def test_orientation_does_not_change_the_share() -> None:
    plot = straddling(0.3)
    clockwise = orient(plot, sign=-1.0)
    a = assess(INDEX, plot, "64", None, tolerance_m=250.0).province_share
    b = assess(INDEX, clockwise, "64", None, tolerance_m=250.0).province_share
    assert a == pytest.approx(b) and 0.3 < a < 0.5


def test_another_county_of_the_province_is_a_warning_not_a_refusal() -> None:
    found = assess(INDEX, box(105.2, 35.5, 105.21, 35.51), "64", "640424", tolerance_m=250.0)
    assert not found.refused and found.outside_county
    assert (
        found.placement is not None
        and found.placement.describe() == "宁夏回族自治区 永宁县 (Ningxia, Yongning, 640121)"
    )
    inside = assess(INDEX, box(105.7, 35.5, 105.71, 35.51), "64", "640424", tolerance_m=250.0)
    assert not inside.outside_county and inside.placement is None


def test_a_plot_in_no_region_lies_outside_china() -> None:
    found = assess(INDEX, box(120.0, 50.0, 120.01, 50.01), "64", None, tolerance_m=250.0)
    assert found.refused and found.placement is not None and found.placement.describe() == "outside China"


def test_codes_are_checked_against_gbt2260_and_every_province_is_required() -> None:
    problems = check_codes(["640000", "999999"])
    assert "unknown GB/T 2260 code '999999'" in problems
    assert any(p.startswith("provinces missing: 110000") for p in problems)


def test_gcj02_inverse_round_trips_to_a_millimetre_across_china() -> None:
    rng = np.random.default_rng(2260)
    points = np.column_stack([rng.uniform(74, 134, 500), rng.uniform(18, 53, 500)])
    restored = gcj02_to_wgs84_array(wgs84_to_gcj02_array(points))
    assert np.abs(restored - points).max() < 1e-8  # 1e-8° ≈ 1 mm
    shift = wgs84_to_gcj02_array(points) - points
    metres = np.hypot(shift[:, 0] * 111_320 * np.cos(np.radians(points[:, 1])), shift[:, 1] * 110_574)
    assert 50 < metres.min() and metres.max() < 1000  # the deliberate offset is hundreds of metres


def test_gcj02_leaves_points_outside_china_alone() -> None:
    assert wgs84_to_gcj02(2.35, 48.85) == (2.35, 48.85)
    assert gcj02_to_wgs84(2.35, 48.85) == (2.35, 48.85)


def test_shipped_boundaries_place_known_towns() -> None:
    index = shipped_index()
    towns = {
        (106.339, 35.490): "640424",  # Jingyuan county seat
        (106.253, 38.278): "640121",  # Yongning county seat
        (118.089, 24.479): "350203",  # Xiamen, Siming district
        (119.290, 26.094): "350102",  # Fuzhou, West Lake (Gulou district)
    }
    for (lon, lat), code in towns.items():
        placement = index.place(box(lon, lat, lon + 0.001, lat + 0.001))
        assert placement.county is not None and placement.county.code == code, (lon, lat)
    provinces = {b.code for b in index.boundaries if b.level == "province"}
    assert len(provinces) == 34 and {"640000", "350000", "710000", "460000"} <= provinces
    assert index.info.datum.startswith("CGCS2000") and index.info.tolerance_m == 250.0


def test_the_demo_plots_lie_in_their_named_counties_of_the_demo_project_province() -> None:
    collection = json.loads((SAMPLES / "demo_plots.geojson").read_text(encoding="utf-8"))
    index = shipped_index()
    counties = []
    for feature in collection["features"]:
        geometry = shape(feature["geometry"])
        assert not assess(index, geometry, "64", None, tolerance_m=0.0).refused
        placement = index.place(geometry)
        assert placement.county_share == pytest.approx(1.0)
        counties.append(placement.county.code if placement.county else None)
    assert counties == ["640424", "640121"]  # Haicang carbon forest in Jingyuan; mine restoration in Yongning
