"""The accounting engine: a raster stack aligned on one grid, read tile by tile, totals merged exactly.

A :class:`Plan` is everything a tile needs: the grid, the sources (file, role, how to align), the
constants, the regions, the kernel parameters and the unit values. :func:`plan_run` builds it and
refuses bad inputs *before anything is written*:

* a role an indicator needs and the configuration does not give; a raster in the wrong units;
* a raster on another grid without a resampling rule (``nearest``/``mode`` for categorical,
  ``bilinear`` for continuous — any other pairing is refused);
* a raster in another CRS unless ``reproject`` is set;
* a raster with no valid pixel (checked window by window, bounded memory);
* a missing price or coefficient, or one in the wrong unit (:func:`gep.valuation.valuation_record`).

:func:`compute_tile` reads one window of every source (the DEM grown by a one-pixel halo, edge-padded at
the raster border, ADR 006), applies one shared nodata mask (a pixel is valid only if every input is),
runs the kernels, and returns the exact per-region totals (:func:`gep.arrays.exact_sum`) with the tile's
per-pixel value blocks (float64 元). :func:`merge_tiles` sums tile totals with ``math.fsum``, so the
totals do not depend on the tiling (to 1e-12 relative). Pixel areas are geodesic on GRS80 for
geographic grids (computed from the row's absolute index, so identical in any tiling) and ``|a·e|`` for
projected grids in metres.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from core.errors import InvalidInput
from geodata.pixel_area import GRS80_A_M, GRS80_F, cell_area_m2
from geodata.rasters import iter_windows, open_raster
from geodata.zonal import to_raster_crs
from gep.arrays import FloatArray, exact_sum, lookup
from gep.coefficients import (
    ls_coefficients,
    rweq_constants,
    rweq_cover_coefficients_per_percent,
    water_evaporation_parameters,
)
from gep.indicators import (
    carbon_oxygen,
    climate_regulation,
    purification,
    sand_fixation,
    soil_retention,
    terrain,
    water_conservation,
)
from gep.indicators.sand_fixation import CoverUnit, RweqConstants
from gep.indicators.water_conservation import NegativeBalancePolicy
from gep.legend import Legend, load_legend
from gep.prices import ParameterTable
from gep.regional import COMPONENTS, PURIFICATION_ROLES, RegionalParameters, component_key, regional_result
from gep.tables import SupplyLine, gep_summary, line_from_total
from gep.valuation import DEFAULT_INDICATORS, UnitValue, valuation_record

Kind = Literal["categorical", "continuous"]
Resampling = Literal["nearest", "mode", "bilinear"]

#: Input roles: unit and kind. A role is a raster (a registered layer or a file) or a constant.
ROLES: dict[str, tuple[str, Kind]] = {
    "precipitation": ("mm", "continuous"),
    "evapotranspiration": ("mm", "continuous"),
    "runoff_coefficient": ("1", "continuous"),
    "nep": ("gC/m2", "continuous"),
    "dem": ("m", "continuous"),
    "erosivity": ("MJ.mm/(ha.h)", "continuous"),
    "erodibility": ("t.ha.h/(ha.MJ.mm)", "continuous"),
    "cover_factor": ("1", "continuous"),
    "practice_factor": ("1", "continuous"),
    "land_cover": ("class", "categorical"),
    # Sand fixation (RWEQ): weather factor, erodible fraction, crust factor, roughness, vegetation cover.
    "wind_weather_factor": ("kg/m", "continuous"),
    "erodible_fraction": ("1", "continuous"),
    "crust_factor": ("1", "continuous"),
    "roughness_factor": ("1", "continuous"),
    "vegetation_cover": ("percent", "continuous"),  # or "1" when cover_unit is fraction
    # Climate regulation: transpiration heat of vegetation, evaporation depth of water surfaces.
    "transpiration_heat": ("kJ/(m2.d)", "continuous"),
    "water_evaporation": ("mm", "continuous"),
    # Purification: uptake capacity per km² and year, one per pollutant.
    **dict.fromkeys(PURIFICATION_ROLES.values(), ("t/km2", "continuous")),
}
#: The roles each indicator needs. ``land_cover`` is optional: it adds the extent account.
INDICATOR_ROLES: dict[str, tuple[str, ...]] = {
    "water_conservation": ("precipitation", "evapotranspiration", "runoff_coefficient"),
    "carbon_sequestration": ("nep",),
    "oxygen_release": ("nep",),
    "soil_retention": ("dem", "erosivity", "erodibility", "cover_factor", "practice_factor"),
    "sand_fixation": (
        "wind_weather_factor",
        "erodible_fraction",
        "crust_factor",
        "roughness_factor",
        "vegetation_cover",
        "land_cover",
    ),
    "flood_regulation": ("land_cover",),
    "climate_regulation": ("transpiration_heat", "water_evaporation", "land_cover"),
    **{code: (role,) for code, role in PURIFICATION_ROLES.items()},
}
#: Indicators that read the land-cover legend (RWEQ cover type, flood storage, transpiring/water classes).
LEGEND_INDICATORS = frozenset({"sand_fixation", "flood_regulation", "climate_regulation"})
#: Indicators computed in two passes (regional sums first, then per-pixel factors): gep.regional.
REGIONAL_INDICATORS = frozenset(COMPONENTS)
ALLOWED_RESAMPLING: dict[Kind, frozenset[str]] = {
    "categorical": frozenset({"nearest", "mode"}),
    "continuous": frozenset({"bilinear"}),
}
#: Row/column tolerance (in pixels) within which two grids are the same grid.
GRID_TOLERANCE = 1e-6


class RunConfig(BaseModel):
    """What a run computes: indicators, inputs by role, alignment rules, tables, tiling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    year: int = Field(ge=1990, le=2100)
    indicators: list[str] = Field(min_length=1)
    inputs: dict[str, str | float] = Field(description="Role → raster (layer name or file) or a constant.")
    grid: str | None = Field(default=None, description="Role whose raster defines the grid (default: first).")
    resampling: dict[str, Resampling] = Field(default_factory=dict, description="Role → rule for off-grid rasters.")
    reproject: bool = Field(default=False, description="Allow rasters in another CRS (warped onto the grid).")
    prices: str = Field(min_length=1, description="Packaged price table, e.g. prices_ganzi_2010.")
    coefficients: str = Field(default="coefficients_default", min_length=1)
    negative_balance: NegativeBalancePolicy | None = None
    land_cover_legend: str | None = Field(default=None, description="Packaged legend of the land cover.")
    cover_unit: CoverUnit | None = Field(default=None, description="Unit of vegetation_cover (sand fixation).")
    reservoir_capacity_m3: dict[str, float] = Field(
        default_factory=dict, description="Region code → total reservoir capacity (m³), for flood regulation."
    )
    emissions_t: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="Purification indicator → region code → emission (t), the cap."
    )
    tile_size: int = Field(default=512, ge=16, le=8192, description="Tile width and height in pixels.")

    @model_validator(mode="after")
    def _check(self) -> RunConfig:
        problems: list[dict[str, Any]] = []
        for code in self.indicators:
            if code not in INDICATOR_ROLES:
                problems.append({"indicator": code, "reason": "unknown-indicator", "known": sorted(INDICATOR_ROLES)})
                continue
            problems += [
                {"indicator": code, "role": role, "reason": "missing-input"}
                for role in INDICATOR_ROLES[code]
                if role not in self.inputs
            ]
        problems += [
            {"role": r, "reason": "unknown-role", "known": sorted(ROLES)} for r in self.inputs if r not in ROLES
        ]
        if "water_conservation" in self.indicators and self.negative_balance is None:
            problems.append({"indicator": "water_conservation", "reason": "negative-balance-policy-required"})
        if "sand_fixation" in self.indicators and self.cover_unit is None:
            problems.append({"indicator": "sand_fixation", "reason": "cover-unit-required"})
        problems += [
            {"indicator": code, "reason": "land-cover-legend-required"}
            for code in self.indicators
            if code in LEGEND_INDICATORS and self.land_cover_legend is None
        ]
        problems += [
            {"indicator": code, "reason": "emissions-required"}
            for code in self.indicators
            if code in PURIFICATION_ROLES and code not in self.emissions_t
        ]
        numbers = [*self.reservoir_capacity_m3.values(), *(t for by in self.emissions_t.values() for t in by.values())]
        if any(not (math.isfinite(value) and value >= 0.0) for value in numbers):
            problems.append({"reason": "table-value-not-a-finite-number-ge-0"})
        for role, rule in self.resampling.items():
            kind = ROLES.get(role, ("", "continuous"))[1]
            if rule not in ALLOWED_RESAMPLING[kind]:
                problems.append({"role": role, "reason": "resampling-not-allowed", "kind": kind, "rule": rule})
        if len(set(self.indicators)) != len(self.indicators):
            problems.append({"reason": "duplicate-indicator"})
        if problems:
            raise InvalidInput(f"the run configuration has {len(problems)} problem(s)", problems)
        return self

    @property
    def raster_roles(self) -> list[str]:
        """Return the roles given as rasters, in the order of :data:`ROLES`."""
        return [role for role in ROLES if isinstance(self.inputs.get(role), str)]

    @property
    def used_roles(self) -> frozenset[str]:
        """Return the roles the selected indicators read, plus land cover (the extent account) if given.

        Only these are read tile by tile and enter the shared nodata mask: a layer in the stack that no
        selected indicator needs cannot remove pixels from the run.
        """
        used = {role for code in self.indicators for role in INDICATOR_ROLES.get(code, ())}
        return frozenset(used | ({"land_cover"} & set(self.inputs)))


