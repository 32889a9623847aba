"""GCJ-02 ("Mars coordinates") to WGS 84 / CGCS2000 lon/lat, and back (pure).

Many Chinese web-map boundary sets (Amap/Gaode, Tencent, and everything derived from them, such as
DataV's GeoJSON) are published in GCJ-02: WGS 84 coordinates shifted by a deliberate, smoothly varying
offset of 100–700 m. :func:`wgs84_to_gcj02` is the widely published forward formula (the constants
are those of the Krasovsky ellipsoid it was written with); :func:`gcj02_to_wgs84` inverts it by fixed-
point iteration, ``w ← w − (f(w) − g)``, which converges because the offset changes by far less than
the step (|∂offset/∂x| ≲ 10⁻⁴). Inside China, ten iterations leave a residual below 10⁻⁹ degrees
(about 0.1 mm); outside the rectangle the formula covers, coordinates pass unchanged.

CGCS2000 and WGS 84 (G1762) agree to a few centimetres at epoch; Shanhai treats them as one datum at the
metre level (see ``docs/data-provenance.md``).

>>> lon, lat = wgs84_to_gcj02(106.3, 35.5)
>>> round((lon - 106.3) * 1e5), round((lat - 35.5) * 1e5)  # Jingyuan: about 380 m east, 40 m south
(422, -35)
>>> back = gcj02_to_wgs84(lon, lat)
>>> round(back[0], 9), round(back[1], 9)
(106.3, 35.5)
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

KRASOVSKY_A_M = 6378245.0
KRASOVSKY_EE = 0.00669342162296594323
INVERSE_ITERATIONS = 10

FloatArray = npt.NDArray[np.float64]


def _outside(lon: FloatArray, lat: FloatArray) -> npt.NDArray[np.bool_]:
    """The formula applies inside a rectangle around China; outside it no offset is applied."""
    return (lon < 72.004) | (lon > 137.8347) | (lat < 0.8293) | (lat > 55.8271)


def _offset_deg(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return the GCJ-02 offset (degrees of longitude, latitude) at WGS 84 points."""
    x = lon - 105.0
    y = lat - 35.0
    pi = math.pi
    common = (20.0 * np.sin(6.0 * x * pi) + 20.0 * np.sin(2.0 * x * pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x)) + common
    dlat += (20.0 * np.sin(y * pi) + 40.0 * np.sin(y / 3.0 * pi)) * 2.0 / 3.0
    dlat += (160.0 * np.sin(y / 12.0 * pi) + 320.0 * np.sin(y * pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x)) + common
    dlon += (20.0 * np.sin(x * pi) + 40.0 * np.sin(x / 3.0 * pi)) * 2.0 / 3.0
    dlon += (150.0 * np.sin(x / 12.0 * pi) + 300.0 * np.sin(x / 30.0 * pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * pi
    magic = 1.0 - KRASOVSKY_EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    # metres → degrees on the Krasovsky ellipsoid: meridian and parallel radii of curvature
    dlat = dlat * 180.0 / ((KRASOVSKY_A_M * (1.0 - KRASOVSKY_EE)) / (magic * sqrt_magic) * pi)
    dlon = dlon * 180.0 / (KRASOVSKY_A_M / sqrt_magic * np.cos(rad_lat) * pi)
    outside = _outside(lon, lat)
    return np.where(outside, 0.0, dlon), np.where(outside, 0.0, dlat)


def wgs84_to_gcj02_array(coords: FloatArray) -> FloatArray:
    """Shift an ``(n, 2)`` array of WGS 84 lon/lat to GCJ-02."""
    lon, lat = coords[:, 0], coords[:, 1]
    dlon, dlat = _offset_deg(lon, lat)
    return np.column_stack([lon + dlon, lat + dlat])


def gcj02_to_wgs84_array(coords: FloatArray) -> FloatArray:
    """Invert :func:`wgs84_to_gcj02_array` on an ``(n, 2)`` array by fixed-point iteration."""
    target = np.asarray(coords, dtype=np.float64)
    guess = target.copy()
    for _ in range(INVERSE_ITERATIONS):
        guess = guess - (wgs84_to_gcj02_array(guess) - target)
    return guess


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Return the GCJ-02 coordinates of one WGS 84 point."""
    shifted = wgs84_to_gcj02_array(np.array([[lon, lat]], dtype=np.float64))
    return float(shifted[0, 0]), float(shifted[0, 1])


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Return the WGS 84 coordinates of one GCJ-02 point (iterative inverse, residual < 1e-9°)."""
    restored = gcj02_to_wgs84_array(np.array([[lon, lat]], dtype=np.float64))
    return float(restored[0, 0]), float(restored[0, 1])
