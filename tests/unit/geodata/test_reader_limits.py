"""The readers enforce their limits while they read: hostile or huge files are refused early and cleanly."""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path

import pytest
from shapely.geometry import Polygon

from core.errors import InvalidGeometry, UnreadableFile
from geodata.intake import intake_file, intake_geojson
from geodata.readers import ReadLimits, read_geojson_document, read_plot_file
from geodata.validation import GeometryLimits
from geodata.writers import write_layer

SAMPLES = Path(__file__).resolve().parents[3] / "samples"
KML = "http://www.opengis.net/kml/2.2"


class CountingStream(io.BytesIO):
    """A stream that counts the bytes read from it."""

    consumed = 0

    def read(self, size: int | None = -1) -> bytes:
        data = super().read(size)
        self.consumed += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        count = super().readinto(buffer)
        self.consumed += count
        return count


def ring_positions(count: int) -> list[list[float]]:
    """``count`` positions around a small circle (~2 km across), the last one closing the ring."""
    angles = [i / (count - 1) * 2 * math.pi for i in range(count - 1)]
    ring = [[106.5 + 0.01 * math.cos(a), 35.6 + 0.01 * math.sin(a)] for a in angles]
    return [*ring, ring[0]]


def huge_polygon_geojson(vertices: int) -> bytes:
    geometry = {"type": "Polygon", "coordinates": [ring_positions(vertices)]}
    feature = {"type": "Feature", "properties": {"code": "HUGE"}, "geometry": geometry}
    return json.dumps({"type": "FeatureCollection", "features": [feature]}).encode()


def test_a_geojson_feature_over_the_vertex_limit_is_refused_while_parsing() -> None:
    data = huge_polygon_geojson(400_000)
    stream = CountingStream(data)
    with pytest.raises(InvalidGeometry) as refused:
        intake_file(stream, "huge.geojson")
    [problem] = refused.value.problems
    assert problem["feature_index"] == 0 and "more than 100000 vertices" in problem["reason"]
    assert problem["pointer"] == "/features/0"
    assert stream.consumed < len(data) * 0.4  # refused at the limit, not after parsing the whole file


def test_the_vertex_limit_follows_the_geometry_limits() -> None:
    data = huge_polygon_geojson(2_000)
    with pytest.raises(InvalidGeometry):
        intake_file(data, "p.geojson", limits=GeometryLimits(max_vertices=1_000))
    assert intake_file(data, "p.geojson", limits=GeometryLimits(max_vertices=2_000)).refused == []


def test_too_many_geojson_features_are_refused_while_parsing() -> None:
    feature = {"type": "Feature", "properties": {}, "geometry": None}
    data = json.dumps({"type": "FeatureCollection", "features": [feature] * 50_000}).encode()
    stream = CountingStream(data)
    with pytest.raises(InvalidGeometry, match="more than 1000 features"):
        read_geojson_document(stream, ReadLimits(max_features=1_000))
    assert stream.consumed < len(data) * 0.2


@pytest.mark.parametrize(
    "data",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"type": "Feature", "properties": ' + b'{"a": ' * 900 + b"1" + b"}" * 900 + b', "geometry": null}',
        b'{"type": "FeatureCollection", "features": ' + b"[" * 70 + b"]" * 70 + b"}",
    ],
)
def test_deep_nesting_is_refused_with_a_clear_problem(data: bytes) -> None:
    with pytest.raises(UnreadableFile, match="nests deeper than 64 levels"):
        intake_file(data, "deep.geojson")


def test_the_streaming_geojson_reader_decodes_what_json_does() -> None:
    text = (SAMPLES / "demo_plots.geojson").read_bytes()
    assert read_geojson_document(text) == json.loads(text)
    assert read_geojson_document(b"\xef\xbb\xbf" + text) == json.loads(text)
    with pytest.raises(UnreadableFile, match="not a GeoJSON file"):
        read_geojson_document(b'{"type": "Feature",')
    with pytest.raises(UnreadableFile, match="not a GeoJSON file"):
        read_geojson_document(b"\xff\xfe not utf-8")


def test_a_csv_wkt_field_longer_than_the_csv_default_is_read() -> None:
    ring = ", ".join(f"{x} {y}" for x, y in ring_positions(6_000))
    data = f'code,wkt\nBIG,"POLYGON (({ring}))"\n'.encode()
    assert len(data) > 131_072
    layer = read_plot_file(data, "big.csv")
    [(properties, geometry)] = layer.features
    assert properties == {"code": "BIG"} and geometry is not None and len(geometry.exterior.coords) == 6_000


def test_csv_limits_are_enforced_row_by_row() -> None:
    row = '"POLYGON ((106.5 35.6, 106.51 35.6, 106.51 35.61, 106.5 35.6))"'
    data = ("code,wkt\n" + "".join(f"R{i},{row}\n" for i in range(50_000))).encode()
    stream = CountingStream(data)
    with pytest.raises(UnreadableFile, match="more features than the limit of 100"):
        read_plot_file(stream, "many.csv", ReadLimits(max_features=100))
    assert stream.consumed < len(data) * 0.2
    ring = ", ".join(f"{x} {y}" for x, y in ring_positions(1_001))
    with pytest.raises(InvalidGeometry, match="more than 1000 vertices"):
        read_plot_file(f'code,wkt\nBIG,"POLYGON (({ring}))"\n'.encode(), "big.csv", ReadLimits(max_vertices=1_000))


