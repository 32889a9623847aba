"""Commands into the matching engine and events out of it.

Every command carries the sequence number and the timestamp that the sequencer gave it (ADR 005); the
engine never reads a clock. Prices arrive as CNY (``int``, ``Decimal`` or decimal string) and quantities as
tonnes, exactly as a client typed them, so that the engine itself can reject an off-tick price or a
fractional quantity with a reason; inside the engine and in every event they are ``int`` ticks and tonnes.

Events are immutable named tuples (cheap to build on the hot path); ``event_record`` turns one into a plain
mapping for canonical JSON. Rejections are events with a stable :class:`Reason`, never exceptions, and a
rejected command changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, NamedTuple

from trading.instruments import StpMode

PriceInput = int | Decimal | str
QuantityInput = int | Decimal | str


class Side(StrEnum):
    """Buy (bid) or sell (ask)."""

    BUY = "buy"
    SELL = "sell"


class OrderType(StrEnum):
    """Limit orders carry a price; market orders trade against the book within price protection."""

    LIMIT = "limit"
    MARKET = "market"


class TimeInForce(StrEnum):
    """How long an order's remainder lives."""

    #: Good till cancelled: rests across days.
    GTC = "gtc"
    #: Rests until the instrument's end of day, then expires.
    DAY = "day"
    #: Immediate or cancel: trades what it can now, the rest is cancelled.
    IOC = "ioc"
    #: Fill or kill: trades all of it now, or nothing.
    FOK = "fok"


class Reason(StrEnum):
    """Stable reason codes of rejections and cancellations."""

    STALE_SEQUENCE = "stale_sequence"
    NAIVE_TIMESTAMP = "naive_timestamp"
    UNKNOWN_INSTRUMENT = "unknown_instrument"
    HALTED = "halted"
    NOT_HALTED = "not_halted"
    OUTSIDE_SESSION = "outside_session"
    FLOAT_NOT_ALLOWED = "float_not_allowed"
    INVALID_AMOUNT = "invalid_amount"
    OFF_TICK = "off_tick"
    FRACTIONAL_QUANTITY = "fractional_quantity"
    NON_POSITIVE_QUANTITY = "non_positive_quantity"
    OFF_LOT = "off_lot"
    SIZE_LIMIT = "size_limit"
    MISSING_PRICE = "missing_price"
    OUT_OF_BAND = "out_of_band"
    DUPLICATE_ORDER_ID = "duplicate_order_id"
    UNKNOWN_ORDER = "unknown_order"
    NO_CHANGE = "no_change"
    UNSUPPORTED_IN_STYLE = "unsupported_in_style"
    CROSSES_BOOK = "crosses_book"
    NO_SUCH_LEVEL = "no_such_level"
    BEYOND_BEST_LEVELS = "beyond_best_levels"
    NOT_BEST_MAKER = "not_best_maker"
    QUANTITY_EXCEEDS_MAKER = "quantity_exceeds_maker"
    SELF_TRADE = "self_trade"
    # Cancellations only.
    REQUESTED = "requested"
    IOC_REMAINDER = "ioc_remainder"
    FOK_UNFILLED = "fok_unfilled"
    MARKET_REMAINDER = "market_remainder"


# Commands ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class InstrumentCommand:
    """What every command carries: the sequencer's number and timestamp, and the instrument it is for."""

    seq: int
    at: datetime
    instrument_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCommand(InstrumentCommand):
    """A command about one order of one account."""

    order_id: str
    account_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaceOrder(OrderCommand):
    """Enter a limit or market order (in click styles: list a maker order)."""

    side: Side
    quantity_t: QuantityInput
    price_cny: PriceInput | None = None
    order_type: OrderType = OrderType.LIMIT
    time_in_force: TimeInForce = TimeInForce.GTC
    stp: StpMode | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CancelOrder(OrderCommand):
    """Cancel the remainder of a resting order; only its account may."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AmendOrder(OrderCommand):
    """Change a resting order's remaining quantity and/or price.

    Lowering the quantity keeps time priority; a new price or a higher quantity loses it (the order goes to
    the back of its level and may trade at once in a continuous style).
    """

    quantity_t: QuantityInput | None = None
    price_cny: PriceInput | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClickOrder(OrderCommand):
    """Listing-click styles: take a resting maker order at its price.

    Name the maker (``maker_order_id``) or a price level (``price_cny``: the earliest maker there). The traded
    quantity is the taker's declared quantity, which must not exceed the maker's remainder.
    """

    side: Side
    quantity_t: QuantityInput
    maker_order_id: str | None = None
    price_cny: PriceInput | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HaltInstrument(InstrumentCommand):
    """Stop trading an instrument: new orders, amends and clicks are rejected; cancels still work."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeInstrument(InstrumentCommand):
    """Resume trading a halted instrument."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndOfDay(InstrumentCommand):
    """Close the trading day: expire day orders, set the close, and make it the next reference price."""


Command = PlaceOrder | CancelOrder | AmendOrder | ClickOrder | HaltInstrument | ResumeInstrument | EndOfDay


# Events --------------------------------------------------------------------------------------------------


class Accepted(NamedTuple):
    """An order entered the engine (it may trade and rest next)."""

    seq: int
    instrument_id: str
    order_id: str
    account_id: str
    side: Side
    price_ticks: int
    quantity_t: int


class Rejected(NamedTuple):
    """A command was refused and changed nothing."""

    seq: int
    instrument_id: str
    order_id: str | None
    reason: Reason


class Fill(NamedTuple):
    """A trade between a taker and a resting maker."""

    seq: int
    instrument_id: str
    trade_id: int
    price_ticks: int
    quantity_t: int
    taker_order_id: str
    maker_order_id: str
    taker_account_id: str
    maker_account_id: str
    taker_side: Side


class Cancelled(NamedTuple):
    """An order's remainder left the book (asked for, IOC/FOK/market remainder, or self-trade prevention)."""

    seq: int
    instrument_id: str
    order_id: str
    remaining_t: int
    reason: Reason


class Expired(NamedTuple):
    """A day order's remainder expired at the end of the day."""

    seq: int
    instrument_id: str
    order_id: str
    remaining_t: int


class Amended(NamedTuple):
    """A resting order's quantity and/or price changed."""

    seq: int
    instrument_id: str
    order_id: str
    price_ticks: int
    quantity_t: int
    priority_kept: bool


class Halted(NamedTuple):
    """The instrument was halted."""

    seq: int
    instrument_id: str


class Resumed(NamedTuple):
    """The instrument resumed trading."""

    seq: int
    instrument_id: str


class DayClosed(NamedTuple):
    """The day closed; ``close_ticks`` becomes the next reference price."""

    seq: int
    instrument_id: str
    open_ticks: int
    close_ticks: int
    volume_t: int


Event = Accepted | Rejected | Fill | Cancelled | Expired | Amended | Halted | Resumed | DayClosed

#: ``make_event(Fill, (…))`` builds an event from a tuple of all its fields in order, skipping the generated
#: ``NamedTuple.__new__``: a quarter of the cost, for the engine's hot path.
make_event = tuple.__new__


def event_record(event: Event) -> dict[str, Any]:
    """Return an event as a plain mapping with its kind, ready for canonical JSON.

    >>> event_record(Halted(seq=7, instrument_id="X"))
    {'kind': 'Halted', 'seq': 7, 'instrument_id': 'X'}
    """
    return {"kind": type(event).__name__, **event._asdict()}
