"""Geometry validation collects every problem, with where it is."""

from __future__ import annotations

from typing import Any

import pytest

from geodata.validation import parse_features

SQUARE = [[0.0, 0.0], [0.01, 0.0], [0.01, 0.01], [0.0, 0.01], [0.0, 0.0]]


def poly(rings: Any, code: str | None = "P", kind: str = "Polygon") -> dict[str, Any]:
    properties = {"code": code} if code is not None else None
    return {"type": "Feature", "properties": properties, "geometry": {"type": kind, "coordinates": rings}}


def reasons(document: Any) -> list[str]:
    return [p.reason for p in parse_features(document)[1]]


def test_valid_polygon_becomes_a_multipolygon() -> None:
    [feature], problems = parse_features(poly([SQUARE]))
    assert problems == []
    assert feature.geometry.geom_type == "MultiPolygon" and feature.plot_code == "P"


def test_multipolygon_with_hole() -> None:
    hole = [[0.002, 0.002], [0.002, 0.004], [0.004, 0.004], [0.004, 0.002], [0.002, 0.002]]
    [feature], problems = parse_features(poly([[SQUARE, hole]], kind="MultiPolygon"))
    assert problems == [] and feature.geometry.area == pytest.approx(0.96e-4)


def test_every_problem_of_every_feature_is_collected() -> None:
    bow_tie = [[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]
    document = {
        "type": "FeatureCollection",
        "features": [
            poly([SQUARE], "ok"),
            poly([bow_tie], "bt"),
            poly([[[0, 0], [1, 1]]], "two"),
            poly([[[0, 91], [1, 0], [1, 1], [0, 91]]], "lat"),
        ],
    }
    features, problems = parse_features(document)
    assert [f.plot_code for f in features] == ["ok"]
    # Feature 3's latitude 91 is out of range but every position is valid swapped: one problem, not one per position.
    assert [(p.feature_index, p.plot_code) for p in problems] == [(1, "bt"), (2, "two"), (3, "lat")]
    assert problems[1].pointer == "/features/2/geometry/coordinates/0"
    assert problems[2].location == [0, 91] and "look swapped" in problems[2].reason


def test_out_of_range_positions_that_are_not_swapped_are_each_reported() -> None:
    ring = [[0, 91], [200, 0], [1, 1], [0, 91]]  # [200, 0] is not valid swapped either
    _, problems = parse_features(poly([ring], "bad"))
    assert [p.reason for p in problems] == [
        "latitude 91 is outside [-90, 90]",
        "longitude 200 is outside [-180, 180]",
        "latitude 91 is outside [-90, 90]",
    ]


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ([1, 2], "expected a JSON object"),
        ({"type": "Topology"}, "got type 'Topology'"),
        ({"type": "FeatureCollection", "features": {}}, "must be an array"),
        ({"type": "FeatureCollection", "features": []}, "holds no features"),
        ({"type": "Feature", "properties": {}}, "has no geometry"),
        (poly([[[0, 0], [1, 0], [1, 1], [0, 1]]]), "not closed"),
        (poly([[[0, 0], [200, 0], [1, 1], [0, 0]]]), "longitude 200"),
        (poly([[[0, 0], [1, "x"], [1, 1], [0, 0]]]), "2 or 3 finite numbers"),
        (poly([[[0, 0], [1, float("nan")], [1, 1], [0, 0]]]), "2 or 3 finite numbers"),
        (poly("nope"), "nested arrays"),
        (poly([["a"]]), "nested arrays"),
        (poly([], kind="MultiPolygon"), "nested arrays"),
        (poly([[[0, 0], [1, 0], [2, 0], [0, 0]]]), "invalid geometry"),
        (
            {"type": "Feature", "properties": [], "geometry": {"type": "Polygon", "coordinates": [SQUARE]}},
            "must be an object",
        ),
    ],
)
def test_defects_are_named(document: Any, expected: str) -> None:
    found = reasons(document)
    assert any(expected in r for r in found), found


def test_too_many_features() -> None:
    document = {"type": "FeatureCollection", "features": [poly([SQUARE], str(i)) for i in range(3)]}
    features, problems = parse_features(document, max_features=2)
    assert features == [] and "3 features exceed the limit of 2" in problems[0].reason


def test_plot_code_falls_back_to_other_keys() -> None:
    feature = poly([SQUARE], None)
    feature["properties"] = {"plot_code": 17, "name": "N"}
    [parsed], _ = parse_features(feature)
    assert parsed.plot_code == "17" and parsed.name == "N"


def test_limits_slivers_and_repair() -> None:
    from shapely.geometry import Polygon, box

    from geodata.validation import GeometryLimits, check_plot_geometry

    huge = check_plot_geometry(box(100, 30, 101, 31))
    assert huge.geometry is None and "over the limit" in huge.problems[0][0]
    sliver = check_plot_geometry(box(106.0, 35.0, 106.02, 35.00001))  # ~1.8 km x 1.1 m
    assert "sliver" in sliver.problems[0][0]
    dense = check_plot_geometry(
        Polygon([(106 + i * 1e-5, 35 + (i % 2) * 1e-3) for i in range(50)]), limits=GeometryLimits(max_vertices=10)
    )
    assert "vertices" in dense.problems[0][0]
    bow_tie = Polygon([(106, 35), (106.01, 35.01), (106.01, 35), (106, 35.01)])
    repaired = check_plot_geometry(bow_tie, repair=True)
    assert repaired.repaired and repaired.geometry is not None and repaired.problems == []
    assert repaired.geometry.is_valid and repaired.area_change_m2 != 0
    assert check_plot_geometry(Polygon()).problems[0][0] == "the geometry is empty"
    assert "LinearRing" in check_plot_geometry(box(0, 0, 1, 1).exterior).problems[0][0]


def test_swapped_longitude_and_latitude_is_one_problem_per_feature() -> None:
    ring = [[35.50, 106.30], [35.50, 106.31], [35.51, 106.31], [35.51, 106.30], [35.50, 106.30]]  # [lat, lon]
    multi = [[[[38.26, 106.01], [38.26, 106.02], [38.27, 106.02], [38.26, 106.01]]], [ring]]
    document = {"type": "FeatureCollection", "features": [poly([ring], "a"), poly(multi, "b", kind="MultiPolygon")]}
    features, problems = parse_features(document)
    assert features == []
    assert [(p.feature_index, p.plot_code, p.location) for p in problems] == [
        (0, "a", [35.50, 106.30]),
        (1, "b", [38.26, 106.01]),
    ]
    assert all(p.reason.startswith("longitude and latitude look swapped") for p in problems)
    assert all(p.pointer == f"/features/{p.feature_index}/geometry/coordinates" for p in problems)
