"""Administrative boundaries (GB/T 2260 provinces and counties) and the rule "a plot lies in its region".

Boundaries come from the database when a deployment has imported its own (``shanhai regions import``,
tables ``region_dataset`` and ``region_boundary``), and otherwise from the file shipped in the package,
``geodata/data/regions.geojson`` (provenance, datum and tolerance in ``docs/data-provenance.md``; the
choice in ``docs/adr/021-administrative-boundaries.md``). Either way they are lon/lat in CGCS2000.

The rule (issue 14): the *share* of a plot in a region is the geodesic area of the plot's part inside
the region buffered by the positional tolerance, over the plot's geodesic area (orientation-proof).

* share in the project's province < 1/2 → the plot is refused (``OutsideRegion``), naming the province
  and county where most of it lies, or "outside China";
* share in the project's county < 1/2 → accepted with a warning that is stored with the plot.

Speed: a :class:`RegionIndex` is built once per process and dataset version (an STRtree per level and
prepared geometries); a plot wholly inside its region costs one prepared ``contains``. The tolerance
buffer is computed only near the plot: the region is clipped to the plot's box widened by twice the
tolerance, projected to a local equirectangular plane (metres; scale error < 1 % over a plot), buffered,
and projected back.

>>> from shapely.geometry import box
>>> square = Boundary("640424", "泾源县", "county", box(106.0, 35.0, 107.0, 36.0))
>>> plot = box(106.99, 35.5, 107.01, 35.51)  # half in, half out
>>> round(share_in(square, plot, tolerance_m=0.0), 3)
0.5
>>> share_in(square, plot, tolerance_m=1000.0)  # the whole plot is within 1 km of the square
1.0
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

import shapely
from shapely import STRtree
from shapely.geometry import MultiPolygon, shape
from shapely.geometry.base import BaseGeometry

from core.regions import divisions
from geodata.area import cgcs2000_geod

POSITIONAL_TOLERANCE_M = 250.0
MIN_SHARE_IN_PROVINCE = 0.5
MIN_SHARE_IN_COUNTY = 0.5
LEVELS = ("province", "county")
METRES_PER_DEGREE = 111_320.0  # equatorial degree of longitude and mean degree of latitude, to 1 %
SHIPPED_FILE = "data/regions.geojson"


@dataclass(frozen=True)
class Boundary:
    """One division's boundary: GB/T 2260 code, Chinese name, level and lon/lat (multi)polygon."""

    code: str
    name_zh: str
    level: str  # province | county
    geometry: BaseGeometry


@dataclass(frozen=True)
class DatasetInfo:
    """Where a boundary set comes from, as shown on public maps."""

    version: str  # SHA-256 of the boundaries' canonical form
    source: str
    licence: str
    datum: str
    tolerance_m: float
    as_of: str

    def as_dict(self) -> dict[str, Any]:
        """Return the info as a JSON-ready mapping."""
        return dict(self.__dict__)


def geodesic_area_m2(geometry: BaseGeometry) -> float:
    """Return the geodesic area on GRS80 whatever the rings' orientation (each polygon oriented first).

    >>> from shapely.geometry import Polygon
    >>> cw = Polygon([(106, 35), (106, 35.01), (106.01, 35.01), (106.01, 35)])
    >>> round(geodesic_area_m2(cw) / 1e4, 2)
    101.27
    """
    if geometry.is_empty:
        return 0.0
    oriented = shapely.orient_polygons(geometry, exterior_cw=False)
    area_m2, _ = cgcs2000_geod().geometry_area_perimeter(oriented)
    return abs(float(area_m2))


def _local_plane(lon0: float, lat0: float) -> tuple[float, float]:
    """Metres per degree of longitude and latitude near (lon0, lat0), equirectangular."""
    return METRES_PER_DEGREE * math.cos(math.radians(lat0)), METRES_PER_DEGREE


