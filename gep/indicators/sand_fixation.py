"""Sand fixation 防风固沙: RWEQ potential minus actual wind erosion (pure block kernel).

Revised Wind Erosion Equation (Fryrear et al. 1998), in the form of ``lxyNgeo/pyrweq``
(``src/pyrweq/erosion.py``), as cited by the reference (gep.md §1.3c)::

    x     = WF · EF · SCF · K′ · C
    Q_max = 109.8 · x
    s     = 150.71 · x^(−0.3711)
    SL    = (2 z / s²) · Q_max · exp(−(z / s)²),   z = 50 m

Potential SL uses C = 1 (bare soil); fixation = SL_potential − SL_actual. SL is in g/m (mass per unit
width along the wind); the areal modulus is SL / cell size, and 1 g/m² = 1 t/km² (pyrweq
``units.py``). The empirical constants (109.8, 150.71, −0.3711, 50 m) come from the coefficient table.

**Vegetation cover unit (ADR 006).** The vegetation factor is C = exp(a · SC) with a per cover type
(a = −0.0438 for cropland …). The coefficient a is *per percent of cover*: with SC = 60 % the factor is
0.072 (dense cover nearly stops erosion), whereas feeding the fraction 0.6 gives 0.974 (cover would do
almost nothing) — a silent 13-fold error. The kernel therefore takes the cover together with its
:class:`CoverUnit` and converts fractions to percent itself; there is no default unit.

**Negative fixation.** As a function of x, SL ∝ x^1.7422 · exp(−(z/150.71)² · x^0.7422) peaks near
x ≈ 62 and then falls, so where WF · EF · SCF · K′ exceeds that (very windy, erodible land) vegetation can
make SL(C) > SL(1) and the fixation negative. The kernel keeps the sign (it is what the equation says);
a run should report such pixels rather than clamp them silently.

Block-friendly: element-wise, no halo.

>>> round(float(vegetation_factor(60.0, -0.0438, cover_unit=CoverUnit.PERCENT)), 6)
0.072223
>>> round(float(vegetation_factor(0.6, -0.0438, cover_unit=CoverUnit.FRACTION)), 6)
0.072223
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from core.errors import InvalidInput
from gep.arrays import ArrayLike, FloatArray, prepare, require_positive

#: g → t (t/g).
T_PER_G = 1e-6


class CoverUnit(StrEnum):
    """Unit of a vegetation-cover input."""

    #: 0–100: the unit the coefficient a refers to.
    PERCENT = "percent"
    #: 0–1: multiplied by 100 before use.
    FRACTION = "fraction"


@dataclass(frozen=True)
class RweqConstants:
    """Empirical RWEQ constants, built from the coefficient table (``gep.coefficients.rweq_constants``)."""

    q_max_coefficient: float
    s_coefficient: float
    s_exponent: float
    critical_distance_m: float


def vegetation_factor(cover: ArrayLike, coefficient_per_percent: ArrayLike, *, cover_unit: CoverUnit) -> FloatArray:
    """Return C = exp(a · SC) with SC in percent.

    Raises:
        InvalidInput: Cover outside 0–100 % (or 0–1 as a fraction): usually the wrong unit.
    """
    inputs = prepare({"cover": cover, "coefficient_per_percent": coefficient_per_percent})
    cover_percent = inputs["cover"] * (100.0 if CoverUnit(cover_unit) is CoverUnit.FRACTION else 1.0)
    valid = cover_percent[~np.isnan(cover_percent)]
    if valid.size and (valid.min() < 0.0 or valid.max() > 100.0):
        raise InvalidInput(
            f"vegetation cover outside 0–100 % as {cover_unit}: check the cover unit",
            [{"input": "cover", "reason": "out-of-range", "unit": str(cover_unit)}],
        )
    return np.exp(inputs["coefficient_per_percent"] * cover_percent)


def soil_loss_g_per_m(
    weather_factor_kg_per_m: ArrayLike,
    erodible_fraction: ArrayLike,
    crust_factor: ArrayLike,
    roughness_factor: ArrayLike,
    vegetation_factor: ArrayLike,
    constants: RweqConstants,
) -> FloatArray:
    """Return RWEQ soil loss SL (g/m) per pixel; a zero product x gives zero loss.

    >>> constants = RweqConstants(109.8, 150.71, -0.3711, 50.0)
    >>> round(float(soil_loss_g_per_m(10.0, 0.5, 0.8, 0.9, 1.0, constants)), 5)
    3.38704
    """
    inputs = prepare(
        {
            "weather_factor_kg_per_m": weather_factor_kg_per_m,
            "erodible_fraction": erodible_fraction,
            "crust_factor": crust_factor,
            "roughness_factor": roughness_factor,
            "vegetation_factor": vegetation_factor,
        }
    )
    product = np.ones(np.broadcast_shapes(*(v.shape for v in inputs.values())))
    for value in inputs.values():
        product = product * value
    positive = product > 0.0
    safe = np.where(positive, product, 1.0)  # avoids 0^negative; masked back to 0 below
    q_max = constants.q_max_coefficient * safe
    s_m = constants.s_coefficient * safe**constants.s_exponent
    z_m = constants.critical_distance_m
    loss = (2.0 * z_m / s_m**2) * q_max * np.exp(-((z_m / s_m) ** 2))
    return np.where(np.isnan(product), np.nan, np.where(positive, loss, 0.0))


def sand_fixation_g_per_m(
    weather_factor_kg_per_m: ArrayLike,
    erodible_fraction: ArrayLike,
    crust_factor: ArrayLike,
    roughness_factor: ArrayLike,
    vegetation_factor: ArrayLike,
    constants: RweqConstants,
) -> FloatArray:
    """Return fixation SL(C = 1) − SL(C) in g/m."""
    factors = (weather_factor_kg_per_m, erodible_fraction, crust_factor, roughness_factor)
    potential = soil_loss_g_per_m(*factors, 1.0, constants)
    actual = soil_loss_g_per_m(*factors, vegetation_factor, constants)
    return potential - actual


def sand_fixation_t(fixation_g_per_m: ArrayLike, *, cell_size_m: float, area_m2: ArrayLike) -> FloatArray:
    """Return sand fixed per pixel (t): g/m ÷ cell size (m) = g/m²; × area (m²) × 10⁻⁶ t/g.

    >>> round(float(sand_fixation_t(2.25174, cell_size_m=30.0, area_m2=1e6)), 6)
    0.075058
    """
    size_m = require_positive("cell_size_m", cell_size_m)
    inputs = prepare({"fixation_g_per_m": fixation_g_per_m, "area_m2": area_m2})
    return inputs["fixation_g_per_m"] / size_m * inputs["area_m2"] * T_PER_G
