"""The run kernels: one function per GEP indicator from a tile's masked inputs to its quantities (pure).

Each kernel binds a pure block kernel of :mod:`gep.indicators` to the run: it takes the run's
:class:`RunContext` (cell size, policies, legend, coefficients — the same for every tile) and one
:class:`TileBlock` (the tile's inputs by role, already masked by the shared nodata mask, the pixel areas,
the valid mask and the halo blocks), and returns its per-pixel quantities by component. An element-wise
indicator has one component, :data:`QUANTITY`; a regional indicator returns its *basis* components
(:mod:`gep.regional`), finished after the merge. Which kernel belongs to which indicator, and what it
reads, is declared once in :mod:`gep.spec`.

>>> import numpy as np
>>> from gep.indicators.water_conservation import NegativeBalancePolicy
>>> block = TileBlock({"precipitation": np.array([500.0]), "runoff_coefficient": 0.2,
...     "evapotranspiration": np.array([300.0])}, areas=np.array([900.0]), valid=np.array([True]))
>>> context = RunContext(cell_m=(30.0, 30.0), negative_balance=NegativeBalancePolicy.CLAMP_TO_ZERO)
>>> water_conservation(context, block)[QUANTITY].tolist()
[90.0]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gep.arrays import FloatArray, lookup
from gep.coefficients import (
    rweq_constants,
    rweq_cover_coefficients_per_percent,
    water_evaporation_parameters,
)
from gep.indicators import carbon_oxygen, climate_regulation, purification, sand_fixation, soil_retention, terrain
from gep.indicators import water_conservation as water_balance
from gep.indicators.sand_fixation import CoverUnit, RweqConstants
from gep.indicators.water_conservation import NegativeBalancePolicy
from gep.legend import Legend
from gep.prices import ParameterTable
from gep.regional import RegionalParameters

#: The component of an element-wise indicator: its quantity.
QUANTITY = "quantity"
#: The basis components of flood regulation, by the legend's ``flood_storage`` kind.
FLOOD_STORAGE_KINDS = ("lake", "reservoir", "marsh")
#: The basis component of a purification indicator: the uptake capacity before the emission cap.
CAPACITY = "capacity"


@dataclass(frozen=True)
class RunContext:
    """What a kernel reads besides its tile: the run's settings and coefficients (one per run)."""

    cell_m: tuple[float, float]  # (x, y) cell size in metres
    negative_balance: NegativeBalancePolicy | None = None
    cover_unit: CoverUnit | None = None
    legend: Legend | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)  # indicator code → its coefficients


@dataclass(frozen=True)
class TileBlock:
    """One tile as a kernel sees it: masked inputs by role, pixel areas (m²), valid mask, halo blocks."""

    inputs: Mapping[str, FloatArray | float]
    areas: FloatArray
    valid: np.ndarray
    halo: Mapping[str, FloatArray] = field(default_factory=dict)  # role → block grown by its halo


Kernel = Callable[[RunContext, TileBlock], dict[str, FloatArray]]
ParameterLoader = Callable[[ParameterTable], Any]


def water_conservation(context: RunContext, block: TileBlock) -> dict[str, FloatArray]:
    """Water conservation (m³): P − R − ET over the pixel, with the run's negative-balance policy."""
    inputs = block.inputs
    precipitation = inputs["precipitation"]
    runoff = water_balance.storm_runoff_mm(precipitation, inputs["runoff_coefficient"])
    policy = context.negative_balance
    assert policy is not None  # checked by RunConfig
    quantity = water_balance.water_conservation_m3(
        precipitation, runoff, inputs["evapotranspiration"], block.areas, policy=policy
    )
    return {QUANTITY: quantity}


def carbon_sequestration(context: RunContext, block: TileBlock) -> dict[str, FloatArray]:
    """Carbon sequestration (t CO₂): NEP × 44/12 over the pixel."""
    return {QUANTITY: carbon_oxygen.carbon_sequestration_tco2(block.inputs["nep"], block.areas)}


def oxygen_release(context: RunContext, block: TileBlock) -> dict[str, FloatArray]:
    """Oxygen release (t O₂): NEP × 32/12 over the pixel."""
    return {QUANTITY: carbon_oxygen.oxygen_release_to2(block.inputs["nep"], block.areas)}


def soil_retention_kernel(context: RunContext, block: TileBlock) -> dict[str, FloatArray]:
    """Soil retention (t): RUSLE R·K·LS·(1 − C·P), LS from the DEM grown by a one-pixel halo."""
    inputs = block.inputs
    coefficients: terrain.LsCoefficients = context.parameters["soil_retention"]
    slope = terrain.slope_radians(block.halo["dem"], cell_x_m=context.cell_m[0], cell_y_m=context.cell_m[1])
    ls = np.where(block.valid, terrain.ls_factor(slope, coefficients), np.nan)
    quantity = soil_retention.soil_retention_t(
        inputs["erosivity"], inputs["erodibility"], ls, inputs["cover_factor"], inputs["practice_factor"], block.areas
    )
    return {QUANTITY: quantity}