@dataclass(frozen=True)
class Source:
    """A raster input: its role, file, identity and how it is brought onto the grid."""

    role: str
    name: str
    path: Path
    sha256: str
    units: str | None = None


@dataclass(frozen=True)
class RegionShape:
    """An accounting region: code, name, EPSG:4490 geometry."""

    code: str
    name: str
    geometry: BaseGeometry


@dataclass(frozen=True)
class Grid:
    """The grid every input is aligned onto."""

    crs_wkt: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int
    geographic: bool


@dataclass(frozen=True)
class Plan:
    """Everything a tile computation needs; built and checked by :func:`plan_run`."""

    config: RunConfig
    grid: Grid
    sources: dict[str, Source]
    warp: dict[str, str]  # role → resampling rule, for sources not on the grid
    regions: list[RegionShape]
    unit_values: dict[str, UnitValue]
    valuation: dict[str, Any]
    ls: terrain.LsCoefficients | None
    cell_m: tuple[float, float]  # (x, y) cell size in metres for slopes
    legend: Legend | None = None
    rweq: RweqConstants | None = None
    rweq_cover_coefficients: dict[str, float] = field(default_factory=dict)
    climate: dict[str, float] = field(default_factory=dict)
    regional: RegionalParameters | None = None

    def value_keys(self) -> list[str]:
        """Return the keys of a tile's blocks: element-wise indicators, then regional basis components."""
        keys = [code for code in self.config.indicators if code not in REGIONAL_INDICATORS]
        for code in self.config.indicators:
            keys += [component_key(code, part) for part in COMPONENTS.get(code, ())]
        return keys

    def windows(self) -> list[tuple[int, int, int, int]]:
        """Return the tiles as ``(col_off, row_off, width, height)``, row by row."""
        size = self.config.tile_size
        return [
            (col, row, min(size, self.grid.width - col), min(size, self.grid.height - row))
            for row in range(0, self.grid.height, size)
            for col in range(0, self.grid.width, size)
        ]


