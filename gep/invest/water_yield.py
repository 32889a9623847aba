"""InVEST Annual Water Yield on numpy blocks (pure; InVEST 3.20 ``fractp_op`` arithmetic).

Budyko curve after Fu (1981) and Zhang et al. (2004), as in ``natcap.invest.annual_water_yield``::

    PET = Kc · ET0                        AWC = min(root depth, restricting-layer depth) · PAWC
    ω   = min(Z · AWC / P + 1.25, 5)      φ = PET / P
    AET/P (vegetated)     = min(φ, 1 + φ − (1 + φ^ω)^(1/ω))
    AET/P (not vegetated) = min(PET, P) / P
    Y   = (1 − AET/P) · P   (mm)          volume (m³) = Y (mm) × area (m²) / 1000

Kc, root depth and the vegetated flag come from the biophysical table by land cover. As in InVEST,
a pixel with P = 0 is nodata. InVEST stores AET/P as float32; this kernel keeps float64, so results
agree with InVEST to float32 rounding (~1e-7 relative).

>>> table = BiophysicalTable(rows={1: BiophysicalRow(vegetated=True, root_depth_mm=1000, kc=0.8)})
>>> y = water_yield_mm(np.array([1.0]), precipitation_mm=500.0, eto_mm=1000.0,
...     restricting_depth_mm=800.0, pawc=0.15, table=table, seasonality_z=5.0)
>>> round(float(y[0]), 6)
94.926409
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from gep.arrays import ArrayLike, FloatArray, exact_sum, lookup_columns, prepare, require_positive

#: ω is capped at 5 ("Budyko Framework Global Potentials", p. 8, as in InVEST).
OMEGA_CAP = 5.0
#: The 1.25 offset of ω (Donohue et al. 2012, as in InVEST).
OMEGA_OFFSET = 1.25
#: mm → m (m/mm).
M_PER_MM = 1e-3


class BiophysicalRow(BaseModel):
    """One land-cover row of InVEST's biophysical table (``lulc_veg``, ``root_depth``, ``Kc``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vegetated: bool
    root_depth_mm: float = Field(ge=0)
    kc: float = Field(ge=0)


class BiophysicalTable(BaseModel):
    """The biophysical table keyed by land-cover code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: dict[int, BiophysicalRow]


def actual_et_fraction(
    lulc: ArrayLike,
    *,
    precipitation_mm: ArrayLike,
    eto_mm: ArrayLike,
    restricting_depth_mm: ArrayLike,
    pawc: ArrayLike,
    table: BiophysicalTable,
    seasonality_z: float,
) -> FloatArray:
    """Return AET/P per pixel (NaN where any input is nodata or P = 0)."""
    z = require_positive("seasonality_z", seasonality_z)
    inputs = prepare(
        {
            "lulc": lulc,
            "precipitation_mm": precipitation_mm,
            "eto_mm": eto_mm,
            "restricting_depth_mm": restricting_depth_mm,
            "pawc": pawc,
        }
    )
    columns = lookup_columns(
        inputs["lulc"],
        {
            "kc": {code: row.kc for code, row in table.rows.items()},
            "root_mm": {code: row.root_depth_mm for code, row in table.rows.items()},
            "vegetated": {code: float(row.vegetated) for code, row in table.rows.items()},
        },
        name="lulc",
    )
    kc, root_mm, vegetated = columns["kc"], columns["root_mm"], columns["vegetated"]
    # The same operations in the same order as the equations above, evaluated in place on the lookup's own
    # columns and four window-sized temporaries (bit-identical to the expression form; the working set of a
    # window is about half of it, which keeps AWY within InVEST's memory, benchmarks/README.md).
    precip = np.where(inputs["precipitation_mm"] == 0.0, np.nan, inputs["precipitation_mm"])
    pet_mm = np.multiply(kc, inputs["eto_mm"], out=kc)
    phi = pet_mm / precip
    awc_mm = np.minimum(root_mm, inputs["restricting_depth_mm"], out=root_mm)
    awc_mm *= inputs["pawc"]
    omega = awc_mm  # ω = min(AWC / P · Z + 1.25, 5)
    omega /= precip
    omega *= z
    omega += OMEGA_OFFSET
    np.minimum(omega, OMEGA_CAP, out=omega)
    curve = np.power(phi, omega)  # 1 + φ − (1 + φ^ω)^(1/ω)
    curve += 1.0
    exponent = np.divide(1.0, omega, out=omega)
    np.power(curve, exponent, out=curve)
    budyko = np.add(phi, 1.0, out=exponent)
    budyko -= curve
    fraction = np.minimum(phi, budyko, out=budyko)  # vegetated: min(φ, Budyko)
    other = np.minimum(pet_mm, precip, out=pet_mm)  # not vegetated: min(PET, P) / P
    other /= precip
    np.copyto(fraction, other, where=vegetated != 1.0)
    fraction[np.isnan(vegetated) | np.isnan(precip)] = np.nan
    return fraction


def water_yield_mm(
    lulc: ArrayLike,
    *,
    precipitation_mm: ArrayLike,
    eto_mm: ArrayLike,
    restricting_depth_mm: ArrayLike,
    pawc: ArrayLike,
    table: BiophysicalTable,
    seasonality_z: float,
) -> FloatArray:
    """Return water yield Y = (1 − AET/P) · P per pixel (mm)."""
    fraction = actual_et_fraction(
        lulc,
        precipitation_mm=precipitation_mm,
        eto_mm=eto_mm,
        restricting_depth_mm=restricting_depth_mm,
        pawc=pawc,
        table=table,
        seasonality_z=seasonality_z,
    )
    np.subtract(1.0, fraction, out=fraction)
    fraction *= np.asarray(precipitation_mm, dtype=np.float64)
    return fraction


def water_yield_volume_m3(yield_mm: ArrayLike, pixel_area_m2: ArrayLike) -> float:
    """Return Σ yield (mm) × area (m²) × 10⁻³ m/mm, exactly summed.

    >>> round(water_yield_volume_m3(np.full(16, 94.926476), 900.0), 3)
    1366.941
    """
    inputs = prepare({"yield_mm": yield_mm, "pixel_area_m2": pixel_area_m2})
    return exact_sum(inputs["yield_mm"] * inputs["pixel_area_m2"] * M_PER_MM)
