"""The accounting engine: a raster stack aligned on one grid, read tile by tile, totals merged exactly.

:func:`gep.plan.plan_run` checks a run and returns its :class:`~gep.plan.Plan`. :func:`compute_tile`
reads one window of every source the selected indicators read (a role's halo, e.g. the DEM grown by one
pixel, edge-padded at the raster border, ADR 006), applies one shared nodata mask (a pixel is valid only
if every input is), runs each indicator's kernel as its :class:`gep.spec.IndicatorSpec` declares, and
returns the exact per-region totals (:func:`gep.arrays.exact_sum`) with the tile's per-pixel value blocks
(float64 元). :func:`merge_tiles` sums tile totals with ``math.fsum``, so the totals do not depend on the
tiling (to 1e-12 relative). Pixel areas are geodesic on GRS80 for geographic grids (computed from the
row's absolute index, so identical in any tiling) and ``|a·e|`` for projected grids in metres.

The planning names are re-exported here (``from gep.engine import RunConfig, plan_run`` keeps working);
this module imports :mod:`gep.plan` and :mod:`gep.outputs`, and neither imports it back.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from geodata.rasters import open_raster
from geodata.tiling import Grid
from geodata.tiling import read_window as _read
from gep.arrays import FloatArray, exact_sum
from gep.kernels import QUANTITY, TileBlock
from gep.outputs import RasterWriter
from gep.plan import (
    ALLOWED_RESAMPLING,
    GRID_TOLERANCE,
    INDICATOR_ROLES,
    LEGEND_INDICATORS,
    REGIONAL_INDICATORS,
    ROLES,
    Plan,
    RegionShape,
    RunConfig,
    Source,
    expected_units,
    pixel_areas,
    plan_run,
    region_index,
)
from gep.regional import component_key, regional_result
from gep.spec import DEFAULT_INDICATORS, IndicatorSpec
from gep.tables import SupplyLine, gep_summary, line_from_total

__all__ = [
    "ALLOWED_RESAMPLING",
    "GRID_TOLERANCE",
    "INDICATOR_ROLES",
    "LEGEND_INDICATORS",
    "REGIONAL_INDICATORS",
    "ROLES",
    "Grid",
    "Merged",
    "Plan",
    "RegionShape",
    "RunConfig",
    "Source",
    "TileResult",
    "class_types",
    "compute_tile",
    "ecosystem_type_of",
    "expected_units",
    "merge_tiles",
    "open_stack",
    "pixel_areas",
    "plan_run",
    "region_index",
    "run_in_process",
]


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


def _read_with_halo(dataset: Any, window: tuple[int, int, int, int], grid: Grid, pixels: int = 1) -> FloatArray:
    """Read a window grown by ``pixels`` on every side; at the raster's edge, repeat the edge (ADR 006)."""
    col, row, width, height = window
    left, top = max(col - pixels, 0), max(row - pixels, 0)
    right, bottom = min(col + width + pixels, grid.width), min(row + height + pixels, grid.height)
    block = _read(dataset, (left, top, right - left, bottom - top))
    pad_rows = (top - (row - pixels), row + height + pixels - bottom)
    pad_cols = (left - (col - pixels), col + width + pixels - right)
    return np.pad(block, (pad_rows, pad_cols), mode="edge")


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
    specs = [DEFAULT_INDICATORS.get(code) for code in config.indicators]
    halos = {
        (role, pixels): _read_with_halo(datasets[role], window, plan.grid, pixels)
        for spec in specs
        for role, pixels in spec.halo.items()
    }
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
    physical = _physical(plan, specs, masked, areas, halos, valid)
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
    specs: Sequence[IndicatorSpec],
    inputs: Mapping[str, FloatArray | float],
    areas: FloatArray,
    halos: Mapping[tuple[str, int], FloatArray],
    valid: np.ndarray,
) -> dict[str, FloatArray]:
    """Run every selected indicator's kernel: element-wise quantities by code, basis components by key."""
    out: dict[str, FloatArray] = {}
    for spec in specs:
        halo = {role: halos[(role, pixels)] for role, pixels in spec.halo.items()}
        parts = spec.kernel(plan.context, TileBlock(inputs, areas, valid, halo))
        if spec.regional:
            out.update({component_key(spec.code, part): parts[part] for part in spec.components})
        else:
            out[spec.code] = parts[QUANTITY]
    return out


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
    spec = DEFAULT_INDICATORS.get(code)
    region = plan.regions[index].code
    basis: dict[str, float] = {}
    for part in spec.components:
        key = component_key(code, part)
        basis[part] = math.fsum(float(t["totals"].get(key, {}).get(str(index), 0.0)) for t in tiles)
    emission = plan.config.emissions_t.get(code, {}).get(region)
    result = regional_result(
        code,
        basis,
        plan.context.parameters[code],
        reservoir_capacity_m3=plan.config.reservoir_capacity_m3.get(region, 0.0),
        emission_t=emission,
    )
    split: dict[str, list[float]] = {}
    for part in spec.components:
        key = component_key(code, part)
        factors.setdefault(key, {})[region] = result.factors[part]
        for klass, value in _fsum_nested(tiles, key, index).items():
            split.setdefault(klass, []).append(value * result.factors[part])
    return result.quantity, {k: math.fsum(v) for k, v in sorted(split.items(), key=lambda kv: int(kv[0]))}


def run_in_process(plan: Plan, out_dir: Path | None = None) -> tuple[Merged, dict[str, str]]:
    """Run every tile in this process (the offline CLI and tests); write value rasters if ``out_dir``."""
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
