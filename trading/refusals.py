"""Refusals a person can act on: the engine's reason codes turned into sentences with the facts behind them.

The engine answers a refused command with a stable reason code (:class:`trading.orders.Reason`); clients switch
on the code, people read the sentence. A price-band refusal says the band ``[low, high]``, the reference price
it is centred on, its half-width and the tick, and carries them as extension members (CNY decimal strings,
integer ticks), so a client can offer a valid price without another request.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from core.errors import OrderRejected
from core.money import Fen
from trading.instruments import price_band
from trading.orders import Reason

#: What each refusal means, for people (the reason code stays the stable, machine-readable part).
REASON_TEXT: dict[Reason, str] = {
    Reason.STALE_SEQUENCE: "the command is older than the book's last command",
    Reason.NAIVE_TIMESTAMP: "the command's time has no time zone",
    Reason.UNKNOWN_INSTRUMENT: "the instrument is not listed",
    Reason.HALTED: "trading in the instrument is halted",
    Reason.NOT_HALTED: "the instrument is not halted",
    Reason.OUTSIDE_SESSION: "the instrument is outside its trading session",
    Reason.FLOAT_NOT_ALLOWED: "prices and quantities are decimal strings, never floating-point numbers",
    Reason.INVALID_AMOUNT: "the price is not a positive decimal amount",
    Reason.OFF_TICK: "the price is not a multiple of the tick",
    Reason.FRACTIONAL_QUANTITY: "quantities are whole tonnes",
    Reason.NON_POSITIVE_QUANTITY: "quantities are whole tonnes > 0",
    Reason.OFF_LOT: "the quantity is not a whole number of lots",
    Reason.SIZE_LIMIT: "the quantity is outside the instrument's order size limits",
    Reason.MISSING_PRICE: "a limit order needs a price",
    Reason.OUT_OF_BAND: "the price is outside the price band",
    Reason.DUPLICATE_ORDER_ID: "an order with this id exists already",
    Reason.UNKNOWN_ORDER: "no such resting order",
    Reason.NO_CHANGE: "the amendment changes nothing",
    Reason.UNSUPPORTED_IN_STYLE: "the instrument's matching style does not take this kind of order",
    Reason.CROSSES_BOOK: "the order would cross the book, which this style does not allow",
    Reason.NO_SUCH_LEVEL: "no resting order at that price",
    Reason.BEYOND_BEST_LEVELS: "the price is beyond the best levels this style lets you take",
    Reason.NOT_BEST_MAKER: "that maker order is not first at its price",
    Reason.QUANTITY_EXCEEDS_MAKER: "the quantity exceeds the maker order's",
    Reason.SELF_TRADE: "the order would trade with the same organisation's order",
}


def _cny(ticks: int, tick_fen: int) -> Decimal:
    return Fen(ticks * tick_fen).cny  # ticks × fen/tick = fen


def band_facts(reference_ticks: int, band_bp: int, tick_fen: int) -> dict[str, Any]:
    """Return a price band's facts: ``[low, high]``, reference, half-width and tick, in CNY and ticks.

    >>> band_facts(6000, 1000, 1)["band_cny"], band_facts(6000, 1000, 1)["reference_price_cny"]
    (['54.00', '66.00'], '60.00')
    """
    low, high = price_band(reference_ticks, band_bp)
    return {
        "band_cny": [str(_cny(low, tick_fen)), str(_cny(high, tick_fen))],
        "band_ticks": [low, high],
        "reference_price_cny": str(_cny(reference_ticks, tick_fen)),
        "band_percent": f"{Decimal(band_bp) / 100:g}",
        "tick_cny": str(Fen(tick_fen).cny),
    }


def band_sentence(facts: dict[str, Any], *, band: str = "price band") -> str:
    """Return the band as people read it.

    >>> band_sentence(band_facts(6000, 1000, 1))
    'the price band is [54.00, 66.00] CNY: the reference price 60.00 CNY ± 10 %, on a tick of 0.01 CNY'
    """
    low, high = facts["band_cny"]
    return (
        f"the {band} is [{low}, {high}] CNY: the reference price {facts['reference_price_cny']} CNY "
        f"± {facts['band_percent']} %, on a tick of {facts['tick_cny']} CNY"
    )


def out_of_band(
    price_cny: Any, reference_ticks: int, band_bp: int, tick_fen: int, *, band: str = "price band"
) -> OrderRejected:
    """Return the refusal of a price outside the band, saying the band, its reference price and the tick."""
    facts = band_facts(reference_ticks, band_bp, tick_fen)
    price = f"price {price_cny} CNY" if price_cny is not None else "the price"
    return OrderRejected(
        f"{price} is outside the {band}; {band_sentence(facts, band=band)}", Reason.OUT_OF_BAND.value, **facts
    )


def rejection(reason: Reason, *, price_cny: Any = None, reference_ticks: int = 0, band_bp: int = 0,
              tick_fen: int = 1) -> OrderRejected:  # fmt: skip
    """Return the refusal of a command the engine rejected with ``reason`` (the band's facts for out_of_band)."""
    if reason is Reason.OUT_OF_BAND:
        return out_of_band(price_cny, reference_ticks, band_bp, tick_fen)
    return OrderRejected(f"the order was rejected: {REASON_TEXT.get(reason, reason.value)}", reason.value)