def _grid_of(dataset: Any) -> Grid:
    a, b, c, d, e, f = list(dataset.transform)[:6]
    crs = CRS.from_user_input(dataset.crs.to_wkt())
    if b != 0 or d != 0 or e >= 0:
        raise InvalidInput("the grid raster must be north-up (no rotation)", [{"reason": "rotated-grid"}])
    if not crs.is_geographic and crs.axis_info[0].unit_name not in ("metre", "meter"):
        raise InvalidInput("projected grids must be in metres", [{"reason": "grid-units"}])
    return Grid(dataset.crs.to_wkt(), (a, b, c, d, e, f), dataset.width, dataset.height, crs.is_geographic)


def _same_grid(dataset: Any, grid: Grid) -> bool:
    if (dataset.width, dataset.height) != (grid.width, grid.height):
        return False
    a, _b, c, _d, e, f = grid.transform
    ta, tb, tc, td, te, tf = list(dataset.transform)[:6]
    return bool(
        tb == 0
        and td == 0
        and abs(ta - a) <= GRID_TOLERANCE * abs(a)
        and abs(te - e) <= GRID_TOLERANCE * abs(e)
        and abs(tc - c) <= GRID_TOLERANCE * abs(a)
        and abs(tf - f) <= GRID_TOLERANCE * abs(e)
    )


def _has_valid_pixel(dataset: Any) -> bool:
    for col, row, width, height in iter_windows(dataset.width, dataset.height, max_pixels=1_000_000):
        block = _read(dataset, (col, row, width, height))
        if bool(np.isfinite(block).any()):
            return True
    return False


def _read(dataset: Any, window: tuple[int, int, int, int]) -> FloatArray:
    from rasterio.enums import MaskFlags
    from rasterio.windows import Window

    col, row, width, height = window
    frame = Window(col, row, width, height)
    # Read straight into float64 (GDAL converts; exact for uint8/int/float32) and blank the dataset's
    # mask (nodata value, NaN, mask band) in place: one array, where a masked read makes three.
    block: FloatArray = dataset.read(1, window=frame, out_dtype="float64")
    if dataset.mask_flag_enums[0] != [MaskFlags.all_valid]:
        block[dataset.read_masks(1, window=frame) == 0] = np.nan
    return block


def _cell_metres(grid: Grid) -> tuple[float, float]:
    """Return the (x, y) cell size in metres for slopes.

    Exact for projected grids; for lon/lat grids the GRS80 parallel and meridian arcs at the grid's
    central latitude (one value per run, so every tile uses the same).
    """
    a, _b, _c, _d, e, f = grid.transform
    if not grid.geographic:
        return abs(a), abs(e)
    phi = math.radians(f + e * grid.height / 2)
    e2 = GRS80_F * (2 - GRS80_F)
    w = 1 - e2 * math.sin(phi) ** 2
    prime_vertical = GRS80_A_M / math.sqrt(w)
    meridian = GRS80_A_M * (1 - e2) / w**1.5
    return math.radians(abs(a)) * prime_vertical * math.cos(phi), math.radians(abs(e)) * meridian


