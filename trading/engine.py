"""The matching engine: commands in, events out, for many instruments, deterministically.

Pure: no database, HTTP, clock, randomness or settings. Each command carries its sequence number and
timestamp (ADR 005); the engine only reads them.

Invariants:

- **Rejections change nothing.** A rejected command yields exactly one :class:`~trading.orders.Rejected`
  event with a stable reason, and the state — and so :meth:`MatchingEngine.state_hash` — is unchanged; the
  sequence cursor does not move either.
- **Determinism.** The events and the state depend only on the instruments and the command journal: the
  engine iterates nothing whose order is unspecified, and the state hash is the SHA-256 of the canonical JSON
  of :meth:`MatchingEngine.snapshot`. A snapshot at N plus the commands after N gives the same events and hash
  as the full journal (``trading.replay``).
- **Sequence numbers strictly increase** over accepted commands; time priority is the accepting sequence.
- **Prices stay in the band.** Every order price is inside the instrument's band; at the end of the day
  resting orders outside the next day's band are cancelled, so no trade ever prints outside the band.
- Order ids are unique among *live* orders of an instrument; uniqueness across history is the intake's job
  (idempotency keys, ADR 005).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, cast

from core.canonical import canonical_hash
from core.money import MoneyError, round_half_up, ticks_from_cny, tonnes_from_quantity
from trading.book import OrderBook, RestingOrder
from trading.close_price import close_price, open_price
from trading.instruments import BASIS_POINTS, Instrument, MatchingStyle, price_band
from trading.orders import (
    Accepted,
    Amended,
    AmendOrder,
    Cancelled,
    CancelOrder,
    ClickOrder,
    Command,
    DayClosed,
    EndOfDay,
    Event,
    Expired,
    Halted,
    HaltInstrument,
    OrderCommand,
    OrderType,
    PlaceOrder,
    PriceInput,
    QuantityInput,
    Reason,
    Rejected,
    Resumed,
    ResumeInstrument,
    Side,
    TimeInForce,
    make_event,
)
from trading.styles import click, fok_fillable, match_continuous

SNAPSHOT_FORMAT = 1
_PRICE_CACHE_SIZE = 4_096
_RESTING = (TimeInForce.GTC, TimeInForce.DAY)
_MARKET, _FOK, _BUY = OrderType.MARKET, TimeInForce.FOK, Side.BUY
_new_object = object.__new__


class InstrumentState:
    """Everything the engine knows about one instrument besides its fixed configuration."""

    __slots__ = (
        "band_high",
        "band_low",
        "book",
        "calendar",
        "day_trade_log",
        "default_stp",
        "halted",
        "hubei",
        "instrument",
        "instrument_id",
        "is_click",
        "last_ticks",
        "max_quantity_t",
        "min_quantity_t",
        "price_cache",
        "reference_ticks",
        "simple_lot",
    )

    def __init__(self, instrument: Instrument, reference_ticks: int, last_ticks: int) -> None:
        self.instrument = instrument
        self.instrument_id = instrument.instrument_id
        self.book = OrderBook()
        self.halted = False
        self.last_ticks = last_ticks
        #: The day's trades flat, ``[price_ticks, quantity_t, price_ticks, quantity_t, …]`` in the order they
        #: happened: two ints per fill and no tuple, so the garbage collector has nothing new to track per fill.
        self.day_trade_log: list[int] = []
        # Derived from the configuration, kept flat for the hot path (not part of the state).
        self.is_click = instrument.style.is_click
        self.hubei = instrument.style is MatchingStyle.HUBEI_MID
        self.calendar = instrument.rules.calendar
        self.default_stp = instrument.default_stp
        self.min_quantity_t = max(instrument.rules.min_quantity_t, 1)
        self.max_quantity_t = instrument.rules.max_quantity_t or sys.maxsize
        self.simple_lot = instrument.lot_t == 1
        #: Valid in-band prices already converted, keyed by their ``Decimal`` or ``str`` input (a cache: it
        #: holds nothing the band and tick do not determine, and is cleared when the band moves).
        self.price_cache: dict[object, int] = {}
        self.set_reference(reference_ticks)

    def set_reference(self, reference_ticks: int) -> None:
        """Move the reference price and the band around it."""
        self.reference_ticks = reference_ticks
        self.band_low, self.band_high = price_band(reference_ticks, self.instrument.rules.band_bp)
        self.price_cache.clear()

    @property
    def day_trades(self) -> list[tuple[int, int]]:
        """Return the day's trades as ``(price_ticks, quantity_t)`` pairs, in the order they happened."""
        log = self.day_trade_log
        return list(zip(log[::2], log[1::2], strict=True))

    def refusal(self, at: datetime) -> Reason | None:
        """Return why the instrument does not trade at ``at`` (halted, outside a session), or ``None``."""
        if self.halted:
            return Reason.HALTED
        calendar = self.calendar
        if not (calendar.always_open or calendar.is_open(at)):
            return Reason.OUTSIDE_SESSION
        return None

    def quantity(self, raw: QuantityInput) -> int | Reason:
        """Return ``raw`` as whole tonnes within lot and size limits, or the reason it is not."""
        if type(raw) is int:
            quantity_t = raw
        else:
            try:
                quantity_t = tonnes_from_quantity(raw)
            except MoneyError as error:
                return Reason(error.reason)
        if quantity_t <= 0:
            return Reason.NON_POSITIVE_QUANTITY
        if quantity_t % self.instrument.lot_t:
            return Reason.OFF_LOT
        if not self.min_quantity_t <= quantity_t <= self.max_quantity_t:
            return Reason.SIZE_LIMIT
        return quantity_t

    def price(self, raw: PriceInput | None) -> int | Reason:
        """Return ``raw`` CNY as ticks inside today's band, or the reason it is not."""
        if raw.__class__ is Decimal or raw.__class__ is str:
            cached = self.price_cache.get(raw)
            if cached is not None:
                return cached
        return self.convert_price(raw)

    def convert_price(self, raw: PriceInput | None) -> int | Reason:
        """:meth:`price` without the cache look-up (the caller has missed it); remembers a valid result.

        Only ``str`` and ``Decimal`` inputs are cached: a float or a bool equal to a cached ``Decimal`` must never
        hit the cache, or it would escape the float check.
        """
        if raw is None:
            return Reason.MISSING_PRICE
        try:
            price_ticks = ticks_from_cny(raw, self.instrument.tick_fen)
        except MoneyError as error:
            return Reason(error.reason)
        if not self.band_low <= price_ticks <= self.band_high:
            return Reason.OUT_OF_BAND
        if (raw.__class__ is Decimal or raw.__class__ is str) and len(self.price_cache) < _PRICE_CACHE_SIZE:
            self.price_cache[raw] = price_ticks
        return price_ticks

    def market_limit(self, side: Side) -> int:
        """Return a market order's protection price: best opposite ± protection, capped at the band edge."""
        best = self.book.opposite(side).best
        if best is None:
            return self.band_high if side is Side.BUY else self.band_low
        step = Fraction(best * self.instrument.market_protection_bp, BASIS_POINTS)  # ticks × bp / bp = ticks
        if side is Side.BUY:
            return min(self.band_high, round_half_up(best + step))
        return max(self.band_low, round_half_up(best - step))

    def snapshot(self) -> dict[str, Any]:
        """Return this instrument's state in canonical form."""
        return {
            "halted": self.halted,
            "reference_ticks": self.reference_ticks,
            "last_ticks": self.last_ticks,
            "day_trades": [list(trade) for trade in self.day_trades],
            "book": self.book.snapshot(),
        }