def share_in(boundary: Boundary, plot: BaseGeometry, *, tolerance_m: float) -> float:
    """Return the share (0–1) of ``plot``'s geodesic area inside ``boundary`` widened by ``tolerance_m``."""
    if boundary.geometry.contains(plot):
        return 1.0
    plot_area_m2 = geodesic_area_m2(plot)
    if plot_area_m2 == 0.0:
        return 0.0
    min_lon, min_lat, max_lon, max_lat = plot.bounds
    lon0, lat0 = (min_lon + max_lon) / 2, (min_lat + max_lat) / 2
    mx, my = _local_plane(lon0, lat0)
    margin_lon, margin_lat = 2 * tolerance_m / mx, 2 * tolerance_m / my
    window = shapely.box(min_lon - margin_lon, min_lat - margin_lat, max_lon + margin_lon, max_lat + margin_lat)
    near = shapely.intersection(boundary.geometry, window)
    if near.is_empty:
        return 0.0
    if tolerance_m > 0:
        # lon/lat → local metres (x = Δlon·mx, y = Δlat·my), buffer by the tolerance in metres, and back
        to_m = shapely.transform(near, lambda c: (c - (lon0, lat0)) * (mx, my))
        widened = shapely.transform(to_m.buffer(tolerance_m), lambda c: c / (mx, my) + (lon0, lat0))
        near = widened
    inside_m2 = geodesic_area_m2(as_multipolygon(shapely.intersection(plot, near)))  # polygons only
    return min(1.0, inside_m2 / plot_area_m2)


@dataclass(frozen=True)
class Placement:
    """Where a plot lies: the region of each level holding most of it, and its share there."""

    province: Boundary | None
    province_share: float
    county: Boundary | None
    county_share: float

    def describe(self) -> str:
        """Return "宁夏回族自治区 泾源县 (Ningxia, Jingyuan, 640424)", "福建省 (Fujian, 35)" or "outside China"."""
        if self.province is None:
            return "outside China"
        province_en = english_name(self.province.code)
        if self.county is not None and self.county.code.startswith(self.province.code[:2]):
            names_en = ", ".join(n for n in (province_en, english_name(self.county.code)) if n)
            return f"{self.province.name_zh} {self.county.name_zh} ({names_en}, {self.county.code})"
        return f"{self.province.name_zh} ({', '.join(n for n in (province_en, self.province.code[:2]) if n)})"


def english_name(code: str) -> str:
    """Return the English (pinyin) name of a GB/T 2260 code, or "" if the code list has none.

    >>> english_name("350000"), english_name("640424")
    ('Fujian', 'Jingyuan')
    """
    division = divisions().get(code)
    return division.name_en if division else ""