def plan_run(
    config: RunConfig,
    sources: Mapping[str, Source],
    regions: Sequence[RegionShape],
    prices: ParameterTable,
    coefficients: ParameterTable,
    *,
    scan_pixels: bool = True,
) -> Plan:
    """Check every input and return the plan of the run; refuse bad inputs listing every problem.

    ``scan_pixels=False`` skips the search for a valid pixel in every raster (a read of up to the whole
    raster): for re-planning a run that was checked when it was created (each tile task re-plans).

    Raises:
        InvalidInput: Missing or mis-united inputs, misaligned rasters without a rule, other CRSs without
            ``reproject``, rasters with no valid pixel, missing or mis-united prices, no region.
    """
    if not regions:
        raise InvalidInput("the region layer has no region", [{"reason": "no-regions"}])
    roles = config.raster_roles
    if not roles:
        raise InvalidInput("a run needs at least one raster input", [{"reason": "no-raster"}])
    problems: list[dict[str, Any]] = []
    for role in roles:
        source = sources.get(role)
        if source is None:
            problems.append({"role": role, "reason": "source-missing"})
        elif source.units is not None and source.units != expected_units(config, role):
            problems.append(
                {"role": role, "reason": "wrong-units", "units": source.units, "expected": expected_units(config, role)}
            )
    if problems:
        raise InvalidInput(f"{len(problems)} input problem(s)", problems)
    grid_role = config.grid or roles[0]
    if grid_role not in roles:
        raise InvalidInput(f"the grid role {grid_role!r} is not a raster input", [{"role": grid_role}])
    with open_raster(sources[grid_role].path) as dataset:
        grid = _grid_of(dataset)
    grid_crs = CRS.from_wkt(grid.crs_wkt)
    warp: dict[str, str] = {}
    for role in roles:
        with open_raster(sources[role].path) as dataset:
            if dataset.crs is None:
                problems.append({"role": role, "reason": "no-crs"})
                continue
            same_crs = CRS.from_wkt(dataset.crs.to_wkt()).equals(grid_crs)
            if not same_crs and not config.reproject:
                problems.append(
                    {"role": role, "reason": "crs-mismatch", "crs": dataset.crs.to_string(), "grid": grid_crs.name}
                )
            elif not same_crs or not _same_grid(dataset, grid):
                rule = config.resampling.get(role)
                if rule is None:
                    problems.append({"role": role, "reason": "misaligned-no-resampling-rule"})
                else:
                    warp[role] = rule
            if scan_pixels and not _has_valid_pixel(dataset):
                problems.append({"role": role, "reason": "no-valid-pixel"})
    legend = load_legend(config.land_cover_legend) if config.land_cover_legend else None
    if legend is not None and "land_cover" in sources:
        with open_raster(sources["land_cover"].path) as dataset:
            problems += _classes_not_in_legend(dataset, legend)
    problems += _table_problems(config, regions)
    if problems:
        raise InvalidInput(f"{len(problems)} raster problem(s); nothing was written", problems)
    record = valuation_record(DEFAULT_INDICATORS, config.indicators, prices, coefficients)
    unit_values = {code: DEFAULT_INDICATORS.get(code).unit_value(prices, coefficients) for code in config.indicators}
    ls = ls_coefficients(coefficients) if "soil_retention" in config.indicators else None
    selected = set(config.indicators)
    return Plan(
        config=config,
        grid=grid,
        sources=dict(sources),
        warp=warp,
        regions=list(regions),
        unit_values=unit_values,
        valuation=record,
        ls=ls,
        cell_m=_cell_metres(grid),
        legend=legend,
        rweq=rweq_constants(coefficients) if "sand_fixation" in selected else None,
        rweq_cover_coefficients=rweq_cover_coefficients_per_percent(coefficients)
        if "sand_fixation" in selected
        else {},
        climate=_climate_parameters(coefficients) if "climate_regulation" in selected else {},
        regional=_regional_parameters(coefficients) if selected & REGIONAL_INDICATORS else None,
    )


def expected_units(config: RunConfig, role: str) -> str:
    """Return the units a role's raster must declare (vegetation cover follows the run's cover unit)."""
    if role == "vegetation_cover" and config.cover_unit is CoverUnit.FRACTION:
        return "1"
    return ROLES[role][0]


def _classes_not_in_legend(dataset: Any, legend: Legend) -> list[dict[str, Any]]:
    """Return a problem per land-cover class present in the raster but not in the legend (windowed scan)."""
    present: set[float] = set()
    for window in iter_windows(dataset.width, dataset.height, max_pixels=1_000_000):
        block = _read(dataset, window)
        present.update(float(c) for c in np.unique(block[np.isfinite(block)]))
    return [
        {"role": "land_cover", "class": int(c), "legend": legend.id, "reason": "class-not-in-legend"}
        for c in sorted(present)
        if c != int(c) or int(c) not in legend.classes
    ]


