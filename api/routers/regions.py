"""Administrative boundaries for maps (public): the dataset's provenance, the map review number, GeoJSON.

The same boundaries the plot-in-region rule uses (``geodata.regions``) are the web map's reference layer.
Public Chinese maps must show territorially correct boundaries: a deployment imports the official
standard map (``shanhai regions import``) and sets ``SHANHAI_MAP_REVIEW_NUMBER`` (审图号), which every
answer carries; ``standard_map`` is false while no review number is configured.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from shapely.geometry import mapping

from api.deps import SessionDep, SettingsDep
from core.settings import Settings
from geodata.region_store import current_index
from geodata.regions import RegionIndex

public = APIRouter(prefix="/public/v1", tags=["public regions"])


def _metadata(index: RegionIndex, settings: Settings) -> dict[str, Any]:
    counts = {level: sum(1 for b in index.boundaries if b.level == level) for level in ("province", "county")}
    return {
        "dataset": index.info.as_dict(),
        "map_review_number": settings.map_review_number,
        "standard_map": settings.map_review_number is not None,
        "counts": counts,
    }


@public.get("/regions")
def read_public_regions(session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Return the boundary dataset in force: source, licence, datum, tolerance, review number (审图号), codes."""
    index = current_index(session)
    regions = [{"code": b.code, "name_zh": b.name_zh, "level": b.level} for b in index.boundaries]
    return _metadata(index, settings) | {"regions": regions}


@public.get("/regions/boundaries")
def read_public_region_boundaries(
    session: SessionDep, settings: SettingsDep, level: Literal["province", "county"] = "province"
) -> dict[str, Any]:
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
    return {"type": "FeatureCollection", "metadata": _metadata(index, settings), "features": features}
