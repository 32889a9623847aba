"""Slope and the RUSLE LS factor from a DEM (pure neighbourhood kernel, one-pixel halo).

LS approach (ADR 006): a **local** formula, not flow accumulation. Flow-accumulation LS (Desmet &
Govers 1996, used by InVEST SDR) needs the whole DEM routed before any block can be evaluated; a local
LS needs only each pixel's 3 × 3 neighbourhood, so it tiles with a one-pixel halo:

- slope θ by Horn's (1981) 3 × 3 finite difference;
- L = (λ / 22.13)^m with an explicit slope length λ (m) and m by slope class (Wischmeier & Smith 1978:
  0.2 below 1 %, 0.3 below 3 %, 0.4 below 5 %, 0.5 from 5 %);
- S by McCool et al. (1987) below 10° and Liu et al. (1994) for steep slopes, the combination used
  for the Loess Plateau: 10.8 sin θ + 0.03 (θ < 5°), 16.8 sin θ − 0.50 (5° ≤ θ < 10°),
  21.91 sin θ − 0.96 (θ ≥ 10°).

The coefficients come from the coefficient table (``ls_*`` keys), not from this module.

**Halo.** :func:`slope_radians` takes a block *with* a one-pixel halo on every side and returns the
interior, so a tiler reads each tile grown by one pixel. At the raster edge the reader pads by
repeating the edge (:func:`pad_edge`), which is what a whole-array call does too; the tiled and
whole-DEM results are then identical.

>>> dem = np.array([[10.0, 10.0, 10.0], [20.0, 20.0, 20.0], [30.0, 30.0, 30.0]])
>>> round(float(np.degrees(slope_radians(dem, cell_x_m=10.0, cell_y_m=10.0))[0, 0]), 6)
45.0
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.errors import InvalidInput
from gep.arrays import ArrayLike, FloatArray, as_float_array, require_positive

#: Unit plot length of the USLE (m).
UNIT_PLOT_LENGTH_M = 22.13


@dataclass(frozen=True)
class LsCoefficients:
    """Coefficients of the local LS formula, loaded from the coefficient table.

    Attributes:
        slope_length_m: Slope length λ used for every pixel (m).
        m_breaks_percent: Upper bounds of the slope classes for m (percent), ascending.
        m_values: m for each class, one more than ``m_breaks_percent`` (the last is open-ended).
        s_breaks_degree: Upper bounds of the S classes (degrees), ascending.
        s_slopes: Coefficient a of S = a · sin θ + b per class.
        s_intercepts: Coefficient b of S = a · sin θ + b per class.
    """

    slope_length_m: float
    m_breaks_percent: tuple[float, ...]
    m_values: tuple[float, ...]
    s_breaks_degree: tuple[float, ...]
    s_slopes: tuple[float, ...]
    s_intercepts: tuple[float, ...]

    def __post_init__(self) -> None:
        """Refuse class tables whose lengths do not fit together."""
        problems = []
        if len(self.m_values) != len(self.m_breaks_percent) + 1:
            problems.append({"input": "m_values", "reason": "needs one more value than m_breaks_percent"})
        if not len(self.s_slopes) == len(self.s_intercepts) == len(self.s_breaks_degree) + 1:
            problems.append({"input": "s_slopes", "reason": "needs one more class than s_breaks_degree"})
        if problems:
            raise InvalidInput("LS coefficient classes do not fit together", problems)


def pad_edge(dem_m: ArrayLike) -> FloatArray:
    """Return the DEM with a one-pixel halo made by repeating the edge (for the raster border).

    >>> pad_edge(np.array([[1.0, 2.0]])).tolist()
    [[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]]
    """
    return np.pad(as_float_array("dem_m", dem_m), 1, mode="edge")


def slope_radians(dem_with_halo_m: ArrayLike, *, cell_x_m: float, cell_y_m: float) -> FloatArray:
    """Return the slope (radians) of the interior of a DEM block that carries a one-pixel halo.

    Horn (1981): dz/dx = ((c + 2f + i) − (a + 2d + g)) / (8 Δx), dz/dy likewise along rows, for the
    3 × 3 window a b c / d e f / g h i. A NaN anywhere in the window gives NaN.

    Raises:
        InvalidInput: The block is not 2-D with at least 3 × 3 cells, or a cell size is not positive.
    """
    dem = as_float_array("dem_m", dem_with_halo_m)
    dx = require_positive("cell_x_m", cell_x_m)
    dy = require_positive("cell_y_m", cell_y_m)
    if dem.ndim != 2 or dem.shape[0] < 3 or dem.shape[1] < 3:
        raise InvalidInput(
            f"dem_m must be a 2-D block with a one-pixel halo (at least 3 × 3), got shape {dem.shape}",
            [{"input": "dem_m", "reason": "no-halo", "shape": list(dem.shape)}],
        )
    a, b, c = dem[:-2, :-2], dem[:-2, 1:-1], dem[:-2, 2:]
    d, f = dem[1:-1, :-2], dem[1:-1, 2:]
    g, h, i = dem[2:, :-2], dem[2:, 1:-1], dem[2:, 2:]
    dz_dx = ((c + 2 * f + i) - (a + 2 * d + g)) / (8 * dx)
    dz_dy = ((g + 2 * h + i) - (a + 2 * b + c)) / (8 * dy)
    return np.arctan(np.hypot(dz_dx, dz_dy))


def ls_factor(slope_rad: ArrayLike, coefficients: LsCoefficients) -> FloatArray:
    """Return the local LS factor for slopes in radians (NaN stays NaN).

    >>> coef = LsCoefficients(22.13, (1.0, 3.0, 5.0), (0.2, 0.3, 0.4, 0.5), (5.0, 10.0),
    ...                       (10.8, 16.8, 21.91), (0.03, -0.5, -0.96))
    >>> round(float(ls_factor(np.radians(20.0), coef)), 6)  # L = 1 at λ = 22.13 m
    6.533661
    """
    theta = as_float_array("slope_rad", slope_rad)
    lam = require_positive("slope_length_m", coefficients.slope_length_m)
    slope_percent = np.tan(theta) * 100.0
    m_class = np.digitize(np.nan_to_num(slope_percent), coefficients.m_breaks_percent)
    m = np.asarray(coefficients.m_values)[m_class]
    length_factor = (lam / UNIT_PLOT_LENGTH_M) ** m
    s_class = np.digitize(np.nan_to_num(np.degrees(theta)), coefficients.s_breaks_degree)
    sin_theta = np.sin(theta)
    steepness = np.asarray(coefficients.s_slopes)[s_class] * sin_theta + np.asarray(coefficients.s_intercepts)[s_class]
    return np.where(np.isnan(theta), np.nan, length_factor * steepness)
