"""Raster layers (registered by the operator or registry) and exact zonal statistics of plots."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import Field

from api.deps import ClockDep, CurrentUser, SessionDep, SettingsDep
from api.fields import Answer, InstantText
from api.pagination import Page, PageQuery, slice_of
from api.params import IdPath
from carbon.plots import get_plot
from geodata.models import RasterKind, RasterLayer
from geodata.rasters import RegisterRasterLayer, get_layer, list_layers, open_raster, register_layer, resolve_path
from geodata.zonal import zonal_statistics

router = APIRouter(prefix="/api/v1", tags=["rasters"])


class RasterLayerOut(Answer):
    """A registered raster layer: kind, units, grid (CRS, size, affine transform), nodata, class names, hash."""

    id: int
    name: str
    kind: RasterKind
    units: str
    description: str
    crs: str
    width: int
    height: int
    transform: list[float] = Field(description="The affine transform (a, b, c, d, e, f).")
    nodata: float | None
    class_names: dict[str, str] | None
    sha256: str
    created_at: InstantText


class RasterClass(Answer):
    """One class of a categorical raster within a plot."""

    name: str | None
    area_m2: float
    area_mu: float
    share: float


class ZonalStatistics(Answer):
    """Exact coverage-weighted statistics of a plot over a raster layer (areas geodesic in m²)."""

    plot_id: int
    layer: str
    units: str
    layer_sha256: str
    cells: float = Field(description="Cells covered (coverage-weighted).")
    sum: float | None
    mean: float | None
    min: float | None
    max: float | None
    area_m2: float
    integral: float = Field(description="Σ value × area (value unit × m²).")
    classes: dict[str, RasterClass] | None = Field(default=None, description="Categorical layers: by class value.")


def _layer_out(layer: RasterLayer) -> RasterLayerOut:
    return RasterLayerOut.model_validate({
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
    })  # fmt: skip


@router.post("/raster-layers", status_code=201)
def register_raster_layer(
    body: RegisterRasterLayer, principal: CurrentUser, session: SessionDep, settings: SettingsDep, clock: ClockDep
) -> RasterLayerOut:
    """Register a GeoTIFF of the server's raster directory under a name (never a user-supplied file)."""
    layer = register_layer(session, body, raster_dir=settings.raster_dir, actor=principal.actor, clock=clock)
    return _layer_out(layer)


@router.get("/raster-layers")
def list_raster_layers(
    session: SessionDep, _principal: CurrentUser, request: Request, page: PageQuery
) -> Page[RasterLayerOut]:
    """List the registered raster layers."""
    layers, following = slice_of(request, list_layers(session), page)
    return Page[RasterLayerOut](items=[_layer_out(layer) for layer in layers], limit=page.limit, next=following)


@router.get("/plots/{plot_id}/zonal-statistics")
def read_plot_zonal_statistics(
    plot_id: IdPath,
    layer: Annotated[str, Query(description="Name of a registered raster layer.")],
    session: SessionDep,
    settings: SettingsDep,
    _principal: CurrentUser,
) -> ZonalStatistics:
    """Exact coverage-weighted statistics of a plot over a registered raster layer (areas geodesic, m² and mu)."""
    plot = get_plot(session, plot_id)
    raster = get_layer(session, layer)
    with open_raster(resolve_path(settings.raster_dir, raster.path)) as dataset:
        categorical = raster.kind is RasterKind.CATEGORICAL
        [stats] = zonal_statistics(dataset, [plot.geometry], categorical=categorical, class_names=raster.class_names)
    facts = {"plot_id": plot.id, "layer": raster.name, "units": raster.units, "layer_sha256": raster.sha256}
    return ZonalStatistics.model_validate(facts | stats)
