"""The raster route of a monitoring report: each stratum's biomass density from a registered raster layer.

``raster`` names a registered continuous layer of above-ground biomass density (t d.m./ha). Each stratum's
density is the area-weighted mean over its plots, ``Σ integral / Σ covered area`` of
``geodata.zonal.zonal_statistics`` (t/ha × m² / m² = t/ha), quantised to 0.001 t/ha, and enters the
methodology's external-density input together with the layer's name and SHA-256. The layer file is re-hashed
before use, so a record names exactly the raster it came from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from carbon.models import Plot
from core.errors import InvalidInput
from geodata.models import RasterKind, RasterLayer
from geodata.rasters import get_layer, layer_file, open_raster
from geodata.zonal import zonal_statistics

DENSITY_QUANTUM = Decimal("0.001")
#: A raster must cover at least this share of a plot (valid cells) for its mean to stand for the plot.
MIN_RASTER_COVERAGE = 0.95
BIOMASS_UNITS = ("t/ha", "t d.m./ha")


class RasterDensity(BaseModel):
    """The raster route: a registered continuous layer of above-ground biomass density (t d.m./ha)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layer: str = Field(min_length=1, max_length=100, examples=["agb-jingyuan"])
    when: Literal["start", "end"] = Field(default="end", description="The inventory the raster stands for.")


def stratum_densities(dataset: Any, plots_of_unit: Mapping[str, Sequence[Plot]]) -> dict[str, dict[str, Any]]:
    """Return each unit's area-weighted mean density over its plots from an open raster.

    ``density = Σ integral / Σ covered area`` (value·m² / m² = value units). A plot less than
    :data:`MIN_RASTER_COVERAGE` covered by valid cells is refused.
    """
    plots = sorted({p.id: p for group in plots_of_unit.values() for p in group}.values(), key=lambda p: p.id)
    stats = dict(zip([p.id for p in plots], zonal_statistics(dataset, [p.geometry for p in plots]), strict=True))
    problems = [
        {"pointer": "/plot_ids", "reason": f"the raster covers {stats[p.id]['area_m2'] / p.area_m2:.1%} of plot {p.id}"}
        for p in plots
        if stats[p.id].get("area_m2", 0.0) < MIN_RASTER_COVERAGE * p.area_m2
    ]
    if problems:
        raise InvalidInput("the raster does not cover the plots", problems)
    densities = {}
    for unit, group in sorted(plots_of_unit.items()):
        integral = sum(stats[p.id]["integral"] for p in group)
        covered_m2 = sum(stats[p.id]["area_m2"] for p in group)
        density = Decimal(integral / covered_m2).quantize(DENSITY_QUANTUM, rounding=ROUND_HALF_EVEN)
        densities[unit] = {
            "plot_ids": [p.id for p in group],
            "density_t_per_ha": str(density),
            "covered_area_m2": f"{covered_m2:.1f}",
        }
    return densities


def raster_layer(session: Session, route: RasterDensity) -> RasterLayer:
    """Return the route's layer if it is a continuous above-ground biomass density."""
    layer = get_layer(session, route.layer)
    if layer.kind is not RasterKind.CONTINUOUS or layer.units not in BIOMASS_UNITS:
        raise InvalidInput(
            f"raster layer {layer.name!r} is {layer.kind.value} in {layer.units!r}; the raster route needs a "
            f"continuous above-ground biomass density in one of {', '.join(BIOMASS_UNITS)}",
            [{"pointer": "/raster/layer"}],
        )
    return layer


def apply_raster(
    session: Session,
    document: dict[str, Any],
    route: RasterDensity,
    mapping: Mapping[str, Plot],
    raster_dir: Path,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fill each stratum's ``when`` inventory with its raster density; return the document and provenance."""
    layer = raster_layer(session, route)
    groups: dict[str, list[Plot]] = {}
    for unit, plot in mapping.items():
        groups.setdefault(unit, []).append(plot)
    with open_raster(layer_file(raster_dir, layer)) as dataset:
        densities = stratum_densities(dataset, groups)
    strata = []
    for index, stratum in enumerate(document.get("strata", [])):
        inventory = dict(stratum.get(route.when) or {})
        given = [
            k for k in ("stand_volume_m3_per_ha", "sample_plots", "above_ground_biomass_t_per_ha") if k in inventory
        ]
        if given:
            raise InvalidInput(
                f"the raster route supplies the {route.when} tree biomass; remove {', '.join(given)}",
                [{"pointer": f"/inputs/strata/{index}/{route.when}"}],
            )
        found = densities[str(stratum["stratum_id"])]
        inventory["above_ground_biomass_t_per_ha"] = found["density_t_per_ha"]
        inventory["biomass_source"] = (
            f"raster layer {layer.name} (sha256 {layer.sha256}): area-weighted exact zonal mean over plots "
            f"{found['plot_ids']}, {found['covered_area_m2']} m² covered"
        )
        strata.append({**stratum, route.when: inventory})
    provenance = {
        "layer": layer.name,
        "layer_sha256": layer.sha256,
        "units": layer.units,
        "when": route.when,
        "statistic": "Σ value × covered cell area / Σ covered cell area (exactextract, geodesic cell areas)",
        "strata": densities,
    }
    return {**document, "strata": strata}, provenance
