"""InVEST AWY evaluated in place (issue 18.5) is bit-identical to the expression form of its equations."""

from __future__ import annotations

import numpy as np
import pytest

from gep.arrays import lookup_columns
from gep.invest import water_yield

TABLE = water_yield.BiophysicalTable(
    rows={
        1: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=1000, kc=0.8),
        2: water_yield.BiophysicalRow(vegetated=False, root_depth_mm=500, kc=0.3),
        3: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=2000, kc=1.1),
        4: water_yield.BiophysicalRow(vegetated=False, root_depth_mm=0, kc=0.0),
        5: water_yield.BiophysicalRow(vegetated=True, root_depth_mm=0, kc=0.0),
    }
)


def expression_form(
    lulc: np.ndarray, precip_mm: np.ndarray, eto_mm: np.ndarray, depth_mm: np.ndarray, pawc: np.ndarray, z: float
) -> np.ndarray:
    """The kernel as it was written before it worked in place (one new array per operation)."""
    rows = TABLE.rows
    columns = lookup_columns(
        lulc,
        {
            "kc": {c: r.kc for c, r in rows.items()},
            "root_mm": {c: r.root_depth_mm for c, r in rows.items()},
            "vegetated": {c: float(r.vegetated) for c, r in rows.items()},
        },
        name="lulc",
    )
    kc, root_mm, vegetated = columns["kc"], columns["root_mm"], columns["vegetated"]
    precip = np.where(precip_mm == 0.0, np.nan, precip_mm)
    pet_mm = kc * eto_mm
    phi = pet_mm / precip
    awc_mm = np.minimum(root_mm, depth_mm) * pawc
    omega = np.minimum(awc_mm / precip * z + 1.25, 5.0)
    budyko = 1.0 + phi - (1.0 + phi**omega) ** (1.0 / omega)
    fraction = np.where(vegetated == 1.0, np.minimum(phi, budyko), np.minimum(pet_mm, precip) / precip)
    fraction = np.where(np.isnan(vegetated) | np.isnan(precip), np.nan, fraction)
    result: np.ndarray = (1.0 - fraction) * precip_mm
    return result


@pytest.mark.parametrize("seed", range(8))
def test_in_place_kernel_is_bit_identical(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 20_000
    lulc = rng.integers(1, 6, n).astype(float)
    lulc[rng.random(n) < 0.05] = np.nan
    precip = rng.uniform(0.0, 1500.0, n)
    precip[rng.random(n) < 0.05] = 0.0  # P = 0 is nodata, as in InVEST
    precip[rng.random(n) < 0.02] = np.nan
    eto = rng.uniform(0.0, 2000.0, n)
    eto[rng.random(n) < 0.02] = 0.0
    depth, pawc = rng.uniform(0.0, 3000.0, n), rng.uniform(0.0, 0.3, n)
    z = float(rng.uniform(0.5, 30.0))
    got = water_yield.water_yield_mm(
        lulc, precipitation_mm=precip, eto_mm=eto, restricting_depth_mm=depth, pawc=pawc, table=TABLE, seasonality_z=z
    )
    np.testing.assert_array_equal(got, expression_form(lulc, precip, eto, depth, pawc, z))