def _reject(command: Command, reason: Reason) -> list[Event]:
    order_id = command.order_id if isinstance(command, OrderCommand) else None
    return [Rejected(command.seq, command.instrument_id, order_id, reason)]


def _crosses(state: InstrumentState, side: Side, price_ticks: int) -> bool:
    best = (state.book.asks if side is _BUY else state.book.bids).best
    return best is not None and (price_ticks >= best if side is _BUY else price_ticks <= best)


class MatchingEngine:
    """Order books of several instruments behind one command interface.

    >>> from datetime import datetime, timezone
    >>> from trading.calendar import ALWAYS_OPEN
    >>> from trading.instruments import ModeRules
    >>> rules = ModeRules(band_bp=1000, min_quantity_t=1, max_quantity_t=99_999, calendar=ALWAYS_OPEN)
    >>> engine = MatchingEngine([Instrument("FFCER-2023", "FFCER", 2023, 6000, rules=rules)])
    >>> at = datetime(2026, 11, 25, 2, tzinfo=timezone.utc)
    >>> sell = PlaceOrder(seq=1, at=at, instrument_id="FFCER-2023", order_id="s1", account_id="seller",
    ...                   side=Side.SELL, price_cny="60.00", quantity_t=60)
    >>> buy = PlaceOrder(seq=2, at=at, instrument_id="FFCER-2023", order_id="b1", account_id="buyer",
    ...                  side=Side.BUY, price_cny="60.00", quantity_t=100)
    >>> _ = engine.handle(sell)
    >>> [type(event).__name__ for event in engine.handle(buy)]
    ['Accepted', 'Fill']
    >>> engine.handle(PlaceOrder(seq=3, at=at, instrument_id="FFCER-2023", order_id="b2", account_id="buyer",
    ...                          side=Side.BUY, price_cny="66.01", quantity_t=1))[0].reason
    <Reason.OUT_OF_BAND: 'out_of_band'>
    """

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        self.states: dict[str, InstrumentState] = {}
        for instrument in instruments:
            if instrument.instrument_id in self.states:
                raise ValueError(f"instrument {instrument.instrument_id} configured twice")
            reference = instrument.reference_price_ticks
            self.states[instrument.instrument_id] = InstrumentState(instrument, reference, reference)
        self.last_seq = 0
        self.next_trade_id = 1
        self._handlers: dict[type, Callable[[InstrumentState, Any], list[Event]]] = {
            PlaceOrder: self._place,
            CancelOrder: self._cancel,
            AmendOrder: self._amend,
            ClickOrder: self._click,
            HaltInstrument: self._halt,
            ResumeInstrument: self._resume,
            EndOfDay: self._end_of_day,
        }

    def handle(self, command: Command) -> list[Event]:
        """Apply one command and return its events (a single ``Rejected`` if it was refused)."""
        state = self.states.get(command.instrument_id)
        seq = command.seq
        if seq <= self.last_seq:
            return _reject(command, Reason.STALE_SEQUENCE)
        if command.at.tzinfo is None:
            return _reject(command, Reason.NAIVE_TIMESTAMP)
        if state is None:
            return _reject(command, Reason.UNKNOWN_INSTRUMENT)
        if command.__class__ is PlaceOrder:  # the most frequent command: no dictionary look-up; it moves last_seq
            return self._place(state, command)
        events = self._handlers[command.__class__](state, command)
        if events[0].__class__ is not Rejected:
            self.last_seq = seq
        return events

    def handle_all(self, commands: Iterable[Command]) -> list[Event]:
        """Apply commands in order and return all their events."""
        events: list[Event] = []
        for command in commands:
            events.extend(self.handle(command))
        return events

    # Orders ----------------------------------------------------------------------------------------------

    def _place(self, state: InstrumentState, cmd: PlaceOrder) -> list[Event]:
        """Place an order; unlike the other handlers, move ``last_seq`` once the order is accepted.

        The common case (open instrument, int quantity, a price seen before, no FOK) is inlined: this is the hot
        path. ``state.refusal()``, ``state.quantity()`` and ``state.price()`` are the general forms of the three
        checks, and ``_execute()`` and ``book.rest()`` of the end.
        """
        calendar = state.calendar
        if state.halted or not (calendar.always_open or calendar.is_open(cmd.at)):
            return _reject(cmd, state.refusal(cmd.at) or Reason.OUTSIDE_SESSION)
        quantity_t = cmd.quantity_t
        if not (
            quantity_t.__class__ is int
            and state.simple_lot
            and state.min_quantity_t <= quantity_t <= state.max_quantity_t
        ):  # min_quantity_t ≥ 1, so a quantity that passes is positive
            quantity_t = state.quantity(cmd.quantity_t)
            if type(quantity_t) is not int:  # not isinstance(…, Reason): that costs 0.14 µs on an enum
                return _reject(cmd, cast(Reason, quantity_t))
        side, order_id = cmd.side, cmd.order_id
        price_ticks: int | Reason | None
        if cmd.order_type is _MARKET:
            is_market = True
            price_ticks = state.market_limit(side)
        else:
            is_market = False
            raw_price = cmd.price_cny
            # state.price(), inlined; only str and Decimal inputs are cached (see convert_price).
            price_ticks = (
                state.price_cache.get(raw_price)
                if raw_price.__class__ is Decimal or raw_price.__class__ is str
                else None
            )
            if price_ticks is None:
                price_ticks = state.convert_price(raw_price)
                if type(price_ticks) is not int:  # not isinstance(…, Reason): that costs 0.14 µs on an enum
                    return _reject(cmd, cast(Reason, price_ticks))
        book, tif = state.book, cmd.time_in_force
        orders = book.orders
        if order_id in orders:
            return _reject(cmd, Reason.DUPLICATE_ORDER_ID)
        if state.is_click:
            if is_market or tif not in _RESTING:
                return _reject(cmd, Reason.UNSUPPORTED_IN_STYLE)
            if _crosses(state, side, price_ticks):
                return _reject(cmd, Reason.CROSSES_BOOK)
        seq, account_id = cmd.seq, cmd.account_id
        self.last_seq = seq  # accepted: nothing below rejects
        accepted = make_event(Accepted, (seq, cmd.instrument_id, order_id, account_id, side, price_ticks, quantity_t))
        stp = cmd.stp or state.default_stp
        if tif is _FOK and not fok_fillable(
            book, RestingOrder(order_id, account_id, side, price_ticks, quantity_t, seq, tif, stp)
        ):
            return [accepted, Cancelled(seq, cmd.instrument_id, order_id, quantity_t, Reason.FOK_UNFILLED)]
        events: list[Event] = [accepted]
        # _execute(), inlined without building a RestingOrder for a taker that fills completely.
        if side is _BUY:
            best, own = book.asks.best, book.bids
            crosses = best is not None and price_ticks >= best
        else:
            best, own = book.bids.best, book.asks
            crosses = best is not None and price_ticks <= best
        if crosses and not state.is_click:
            quantity_t, self.next_trade_id = match_continuous(
                state, events, self.next_trade_id, seq, order_id, account_id, side, price_ticks, quantity_t, stp
            )
            if not quantity_t:
                return events
        if is_market or tif not in _RESTING:
            reason = Reason.MARKET_REMAINDER if is_market else Reason.IOC_REMAINDER
            events.append(Cancelled(seq, cmd.instrument_id, order_id, quantity_t, reason))
            return events
        # book.rest(), inlined.
        level = own.levels.get(price_ticks) or own.level_for(price_ticks)
        # RestingOrder(order_id, account_id, side, price_ticks, quantity_t, seq, tif, stp) without the call of
        # __init__, which costs more than the order's eight slot writes.
        order = _new_object(RestingOrder)
        order.order_id = order_id
        order.account_id = account_id
        order.side = side
        order.price_ticks = price_ticks
        order.remaining_t = quantity_t
        order.priority = seq
        order.tif = tif
        order.stp = stp
        level.queue.append(order)
        level.quantity_t += quantity_t
        level.live_count += 1
        orders[order_id] = order
        return events

    def _execute(self, state: InstrumentState, order: RestingOrder, events: list[Event], is_market: bool) -> None:
        """Match a new or repriced order in a continuous style, then rest or cancel its remainder.

        The order's priority is the sequence number of the command that placed or repriced it.
        """
        book, is_buy, price_ticks = state.book, order.side is _BUY, order.price_ticks
        best = (book.asks if is_buy else book.bids).best
        if best is not None and not state.is_click and (price_ticks >= best if is_buy else price_ticks <= best):
            order.remaining_t, self.next_trade_id = match_continuous(
                state, events, self.next_trade_id, order.priority, order.order_id, order.account_id, order.side,
                price_ticks, order.remaining_t, order.stp,
            )  # fmt: skip
            if not order.remaining_t:
                return
        if is_market or order.tif not in _RESTING:
            reason = Reason.MARKET_REMAINDER if is_market else Reason.IOC_REMAINDER
            events.append(Cancelled(order.priority, state.instrument_id, order.order_id, order.remaining_t, reason))
        else:
            book.rest(order)

    def _cancel(self, state: InstrumentState, cmd: CancelOrder) -> list[Event]:
        order = state.book.orders.get(cmd.order_id)
        if order is None or order.account_id != cmd.account_id:
            return _reject(cmd, Reason.UNKNOWN_ORDER)
        remaining_t = order.remaining_t
        state.book.remove(order)
        return [Cancelled(cmd.seq, cmd.instrument_id, cmd.order_id, remaining_t, Reason.REQUESTED)]

    def _amend(self, state: InstrumentState, cmd: AmendOrder) -> list[Event]:
        refusal = state.refusal(cmd.at)
        if refusal is not None:
            return _reject(cmd, refusal)
        order = state.book.orders.get(cmd.order_id)
        if order is None or order.account_id != cmd.account_id:
            return _reject(cmd, Reason.UNKNOWN_ORDER)
        quantity_t = order.remaining_t if cmd.quantity_t is None else state.quantity(cmd.quantity_t)
        price_ticks = order.price_ticks if cmd.price_cny is None else state.price(cmd.price_cny)
        if isinstance(quantity_t, Reason):
            return _reject(cmd, quantity_t)
        if isinstance(price_ticks, Reason):
            return _reject(cmd, price_ticks)
        if quantity_t == order.remaining_t and price_ticks == order.price_ticks:
            return _reject(cmd, Reason.NO_CHANGE)
        if price_ticks == order.price_ticks and quantity_t < order.remaining_t:
            state.book.reduce(order, order.remaining_t - quantity_t)
            return [Amended(cmd.seq, cmd.instrument_id, cmd.order_id, price_ticks, quantity_t, True)]
        if state.is_click and _crosses(state, order.side, price_ticks):
            return _reject(cmd, Reason.CROSSES_BOOK)
        state.book.remove(order)
        moved = RestingOrder(
            order.order_id, order.account_id, order.side, price_ticks, quantity_t, cmd.seq, order.tif, order.stp
        )
        events: list[Event] = [Amended(cmd.seq, cmd.instrument_id, cmd.order_id, price_ticks, quantity_t, False)]
        self._execute(state, moved, events, is_market=False)
        return events

    def _click(self, state: InstrumentState, cmd: ClickOrder) -> list[Event]:
        if not state.is_click:
            return _reject(cmd, Reason.UNSUPPORTED_IN_STYLE)
        refusal = state.refusal(cmd.at)
        if refusal is not None:
            return _reject(cmd, refusal)
        quantity_t = state.quantity(cmd.quantity_t)
        if isinstance(quantity_t, Reason):
            return _reject(cmd, quantity_t)
        level_ticks = None if cmd.price_cny is None else state.price(cmd.price_cny)
        if isinstance(level_ticks, Reason):
            return _reject(cmd, level_ticks)
        if cmd.order_id in state.book.orders:
            return _reject(cmd, Reason.DUPLICATE_ORDER_ID)
        events = click(state, cmd, quantity_t, level_ticks, self.next_trade_id)
        if type(events[0]) is not Rejected:
            self.next_trade_id += 1
        return events

    # Instrument lifecycle --------------------------------------------------------------------------------

    def _halt(self, state: InstrumentState, cmd: HaltInstrument) -> list[Event]:
        if state.halted:
            return [Rejected(cmd.seq, cmd.instrument_id, None, Reason.HALTED)]
        state.halted = True
        return [Halted(cmd.seq, cmd.instrument_id)]

    def _resume(self, state: InstrumentState, cmd: ResumeInstrument) -> list[Event]:
        if not state.halted:
            return [Rejected(cmd.seq, cmd.instrument_id, None, Reason.NOT_HALTED)]
        state.halted = False
        return [Resumed(cmd.seq, cmd.instrument_id)]

    def _end_of_day(self, state: InstrumentState, cmd: EndOfDay) -> list[Event]:
        """Expire day orders, close the day, re-centre the band and cancel what falls outside it."""
        book, seq, instrument_id = state.book, cmd.seq, cmd.instrument_id
        events: list[Event] = []
        for order in sorted(book.orders.values(), key=lambda o: o.priority):
            if order.tif is TimeInForce.DAY:
                events.append(Expired(seq, instrument_id, order.order_id, order.remaining_t))
                book.remove(order)
        trades = state.day_trades
        close_ticks = close_price(state.instrument.close_rule, trades, state.reference_ticks)
        volume_t = sum(quantity_t for _, quantity_t in trades)
        events.append(DayClosed(seq, instrument_id, open_price(trades, state.reference_ticks), close_ticks, volume_t))
        state.day_trade_log = []
        state.last_ticks = close_ticks
        book.bids.spare.clear()  # the band moves: spare levels of today's prices need not outlive the day
        book.asks.spare.clear()
        state.set_reference(close_ticks)
        for order in sorted(book.orders.values(), key=lambda o: o.priority):
            if not state.band_low <= order.price_ticks <= state.band_high:
                events.append(Cancelled(seq, instrument_id, order.order_id, order.remaining_t, Reason.OUT_OF_BAND))
                book.remove(order)
        return events

    # State -----------------------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Return the whole engine state in canonical form (JSON-serialisable, deterministic)."""
        return {
            "format": SNAPSHOT_FORMAT,
            "last_seq": self.last_seq,
            "next_trade_id": self.next_trade_id,
            "instruments": {instrument_id: state.snapshot() for instrument_id, state in sorted(self.states.items())},
        }

    def state_hash(self) -> str:
        """Return the SHA-256 of the canonical JSON of :meth:`snapshot`."""
        return canonical_hash(self.snapshot())

    @classmethod
    def from_snapshot(cls, instruments: Iterable[Instrument], snapshot: dict[str, Any]) -> MatchingEngine:
        """Rebuild an engine from its configuration and a :meth:`snapshot`.

        Raises:
            ValueError: The snapshot has another format or names an instrument that is not configured.
        """
        if snapshot.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unsupported snapshot format {snapshot.get('format')!r}")
        engine = cls(instruments)
        engine.last_seq = snapshot["last_seq"]
        engine.next_trade_id = snapshot["next_trade_id"]
        for instrument_id, saved in snapshot["instruments"].items():
            if instrument_id not in engine.states:
                raise ValueError(f"snapshot names unconfigured instrument {instrument_id}")
            state = engine.states[instrument_id]
            state.halted = saved["halted"]
            state.set_reference(saved["reference_ticks"])
            state.last_ticks = saved["last_ticks"]
            state.day_trade_log = [value for price, quantity in saved["day_trades"] for value in (price, quantity)]
            state.book = OrderBook.restore(saved["book"])
        return engine
