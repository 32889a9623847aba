"""Raster layers (registered by the operator or registry) and exact zonal statistics of plots."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import ClockDep, CurrentUser, SessionDep, SettingsDep
from api.params import IdPath
from carbon.plots import get_plot
from geodata.models import RasterKind, RasterLayer
from geodata.rasters import RegisterRasterLayer, get_layer, list_layers, open_raster, register_layer, resolve_path
from geodata.zonal import zonal_statistics

router = APIRouter(prefix="/api/v1", tags=["rasters"])


def _layer_out(layer: RasterLayer) -> dict[str, Any]:
    return {
        "id": layer.id,
        "name": layer.name,
        "kind": layer.kind.value,
        "units": layer.units,
        "description": layer.description,
        "crs": layer.crs,
        "width": layer.width,
        "height": layer.height,
        "transform": layer.transform,
        "nodata": layer.nodata,
        "class_names": layer.class_names,
        "sha256": layer.sha256,
        "created_at": layer.created_at.isoformat(),
    }


@router.post("/raster-layers", status_code=201)
def register_raster_layer(
    body: RegisterRasterLayer, principal: CurrentUser, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> dict[str, Any]:
    """Register a GeoTIFF of the server's raster directory under a name (never a user-supplied file)."""
    layer = register_layer(session, body, raster_dir=settings.raster_dir, actor=principal.actor, clock=clock)
    return _layer_out(layer)


@router.get("/raster-layers")
def list_raster_layers(session: SessionDep, _principal: CurrentUser) -> list[dict[str, Any]]:
    """List the registered raster layers."""
    return [_layer_out(layer) for layer in list_layers(session)]


@router.get("/plots/{plot_id}/zonal-statistics")
def read_plot_zonal_statistics(
    plot_id: IdPath,
    layer: Annotated[str, Query(description="Name of a registered raster layer.")],
    session: SessionDep,
    settings: SettingsDep,
    _principal: CurrentUser,
) -> dict[str, Any]:
    """Exact coverage-weighted statistics of a plot over a registered raster layer (areas geodesic, m² and mu)."""
    plot = get_plot(session, plot_id)
    raster = get_layer(session, layer)
    with open_raster(resolve_path(settings.raster_dir, raster.path)) as dataset:
        categorical = raster.kind is RasterKind.CATEGORICAL
        [stats] = zonal_statistics(dataset, [plot.geometry], categorical=categorical, class_names=raster.class_names)
    return {"plot_id": plot.id, "layer": raster.name, "units": raster.units, "layer_sha256": raster.sha256, **stats}
