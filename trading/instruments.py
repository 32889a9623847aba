"""Instruments: what is traded, in which matching style, within which price band, sizes and hours.

An instrument is one credit class × one vintage year, optionally × one province of origin (GB/T 2260
two-digit code). Only batches of exactly that class and vintage (and province, when set) are deliverable
against it.

Invariants:

- Prices are whole ticks (``tick_fen`` fen each, 0.01 CNY by default) and quantities whole lots of
  ``lot_t`` tonnes (1 t by default); no float anywhere.
- The price band is ``reference × (1 ± band_bp / 10 000)``, each edge rounded half-up to the tick and
  both edges inclusive (M3).
- Size limits are inclusive: national listing orders must be below 100,000 t, so its ``max_quantity_t``
  is 99,999; block orders start at 100,000 t.

>>> price_band(6000, 1000)
(5400, 6600)
>>> price_band(5555, 1000)
(5000, 6111)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from core.money import round_half_up
from trading.calendar import SHANGHAI_AFTERNOON, SHANGHAI_SESSIONS, SessionCalendar
from trading.close_price import CloseRule

BASIS_POINTS = 10_000


class MatchingStyle(StrEnum):
    """How incoming orders meet resting ones (registry-trading §4.6)."""

    #: Continuous double auction, strict price-time priority, trade at the maker's price.
    PRICE_TIME = "price_time"
    #: Hubei: continuous, trade at the middle of bid, ask and last price.
    HUBEI_MID = "hubei_mid"
    #: National listing agreement: a taker clicks any maker within the best five levels, at the maker's price.
    LISTING_CLICK = "listing_click"
    #: Guangdong: a taker may click only the earliest maker at the best price.
    GUANGDONG_CLICK = "guangdong_click"

    @property
    def is_click(self) -> bool:
        """Whether orders rest as listings and trade only when a taker clicks them."""
        return self in (MatchingStyle.LISTING_CLICK, MatchingStyle.GUANGDONG_CLICK)


class StpMode(StrEnum):
    """Self-trade prevention: what happens when a taker meets a maker of the same account."""

    CANCEL_TAKER = "cancel_taker"
    CANCEL_MAKER = "cancel_maker"
    CANCEL_BOTH = "cancel_both"


@dataclass(frozen=True, slots=True)
class ModeRules:
    """Per-mode limits: price band, order size and trading hours.

    Attributes:
        band_bp: Half-width of the price band around the reference price, in basis points.
        min_quantity_t: Smallest order, inclusive.
        max_quantity_t: Largest order, inclusive; ``None`` for no limit.
        calendar: When orders are accepted.
    """

    band_bp: int
    min_quantity_t: int
    max_quantity_t: int | None
    calendar: SessionCalendar


#: National listing agreement: ±10 %, single order < 100,000 t, 9:30–11:30 and 13:00–15:00 (§4.1).
LISTING_RULES = ModeRules(band_bp=1_000, min_quantity_t=1, max_quantity_t=99_999, calendar=SHANGHAI_SESSIONS)
#: National block agreement: ±30 %, at least 100,000 t, 13:00–15:00 (§4.1).
BLOCK_RULES = ModeRules(band_bp=3_000, min_quantity_t=100_000, max_quantity_t=None, calendar=SHANGHAI_AFTERNOON)


def price_band(reference_ticks: int, band_bp: int) -> tuple[int, int]:
    """Return the inclusive ``(low, high)`` price band in ticks, each edge rounded half-up to the tick.

    Args:
        reference_ticks: The reference price (the previous close), in ticks.
        band_bp: The band's half-width in basis points (1,000 = 10 %).

    >>> price_band(10_000, 3_000)
    (7000, 13000)
    """
    low = round_half_up(Fraction(reference_ticks * (BASIS_POINTS - band_bp), BASIS_POINTS))
    high = round_half_up(Fraction(reference_ticks * (BASIS_POINTS + band_bp), BASIS_POINTS))
    return low, high


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable product and the rules of its book.

    Attributes:
        instrument_id: Stable identifier (e.g. ``FFCER-2023-35``).
        credit_class: The credit class deliverable against it (e.g. ``FFCER``).
        vintage_year: The vintage deliverable against it.
        province_code: GB/T 2260 province of origin, or ``None`` for any.
        reference_price_ticks: The previous close, centre of the price band until the first day closes.
        style: The matching style.
        rules: Price band, size limits and hours of the mode.
        close_rule: How the daily close is set (and so the next day's reference).
        tick_fen: Tick size in fen.
        lot_t: Lot size in tonnes.
        market_protection_bp: A market order trades no further than this from the best opposite price.
        click_depth_levels: How many best levels a taker may click into (national listing: 5).
        default_stp: Self-trade prevention when an order names none.
    """

    instrument_id: str
    credit_class: str
    vintage_year: int
    reference_price_ticks: int
    province_code: str | None = None
    style: MatchingStyle = MatchingStyle.PRICE_TIME
    rules: ModeRules = LISTING_RULES
    close_rule: CloseRule = CloseRule.VWAP_DAY
    tick_fen: int = 1
    lot_t: int = 1
    market_protection_bp: int = 500
    click_depth_levels: int = 5
    default_stp: StpMode = StpMode.CANCEL_TAKER

    def __post_init__(self) -> None:
        if self.reference_price_ticks <= 0 or self.tick_fen <= 0 or self.lot_t <= 0:
            raise ValueError("reference price, tick and lot must be positive")

    def is_deliverable(self, credit_class: str, vintage_year: int, province_code: str | None) -> bool:
        """Return whether a batch of this class, vintage and province may settle a trade on this instrument.

        >>> fujian = Instrument("FFCER-2023-35", "FFCER", 2023, 6000, province_code="35")
        >>> fujian.is_deliverable("FFCER", 2023, "35"), fujian.is_deliverable("FFCER", 2024, "35")
        (True, False)
        >>> fujian.is_deliverable("FFCER", 2023, "64")
        False
        """
        if credit_class != self.credit_class or vintage_year != self.vintage_year:
            return False
        return self.province_code is None or province_code == self.province_code
