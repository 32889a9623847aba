"""PostGIS agrees with ``geodata.area`` on re-wound polygons (its geography area ignores winding, as ours now does).

Marked ``postgres``: under CI=true these fail if the server is missing; elsewhere they skip.
"""

from __future__ import annotations

import pytest
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy import text
from sqlalchemy.engine import Engine

from geodata.area import measure

pytestmark = pytest.mark.postgres

OUTER = [(106.30, 35.50), (106.31, 35.50), (106.31, 35.51), (106.30, 35.51)]
HOLE = [(106.301, 35.501), (106.306, 35.501), (106.306, 35.506), (106.301, 35.506)]
EAST = [(x + 0.03, y) for x, y in OUTER]
REWOUND = {
    "hole wound like its exterior": Polygon(OUTER, [HOLE]),
    "clockwise exterior, clockwise hole": Polygon(OUTER[::-1], [HOLE[::-1]]),
    "parts wound in opposite directions": MultiPolygon([Polygon(OUTER), Polygon(EAST[::-1])]),
    "clockwise part with a hole beside a counter-clockwise part": MultiPolygon(
        [Polygon(OUTER[::-1], [HOLE]), Polygon(EAST)]
    ),
}


@pytest.mark.parametrize("name", list(REWOUND))
def test_postgis_geography_area_matches_measure(name: str, pg_engine: Engine) -> None:
    geometry = REWOUND[name]
    with pg_engine.connect() as connection:
        postgis_m2 = connection.scalar(
            text("SELECT ST_Area(ST_GeomFromText(:wkt, 4490)::geography)"), {"wkt": geometry.wkt}
        )
    # PostGIS measures geography on WGS84; GRS80 differs by ~0.1 mm in the semi-minor axis.
    assert measure(geometry).area_m2 == pytest.approx(postgis_m2, rel=1e-6)
