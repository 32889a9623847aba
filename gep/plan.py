"""Planning a GEP run: what it computes, from which rasters, on which grid — checked before anything is written.

A :class:`Plan` is everything a tile needs: the grid, the sources (file, role, how to align), the
constants, the regions, the kernels' run context (:class:`gep.kernels.RunContext`) and the unit values.
:func:`plan_run` builds it and refuses bad inputs *before anything is written*:

* a role an indicator needs and the configuration does not give; a raster in the wrong units;
* a raster on another grid without a resampling rule (``nearest``/``mode`` for categorical,
  ``bilinear`` for continuous — any other pairing is refused);
* a raster in another CRS unless ``reproject`` is set;
* a raster with no valid pixel (checked window by window, bounded memory);
* a missing price or coefficient, or one in the wrong unit (:func:`gep.valuation.valuation_record`).

What each indicator reads, needs and yields comes from its :class:`gep.spec.IndicatorSpec`; the names
below (:data:`ROLES`, :data:`INDICATOR_ROLES`, :data:`LEGEND_INDICATORS`, :data:`REGIONAL_INDICATORS`)
are views of :data:`gep.spec.DEFAULT_INDICATORS`, not declarations. :mod:`gep.engine` computes the
tiles and merges them; :mod:`gep.outputs` writes the value rasters. Both import this module, never each
other's callers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pyproj import CRS
from shapely.geometry.base import BaseGeometry

from core.errors import InvalidInput
from geodata.pixel_area import GRS80_A_M, GRS80_F
from geodata.rasters import iter_windows, open_raster
from geodata.tiling import GRID_TOLERANCE as GRID_TOLERANCE
from geodata.tiling import Grid, label_window, tile_windows
from geodata.tiling import grid_of as _grid_of
from geodata.tiling import pixel_areas as pixel_areas
from geodata.tiling import read_window as _read
from geodata.tiling import same_grid as _same_grid
from geodata.zonal import to_raster_crs
from gep.arrays import FloatArray
from gep.indicators.sand_fixation import CoverUnit
from gep.indicators.water_conservation import NegativeBalancePolicy
from gep.kernels import RunContext
from gep.legend import Legend, load_legend
from gep.prices import ParameterTable
from gep.regional import component_key
from gep.spec import DEFAULT_INDICATORS
from gep.spec import ROLES as ROLE_SPECS
from gep.spec import Kind as Kind
from gep.valuation import UnitValue, valuation_record

Resampling = Literal["nearest", "mode", "bilinear"]

#: Input roles: unit and kind (a view of :data:`gep.spec.ROLES`).
ROLES: dict[str, tuple[str, Kind]] = {role.id: (role.unit, role.kind) for role in ROLE_SPECS.values()}
#: The roles each indicator needs (a view of the specs). ``land_cover`` is optional: it adds the extent account.
INDICATOR_ROLES: dict[str, tuple[str, ...]] = {spec.code: spec.roles for spec in DEFAULT_INDICATORS.specs()}
#: Indicators that read the land-cover legend (RWEQ cover type, flood storage, transpiring/water classes).
LEGEND_INDICATORS = DEFAULT_INDICATORS.legend_codes()
#: Indicators computed in two passes (regional sums first, then per-pixel factors): gep.regional.
REGIONAL_INDICATORS = DEFAULT_INDICATORS.regional_codes()
#: The problem a run configuration gets when it lacks a setting an indicator requires.
SETTING_REQUIRED = {
    "negative_balance": "negative-balance-policy-required",
    "cover_unit": "cover-unit-required",
}
ALLOWED_RESAMPLING: dict[Kind, frozenset[str]] = {
    "categorical": frozenset({"nearest", "mode"}),
    "continuous": frozenset({"bilinear"}),
}
#: Row/column tolerance (in pixels) within which two grids are the same grid.


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
        specs = [DEFAULT_INDICATORS.get(code) for code in self.indicators if code in INDICATOR_ROLES]
        for setting, reason in SETTING_REQUIRED.items():
            problems += [
                {"indicator": spec.code, "reason": reason}
                for spec in specs
                if setting in spec.settings and getattr(self, setting) is None
            ]
        problems += [
            {"indicator": spec.code, "reason": "land-cover-legend-required"}
            for spec in specs
            if spec.needs_legend and self.land_cover_legend is None
        ]
        problems += [
            {"indicator": spec.code, "reason": "emissions-required"}
            for spec in specs
            if "emissions_t" in spec.settings and spec.code not in self.emissions_t
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
class Plan:
    """Everything a tile computation needs; built and checked by :func:`plan_run`."""

    config: RunConfig
    grid: Grid
    sources: dict[str, Source]
    warp: dict[str, str]  # role → resampling rule, for sources not on the grid
    regions: list[RegionShape]
    unit_values: dict[str, UnitValue]
    valuation: dict[str, Any]
    context: RunContext  # what the kernels read: cell size, policies, legend, coefficients per indicator

    @property
    def cell_m(self) -> tuple[float, float]:
        """Return the (x, y) cell size in metres for slopes."""
        return self.context.cell_m

    @property
    def legend(self) -> Legend | None:
        """Return the run's land-cover legend, if it names one."""
        return self.context.legend

    def value_keys(self) -> list[str]:
        """Return the keys of a tile's blocks: element-wise indicators, then regional basis components."""
        specs = [DEFAULT_INDICATORS.get(code) for code in self.config.indicators]
        keys = [spec.code for spec in specs if not spec.regional]
        for spec in specs:
            keys += [component_key(spec.code, part) for part in spec.components]
        return keys

    def windows(self) -> list[tuple[int, int, int, int]]:
        """Return the tiles as ``(col_off, row_off, width, height)``, row by row."""
        return tile_windows(self.grid.width, self.grid.height, self.config.tile_size)