def _table_problems(config: RunConfig, regions: Sequence[RegionShape]) -> list[dict[str, Any]]:
    """Return the problems of the run's regional tables: every region needs its figure, no unknown region."""
    codes = {region.code for region in regions}
    problems: list[dict[str, Any]] = []
    tables: dict[str, dict[str, float]] = {
        code: config.emissions_t.get(code, {}) for code in config.indicators if code in PURIFICATION_ROLES
    }
    if "flood_regulation" in config.indicators:
        tables["reservoir_capacity_m3"] = config.reservoir_capacity_m3
    for name, table in tables.items():
        problems += [{"table": name, "region": c, "reason": "region-missing"} for c in sorted(codes - set(table))]
        problems += [{"table": name, "region": c, "reason": "unknown-region"} for c in sorted(set(table) - codes)]
    return problems


def _climate_parameters(coefficients: ParameterTable) -> dict[str, float]:
    return {
        **water_evaporation_parameters(coefficients),
        "days": coefficients.number("air_conditioning_days", unit="d"),
    }


def _regional_parameters(coefficients: ParameterTable) -> RegionalParameters:
    number = coefficients.number
    return RegionalParameters(
        lake_log_coefficient=number("lake_log_coefficient", unit="1"),
        lake_area_exponent=number("lake_area_exponent", unit="1"),
        lake_water_exchanges=number("lake_water_exchanges", unit="1"),
        reservoir_flood_share=number("reservoir_flood_share", unit="1"),
        marsh_retention_depth_m=number("marsh_retention_depth", unit="m"),
    )


@contextmanager
def open_stack(plan: Plan) -> Iterator[dict[str, Any]]:
    """Open every raster source, warped onto the grid where the plan says so (a VRT: bounded memory)."""
    from affine import Affine
    from rasterio.enums import Resampling as RioResampling
    from rasterio.vrt import WarpedVRT

    with ExitStack() as stack:
        opened: dict[str, Any] = {}
        for role, source in plan.sources.items():
            dataset = stack.enter_context(open_raster(source.path))
            if role in plan.warp:
                dataset = stack.enter_context(
                    WarpedVRT(
                        dataset,
                        crs=plan.grid.crs_wkt,
                        transform=Affine(*plan.grid.transform),
                        width=plan.grid.width,
                        height=plan.grid.height,
                        resampling=RioResampling[plan.warp[role]],
                        # Cells the source does not cover become nodata (NaN after reading).
                        nodata=dataset.nodata if dataset.nodata is not None else _fill_for(dataset.dtypes[0]),
                    )
                )
            opened[role] = dataset
        yield opened


def _fill_for(dtype: str) -> float:
    """Return a nodata value for a warped source that has none: NaN for floats, the dtype's maximum otherwise."""
    kind = np.dtype(dtype)
    return float("nan") if kind.kind == "f" else float(np.iinfo(kind).max)


@dataclass
class TileResult:
    """One tile's exact totals per indicator and region index, extent per region and class, values."""

    totals: dict[str, dict[int, float]]
    extent: dict[int, dict[int, float]]
    values: dict[str, FloatArray] = field(default_factory=dict)
    by_class: dict[str, dict[int, dict[int, float]]] = field(default_factory=dict)  # key → region → class → total

    def as_json(self) -> dict[str, Any]:
        """Return the totals as JSON (floats round-trip exactly through ``repr``)."""
        return {
            "totals": {code: {str(k): v for k, v in by.items()} for code, by in self.totals.items()},
            "extent": {str(r): {str(c): v for c, v in by.items()} for r, by in self.extent.items()},
            "by_class": {
                key: {str(r): {str(c): v for c, v in by.items()} for r, by in regions.items()}
                for key, regions in self.by_class.items()
            },
        }


def _read_with_halo(dataset: Any, window: tuple[int, int, int, int], grid: Grid) -> FloatArray:
    col, row, width, height = window
    left, top = max(col - 1, 0), max(row - 1, 0)
    right, bottom = min(col + width + 1, grid.width), min(row + height + 1, grid.height)
    block = _read(dataset, (left, top, right - left, bottom - top))
    pad = ((row - top == 0) * 1, (row + height + 1 - bottom) * 1), ((col - left == 0) * 1, (col + width + 1 - right))
    return np.pad(block, ((pad[0][0], pad[0][1]), (pad[1][0], pad[1][1])), mode="edge")


def pixel_areas(grid: Grid, window: tuple[int, int, int, int]) -> FloatArray:
    """Return the pixel areas (m²) of a window: geodesic rows for lon/lat grids, ``|a·e|`` otherwise."""
    _col, row, width, height = window
    a, _b, _c, _d, e, f = grid.transform
    if not grid.geographic:
        return np.full((height, width), abs(a * e))
    north = f + e * np.arange(row, row + height, dtype=np.float64)
    south = f + e * np.arange(row + 1, row + height + 1, dtype=np.float64)
    areas = cell_area_m2(south, north, abs(a))
    return np.repeat(areas[:, None], width, axis=1)