@dataclass(frozen=True)
class SandFixationParameters:
    """RWEQ constants and the vegetation coefficient a (per percent of cover) by RWEQ cover type."""

    rweq: RweqConstants
    cover_coefficients_per_percent: dict[str, float]


def sand_fixation_parameters(coefficients: ParameterTable) -> SandFixationParameters:
    """Load the RWEQ constants and cover coefficients from the coefficient table."""
    return SandFixationParameters(rweq_constants(coefficients), rweq_cover_coefficients_per_percent(coefficients))


def sand_fixation_kernel(context: RunContext, block: TileBlock) -> dict[str, FloatArray]:
    """RWEQ fixation (t) per pixel; classes without an RWEQ cover type (water, built-up) fix nothing."""
    assert context.legend is not None and context.cover_unit is not None  # checked by RunConfig
    parameters: SandFixationParameters = context.parameters["sand_fixation"]
    inputs = block.inputs
    classes = context.legend.classes
    land = inputs["land_cover"]
    per_percent = parameters.cover_coefficients_per_percent
    coefficient = {c: per_percent.get(k.rweq_cover_type or "", 0.0) for c, k in classes.items()}
    eroding = {c: float(k.rweq_cover_type is not None) for c, k in classes.items()}
    factor = sand_fixation.vegetation_factor(
        inputs["vegetation_cover"], lookup(land, coefficient, name="land_cover"), cover_unit=context.cover_unit
    )
    fixation_g_per_m = sand_fixation.sand_fixation_g_per_m(
        inputs["wind_weather_factor"],
        inputs["erodible_fraction"],
        inputs["crust_factor"],
        inputs["roughness_factor"],
        factor,
        parameters.rweq,
    )
    # g/m → g/m² divides by the cell size along the wind; the wind direction is not an input, so the
    # geometric mean of the cell's sides (one value per run: tiling-independent).
    cell_size_m = math.sqrt(context.cell_m[0] * context.cell_m[1])
    fixed_t = sand_fixation.sand_fixation_t(fixation_g_per_m, cell_size_m=cell_size_m, area_m2=block.areas)
    return {QUANTITY: fixed_t * lookup(land, eroding, name="land_cover")}


def climate_parameters(coefficients: ParameterTable) -> dict[str, float]:
    """Load the evaporation-cooling figures and the air-conditioning days from the coefficient table."""
    return {
        **water_evaporation_parameters(coefficients),
        "days": coefficients.number("air_conditioning_days", unit="d"),
    }


def climate_regulation_kernel(context: RunContext, block: TileBlock) -> dict[str, FloatArray]:
    """Transpiration cooling on transpiring classes plus evaporation cooling on water surfaces (kWh)."""
    assert context.legend is not None  # checked by RunConfig
    inputs, areas = block.inputs, block.areas
    land = inputs["land_cover"]
    transpires = lookup(land, context.legend.codes(transpires=True), name="land_cover")
    water = lookup(land, context.legend.codes(water_surface=True), name="land_cover")
    params = dict(context.parameters["climate_regulation"])
    days = params.pop("days")
    vegetation_kwh = climate_regulation.vegetation_cooling_kwh(
        inputs["transpiration_heat"], areas, days=days, energy_efficiency_ratio=params["energy_efficiency_ratio"]
    )
    # mm × m² × 10⁻³ m/mm = m³ evaporated
    evaporation_m3 = np.asarray(inputs["water_evaporation"], dtype=np.float64) * areas * 1e-3
    water_kwh = climate_regulation.water_evaporation_kwh(evaporation_m3, **params)
    return {QUANTITY: vegetation_kwh * transpires + water_kwh * water}


def regional_parameters(coefficients: ParameterTable) -> RegionalParameters:
    """Load the coefficients of the regional second pass (lakes, reservoirs, marshes)."""
    number = coefficients.number
    return RegionalParameters(
        lake_log_coefficient=number("lake_log_coefficient", unit="1"),
        lake_area_exponent=number("lake_area_exponent", unit="1"),
        lake_water_exchanges=number("lake_water_exchanges", unit="1"),
        reservoir_flood_share=number("reservoir_flood_share", unit="1"),
        marsh_retention_depth_m=number("marsh_retention_depth", unit="m"),
    )


def flood_regulation_basis(context: RunContext, block: TileBlock) -> dict[str, FloatArray]:
    """Flood regulation basis: m² of lake, reservoir and marsh per pixel (by the legend's storage kind)."""
    assert context.legend is not None  # checked by RunConfig
    land = block.inputs["land_cover"]
    return {
        kind: block.areas * lookup(land, context.legend.codes(flood_storage=kind), name="land_cover")
        for kind in FLOOD_STORAGE_KINDS
    }


def purification_basis(role: str) -> Kernel:
    """Return the basis kernel of a purification indicator: uptake capacity (t) from its uptake role."""

    def kernel(context: RunContext, block: TileBlock) -> dict[str, FloatArray]:
        return {CAPACITY: purification.uptake_capacity_t(block.inputs[role], block.areas)}

    kernel.__doc__ = f"Uptake capacity (t) from ``{role}`` (t/km²), before the region's emission cap."
    kernel.__qualname__ = f"purification_basis.{role}"  # shown by describe_indicators()
    return kernel