def kml(placemarks: list[str]) -> bytes:
    return f'<?xml version="1.0"?><kml xmlns="{KML}"><Document>{"".join(placemarks)}</Document></kml>'.encode()


def placemark(vertices: int) -> str:
    coordinates = " ".join(f"{x},{y}" for x, y in ring_positions(vertices))
    return (
        "<Placemark><name>P</name><Polygon><outerBoundaryIs><LinearRing>"
        f"<coordinates>{coordinates}</coordinates></LinearRing></outerBoundaryIs></Polygon></Placemark>"
    )


def test_kml_limits_are_enforced_while_parsing() -> None:
    [(properties, geometry)] = read_plot_file(kml([placemark(50)]), "p.kml").features
    assert properties == {"name": "P"} and geometry is not None and geometry.geoms[0].exterior.coords[0]
    with pytest.raises(InvalidGeometry, match="more than 1000 vertices"):
        read_plot_file(kml([placemark(1_001)]), "p.kml", ReadLimits(max_vertices=1_000))
    data = kml([placemark(5)] * 100_000)
    stream = CountingStream(data)
    with pytest.raises(UnreadableFile, match="more features than the limit of 10"):
        read_plot_file(stream, "many.kml", ReadLimits(max_features=10))
    assert stream.consumed < len(data) * 0.2
    hidden = kml([placemark(5)] * 10_000).replace(b"</Document>", b"<!DOCTYPE x [<!ENTITY a 'b'>]></Document>")
    with pytest.raises(UnreadableFile, match="DOCTYPE"):
        read_plot_file(hidden, "late.kml")


def test_a_geopackage_feature_over_the_vertex_limit_is_refused(tmp_path: Path) -> None:
    polygon = Polygon(ring_positions(2_000))
    write_layer(tmp_path / "p.gpkg", [({"code": "A"}, polygon)], crs="EPSG:4490", driver="GPKG")
    with pytest.raises(InvalidGeometry, match="more than 1000 vertices"):
        read_plot_file(tmp_path / "p.gpkg", "p.gpkg", ReadLimits(max_vertices=1_000))
    assert len(read_plot_file(tmp_path / "p.gpkg", "p.gpkg").features) == 1


def test_a_feature_collection_is_checked_feature_by_feature_as_it_is_read() -> None:
    square = [[106.5, 35.6], [106.51, 35.6], [106.51, 35.61], [106.5, 35.61], [106.5, 35.6]]
    bow_tie = [[106.6, 35.6], [106.61, 35.61], [106.61, 35.6], [106.6, 35.61], [106.6, 35.6]]
    document = {
        "features": [
            {"type": "Feature", "properties": {"code": "OK"}, "geometry": {"type": "Polygon", "coordinates": [square]}},
            {
                "type": "Feature",
                "properties": {"code": "BT"},
                "geometry": {"type": "Polygon", "coordinates": [bow_tie]},
            },
            {"type": "Feature", "properties": [1], "geometry": {"type": "Polygon", "coordinates": [square[:-1]]}},
            7,
            {"type": "Feature", "properties": None, "geometry": None},
        ],
        "type": "FeatureCollection",  # after the features: the reader only knows the type at the end
    }
    data = json.dumps(document).encode()
    streamed, whole = intake_file(data, "mixed.geojson"), intake_geojson(json.loads(data))
    assert streamed.summary() == whole.summary()
    assert [r.status for r in streamed.reports] == ["accepted", "refused", "refused", "refused", "refused"]
    with pytest.raises(InvalidGeometry) as from_stream:
        streamed.raise_if_refused()
    with pytest.raises(InvalidGeometry) as from_document:
        whole.raise_if_refused()
    assert from_stream.value.problems == from_document.value.problems
    assert {p["pointer"] for p in from_stream.value.problems} >= {"/features/2/properties", "/features/1/geometry"}
    seen: list[int] = []
    remainder = read_geojson_document(data, on_feature=lambda index, _feature: seen.append(index))
    assert seen == [0, 1, 2, 3, 4] and remainder == {"features": [], "type": "FeatureCollection"}


def test_encrypted_archives_and_degenerate_kml_polygons_are_unreadable_not_internal_errors() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for suffix in (".shp", ".shx", ".dbf"):
            archive.writestr(f"p{suffix}", b"\x00\x00\x27\x0a" + b"\x00" * 96)
    data = bytearray(buffer.getvalue())
    data[6] |= 1  # the general-purpose "encrypted" flag of the first member's local header…
    central = data.index(b"PK\x01\x02")
    data[central + 8] |= 1  # …and of its central directory entry
    with pytest.raises(UnreadableFile, match="corrupt zip archive"):
        read_plot_file(bytes(data), "p.zip")
    line = kml([placemark(5)]).replace(b"<coordinates>", b"<coordinates>106.5,35.6 106.6,35.6</coordinates><x>")
    line = line.replace(b"</coordinates></LinearRing>", b"</x></LinearRing>")
    with pytest.raises(UnreadableFile, match="bad KML polygon"):
        read_plot_file(line, "p.kml")
