"""``shanhai regions import`` replaces the administrative boundaries atomically (SQLite via the CLI, PostGIS)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import box, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from core.audit import AuditEntry
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import InvalidInput
from core.migrate import upgrade
from core.settings import get_settings
from geodata.region_store import BoundaryImport, current_index, import_boundaries
from geodata.regions import assess, shipped_index
from geodata.writers import write_layer
from shanhai.cli import main

XIAMEN = box(118.10, 24.60, 118.11, 24.61)
CLOCK = FixedClock(datetime(2026, 12, 7, 6, 0, tzinfo=UTC))


def boundary_file(
    path: Path, *, ningxia_extra: BaseGeometry | None = None, extra: tuple[dict[str, Any], ...] = ()
) -> Path:
    """Every shipped province, keyed by ``adcode``; Ningxia optionally widened by ``ningxia_extra``."""
    features = []
    for boundary in shipped_index().boundaries:
        if boundary.level != "province":
            continue
        geometry = boundary.geometry
        if boundary.code == "640000" and ningxia_extra is not None:
            geometry = geometry.union(ningxia_extra)
        properties = {"adcode": boundary.code, "name": boundary.name_zh}
        features.append({"type": "Feature", "properties": properties, "geometry": mapping(geometry)})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features + list(extra)}), encoding="utf-8")
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'regions.db'}"
    upgrade(url)
    monkeypatch.setenv("SHANHAI_DATABASE_URL", url)
    monkeypatch.setenv("SHANHAI_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def _index_version_and_refusal(url: str) -> tuple[str, bool, int]:
    engine = make_engine(url)
    try:
        with make_session_factory(engine)() as session:
            index = current_index(session)
            refused = assess(index, XIAMEN, "64", None, tolerance_m=index.info.tolerance_m).refused
            entries = len(list(session.scalars(select(AuditEntry).where(AuditEntry.action == "regions.imported"))))
            return index.info.version, refused, entries
    finally:
        engine.dispose()


def test_cli_import_replaces_the_boundaries_and_a_bad_file_changes_nothing(
    sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shipped = shipped_index().info.version
    assert _index_version_and_refusal(sqlite_url) == (shipped, True, 0)
    widened = boundary_file(tmp_path / "official.geojson", ningxia_extra=XIAMEN.buffer(0.05))
    args = ["regions", "import", str(widened), "--source", "test", "--licence", "test", "--code-field", "adcode"]
    assert main(args) == 0
    assert "imported 34 boundaries" in capsys.readouterr().out
    version, refused, entries = _index_version_and_refusal(sqlite_url)
    assert version != shipped and not refused and entries == 1  # Ningxia now covers the Xiamen square
    bad_feature = {"type": "Feature", "properties": {"adcode": "999999"}, "geometry": mapping(box(1, 1, 2, 2))}
    bad = boundary_file(tmp_path / "bad.geojson", extra=(bad_feature,))
    assert main(["regions", "import", str(bad), "--source", "x", "--licence", "x", "--code-field", "adcode"]) == 1
    assert "999999" in capsys.readouterr().err
    assert _index_version_and_refusal(sqlite_url) == (version, False, 1)


def test_import_validates_every_feature_before_writing(sqlite_url: str, tmp_path: Path) -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[106.0, 35.0], [106.1, 35.1], [106.1, 35.0], [106.0, 35.1], [106.0, 35.0]]],
    }
    features = [{"type": "Feature", "properties": {"adcode": "640424"}, "geometry": bowtie}]
    path = tmp_path / "partial.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    engine = make_engine(sqlite_url)
    try:
        with make_session_factory(engine)() as session:
            spec = BoundaryImport(path, source="x", licence="x", code_field="adcode")
            with pytest.raises(InvalidInput) as raised:
                import_boundaries(session, spec, actor="test", clock=CLOCK)
            reasons = [p["reason"] for p in raised.value.problems]
            assert any(r.startswith("invalid geometry: Self-intersection") for r in reasons)
            assert any(r.startswith("provinces missing: 110000") for r in reasons)
            assert current_index(session).info.version == shipped_index().info.version
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_import_on_postgis_round_trips_and_converts_gcj02(pg_engine: Engine, tmp_path: Path) -> None:
    connection = pg_engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        path = boundary_file(tmp_path / "gcj.geojson")
        spec = BoundaryImport(path, source="gcj test", licence="x", datum="gcj02", code_field="adcode")
        dataset = import_boundaries(session, spec, actor="test", clock=CLOCK)
        assert dataset.feature_count == 34 and "GCJ-02" in dataset.datum
        kind = session.scalar(text("SELECT GeometryType(geometry) FROM region_boundary WHERE code = '640000'"))
        assert kind == "MULTIPOLYGON"
        index = current_index(session)
        assert index.info.version == dataset.version and index.info.source == "gcj test"
        ningxia = index.province("64")
        original = shipped_index().province("64")
        assert ningxia is not None and original is not None
        # converting "GCJ-02" coordinates moves them back by the offset: about 380 m west near Jingyuan
        shift_deg = original.geometry.centroid.x - ningxia.geometry.centroid.x
        assert 0.002 < shift_deg < 0.008
    finally:
        session.close()
        outer.rollback()
        connection.close()


def test_swapped_coordinates_are_refused(sqlite_url: str, tmp_path: Path) -> None:
    path = boundary_file(tmp_path / "swapped.geojson")
    collection = json.loads(path.read_text(encoding="utf-8"))
    ningxia = next(f for f in collection["features"] if f["properties"]["adcode"] == "640000")
    swapped = shapely.transform(shape(ningxia["geometry"]), lambda c: c[:, ::-1])
    ningxia["geometry"] = mapping(swapped)
    path.write_text(json.dumps(collection), encoding="utf-8")
    engine = make_engine(sqlite_url)
    try:
        with make_session_factory(engine)() as session:
            with pytest.raises(InvalidInput) as raised:
                import_boundaries(session, BoundaryImport(path, "x", "x", code_field="adcode"), actor="t", clock=CLOCK)
            problem, missing = raised.value.problems  # refused, hence also missing from the set
            assert problem["code"] == "640000" and "outside China" in problem["reason"]
            assert missing["reason"] == "provinces missing: 640000 (every province-level division is required)"
    finally:
        engine.dispose()


def test_a_geopackage_in_a_projected_crs_is_imported(sqlite_url: str, tmp_path: Path) -> None:
    # every province in Web Mercator: the import reprojects to CGCS2000 lon/lat before checking
    provinces = [b for b in shipped_index().boundaries if b.level == "province"]
    to_mercator = Transformer.from_crs("EPSG:4490", "EPSG:3857", always_xy=True)
    features = [
        (
            {"code": b.code},
            shapely.transform(b.geometry, lambda c: np.column_stack(to_mercator.transform(c[:, 0], c[:, 1]))),
        )
        for b in provinces
    ]
    path = tmp_path / "official.gpkg"
    write_layer(path, features, crs="EPSG:3857", driver="GPKG")
    engine = make_engine(sqlite_url)
    try:
        with make_session_factory(engine)() as session:
            dataset = import_boundaries(session, BoundaryImport(path, "gpkg", "x"), actor="t", clock=CLOCK)
            assert dataset.feature_count == 34
            ningxia = current_index(session).province("64")
            original = shipped_index().province("64")
            assert ningxia is not None and original is not None
            assert ningxia.geometry.symmetric_difference(original.geometry).area < 1e-6 * original.geometry.area
    finally:
        engine.dispose()
