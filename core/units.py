"""Units of area and carbon, exact where the definition is exact.

Areas are kept in square metres (m²) internally. The Chinese mu (亩) is defined as 1/15 hectare, so
``1 mu = 10000/15 m²`` exactly; conversions use :class:`fractions.Fraction`-exact constants and
return ``Decimal`` or ``float`` as the caller asks.

>>> M2_PER_MU
Fraction(2000, 3)
>>> round(mu_from_m2(1_000_000.0), 6)
1500.0
>>> ha_from_m2(2_197_400.0)
219.74
>>> m2_from_mu(15)
10000.0
"""

from __future__ import annotations

from fractions import Fraction

M2_PER_HA = Fraction(10_000)
#: 1 mu = 1/15 ha = 10000/15 m² (exact, by definition of the market mu 市亩).
M2_PER_MU = Fraction(10_000, 15)
#: Mass ratio of CO2 to C (44/12), used to turn t C into t CO2e.
CO2_PER_C = Fraction(44, 12)


def ha_from_m2(area_m2: float) -> float:
    """Return hectares from square metres (m² / (m²/ha) = ha)."""
    return float(area_m2 / float(M2_PER_HA))


def mu_from_m2(area_m2: float) -> float:
    """Return mu from square metres (m² / (m²/mu) = mu)."""
    return float(area_m2 * 15 / 10_000)


def m2_from_ha(area_ha: float) -> float:
    """Return square metres from hectares."""
    return float(area_ha * float(M2_PER_HA))


def m2_from_mu(area_mu: float) -> float:
    """Return square metres from mu (mu × 10000/15 m²/mu = m²)."""
    return float(area_mu * 10_000 / 15)
