"""Plot files in every format, CRS handling, and the hostile inputs GDAL must never see."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from pyproj import Geod
from shapely.geometry import box, shape

from core.errors import InvalidCrs, InvalidGeometry, UnreadableFile
from geodata.crs import suggest_crs, to_cgcs2000
from geodata.intake import intake_file
from geodata.readers import ReadLimits, read_plot_file
from geodata.writers import write_layer

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
GEOD = Geod(ellps="GRS80")
M2_PER_MU = 10_000 / 15


def geodesic_m2(geometry: object) -> float:
    return abs(GEOD.geometry_area_perimeter(geometry)[0])


def zipped(files: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def shapefile_zip(tmp_path: Path, features: list, crs: str, encoding: str | None = "UTF-8", keep: tuple = ()) -> bytes:
    write_layer(tmp_path / "p.shp", features, crs=crs, driver="ESRI Shapefile", encoding=encoding)
    parts = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.suffix in (".shp", ".shx", ".dbf", *keep)}
    return zipped(parts)


# --- round trips -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sample", ["plots_gk35_gbk.zip", "plots_yongning.gpkg", "demo_plots.geojson"])
def test_sample_files_round_trip_with_geodesic_areas(sample: str) -> None:
    intake = intake_file((SAMPLES / sample).read_bytes(), sample)
    assert intake.refused == [] and intake.features
    for feature, report in zip(intake.features, [r for r in intake.reports if r.status != "refused"], strict=True):
        assert report.area_m2 == pytest.approx(geodesic_m2(feature.geometry), rel=1e-4)


def test_gbk_shapefile_attributes_are_mapped() -> None:
    intake = intake_file((SAMPLES / "plots_gk35_gbk.zip").read_bytes(), "plots_gk35_gbk.zip")
    assert intake.encoding == "GBK" and intake.source_crs == "EPSG:4523"
    first, _, third = intake.features
    assert first.properties["species"] == "油松" and first.properties["code"] == "JY-W-001"
    assert first.properties["planting_year"] == 2019 and first.properties["county"] == "640424"
    assert third.properties["external_registrations"] == [{"scheme": "CCER", "id": "CCER-14-001-DEMO-0003"}]


def test_hundred_hectares_in_gauss_kruger_is_1500_mu(tmp_path: Path) -> None:
    square = box(35_620_000, 3_930_000, 35_621_000, 3_931_000)  # 1 km × 1 km in CGCS2000 GK zone 35
    data = shapefile_zip(tmp_path, [({"code": "SQ"}, square)], "EPSG:4523", keep=(".prj",))
    [report] = intake_file(data, "square.zip").reports
    assert report.area_mu == pytest.approx(1500, rel=5e-4)


def test_gbk_without_cpg_falls_back_from_utf8(tmp_path: Path) -> None:
    data = shapefile_zip(
        tmp_path, [({"名称": "泾源林场"}, box(106.3, 35.4, 106.31, 35.41))], "EPSG:4490", "GBK", (".prj",)
    )
    intake = intake_file(data, "gbk.zip")
    assert intake.encoding == "GBK" and intake.features[0].name == "泾源林场"


def test_kml_and_csv(tmp_path: Path) -> None:
    kml = b"""<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>
      <Placemark><name>KML plot</name><ExtendedData><Data name="code"><value>K-1</value></Data></ExtendedData>
      <Polygon><outerBoundaryIs><LinearRing><coordinates>106.3,35.4,0 106.31,35.4,0 106.31,35.41,0 106.3,35.41,0
      106.3,35.4,0</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark></Document></kml>"""
    [feature] = intake_file(kml, "field.kml").features
    assert feature.plot_code == "K-1" and feature.name == "KML plot"
    csv_text = (
        'code,name,wkt\nC-1,CSV plot,"POLYGON ((106.3 35.4, 106.31 35.4, 106.31 35.41, 106.3 35.41, 106.3 35.4))"\n'
    )
    [row] = intake_file(csv_text.encode(), "plots.csv").features
    assert row.plot_code == "C-1" and geodesic_m2(row.geometry) == pytest.approx(geodesic_m2(feature.geometry))


# --- CRS ---------------------------------------------------------------------------------------------


def test_suggested_zones_are_the_right_epsg_codes() -> None:
    from pyproj import CRS

    code = suggest_crs(35_620_000, 3_930_000)
    assert code is not None and "zone 35" in CRS.from_user_input(code.split()[0]).name.lower().replace("_", " ")


def test_projected_coordinates_without_prj_are_refused_with_a_suggestion(tmp_path: Path) -> None:
    data = shapefile_zip(tmp_path, [({}, box(35_620_000, 3_930_000, 35_621_000, 3_931_000))], "EPSG:4523")
    with pytest.raises(InvalidCrs) as caught:
        intake_file(data, "noprj.zip")
    assert "without a CRS" in caught.value.detail
    assert caught.value.problems[0]["suggested_crs"].startswith("EPSG:4523")


def test_zone_prefix_mismatch_is_refused() -> None:
    prefixed = [box(35_620_000, 3_930_000, 35_621_000, 3_931_000)]
    with pytest.raises(InvalidCrs, match="zone prefix"):
        to_cgcs2000(prefixed, "EPSG:4544")  # CGCS2000 3-degree GK CM 105E: no prefix expected
    unprefixed = [box(620_000, 3_930_000, 621_000, 3_931_000)]
    with pytest.raises(InvalidCrs, match="expects a zone prefix"):
        to_cgcs2000(unprefixed, "EPSG:4523")
    assert to_cgcs2000(unprefixed, "EPSG:4544").geometries[0].bounds[0] == pytest.approx(106.33, abs=0.01)


def test_utm_and_wgs84_are_accepted() -> None:
    utm = to_cgcs2000([box(620_000, 3_930_000, 621_000, 3_931_000)], "EPSG:32648")  # UTM 48N, CM 105E
    assert utm.geometries[0].bounds[0] == pytest.approx(106.33, abs=0.01)
    assert to_cgcs2000([box(106.3, 35.4, 106.31, 35.41)], "EPSG:4326").source_crs == "EPSG:4326"


def test_swapped_axes_are_named() -> None:
    with pytest.raises(InvalidCrs, match="swapped"):
        to_cgcs2000([box(35.4, 106.3, 35.41, 106.31)], "EPSG:4490")


def test_crs_that_does_not_fit(tmp_path: Path) -> None:
    with pytest.raises(InvalidCrs, match="geographic but the coordinates are not degrees"):
        to_cgcs2000([box(35_620_000, 3_930_000, 35_621_000, 3_931_000)], "EPSG:4490")
    with pytest.raises(InvalidCrs, match="does not fit"):
        to_cgcs2000([box(35e20, 3.93e20, 35.1e20, 3.94e20)], "EPSG:4523")
    with pytest.raises(InvalidCrs, match="cannot be read"):
        to_cgcs2000([box(106.3, 35.4, 106.31, 35.41)], "EPSG:999999")


def test_outside_china_is_refused_per_feature() -> None:
    document = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "UB"},
                "geometry": box(106.9, 47.9, 106.91, 47.91).__geo_interface__,
            },
            {
                "type": "Feature",
                "properties": {"code": "JY"},
                "geometry": box(106.3, 35.4, 106.31, 35.41).__geo_interface__,
            },
        ],
    }
    import json

    intake = intake_file(json.dumps(document).encode(), "mixed.geojson")
    assert [(r.plot_code, r.status) for r in intake.reports] == [("UB", "refused"), ("JY", "accepted")]
    with pytest.raises(InvalidGeometry, match="1 feature"):
        intake.raise_if_refused()


def test_empty_and_invalid_features_in_a_file_are_reported() -> None:
    csv_text = (
        'code,wkt\nE-1,\nB-1,"POLYGON ((106.3 35.4, 106.31 35.41, 106.31 35.4, 106.3 35.41, 106.3 35.4))"\n'
        "X-1,NOT WKT\n"
    )
    reports = intake_file(csv_text.encode(), "bad.csv").reports
    assert [r.status for r in reports] == ["refused"] * 3
    assert "empty" in reports[0].problems[0]["reason"]
    assert "Self-intersection" in reports[1].problems[0]["reason"]
    assert "cannot be parsed" in reports[2].problems[0]["reason"]
    repaired = intake_file(csv_text.split("X-1")[0].encode(), "bad.csv", repair=True).reports
    assert repaired[1].status == "repaired" and repaired[1].repair_area_change_m2 is not None


# --- hostile input -----------------------------------------------------------------------------------

VRT = b"""<OGRVRTDataSource><OGRVRTLayer name="x"><SrcDataSource>/etc/passwd</SrcDataSource></OGRVRTLayer>
</OGRVRTDataSource>"""


def test_vrt_disguised_as_geopackage_or_shapefile_is_refused() -> None:
    with pytest.raises(UnreadableFile, match="not a GeoPackage"):
        read_plot_file(VRT, "plots.gpkg")
    disguised = zipped({"p.shp": VRT, "p.shx": VRT, "p.dbf": VRT})
    with pytest.raises(UnreadableFile, match="not an ESRI Shapefile"):
        read_plot_file(disguised, "plots.zip")
    with pytest.raises(UnreadableFile, match="unexpected file"):
        read_plot_file(zipped({"p.shp": b"", "p.shx": b"", "p.dbf": b"", "p.vrt": VRT}), "plots.zip")


def test_corrupt_zip_bomb_and_zip_slip_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="not a valid zip"):
        read_plot_file(b"PK\x03\x04 definitely not a zip", "plots.zip")
    bomb = zipped({"p.shp": b"\0" * 50_000_000, "p.shx": b"", "p.dbf": b""})
    assert len(bomb) < 100_000
    with pytest.raises(UnreadableFile, match="zip bomb"):
        read_plot_file(bomb, "plots.zip")
    slip = zipped({"../../etc/cron.d/p.shp": b"x", "p.shx": b"", "p.dbf": b""})
    with pytest.raises(UnreadableFile, match="unsafe path"):
        read_plot_file(slip, "plots.zip")
    with pytest.raises(UnreadableFile, match=r"missing \.dbf"):
        read_plot_file(zipped({"p.shp": b"", "p.shx": b""}), "plots.zip")
    big = zipped({"p.shp": b"\1" * 2_000_000, "p.shx": b"", "p.dbf": b""}, zipfile.ZIP_STORED)
    with pytest.raises(UnreadableFile, match="over the limit"):
        read_plot_file(big, "plots.zip", ReadLimits(max_expanded_bytes=1_000_000))


def test_other_refusals() -> None:
    with pytest.raises(UnreadableFile, match="unsupported file type"):
        read_plot_file(b"x", "plots.exe")
    with pytest.raises(UnreadableFile, match="DOCTYPE"):
        read_plot_file(b'<!DOCTYPE kml [<!ENTITY x "y">]><kml/>', "a.kml")
    with pytest.raises(UnreadableFile, match="not a KML"):
        read_plot_file(b"<html/>", "a.kml")
    with pytest.raises(UnreadableFile, match="WKT column"):
        read_plot_file(b"a,b\n1,2\n", "a.csv")
    with pytest.raises(UnreadableFile, match="not a GeoJSON"):
        intake_file(b"{nope", "a.geojson")
    corrupt_gpkg = b"SQLite format 3\x00" + b"\0" * 52 + b"GPKG" + b"\0" * 100
    with pytest.raises(UnreadableFile, match="GDAL cannot open"):
        read_plot_file(corrupt_gpkg, "a.gpkg")


def test_feature_count_is_bounded(tmp_path: Path) -> None:
    features = [({"code": str(i)}, box(106 + i * 0.01, 35, 106.005 + i * 0.01, 35.005)) for i in range(5)]
    write_layer(tmp_path / "many.gpkg", features, crs="EPSG:4490", driver="GPKG")
    with pytest.raises(UnreadableFile, match="exceed the limit of 3"):
        read_plot_file((tmp_path / "many.gpkg").read_bytes(), "many.gpkg", ReadLimits(max_features=3))
    assert shape(box(0, 0, 1, 1).__geo_interface__).area == 1
