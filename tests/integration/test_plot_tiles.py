"""A project's plots as vector tiles on both databases: ``ST_AsMVT`` on PostGIS, numpy commands on SQLite.

Both answer the same plots in the same tile, with their ids and codes, drawn where they are (decoded with
``mapbox-vector-tile``'s decoder and compared with the plots' own outlines projected to the tile).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import mapbox_vector_tile
import pytest
import shapely
from shapely.geometry import shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.models import Plot
from carbon.plot_tiles import plot_tile, plots_extent
from geodata.tiles import EXTENT, tile_bounds
from tests.conftest import seeded_session

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def session(request: pytest.FixtureRequest, template_db: Path, tmp_path: Path) -> Iterator[Session]:
    with seeded_session(request.param, template_db, tmp_path, AT) as session:
        yield session


def tile_of(lon: float, lat: float, z: int) -> tuple[int, int]:
    n = 2**z
    y = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n
    return int((lon + 180) / 360 * n), int(y)


def test_the_demo_plots_in_their_tiles_on_both_databases(session: Session) -> None:
    demo = {1: "NX-JY-HC-001", 2: "NX-YN-KS-001"}  # the Haicang forest's project, the Yongning restoration's
    for project_id, code in demo.items():
        plots = list(session.scalars(select(Plot).where(Plot.project_id == project_id).order_by(Plot.id)))
        assert [p.plot_code for p in plots] == [code]
        [plot] = plots
        centre = plot.geometry.representative_point()
        extent = plots_extent(session, project_id)
        assert extent is not None and extent[0] < centre.x < extent[2] and extent[1] < centre.y < extent[3]
        z = 13
        x, y = tile_of(centre.x, centre.y, z)
        decoded = mapbox_vector_tile.decode(plot_tile(session, project_id, z, x, y))["plots"]["features"]
        found = [f for f in decoded if f["id"] == plot.id]
        assert found and found[0]["properties"]["code"] == plot.plot_code
        # the decoded outline (tile units, y up as the decoder gives it) covers the plot's centre
        west, south, east, north = tile_bounds(z, x, y)
        cx = (centre.x - west) / (east - west) * EXTENT
        merc = lambda lat: math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))  # noqa: E731
        cy = (merc(centre.y) - merc(south)) / (merc(north) - merc(south)) * EXTENT
        drawn = shape(found[0]["geometry"])
        assert drawn.buffer(8).contains(shapely.Point(cx, cy)), (drawn.bounds, cx, cy)
        # the other demo project's tile at the same place holds none of this project's plots
        neighbour = plot_tile(session, 3 - project_id, z, x, y)
        others = mapbox_vector_tile.decode(neighbour)["plots"]["features"] if neighbour else []
        assert all(f["id"] != plot.id for f in others)
    assert plot_tile(session, 1, 13, 0, 0) == b""  # nothing there
    assert plot_tile(session, 1, 30, 0, 0) == b""  # not a tile of the grid