def region_index(plan: Plan, window: tuple[int, int, int, int]) -> FloatArray:
    """Return the region of each pixel centre of a window (index into ``plan.regions``; NaN outside)."""
    from affine import Affine
    from rasterio.features import rasterize

    col, row, width, height = window
    transform = Affine(*plan.grid.transform) @ Affine.translation(col, row)
    geometries = to_raster_crs([r.geometry for r in plan.regions], CRS.from_wkt(plan.grid.crs_wkt))
    burned = rasterize(
        ((g, i + 1) for i, g in enumerate(geometries)),
        out_shape=(height, width),
        transform=transform,
        fill=0,
        dtype="int32",
    )
    index: FloatArray = burned.astype(np.float64) - 1.0
    index[burned == 0] = np.nan
    return index


def compute_tile(plan: Plan, datasets: Mapping[str, Any], window: tuple[int, int, int, int]) -> TileResult:
    """Compute one tile: read, mask, run the kernels, total per region exactly, keep value blocks."""
    _col, _row, width, height = window
    config = plan.config
    blocks: dict[str, FloatArray | float] = {}
    for role, value in config.inputs.items():
        if role not in config.used_roles:
            continue
        if isinstance(value, str):
            blocks[role] = _read(datasets[role], window)
        else:
            blocks[role] = float(value)
    dem_halo = _read_with_halo(datasets["dem"], window, plan.grid) if "soil_retention" in config.indicators else None
    regions = region_index(plan, window)
    valid = ~np.isnan(regions)
    for block in blocks.values():
        if isinstance(block, np.ndarray):
            valid &= ~np.isnan(block)
    empty = TileResult({key: {} for key in plan.value_keys()}, {})
    if not bool(valid.any()):
        return _with_nan_values(empty, (height, width))
    invalid = ~valid
    for block in blocks.values():
        if isinstance(block, np.ndarray):
            block[invalid] = np.nan  # the shared mask, in place: the blocks are this tile's own copies
    masked = blocks
    areas = pixel_areas(plan.grid, window)
    areas[invalid] = np.nan
    del invalid
    physical = _physical(plan, masked, areas, dem_halo, valid)
    result = TileResult({}, {})
    codes = [int(c) for c in np.unique(regions[valid])]
    for code_name, quantity in physical.items():
        result.totals[code_name] = {i: exact_sum(quantity[regions == i]) for i in codes}
        if code_name in plan.unit_values:
            result.values[code_name] = quantity * float(plan.unit_values[code_name].yuan_per_unit)
        else:  # a regional basis component: scaled by its region's factor when the rasters are assembled
            result.values[code_name] = quantity
    land = masked.get("land_cover")
    if isinstance(land, np.ndarray):
        _totals_by_class(result, regions, land, valid, {"": areas, **physical})
    return result


def _totals_by_class(
    result: TileResult, regions: FloatArray, land: FloatArray, valid: np.ndarray, quantities: Mapping[str, FloatArray]
) -> None:
    """Record exact totals per region × land-cover class: the extent (key ``""``) and every quantity.

    One sort of the tile's valid pixels by (region, class), then each group is a contiguous slice: the
    cost is one sort plus one pass per quantity, not one mask per region, class and quantity. Exact sums
    do not depend on the order, so the totals are those of masking each group.
    """
    pairs = np.stack([regions[valid], land[valid]], axis=1)
    groups, inverse = np.unique(pairs, axis=0, return_inverse=True)
    order = np.argsort(inverse.ravel(), kind="stable")
    bounds = np.searchsorted(inverse.ravel()[order], np.arange(len(groups) + 1))
    for key, quantity in quantities.items():
        ordered = quantity[valid][order]
        for g, (region, klass) in enumerate(groups):
            total = exact_sum(ordered[bounds[g] : bounds[g + 1]])
            target = result.extent if key == "" else result.by_class.setdefault(key, {})
            target.setdefault(int(region), {})[int(klass)] = total


def _with_nan_values(result: TileResult, shape: tuple[int, int]) -> TileResult:
    for code in result.totals:
        result.values[code] = np.full(shape, np.nan)
    return result


def _physical(
    plan: Plan,
    inputs: Mapping[str, FloatArray | float],
    areas: FloatArray,
    dem_halo: FloatArray | None,
    valid: np.ndarray,
) -> dict[str, FloatArray]:
    out: dict[str, FloatArray] = {}
    for code in plan.config.indicators:
        if code == "water_conservation":
            precipitation = inputs["precipitation"]
            runoff = water_conservation.storm_runoff_mm(precipitation, inputs["runoff_coefficient"])
            policy = plan.config.negative_balance
            assert policy is not None  # checked by RunConfig
            out[code] = water_conservation.water_conservation_m3(
                precipitation, runoff, inputs["evapotranspiration"], areas, policy=policy
            )
        elif code == "carbon_sequestration":
            out[code] = carbon_oxygen.carbon_sequestration_tco2(inputs["nep"], areas)
        elif code == "oxygen_release":
            out[code] = carbon_oxygen.oxygen_release_to2(inputs["nep"], areas)
        elif code == "soil_retention":
            assert dem_halo is not None and plan.ls is not None
            slope = terrain.slope_radians(dem_halo, cell_x_m=plan.cell_m[0], cell_y_m=plan.cell_m[1])
            ls = np.where(valid, terrain.ls_factor(slope, plan.ls), np.nan)
            out[code] = soil_retention.soil_retention_t(
                inputs["erosivity"],
                inputs["erodibility"],
                ls,
                inputs["cover_factor"],
                inputs["practice_factor"],
                areas,
            )
        elif code == "sand_fixation":
            out[code] = _sand_fixation_t(plan, inputs, areas)
        elif code == "climate_regulation":
            out[code] = _climate_regulation_kwh(plan, inputs, areas)
        elif code == "flood_regulation":
            assert plan.legend is not None  # checked by RunConfig
            for kind in COMPONENTS[code]:
                share = lookup(inputs["land_cover"], plan.legend.codes(flood_storage=kind), name="land_cover")
                out[component_key(code, kind)] = areas * share  # m² of lake / reservoir / marsh
        elif code in PURIFICATION_ROLES:
            uptake = inputs[PURIFICATION_ROLES[code]]
            out[component_key(code, "capacity")] = purification.uptake_capacity_t(uptake, areas)
    return out


