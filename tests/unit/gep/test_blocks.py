"""Block-friendliness: per-tile results, summed with math.fsum, equal the whole-array result.

Element-wise kernels need no halo; the LS/slope kernel needs a one-pixel halo (terrain.py). Arrays
are synthetic with a fixed seed and include NaN (nodata) pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import InvalidInput
from gep.arrays import exact_sum, exact_sums_by_class, merge_class_sums
from gep.coefficients import ls_coefficients, rweq_constants
from gep.indicators import carbon_oxygen, climate_regulation, sand_fixation, soil_retention, terrain
from gep.indicators.water_conservation import NegativeBalancePolicy, water_conservation_m3
from gep.invest import carbon, water_yield
from gep.prices import load_table

SHAPE = (97, 131)  # deliberately not a multiple of the tile size
TILE = 32
RNG = np.random.default_rng(20261125)


def field(low: float, high: float, nodata_share: float = 0.02) -> np.ndarray:
    values = RNG.uniform(low, high, SHAPE)
    values[RNG.random(SHAPE) < nodata_share] = np.nan
    return values


def tiles(shape: tuple[int, int]) -> list[tuple[slice, slice]]:
    return [
        (slice(r, min(r + TILE, shape[0])), slice(c, min(c + TILE, shape[1])))
        for r in range(0, shape[0], TILE)
        for c in range(0, shape[1], TILE)
    ]


PRECIP, RUNOFF, ET = field(200, 600), field(0, 80), field(150, 500)
EROSIVITY, ERODIBILITY, LS, COVER, PRACTICE = (
    field(500, 3000),
    field(0.01, 0.05),
    field(0.1, 8),
    field(0, 1),
    field(0.3, 1),
)
NEP = field(-50, 400)
HEAT = field(100, 2000)
WF, EF, SCF, KR, VEG = field(0, 30), field(0.1, 0.9), field(0.3, 1), field(0.5, 1), field(0.01, 1)
LULC = RNG.integers(1, 4, SHAPE).astype(float)
LULC[RNG.random(SHAPE) < 0.02] = np.nan
AREA_M2 = 900.0
COEFFICIENTS = load_table("coefficients_default")
RWEQ = rweq_constants(COEFFICIENTS)
LS_COEFFICIENTS = ls_coefficients(COEFFICIENTS)

POOLS = carbon.CarbonPools(
    rows={code: carbon.CarbonPool(above=10 * code, below=2, soil=30, dead=1) for code in (1, 2, 3)}
)
BIOPHYSICAL = water_yield.BiophysicalTable(
    rows={
        1: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=2000, kc=0.9),
        2: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=800, kc=0.7),
        3: water_yield.BiophysicalRow(vegetated=False, root_depth_mm=0, kc=0.3),
    }
)
ETO, REST, PAWC = field(800, 1300), field(200, 2000), field(0.05, 0.2)

Kernel = Callable[[tuple[slice, slice]], np.ndarray]
KERNELS: dict[str, Kernel] = {
    "water_conservation_clamp": lambda w: water_conservation_m3(
        PRECIP[w], RUNOFF[w], ET[w], AREA_M2, policy=NegativeBalancePolicy.CLAMP_TO_ZERO
    ),
    "water_conservation_negative": lambda w: water_conservation_m3(
        PRECIP[w], RUNOFF[w], ET[w], AREA_M2, policy=NegativeBalancePolicy.ALLOW_NEGATIVE
    ),
    "soil_retention": lambda w: soil_retention.soil_retention_t(
        EROSIVITY[w], ERODIBILITY[w], LS[w], COVER[w], PRACTICE[w], AREA_M2
    ),
    "carbon_sequestration": lambda w: carbon_oxygen.carbon_sequestration_tco2(NEP[w], AREA_M2),
    "oxygen_release": lambda w: carbon_oxygen.oxygen_release_to2(NEP[w], AREA_M2),
    "climate_vegetation": lambda w: climate_regulation.vegetation_cooling_kwh(
        HEAT[w], AREA_M2, days=90, energy_efficiency_ratio=3
    ),
    "sand_fixation": lambda w: sand_fixation.sand_fixation_t(
        sand_fixation.sand_fixation_g_per_m(WF[w], EF[w], SCF[w], KR[w], VEG[w], RWEQ),
        cell_size_m=30.0,
        area_m2=AREA_M2,
    ),
    "invest_carbon": lambda w: carbon.carbon_storage_t_per_ha(LULC[w], POOLS),
    "invest_water_yield": lambda w: water_yield.water_yield_mm(
        LULC[w],
        precipitation_mm=PRECIP[w],
        eto_mm=ETO[w],
        restricting_depth_mm=REST[w],
        pawc=PAWC[w],
        table=BIOPHYSICAL,
        seasonality_z=5.0,
    ),
}


@pytest.mark.parametrize("name", sorted(KERNELS))
def test_tiled_totals_equal_whole_array(name: str) -> None:
    kernel = KERNELS[name]
    whole = kernel((slice(None), slice(None)))
    assert whole.shape == SHAPE
    per_tile = [exact_sum(kernel(window)) for window in tiles(SHAPE)]
    assert math.isclose(math.fsum(per_tile), exact_sum(whole), rel_tol=1e-12)
    stitched = np.full(SHAPE, np.nan)
    for window in tiles(SHAPE):
        stitched[window] = kernel(window)
    np.testing.assert_array_equal(stitched, whole)  # element-wise: identical, NaN where nodata


def test_nodata_propagates() -> None:
    result = KERNELS["soil_retention"]((slice(None), slice(None)))
    nodata = np.isnan(EROSIVITY) | np.isnan(ERODIBILITY) | np.isnan(LS) | np.isnan(COVER) | np.isnan(PRACTICE)
    np.testing.assert_array_equal(np.isnan(result), nodata)


def test_ls_tiles_with_one_pixel_halo_equal_whole_dem() -> None:
    rows, cols = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]]
    dem = 1500 + 40 * np.sin(rows / 7.0) * np.cos(cols / 11.0) + 3.0 * rows + RNG.normal(0, 2, SHAPE)
    padded = terrain.pad_edge(dem)  # the raster border: edge repeated
    whole = terrain.ls_factor(terrain.slope_radians(padded, cell_x_m=30, cell_y_m=30), LS_COEFFICIENTS)
    stitched = np.full(SHAPE, np.nan)
    for r, c in tiles(SHAPE):
        # A tile grown by one pixel on every side of the padded DEM is the tile plus its halo.
        window = padded[r.start : r.stop + 2, c.start : c.stop + 2]
        stitched[r, c] = terrain.ls_factor(terrain.slope_radians(window, cell_x_m=30, cell_y_m=30), LS_COEFFICIENTS)
    np.testing.assert_array_equal(stitched, whole)
    assert math.isclose(math.fsum(exact_sum(stitched[w]) for w in tiles(SHAPE)), exact_sum(whole), rel_tol=1e-12)


def test_ls_classes_follow_the_slope() -> None:
    coefficients = LS_COEFFICIENTS
    degrees = np.array([0.0, 0.3, 1.5, 2.5, 4.0, 7.0, 15.0, 30.0, np.nan])
    ls = terrain.ls_factor(np.radians(degrees), coefficients)
    assert np.isnan(ls[-1])
    assert np.all(np.diff(ls[:-1]) > 0)  # LS grows with slope across every class boundary
    # at λ = 22.13 m, L = 1: steep slope uses Liu et al. 1994
    assert math.isclose(ls[6], 21.91 * math.sin(math.radians(15.0)) - 0.96, rel_tol=1e-12)
    assert math.isclose(ls[5], 16.8 * math.sin(math.radians(7.0)) - 0.50, rel_tol=1e-12)
    assert math.isclose(ls[0], 0.03, rel_tol=1e-12)


def test_slope_of_a_plane() -> None:
    rows, cols = np.mgrid[0:5, 0:6]
    plane = 0.1 * 30.0 * cols + 0.0 * rows  # rises 10 % along x
    slope = terrain.slope_radians(plane, cell_x_m=30, cell_y_m=30)
    assert slope.shape == (3, 4)
    np.testing.assert_allclose(np.tan(slope), 0.1, rtol=1e-12)


finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=300, deadline=None)
@given(st.lists(finite_floats | st.just(float("nan")), max_size=60))
def test_exact_sum_is_bit_identical_to_fsum(values: list[float]) -> None:
    valid = [v for v in values if not math.isnan(v)]
    try:
        expected = math.fsum(valid)
    except OverflowError:
        return  # fsum overflows on intermediate sums; exact_sum may still return a finite value
    if math.isinf(expected):
        return
    assert exact_sum(np.array(values, dtype=np.float64)) == expected


def test_exact_sum_edge_cases() -> None:
    assert exact_sum(np.array([5e-324, 5e-324, 1e-310])) == math.fsum([5e-324, 5e-324, 1e-310])
    assert exact_sum(np.array([1e308, 1e308, -1e308])) == 1e308  # fsum itself would overflow here
    assert exact_sum(np.array([np.nan])) == 0.0
    assert math.isinf(exact_sum(np.array([1.0, np.inf])))
    with pytest.raises(InvalidInput, match="overflows"):
        exact_sum(np.array([1e308, 1e308]))
    big = RNG.standard_cauchy(200_000) * np.exp(RNG.uniform(-300, 300, 200_000))
    assert exact_sum(big) == math.fsum(big.tolist())


def test_class_totals_tile_like_the_whole() -> None:
    values = KERNELS["soil_retention"]((slice(None), slice(None)))
    whole = exact_sums_by_class(values, LULC)
    parts = [exact_sums_by_class(values[w], LULC[w]) for w in tiles(SHAPE)]
    merged = merge_class_sums(parts)
    assert merged.keys() == whole.keys() == {1, 2, 3}
    for code, total in whole.items():
        assert math.isclose(merged[code], total, rel_tol=1e-12)
    assert math.isclose(math.fsum(whole.values()), exact_sum(values[~np.isnan(LULC)]), rel_tol=1e-12)
