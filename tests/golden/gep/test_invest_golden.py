"""gep's InVEST-compatible kernels against natcap.invest 3.20.2 outputs on the same pixels (README.md)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gep.arrays import exact_sum
from gep.invest import carbon, water_yield

GOLDEN = np.load(Path(__file__).parent / "invest_small_window.npz")
PIXEL_AREA_M2 = 900.0
# make_data.py CARBON_POOLS (lucode: above, below, soil, dead; t C/ha)
POOLS = carbon.CarbonPools(
    rows={
        code: carbon.CarbonPool(above=a, below=b, soil=s, dead=d)
        for code, a, b, s, d in (
            (1, 30.0, 8.0, 40.0, 3.0),
            (2, 6.0, 8.0, 28.0, 1.5),
            (3, 1.0, 3.0, 25.0, 0.5),
            (4, 3.0, 1.0, 30.0, 0.0),
            (5, 0.0, 0.0, 0.0, 0.0),
            (6, 0.0, 0.0, 10.0, 0.0),
            (7, 0.2, 0.2, 12.0, 0.0),
        )
    }
)
# make_data.py BIOPHYSICAL (lucode: lulc_veg, root_depth mm, Kc)
BIOPHYSICAL = water_yield.BiophysicalTable(
    rows={
        code: water_yield.BiophysicalRow(vegetated=bool(veg), root_depth_mm=root, kc=kc)
        for code, veg, root, kc in (
            (1, 1, 3500, 1.0),
            (2, 1, 2000, 0.7),
            (3, 1, 1500, 0.65),
            (4, 1, 1000, 1.1),
            (5, 0, 10, 1.05),
            (6, 0, 0, 0.2),
            (7, 0, 500, 0.2),
        )
    }
)


def band(name: str, nodata: float) -> np.ndarray:
    values = GOLDEN[name].astype(np.float64)
    values[GOLDEN[name] == nodata] = np.nan
    return values


def test_carbon_storage_matches_invest() -> None:
    ours = carbon.carbon_storage_t_per_ha(band("lulc", 255), POOLS)
    theirs = GOLDEN["invest_c_storage_bas"].astype(np.float64)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)  # InVEST writes float32
    assert math.isclose(carbon.total_t(ours, PIXEL_AREA_M2), exact_sum(theirs) * PIXEL_AREA_M2 / 1e4, rel_tol=1e-7)


def test_water_yield_matches_invest() -> None:
    ours = water_yield.water_yield_mm(
        band("lulc", 255),
        precipitation_mm=band("precip", -9999.0),
        eto_mm=band("et0", -9999.0),
        restricting_depth_mm=band("root_depth", -9999.0),
        pawc=band("pawc", -9999.0),
        table=BIOPHYSICAL,
        seasonality_z=1.0,
    )
    theirs = GOLDEN["invest_wyield"].astype(np.float64)
    assert len(np.unique(GOLDEN["lulc"])) == 6
    # InVEST computes in float32: pixel values agree to ~1e-4 mm on yields of tens of mm
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-3)
    ours_m3 = water_yield.water_yield_volume_m3(ours, PIXEL_AREA_M2)
    assert math.isclose(ours_m3, exact_sum(theirs) * PIXEL_AREA_M2 / 1000.0, rel_tol=1e-6)