def _sand_fixation_t(plan: Plan, inputs: Mapping[str, FloatArray | float], areas: FloatArray) -> FloatArray:
    """RWEQ fixation (t) per pixel; classes without an RWEQ cover type (water, built-up) fix nothing."""
    assert plan.legend is not None and plan.rweq is not None and plan.config.cover_unit is not None
    classes = plan.legend.classes
    land = inputs["land_cover"]
    coefficient = {c: plan.rweq_cover_coefficients.get(k.rweq_cover_type or "", 0.0) for c, k in classes.items()}
    eroding = {c: float(k.rweq_cover_type is not None) for c, k in classes.items()}
    factor = sand_fixation.vegetation_factor(
        inputs["vegetation_cover"], lookup(land, coefficient, name="land_cover"), cover_unit=plan.config.cover_unit
    )
    fixation_g_per_m = sand_fixation.sand_fixation_g_per_m(
        inputs["wind_weather_factor"],
        inputs["erodible_fraction"],
        inputs["crust_factor"],
        inputs["roughness_factor"],
        factor,
        plan.rweq,
    )
    # g/m → g/m² divides by the cell size along the wind; the wind direction is not an input, so the
    # geometric mean of the cell's sides (one value per run: tiling-independent).
    cell_size_m = math.sqrt(plan.cell_m[0] * plan.cell_m[1])
    fixed_t = sand_fixation.sand_fixation_t(fixation_g_per_m, cell_size_m=cell_size_m, area_m2=areas)
    return fixed_t * lookup(land, eroding, name="land_cover")


def _climate_regulation_kwh(plan: Plan, inputs: Mapping[str, FloatArray | float], areas: FloatArray) -> FloatArray:
    """Transpiration cooling on transpiring classes plus evaporation cooling on water surfaces (kWh)."""
    assert plan.legend is not None
    land = inputs["land_cover"]
    transpires = lookup(land, plan.legend.codes(transpires=True), name="land_cover")
    water = lookup(land, plan.legend.codes(water_surface=True), name="land_cover")
    params = dict(plan.climate)
    days = params.pop("days")
    vegetation_kwh = climate_regulation.vegetation_cooling_kwh(
        inputs["transpiration_heat"], areas, days=days, energy_efficiency_ratio=params["energy_efficiency_ratio"]
    )
    # mm × m² × 10⁻³ m/mm = m³ evaporated
    evaporation_m3 = np.asarray(inputs["water_evaporation"], dtype=np.float64) * areas * 1e-3
    water_kwh = climate_regulation.water_evaporation_kwh(evaporation_m3, **params)
    return vegetation_kwh * transpires + water_kwh * water


@dataclass(frozen=True)
class Merged:
    """A run's merged totals, its supply lines and summary."""

    totals: dict[str, dict[str, float]]  # indicator → region code → physical total
    extent: dict[str, dict[str, float]]  # region code → class → m²
    lines: list[SupplyLine]
    by_class: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # indicator → region → class
    factors: dict[str, dict[str, float]] = field(default_factory=dict)  # basis component → region → factor
    by_type: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # indicator → region → type


def ecosystem_type_of(plan: Plan, klass: str) -> str:
    """Return the ecosystem type of a land-cover class: from the legend, else ``class_<code>``."""
    if plan.legend is not None and int(klass) in plan.legend.classes:
        return plan.legend.ecosystem_type_of(int(klass))
    return f"class_{klass}"


def class_types(plan: Plan, merged: Merged) -> dict[str, str] | None:
    """Return land-cover class → ecosystem type for the extent account (None without a legend)."""
    if plan.legend is None:
        return None
    classes = {klass for by_class in merged.extent.values() for klass in by_class}
    return {klass: ecosystem_type_of(plan, klass) for klass in sorted(classes, key=int)}


