"""Regenerate ``demo_plots.geojson``: synthetic polygons with exact published areas.

The two demo plots stand for real projects whose boundaries are not public. Each is an irregular
outline (vertex offsets in metres below) placed at a plausible site and scaled until its geodesic area
on GRS80 (CGCS2000) equals the published figure. Run: ``python samples/make_demo_plots.py``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pyproj import Geod
from shapely.geometry import Polygon, mapping

from geodata.area import measure

GEOD = Geod(ellps="GRS80")
M2_PER_MU = 10_000 / 15

# (name, properties, centre lon/lat, target m², outline as (east m, north m) offsets)
PLOTS = [
    (
        "Haicang carbon forest (海沧碳汇林), Jingyuan",
        {
            "code": "NX-JY-HC-001",
            "species": "Pinus tabuliformis; Larix principis-rupprechtii",
            "planting_year": 2021,
            "declared_area_mu": 1500,
            "county": "640424",
            "land_use": "afforestation (barren hill)",
        },
        (106.3310, 35.5020),
        1500 * M2_PER_MU,
        [(-620, -380), (-180, -520), (350, -470), (640, -120), (560, 310), (120, 520), (-300, 470), (-650, 140)],
    ),
    (
        "Yongning abandoned-mine restoration (永宁废弃矿山修复)",
        {
            "code": "NX-YN-KS-001",
            "species": "Caragana korshinskii; Ulmus pumila",
            "planting_year": 2022,
            "declared_area_ha": 219.74,
            "county": "640121",
            "land_use": "ecological restoration (abandoned quarry)",
        },
        (106.0180, 38.2640),
        219.74 * 10_000,
        [(-900, -600), (-200, -850), (700, -700), (980, -150), (820, 560), (150, 820), (-520, 700), (-960, 120)],
    ),
]


def _ring(centre: tuple[float, float], offsets: list[tuple[float, float]], scale: float) -> list[tuple[float, float]]:
    lon0, lat0 = centre
    ring = []
    for east, north in offsets:
        distance = math.hypot(east, north) * scale
        azimuth = math.degrees(math.atan2(east, north))
        lon, lat, _ = GEOD.fwd(lon0, lat0, azimuth, distance)
        ring.append((round(lon, 7), round(lat, 7)))
    return [*ring, ring[0]]


def _fit(centre: tuple[float, float], offsets: list[tuple[float, float]], target_m2: float) -> Polygon:
    scale = 1.0
    for _ in range(8):
        polygon = Polygon(_ring(centre, offsets, scale))
        area_m2 = measure(polygon).area_m2  # orientation-proof, as every area in the platform
        scale *= math.sqrt(target_m2 / area_m2)
    return Polygon(_ring(centre, offsets, scale))


def main() -> None:
    """Write the demo FeatureCollection beside this script."""
    features = []
    for name, properties, centre, target_m2, offsets in PLOTS:
        polygon = _fit(centre, offsets, target_m2)
        features.append({"type": "Feature", "properties": {"name": name, **properties}, "geometry": mapping(polygon)})
    path = Path(__file__).with_name("demo_plots.geojson")
    path.write_text(
        json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1) + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
