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
from geodata.zonal import _to_raster_crs
from gep.arrays import FloatArray, exact_sum
from gep.coefficients import ls_coefficients
from gep.indicators import carbon_oxygen, soil_retention, terrain, water_conservation
from gep.indicators.water_conservation import NegativeBalancePolicy
from gep.prices import ParameterTable
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
}
#: The roles each indicator needs. ``land_cover`` is optional: it adds the extent account.
INDICATOR_ROLES: dict[str, tuple[str, ...]] = {
    "water_conservation": ("precipitation", "evapotranspiration", "runoff_coefficient"),
    "carbon_sequestration": ("nep",),
    "oxygen_release": ("nep",),
    "soil_retention": ("dem", "erosivity", "erodibility", "cover_factor", "practice_factor"),
}
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
        elif source.units is not None and source.units != ROLES[role][0]:
            problems.append({"role": role, "reason": "wrong-units", "units": source.units, "expected": ROLES[role][0]})
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
    if problems:
        raise InvalidInput(f"{len(problems)} raster problem(s); nothing was written", problems)
    record = valuation_record(DEFAULT_INDICATORS, config.indicators, prices, coefficients)
    unit_values = {code: DEFAULT_INDICATORS.get(code).unit_value(prices, coefficients) for code in config.indicators}
    ls = ls_coefficients(coefficients) if "soil_retention" in config.indicators else None
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

    def as_json(self) -> dict[str, Any]:
        """Return the totals as JSON (floats round-trip exactly through ``repr``)."""
        return {
            "totals": {code: {str(k): v for k, v in by.items()} for code, by in self.totals.items()},
            "extent": {str(r): {str(c): v for c, v in by.items()} for r, by in self.extent.items()},
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
    geometries = _to_raster_crs([r.geometry for r in plan.regions], CRS.from_wkt(plan.grid.crs_wkt))
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
    empty = TileResult({code: {} for code in config.indicators}, {})
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
        price = float(plan.unit_values[code_name].yuan_per_unit)
        shared = any(np.may_share_memory(quantity, b) for b in masked.values() if isinstance(b, np.ndarray))
        # The quantity block is not needed after its totals: value it in place unless it is an input.
        result.values[code_name] = quantity * price if shared else np.multiply(quantity, price, out=quantity)
    land = masked.get("land_cover")
    if isinstance(land, np.ndarray):
        for i in codes:
            in_region = regions == i
            classes = np.unique(land[in_region & valid])
            result.extent[i] = {int(c): exact_sum(areas[in_region & (land == c)]) for c in classes}
    return result


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
    return out


@dataclass(frozen=True)
class Merged:
    """A run's merged totals, its supply lines and summary."""

    totals: dict[str, dict[str, float]]  # indicator → region code → physical total
    extent: dict[str, dict[str, float]]  # region code → class → m²
    lines: list[SupplyLine]


def merge_tiles(plan: Plan, tiles: Sequence[Mapping[str, Any]]) -> Merged:
    """Merge per-tile JSON totals (``math.fsum``) into lines for every region × indicator; sums asserted.

    Raises:
        AccountingInconsistency: Σ indicators ≠ GEP or Σ regions ≠ total (a bug, never rounding).
    """
    totals: dict[str, dict[str, float]] = {}
    lines: list[SupplyLine] = []
    for code in plan.config.indicators:
        totals[code] = {}
        for i, region in enumerate(plan.regions):
            parts = [float(t["totals"].get(code, {}).get(str(i), 0.0)) for t in tiles]
            totals[code][region.code] = math.fsum(parts)
            lines.append(
                line_from_total(
                    region_code=region.code,
                    indicator=DEFAULT_INDICATORS.get(code),
                    quantity=totals[code][region.code],
                    unit_value=plan.unit_values[code],
                )
            )
    extent: dict[str, dict[str, float]] = {}
    for i, region in enumerate(plan.regions):
        by_class: dict[str, list[float]] = {}
        for tile in tiles:
            for klass, area in tile["extent"].get(str(i), {}).items():
                by_class.setdefault(klass, []).append(float(area))
        if by_class:
            extent[region.code] = {k: math.fsum(v) for k, v in sorted(by_class.items(), key=lambda kv: int(kv[0]))}
    gep_summary(lines)
    return Merged(totals, extent, lines)


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
    rasters = writer.assemble(len(tiles)) if writer is not None else {}
    return merge_tiles(plan, tiles), rasters