def _by_type(plan: Plan, by_class: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """Group per-class totals by ecosystem type (``fsum`` of the classes of a type)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for code, regions in by_class.items():
        out[code] = {}
        for region, classes in regions.items():
            grouped: dict[str, list[float]] = {}
            for klass, value in classes.items():
                grouped.setdefault(ecosystem_type_of(plan, klass), []).append(value)
            out[code][region] = {kind: math.fsum(values) for kind, values in sorted(grouped.items())}
    return out


def _fsum_nested(tiles: Sequence[Mapping[str, Any]], key: str, index: int) -> dict[str, float]:
    """Return class → fsum over tiles of ``by_class[key][index]`` (classes sorted numerically)."""
    parts: dict[str, list[float]] = {}
    for tile in tiles:
        for klass, value in tile.get("by_class", {}).get(key, {}).get(str(index), {}).items():
            parts.setdefault(klass, []).append(float(value))
    return {k: math.fsum(v) for k, v in sorted(parts.items(), key=lambda kv: int(kv[0]))}


def merge_tiles(plan: Plan, tiles: Sequence[Mapping[str, Any]]) -> Merged:
    """Merge per-tile JSON totals (``math.fsum``) into lines for every region × indicator; sums asserted.

    Regional indicators (:mod:`gep.regional`) are finished here from their merged basis sums: the
    region's quantity and one factor per basis component, kept for the rasters' second pass.

    Raises:
        AccountingInconsistency: Σ indicators ≠ GEP or Σ regions ≠ total (a bug, never rounding).
        InvalidInput: A regional table cannot be mapped (reservoir capacity without reservoir pixels).
    """
    totals: dict[str, dict[str, float]] = {}
    by_class: dict[str, dict[str, dict[str, float]]] = {}
    factors: dict[str, dict[str, float]] = {}
    lines: list[SupplyLine] = []
    for code in plan.config.indicators:
        totals[code], by_class[code] = {}, {}
        for i, region in enumerate(plan.regions):
            if code in REGIONAL_INDICATORS:
                quantity, classes = _merge_regional(plan, tiles, code, i, factors)
            else:
                quantity = math.fsum(float(t["totals"].get(code, {}).get(str(i), 0.0)) for t in tiles)
                classes = _fsum_nested(tiles, code, i)
            totals[code][region.code] = quantity
            if classes:
                by_class[code][region.code] = classes
            lines.append(
                line_from_total(
                    region_code=region.code,
                    indicator=DEFAULT_INDICATORS.get(code),
                    quantity=quantity,
                    unit_value=plan.unit_values[code],
                )
            )
    extent: dict[str, dict[str, float]] = {}
    for i, region in enumerate(plan.regions):
        by_area: dict[str, list[float]] = {}
        for tile in tiles:
            for klass, area in tile["extent"].get(str(i), {}).items():
                by_area.setdefault(klass, []).append(float(area))
        if by_area:
            extent[region.code] = {k: math.fsum(v) for k, v in sorted(by_area.items(), key=lambda kv: int(kv[0]))}
    gep_summary(lines)
    return Merged(totals, extent, lines, by_class, factors, _by_type(plan, by_class))


def _merge_regional(
    plan: Plan, tiles: Sequence[Mapping[str, Any]], code: str, index: int, factors: dict[str, dict[str, float]]
) -> tuple[float, dict[str, float]]:
    """Return a regional indicator's quantity and per-class split for region ``index``; record its factors."""
    assert plan.regional is not None
    region = plan.regions[index].code
    basis: dict[str, float] = {}
    for part in COMPONENTS[code]:
        key = component_key(code, part)
        basis[part] = math.fsum(float(t["totals"].get(key, {}).get(str(index), 0.0)) for t in tiles)
    emission = plan.config.emissions_t.get(code, {}).get(region)
    result = regional_result(
        code,
        basis,
        plan.regional,
        reservoir_capacity_m3=plan.config.reservoir_capacity_m3.get(region, 0.0),
        emission_t=emission,
    )
    split: dict[str, list[float]] = {}
    for part in COMPONENTS[code]:
        key = component_key(code, part)
        factors.setdefault(key, {})[region] = result.factors[part]
        for klass, value in _fsum_nested(tiles, key, index).items():
            split.setdefault(klass, []).append(value * result.factors[part])
    return result.quantity, {k: math.fsum(v) for k, v in sorted(split.items(), key=lambda kv: int(kv[0]))}


def run_in_process(plan: Plan, out_dir: Path | None = None) -> tuple[Merged, dict[str, str]]:
    """Run every tile in this process (the offline CLI and tests); write value rasters if ``out_dir``."""
    from gep.outputs import RasterWriter

    tiles: list[dict[str, Any]] = []
    writer = RasterWriter(plan, out_dir) if out_dir is not None else None
    with open_stack(plan) as datasets:
        for index, window in enumerate(plan.windows()):
            result = compute_tile(plan, datasets, window)
            tiles.append(result.as_json())
            if writer is not None:
                writer.write_tile(index, window, result.values)
    merged = merge_tiles(plan, tiles)
    rasters = writer.assemble(len(tiles), merged.factors) if writer is not None else {}
    return merged, rasters
