"""Soil retention 土壤保持: potential minus actual erosion by RUSLE (pure block kernel).

Equation (Ouyang group, 生态学报 2017 37(19):6302; InVEST SDR calls the same quantity
"avoided erosion", ``avoided_erosion = RKLS − USLE``)::

    Q_sr [t/ha] = R · K · LS − R · K · LS · C · P = R · K · LS · (1 − C · P)

with R rainfall erosivity (MJ·mm·ha⁻¹·h⁻¹·a⁻¹), K soil erodibility (t·ha·h·ha⁻¹·MJ⁻¹·mm⁻¹), LS the
slope length-steepness factor (from the DEM, :mod:`gep.indicators.terrain`), C cover-management and
P support-practice factors (dimensionless). Tonnes per pixel = t/ha × area (m²) / 10⁴ m²/ha.

Valuation (linear in Q_sr, :mod:`gep.valuation`): avoided sedimentation λ·Q/ρ·P_s plus avoided
nitrogen and phosphorus Q·c_N·P_N + Q·c_P·P_P.

Block-friendly: element-wise once LS is known (LS itself needs a one-pixel halo of DEM).

>>> float(soil_retention_t_per_ha(2000.0, 0.03, 2.0, 0.1, 1.0))
108.0
"""

from __future__ import annotations

from gep.arrays import ArrayLike, FloatArray, prepare

#: m² per hectare.
M2_PER_HA = 1e4


def potential_erosion_t_per_ha(erosivity: ArrayLike, erodibility: ArrayLike, ls_factor: ArrayLike) -> FloatArray:
    """Return RKLS = R · K · LS, erosion with no cover and no practice (t/ha/a).

    >>> float(potential_erosion_t_per_ha(2000.0, 0.03, 2.0))
    120.0
    """
    inputs = prepare({"erosivity": erosivity, "erodibility": erodibility, "ls_factor": ls_factor})
    return inputs["erosivity"] * inputs["erodibility"] * inputs["ls_factor"]


def actual_erosion_t_per_ha(
    erosivity: ArrayLike,
    erodibility: ArrayLike,
    ls_factor: ArrayLike,
    cover_factor: ArrayLike,
    practice_factor: ArrayLike,
) -> FloatArray:
    """Return USLE = R · K · LS · C · P (t/ha/a)."""
    inputs = prepare({"cover_factor": cover_factor, "practice_factor": practice_factor})
    potential = potential_erosion_t_per_ha(erosivity, erodibility, ls_factor)
    prepare({"potential": potential, **inputs})
    return potential * inputs["cover_factor"] * inputs["practice_factor"]


def soil_retention_t_per_ha(
    erosivity: ArrayLike,
    erodibility: ArrayLike,
    ls_factor: ArrayLike,
    cover_factor: ArrayLike,
    practice_factor: ArrayLike,
) -> FloatArray:
    """Return soil retention R · K · LS · (1 − C · P) in t/ha/a.

    Raises:
        InvalidInput: Misaligned or all-NaN inputs.
    """
    inputs = prepare({"cover_factor": cover_factor, "practice_factor": practice_factor})
    potential = potential_erosion_t_per_ha(erosivity, erodibility, ls_factor)
    prepare({"potential": potential, **inputs})
    return potential * (1.0 - inputs["cover_factor"] * inputs["practice_factor"])


def soil_retention_t(
    erosivity: ArrayLike,
    erodibility: ArrayLike,
    ls_factor: ArrayLike,
    cover_factor: ArrayLike,
    practice_factor: ArrayLike,
    area_m2: ArrayLike,
) -> FloatArray:
    """Return soil retention per pixel in tonnes: t/ha × m² / (m²/ha).

    >>> float(soil_retention_t(2000.0, 0.03, 2.0, 0.1, 1.0, 1e6))
    10800.0
    """
    per_ha = soil_retention_t_per_ha(erosivity, erodibility, ls_factor, cover_factor, practice_factor)
    area = prepare({"retention_t_per_ha": per_ha, "area_m2": area_m2})["area_m2"]
    return per_ha * area / M2_PER_HA
