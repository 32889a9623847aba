"""Pure kernels of reversal monitoring: which pixels lost cover, how much of each plot, how many tonnes at risk.

Nothing here reads a file, a database or the clock: numpy blocks and plain values in, arrays and values out.
The service (:mod:`carbon.reversals.watch`) reads the windows (:mod:`geodata.tiling`) and persists.

* :func:`ndvi_loss` — a pixel lost cover when it was vegetated before (``before >= min_before_ndvi``) and its
  NDVI fell by at least ``ndvi_drop`` *and* by at least ``relative_drop`` of its value before. Both images
  must be valid at the pixel (NaN is no data: never a loss).
* :func:`cover_loss` — land-cover composites: a pixel lost cover when its class before is one of the
  vegetated classes and its class after is not.
* :func:`plot_sums` — per plot label, the area (m²) of loss pixels and of valid pixels of a tile, summed
  with ``np.bincount`` (pixel centre rule: a pixel belongs to the plot its centre falls in).
* :func:`season_gap_days` — the day-of-year distance between two dates, across the new year.
* :func:`unit_removals` / :func:`plot_shares` — each methodology unit's removal read from a report's trace,
  and each plot's share of the report (Σ its units' removals / Σ all units' removals).
* :func:`tonnes_at_risk` — a plot's share of an issued batch times the share of the plot that was lost,
  rounded *up* to whole tonnes (a reversal must cover the loss; issuance floors, so cancellation ceils).

>>> import numpy as np
>>> before = np.array([[0.8, 0.8, 0.3, np.nan]])
>>> after = np.array([[0.3, 0.7, 0.0, 0.1]])
>>> ndvi_loss(before, after, min_before_ndvi=0.4, ndvi_drop=0.2, relative_drop=0.3).tolist()
[[True, False, False, False]]
>>> season_gap_days(date(2024, 12, 20), date(2025, 1, 10))
21
>>> tonnes_at_risk(Decimal(1000), Decimal("0.5"), Decimal("0.101"))
51
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import ROUND_CEILING, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int32]

#: Trace step names holding one unit's removal over the period, per methodology unit kind.
_REMOVAL_STEP = re.compile(r"^(sub_compartment|polygon|stratum)\[(?P<unit>[^\]]+)\]\.removal_tco2e$")
#: CCER-14-001 records stocks at the start and the end per stratum; the removal is their difference.
_STOCK_STEP = re.compile(r"^stratum\[(?P<unit>[^\]]+)\]\.(?P<when>start|end)\.(?P<pool>[a-z_]+)_stock_tco2e$")


def ndvi_loss(
    before: FloatArray, after: FloatArray, *, min_before_ndvi: float, ndvi_drop: float, relative_drop: float
) -> BoolArray:
    """Return the pixels that lost vegetation between two NDVI composites (NaN anywhere: no loss)."""
    with np.errstate(invalid="ignore"):
        fall = before - after
        lost: BoolArray = (before >= min_before_ndvi) & (fall >= ndvi_drop) & (fall >= relative_drop * before)
    return lost


def cover_loss(before: FloatArray, after: FloatArray, vegetated_classes: Iterable[int]) -> BoolArray:
    """Return the pixels whose class went from a vegetated class to any other valid class."""
    classes = np.array(sorted(set(vegetated_classes)), dtype=np.float64)
    lost: BoolArray = np.isin(before, classes) & ~np.isin(after, classes) & np.isfinite(after)
    return lost


def valid_pixels(before: FloatArray, after: FloatArray) -> BoolArray:
    """Return the pixels where both composites have data."""
    valid: BoolArray = np.isfinite(before) & np.isfinite(after)
    return valid


def plot_sums(labels: IntArray, lost: BoolArray, valid: BoolArray, areas_m2: FloatArray, count: int) -> FloatArray:
    """Return a ``(count + 1, 2)`` array: per label (0 = no plot), the lost and the valid area in m².

    >>> labels = np.array([[1, 1, 2, 0]], dtype=np.int32)
    >>> lost = np.array([[True, False, True, True]])
    >>> plot_sums(labels, lost, np.ones((1, 4), bool), np.full((1, 4), 100.0), 2).tolist()
    [[100.0, 100.0], [100.0, 200.0], [100.0, 100.0]]
    """
    flat = labels.ravel()
    out = np.zeros((count + 1, 2), dtype=np.float64)
    out[:, 0] = np.bincount(flat, weights=(areas_m2 * (lost & valid)).ravel(), minlength=count + 1)
    out[:, 1] = np.bincount(flat, weights=(areas_m2 * valid).ravel(), minlength=count + 1)
    return out


def season_gap_days(first: date, second: date) -> int:
    """Return the days between two dates' places in the year, the shorter way round the new year.

    Each date is moved to the years around the other (29 February to the 28th), the nearest wins, and the
    smaller of the two ways is taken, so the gap is symmetric.

    >>> season_gap_days(date(2023, 7, 1), date(2025, 7, 31)), season_gap_days(date(2024, 1, 15), date(2025, 7, 15))
    (30, 181)
    """
    return min(_gap_to(first, second), _gap_to(second, first))


def _gap_to(moving: date, fixed: date) -> int:
    gaps = []
    for year in (fixed.year - 1, fixed.year, fixed.year + 1):
        leap_day = (moving.month, moving.day) == (2, 29)
        moved = moving.replace(year=year, day=28) if leap_day else moving.replace(year=year)
        gaps.append(abs((fixed - moved).days))
    return min(gaps)


def midpoint(start: date, end: date) -> date:
    """Return the middle day of a composite's acquisition window."""
    return date.fromordinal((start.toordinal() + end.toordinal()) // 2)


def unit_removals(trace: Iterable[Mapping[str, Any]]) -> dict[str, Decimal]:
    """Return each methodology unit's removal over the period (t CO2e) from a report's trace.

    Units with a ``…[id].removal_tco2e`` step take it; CCER strata take Σ pools (end − start) of their
    ``stratum[id].end|start.<pool>_stock_tco2e`` steps.

    >>> unit_removals([{"name": "sub_compartment[A].removal_tco2e", "value": "4.5"}])
    {'A': Decimal('4.5')}
    >>> unit_removals([{"name": "stratum[S1].start.tree_stock_tco2e", "value": "10"},
    ...                {"name": "stratum[S1].end.tree_stock_tco2e", "value": "25"}])
    {'S1': Decimal('15')}
    """
    removals: dict[str, Decimal] = {}
    stocks: dict[str, Decimal] = {}
    for step in trace:
        name = str(step.get("name", ""))
        found = _REMOVAL_STEP.match(name)
        if found:
            removals[found["unit"]] = Decimal(str(step["value"]))
            continue
        stock = _STOCK_STEP.match(name)
        if stock:
            sign = Decimal(1) if stock["when"] == "end" else Decimal(-1)
            stocks[stock["unit"]] = stocks.get(stock["unit"], Decimal(0)) + sign * Decimal(str(step["value"]))
    return {**stocks, **removals}


def plot_shares(removals: Mapping[str, Decimal], unit_plots: Mapping[str, int]) -> dict[int, Decimal]:
    """Return each plot's share of a report: Σ its units' removals / Σ all units' removals (exact decimals).

    Negative unit removals count as zero (a unit that lost stock carries no issued tonnes). When no unit
    removed anything, the plots share nothing.

    >>> plot_shares({"A": Decimal(3), "B": Decimal(1)}, {"A": 7, "B": 8})
    {7: Decimal('0.75'), 8: Decimal('0.25')}
    """
    positive = {unit: max(value, Decimal(0)) for unit, value in removals.items() if unit in unit_plots}
    total = sum(positive.values(), Decimal(0))
    shares: dict[int, Decimal] = {}
    for unit, value in positive.items():
        plot = unit_plots[unit]
        shares[plot] = shares.get(plot, Decimal(0)) + (value / total if total else Decimal(0))
    return shares


def tonnes_at_risk(issued_t: Decimal, plot_share: Decimal, lost_fraction: Decimal) -> int:
    """Return the whole tonnes at risk: ``issued × plot share × lost share of the plot``, rounded up, capped."""
    exact = issued_t * plot_share * min(max(lost_fraction, Decimal(0)), Decimal(1))
    return min(int(exact.to_integral_value(rounding=ROUND_CEILING)), int(issued_t))