@dataclass
class RegionIndex:
    """Boundaries of one dataset, indexed for point-in-region and share queries (build once per process)."""

    info: DatasetInfo
    boundaries: tuple[Boundary, ...]
    _by_code: dict[str, Boundary] = field(init=False, repr=False)
    _trees: dict[str, tuple[list[Boundary], STRtree]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_code = {b.code: b for b in self.boundaries}
        self._trees = {}
        for level in LEVELS:
            members = [b for b in self.boundaries if b.level == level]
            for member in members:
                shapely.prepare(member.geometry)
            self._trees[level] = (members, STRtree([m.geometry for m in members]))

    def get(self, code: str) -> Boundary | None:
        """Return the boundary of a six-digit GB/T 2260 code, if the dataset has it."""
        return self._by_code.get(code)

    def province(self, province_code: str) -> Boundary | None:
        """Return the boundary of a two-digit province code."""
        return self._by_code.get(f"{province_code}0000")

    def most_of(self, plot: BaseGeometry, level: str) -> tuple[Boundary | None, float]:
        """Return the region of ``level`` holding the largest share of ``plot`` (no tolerance), and that share."""
        members, tree = self._trees[level]
        best: tuple[Boundary | None, float] = (None, 0.0)
        for position in tree.query(plot, predicate="intersects"):
            candidate = members[int(position)]
            share = share_in(candidate, plot, tolerance_m=0.0)
            if share > best[1]:
                best = (candidate, share)
        return best

    def place(self, plot: BaseGeometry) -> Placement:
        """Return the province and county where most of ``plot`` lies."""
        province, province_share = self.most_of(plot, "province")
        county, county_share = self.most_of(plot, "county")
        return Placement(province, province_share, county, county_share)


def _boundary_from_feature(feature: dict[str, Any]) -> Boundary:
    properties = feature["properties"]
    return Boundary(properties["code"], properties["name_zh"], properties["level"], shape(feature["geometry"]))


def dataset_version(boundaries: Sequence[Boundary]) -> str:
    """Return the SHA-256 of the boundaries' codes, names, levels and WKB, in code order."""
    digest = hashlib.sha256()
    for boundary in sorted(boundaries, key=lambda b: b.code):
        digest.update(f"{boundary.code}|{boundary.name_zh}|{boundary.level}|".encode())
        digest.update(shapely.to_wkb(boundary.geometry, hex=False, output_dimension=2))
    return digest.hexdigest()


@lru_cache(maxsize=1)
def shipped_index() -> RegionIndex:
    """Return the index of the shipped boundary file (loaded once per process)."""
    text = resources.files("geodata").joinpath(SHIPPED_FILE).read_text(encoding="utf-8")
    collection = json.loads(text)
    boundaries = tuple(_boundary_from_feature(f) for f in collection["features"])
    meta = collection["metadata"]
    info = DatasetInfo(
        version=dataset_version(boundaries),
        source=meta["source"],
        licence=meta["licence"],
        datum=meta["datum"],
        tolerance_m=float(meta["tolerance_m"]),
        as_of=meta["as_of"],
    )
    return RegionIndex(info, boundaries)


def as_multipolygon(geometry: BaseGeometry) -> MultiPolygon:
    """Return the polygons of any geometry as one MultiPolygon (for the database column).

    >>> from shapely.geometry import GeometryCollection, LineString, box
    >>> as_multipolygon(GeometryCollection([box(0, 0, 1, 1), LineString([(0, 0), (2, 2)])])).geom_type
    'MultiPolygon'
    """
    parts = getattr(geometry, "geoms", [geometry])
    polygons = [p for part in parts for p in getattr(part, "geoms", [part]) if p.geom_type == "Polygon"]
    return MultiPolygon(polygons)


def check_codes(codes: Sequence[str]) -> list[str]:
    """Return the problems with a boundary set's codes (unknown, wrong level, provinces missing).

    >>> check_codes(["640000", "640424", "999999"])[0]
    "unknown GB/T 2260 code '999999'"
    """
    known = divisions()
    problems = [f"unknown GB/T 2260 code {code!r}" for code in codes if code not in known]
    provinces = sorted(code for code, division in known.items() if division.level == "province")
    missing = [code for code in provinces if code not in set(codes)]
    if missing:
        problems.append(f"provinces missing: {', '.join(missing)} (every province-level division is required)")
    return problems


@dataclass(frozen=True)
class RegionAssessment:
    """How a plot sits in its project's province and county (shares after the tolerance)."""

    province_code: str
    county_code: str | None
    province_share: float
    county_share: float | None  # None: no county declared, or the dataset has no boundary for it
    placement: Placement | None  # where most of the plot lies, when it is not in its county or province

    @property
    def refused(self) -> bool:
        """Whether less than half the plot lies in the province (after the tolerance)."""
        return self.province_share < MIN_SHARE_IN_PROVINCE

    @property
    def outside_county(self) -> bool:
        """Whether less than half the plot lies in the declared county (after the tolerance)."""
        return self.county_share is not None and self.county_share < MIN_SHARE_IN_COUNTY


def assess(
    index: RegionIndex, plot: BaseGeometry, province_code: str, county_code: str | None, *, tolerance_m: float
) -> RegionAssessment:
    """Return the plot's shares in the province and county and, when short of either, where it lies.

    A province missing from the dataset cannot be checked and counts as a full share; the import refuses
    datasets without every province, so this only happens with a county-only hand-made index.
    """
    province = index.province(province_code)
    province_share = 1.0 if province is None else share_in(province, plot, tolerance_m=tolerance_m)
    county = index.get(county_code) if county_code else None
    county_share = None if county is None else share_in(county, plot, tolerance_m=tolerance_m)
    short = province_share < MIN_SHARE_IN_PROVINCE or (county_share is not None and county_share < MIN_SHARE_IN_COUNTY)
    placement = index.place(plot) if short else None
    return RegionAssessment(province_code, county_code, province_share, county_share, placement)
