"""Open and close prices of a trading day, as pure functions over the day's trades.

A trade is ``(price_ticks, quantity_t)``, in the order the trades happened. Every result is a whole
number of ticks: a VWAP is rounded half-up to the tick (四舍五入). With no trades, the close is the
previous close.

Rules (registry-trading §4.1–4.4):

- National listing (``VWAP_DAY``): close = VWAP of all of the day's trades.
- Hubei (``HUBEI_LAST_5``): close = VWAP of the last 5 trades, or of all if fewer than 5.
- Guangdong (``GUANGDONG``): if the day's volume is at most 100 t, close = the open; otherwise the VWAP.

>>> day = [(6000, 10), (6100, 30)]
>>> vwap_ticks(day)
6075
>>> close_price(CloseRule.VWAP_DAY, day, previous_close_ticks=5900)
6075
>>> close_price(CloseRule.VWAP_DAY, [], previous_close_ticks=5900)
5900
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from fractions import Fraction

from core.money import round_half_up

Trade = tuple[int, int]
#: Guangdong: a day with at most this many tonnes traded closes at its open.
GUANGDONG_THIN_DAY_T = 100


class CloseRule(StrEnum):
    """How an instrument's daily close price is set."""

    VWAP_DAY = "vwap_day"
    HUBEI_LAST_5 = "hubei_last_5"
    GUANGDONG = "guangdong"


def vwap_ticks(trades: Sequence[Trade]) -> int:
    """Return the volume-weighted average price, rounded half-up to the tick.

    Raises:
        ValueError: There are no trades, or their volume is not positive.

    >>> vwap_ticks([(5000, 1), (5001, 1)])  # 5000.5 rounds half-up
    5001
    """
    volume_t = sum(quantity_t for _, quantity_t in trades)
    if volume_t <= 0:
        raise ValueError("a VWAP needs trades with a positive volume")
    notional = sum(price_ticks * quantity_t for price_ticks, quantity_t in trades)  # ticks × t
    return round_half_up(Fraction(notional, volume_t))  # (ticks × t) / t = ticks


def open_price(trades: Sequence[Trade], previous_close_ticks: int) -> int:
    """Return the day's open: the first trade's price, or the previous close if none.

    >>> open_price([(6100, 5), (6000, 5)], 5900), open_price([], 5900)
    (6100, 5900)
    """
    return trades[0][0] if trades else previous_close_ticks


def close_vwap_day(trades: Sequence[Trade], previous_close_ticks: int) -> int:
    """National listing: the VWAP of all the day's trades; the previous close if none."""
    return vwap_ticks(trades) if trades else previous_close_ticks


def close_hubei_last_5(trades: Sequence[Trade], previous_close_ticks: int) -> int:
    """Hubei: the VWAP of the last five trades (all, if fewer); the previous close if none.

    >>> close_hubei_last_5([(1000, 100)] + [(2000, 1)] * 5, 1500)
    2000
    """
    return vwap_ticks(trades[-5:]) if trades else previous_close_ticks


def close_guangdong(trades: Sequence[Trade], open_ticks: int, previous_close_ticks: int) -> int:
    """Guangdong: the open if at most 100 t traded that day, else the VWAP; the previous close if none.

    >>> close_guangdong([(6000, 60), (6200, 40)], open_ticks=5900, previous_close_ticks=5900)
    5900
    >>> close_guangdong([(6000, 60), (6200, 41)], open_ticks=5900, previous_close_ticks=5900)
    6081
    """
    if not trades:
        return previous_close_ticks
    if sum(quantity_t for _, quantity_t in trades) <= GUANGDONG_THIN_DAY_T:
        return open_ticks
    return vwap_ticks(trades)


def close_price(rule: CloseRule, trades: Sequence[Trade], previous_close_ticks: int) -> int:
    """Return the close under ``rule``.

    Guangdong's open is the previous close: its 2018 rule reads "close = open (= previous close)" for thin
    days (registry-trading §4.4).
    """
    if rule is CloseRule.HUBEI_LAST_5:
        return close_hubei_last_5(trades, previous_close_ticks)
    if rule is CloseRule.GUANGDONG:
        return close_guangdong(trades, previous_close_ticks, previous_close_ticks)
    return close_vwap_day(trades, previous_close_ticks)
