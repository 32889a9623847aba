"""Declared areas in mu or ha: inferred from the column name, stated by the uploader, or assumed (and said so)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from shapely.geometry import box

from geodata.area import measure
from geodata.attributes import area_column_unit, map_attributes
from geodata.intake import Intake, intake_file
from geodata.writers import geopackage_bytes, write_layer

PLOT = box(106.30, 35.50, 106.31, 35.51)
AREA_HA = round(measure(PLOT).area_ha, 3)  # ≈ 101.27 ha ≈ 1519 mu


@pytest.mark.parametrize(
    ("column", "unit"),
    [
        ("MJ_MU", "mu"),
        ("mj_mu", "mu"),
        ("MJMU", "mu"),
        ("面积_亩", "mu"),
        ("面积(亩)", "mu"),
        ("面积（亩）", "mu"),
        ("XBMJ_MU", "mu"),
        ("亩数", "mu"),
        ("area_mu", "mu"),
        ("declared_area_mu", "mu"),
        ("MJ_GQ", "ha"),
        ("MJ_HA", "ha"),
        ("面积_公顷", "ha"),
        ("面积(公顷)", "ha"),
        ("面积（公顷）", "ha"),
        ("小班面积(公顷)", "ha"),
        ("XBMJ_GQ", "ha"),
        ("TBMJ_GQ", "ha"),
        ("公顷", "ha"),
        ("area_ha", "ha"),
        ("declared_area_ha", "ha"),
        ("面积", None),
        ("MJ", None),
        ("XBMJ", None),
        ("小班面积", None),
        ("TBMJ", None),
        ("图斑面积", None),
    ],
)
def test_inventory_area_columns_are_recognised_with_the_unit_their_name_gives(column: str, unit: str | None) -> None:
    assert area_column_unit(column) == (True, unit)
    mapped = map_attributes({column: "12.5"})
    assert mapped["declared_area"] == {
        "value": 12.5,
        "unit": unit or "mu",
        "column": column,
        "unit_from": "column" if unit else "assumed",
    }
    assert mapped["declared_area_mu"] == pytest.approx(12.5 * (15 if unit == "ha" else 1))
    assert column == "declared_area_mu" or column not in mapped  # the column itself is not kept twice


@pytest.mark.parametrize("column", ["species", "小班号", "mjx", "面积比例", "area"])
def test_other_columns_are_not_areas(column: str) -> None:
    assert area_column_unit(column) == (False, None)
    assert "declared_area_mu" not in map_attributes({column: 3})


def test_a_stated_unit_overrides_the_name_and_the_assumption() -> None:
    assert map_attributes({"XBMJ": 2}, area_unit="ha")["declared_area_mu"] == 30
    stated = map_attributes({"MJ_GQ": 30}, area_unit="mu")
    assert stated["declared_area_mu"] == 30 and stated["declared_area"]["unit_from"] == "stated"


def test_a_column_naming_its_unit_wins_over_one_that_does_not() -> None:
    mapped = map_attributes({"XBMJ": 99.0, "MJ_GQ": 2.0, "MJ_MU": 30.0})
    assert mapped["declared_area"]["column"] == "MJ_GQ" and mapped["declared_area_mu"] == 30
    assert mapped["XBMJ"] == 99.0 and mapped["MJ_MU"] == 30.0  # the others are kept as they were


# --- every import format ---------------------------------------------------------------------------------


def feature_file(kind: str, column: str, value: float, tmp_path: Path) -> tuple[bytes, str]:
    properties: dict[str, Any] = {"code": "P-1", column: value}
    if kind == "geojson":
        document = {"type": "Feature", "properties": properties, "geometry": PLOT.__geo_interface__}
        return json.dumps(document).encode(), "plots.geojson"
    if kind == "gpkg":
        return geopackage_bytes([(properties, PLOT)]), "plots.gpkg"
    if kind == "shp":
        write_layer(tmp_path / "p.shp", [(properties, PLOT)], crs="EPSG:4490", driver="ESRI Shapefile")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for part in tmp_path.glob("p.*"):
                archive.writestr(part.name, part.read_bytes())
        return buffer.getvalue(), "plots.zip"
    if kind == "csv":
        return f'code,{column},wkt\nP-1,{value},"{PLOT.wkt}"\n'.encode(), "plots.csv"
    ring = " ".join(f"{x},{y},0" for x, y in PLOT.exterior.coords)
    kml = (
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark>'
        f'<ExtendedData><Data name="code"><value>P-1</value></Data><Data name="{column}"><value>{value}</value>'
        "</Data></ExtendedData><Polygon><outerBoundaryIs><LinearRing><coordinates>"
        f"{ring}</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>"
    )
    return kml.encode(), "plots.kml"


FORMATS = ["geojson", "gpkg", "shp", "csv", "kml"]


def only_report(intake: Intake) -> Any:
    [report] = intake.reports
    assert report.status == "accepted", report
    return report


@pytest.mark.parametrize("kind", FORMATS)
def test_hectares_named_by_the_column_are_read_as_hectares(kind: str, tmp_path: Path) -> None:
    intake = intake_file(*feature_file(kind, "MJ_GQ", AREA_HA, tmp_path))
    report = only_report(intake)
    assert report.declared_area_mu == pytest.approx(AREA_HA * 15)
    assert (report.declared_area_unit, report.declared_area_unit_from) == ("ha", "column")
    assert report.warnings == []  # ha read as ha: no false "differs by more than 5 %"
    assert intake.features[0].properties["declared_area_mu"] == pytest.approx(AREA_HA * 15)


@pytest.mark.parametrize("kind", FORMATS)
def test_an_unnamed_unit_is_assumed_mu_and_the_report_says_so(kind: str, tmp_path: Path) -> None:
    intake = intake_file(*feature_file(kind, "XBMJ", AREA_HA, tmp_path))
    report = only_report(intake)
    assert (report.declared_area_unit, report.declared_area_unit_from) == ("mu", "assumed")
    assert report.declared_area_mu == pytest.approx(AREA_HA)
    assert intake.summary()["declared_area_units"] == [{"unit": "mu", "unit_from": "assumed", "features": 1}]
    [warning] = report.warnings
    assert "unit assumed" in warning and "'XBMJ'" in warning


@pytest.mark.parametrize("kind", FORMATS)
def test_a_stated_unit_applies_to_every_format(kind: str, tmp_path: Path) -> None:
    intake = intake_file(*feature_file(kind, "XBMJ", AREA_HA, tmp_path), area_unit="ha")
    report = only_report(intake)
    assert (report.declared_area_unit, report.declared_area_unit_from) == ("ha", "stated")
    assert report.declared_area_mu == pytest.approx(AREA_HA * 15) and report.warnings == []
    summary = intake.summary()
    assert summary["area_unit"] == "ha"
    assert summary["declared_area_units"] == [{"unit": "ha", "unit_from": "stated", "features": 1}]
