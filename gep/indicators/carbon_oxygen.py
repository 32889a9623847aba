"""Carbon sequestration and oxygen release 固碳释氧 from net ecosystem production (pure block kernel).

Stoichiometry of photosynthesis, CO₂ + H₂O → CH₂O + O₂: each mole of carbon fixed takes one mole of
CO₂ (44 g) and releases one mole of O₂ (32 g) per 12 g of carbon::

    Q_CO2 [t] = NEP [t C] × 44/12        Q_O2 [t] = NEP [t C] × 32/12

NEP arrives as a flux density in g C·m⁻²·a⁻¹ (MODIS NPP minus heterotrophic respiration, say);
× area (m²) × 10⁻⁶ t/g gives t C per pixel. Negative NEP (a net source) is kept: the pixel releases
carbon, and the accounts must show it. Values: carbon price per t CO₂ (``carbon_price``), industrial
oxygen price per t O₂ (``oxygen_price``).

Block-friendly: element-wise, no halo.

>>> float(carbon_sequestration_tco2(300.0, 1e6))
1100.0
>>> float(oxygen_release_to2(300.0, 1e6))
800.0
"""

from __future__ import annotations

from fractions import Fraction

from core.units import CO2_PER_C
from gep.arrays import ArrayLike, FloatArray, prepare

#: Mass ratio of O₂ to C (32/12): one O₂ released per C fixed.
O2_PER_C = Fraction(32, 12)
#: g → t (t/g).
T_PER_G = 1e-6


def nep_tc(nep_gc_per_m2: ArrayLike, area_m2: ArrayLike) -> FloatArray:
    """Return net ecosystem production per pixel in t C: g C/m² × m² × 10⁻⁶ t/g.

    >>> float(nep_tc(300.0, 1e6))
    300.0
    """
    inputs = prepare({"nep_gc_per_m2": nep_gc_per_m2, "area_m2": area_m2})
    return inputs["nep_gc_per_m2"] * inputs["area_m2"] * T_PER_G


def carbon_sequestration_tco2(nep_gc_per_m2: ArrayLike, area_m2: ArrayLike) -> FloatArray:
    """Return CO₂ fixed per pixel (t CO₂) = NEP (t C) × 44/12."""
    # Multiply by the numerator, then divide: 300 × 44 / 12 is exactly 1100.
    return nep_tc(nep_gc_per_m2, area_m2) * CO2_PER_C.numerator / CO2_PER_C.denominator


def oxygen_release_to2(nep_gc_per_m2: ArrayLike, area_m2: ArrayLike) -> FloatArray:
    """Return O₂ released per pixel (t O₂) = NEP (t C) × 32/12."""
    return nep_tc(nep_gc_per_m2, area_m2) * O2_PER_C.numerator / O2_PER_C.denominator
