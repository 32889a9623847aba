"""Administrative boundaries for maps (public): the dataset's provenance, the map review number, GeoJSON.

The same boundaries the plot-in-region rule uses (``geodata.regions``) are the web map's reference layer.
Public Chinese maps must show territorially correct boundaries: a deployment imports the official
standard map (``shanhai regions import``) and sets ``SHANHAI_MAP_REVIEW_NUMBER`` (审图号), which every
answer carries; ``standard_map`` is false while no review number is configured.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field
from shapely.geometry import mapping

from api.deps import SessionDep, SettingsDep
from api.fields import Answer
from core.settings import Settings
from geodata.region_store import current_index
from geodata.regions import RegionIndex

public = APIRouter(prefix="/public/v1", tags=["public regions"])


class Dataset(Answer):
    """Where the boundary set comes from: version (SHA-256), source, licence, datum, tolerance, date."""

    version: str
    source: str
    licence: str
    datum: str
    tolerance_m: float
    as_of: str


class LevelCounts(Answer):
    """Boundaries by level."""

    province: int
    county: int


class RegionRef(Answer):
    """A boundary's GB/T 2260 code, Chinese name and level."""

    code: str
    name_zh: str
    level: Literal["province", "county"]


class RegionsOut(Answer):
    """The boundary dataset in force, the map review number (审图号) and the codes it covers."""

    dataset: Dataset
    map_review_number: str | None
    standard_map: bool
    counts: LevelCounts
    regions: list[RegionRef]


class RegionMetadata(Answer):
    """The dataset, review number and counts every boundary answer carries."""

    dataset: Dataset
    map_review_number: str | None
    standard_map: bool
    counts: LevelCounts


class RegionFeature(Answer):
    """A boundary as a GeoJSON Feature (lon/lat, CGCS2000)."""

    type: Literal["Feature"]
    id: str
    properties: RegionRef
    geometry: dict[str, Any] = Field(description="A GeoJSON Polygon or MultiPolygon.")


class RegionBoundaries(Answer):
    """The boundaries of one level as a GeoJSON FeatureCollection with the dataset's metadata."""

    type: Literal["FeatureCollection"]
    metadata: RegionMetadata
    features: list[RegionFeature]


def _metadata(index: RegionIndex, settings: Settings) -> dict[str, Any]:
    counts = {level: sum(1 for b in index.boundaries if b.level == level) for level in ("province", "county")}
    return {
        "dataset": index.info.as_dict(),
        "map_review_number": settings.map_review_number,
        "standard_map": settings.map_review_number is not None,
        "counts": counts,
    }


@public.get("/regions")
def read_public_regions(session: SessionDep, settings: SettingsDep) -> RegionsOut:
    """Return the boundary dataset in force: source, licence, datum, tolerance, review number (审图号), codes."""
    index = current_index(session)
    regions = [{"code": b.code, "name_zh": b.name_zh, "level": b.level} for b in index.boundaries]
    return RegionsOut.model_validate(_metadata(index, settings) | {"regions": regions})


@public.get("/regions/boundaries")
def read_public_region_boundaries(
    session: SessionDep, settings: SettingsDep, level: Literal["province", "county"] = "province"
) -> RegionBoundaries:
    """Return the boundaries of one level as a GeoJSON FeatureCollection (lon/lat, CGCS2000) for maps."""
    index = current_index(session)
    features = [
        {
            "type": "Feature",
            "id": b.code,
            "properties": {"code": b.code, "name_zh": b.name_zh, "level": b.level},
            "geometry": mapping(b.geometry),
        }
        for b in index.boundaries
        if b.level == level
    ]
    return RegionBoundaries.model_validate(
        {"type": "FeatureCollection", "metadata": _metadata(index, settings), "features": features}
    )
