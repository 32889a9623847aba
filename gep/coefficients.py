"""Kernel parameter objects built from the coefficient table, so no coefficient lives in code (pure).

Each builder reads the entries it needs with their expected units (a wrong unit or a missing entry is
refused by :meth:`gep.prices.ParameterTable.entry`) and returns the frozen parameter object or the
keyword arguments of a kernel.

>>> from gep.prices import load_table
>>> table = load_table("coefficients_default")
>>> rweq_constants(table).critical_distance_m
50.0
>>> ls_coefficients(table).s_breaks_degree
(5.0, 10.0)
"""

from __future__ import annotations

from gep.indicators.sand_fixation import RweqConstants
from gep.indicators.terrain import LsCoefficients
from gep.prices import ParameterTable

#: Cover types with an RWEQ vegetation coefficient a (``rweq_cover_coefficient_<type>``).
RWEQ_COVER_TYPES = ("woodland", "grassland", "shrub", "bare", "sandy", "cropland")


def rweq_constants(table: ParameterTable) -> RweqConstants:
    """Return the empirical RWEQ constants."""
    return RweqConstants(
        q_max_coefficient=table.number("rweq_q_max_coefficient", unit="1"),
        s_coefficient=table.number("rweq_s_coefficient", unit="1"),
        s_exponent=table.number("rweq_s_exponent", unit="1"),
        critical_distance_m=table.number("rweq_critical_distance", unit="m"),
    )


def rweq_cover_coefficients_per_percent(table: ParameterTable) -> dict[str, float]:
    """Return a (per percent of cover) for every RWEQ cover type."""
    return {kind: table.number(f"rweq_cover_coefficient_{kind}", unit="1/percent") for kind in RWEQ_COVER_TYPES}


def ls_coefficients(table: ParameterTable) -> LsCoefficients:
    """Return the coefficients of the local LS formula (ADR 006)."""
    n = table.number
    return LsCoefficients(
        slope_length_m=n("ls_slope_length", unit="m"),
        m_breaks_percent=tuple(n(f"ls_m_break_{i}", unit="percent") for i in (1, 2, 3)),
        m_values=tuple(n(f"ls_m_{i}", unit="1") for i in (1, 2, 3, 4)),
        s_breaks_degree=tuple(n(f"ls_s_break_{i}", unit="degree") for i in (1, 2)),
        s_slopes=tuple(n(f"ls_s_slope_{i}", unit="1") for i in (1, 2, 3)),
        s_intercepts=tuple(n(f"ls_s_intercept_{i}", unit="1") for i in (1, 2, 3)),
    )


def lake_parameters(table: ParameterTable) -> dict[str, float]:
    """Return the keyword arguments of :func:`~gep.indicators.flood_regulation.lake_storage_m3`."""
    return {
        "log_coefficient": table.number("lake_log_coefficient", unit="1"),
        "area_exponent": table.number("lake_area_exponent", unit="1"),
    }


def water_evaporation_parameters(table: ParameterTable) -> dict[str, float]:
    """Return the keyword arguments of :func:`~gep.indicators.climate_regulation.water_evaporation_kwh`."""
    return {
        "latent_heat_kj_per_kg": table.number("latent_heat_of_evaporation", unit="kJ/kg"),
        "water_density_kg_per_m3": table.number("water_density", unit="kg/m3"),
        "energy_efficiency_ratio": table.number("energy_efficiency_ratio", unit="1"),
        "humidifier_kwh_per_m3": table.number("humidifier_consumption", unit="kWh/m3"),
    }