def _has_valid_pixel(dataset: Any) -> bool:
    for col, row, width, height in iter_windows(dataset.width, dataset.height, max_pixels=1_000_000):
        block = _read(dataset, (col, row, width, height))
        if bool(np.isfinite(block).any()):
            return True
    return False


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
    specs = [DEFAULT_INDICATORS.get(code) for code in config.indicators]
    unit_values = {spec.code: spec.unit_value(prices, coefficients) for spec in specs}
    context = RunContext(
        cell_m=_cell_metres(grid),
        negative_balance=config.negative_balance,
        cover_unit=config.cover_unit,
        legend=legend,
        parameters={spec.code: spec.parameters(coefficients) for spec in specs if spec.parameters is not None},
    )
    return Plan(
        config=config,
        grid=grid,
        sources=dict(sources),
        warp=warp,
        regions=list(regions),
        unit_values=unit_values,
        valuation=record,
        context=context,
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
    specs = [DEFAULT_INDICATORS.get(code) for code in config.indicators]
    tables: dict[str, dict[str, float]] = {
        spec.code: config.emissions_t.get(spec.code, {}) for spec in specs if "emissions_t" in spec.settings
    }
    if any("reservoir_capacity_m3" in spec.settings for spec in specs):
        tables["reservoir_capacity_m3"] = config.reservoir_capacity_m3
    for name, table in tables.items():
        problems += [{"table": name, "region": c, "reason": "region-missing"} for c in sorted(codes - set(table))]
        problems += [{"table": name, "region": c, "reason": "unknown-region"} for c in sorted(set(table) - codes)]
    return problems


def region_index(plan: Plan, window: tuple[int, int, int, int]) -> FloatArray:
    """Return the region of each pixel centre of a window (index into ``plan.regions``; NaN outside)."""
    geometries = to_raster_crs([r.geometry for r in plan.regions], CRS.from_wkt(plan.grid.crs_wkt))
    burned = label_window(plan.grid, window, geometries)
    index: FloatArray = burned.astype(np.float64) - 1.0
    index[burned == 0] = np.nan
    return index
