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

from collections.abc import Callable, Iterable
from fractions import Fraction
from typing import Any

from core.canonical import canonical_hash
from core.money import MoneyError, round_half_up, ticks_from_cny, tonnes_from_quantity
from trading.book import OrderBook, RestingOrder
from trading.close_price import close_price, open_price
from trading.instruments import BASIS_POINTS, Instrument, price_band
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
)
from trading.styles import click, fok_fillable, match_continuous

SNAPSHOT_FORMAT = 1
_RESTING = (TimeInForce.GTC, TimeInForce.DAY)


class InstrumentState:
    """Everything the engine knows about one instrument besides its fixed configuration."""

    __slots__ = ("band_high", "band_low", "book", "day_trades", "halted", "instrument", "last_ticks", "reference_ticks")

    def __init__(self, instrument: Instrument, reference_ticks: int, last_ticks: int) -> None:
        self.instrument = instrument
        self.book = OrderBook()
        self.halted = False
        self.last_ticks = last_ticks
        self.day_trades: list[tuple[int, int]] = []
        self.reference_ticks = reference_ticks
        self.band_low, self.band_high = price_band(reference_ticks, instrument.rules.band_bp)

    def set_reference(self, reference_ticks: int) -> None:
        """Move the reference price and the band around it."""
        self.reference_ticks = reference_ticks
        self.band_low, self.band_high = price_band(reference_ticks, self.instrument.rules.band_bp)

    def quantity(self, raw: QuantityInput) -> int | Reason:
        """Return ``raw`` as whole tonnes within lot and size limits, or the reason it is not."""
        if type(raw) is int:
            quantity_t = raw
        else:
            try:
                quantity_t = tonnes_from_quantity(raw)
            except MoneyError as error:
                return Reason(error.reason)
        rules = self.instrument.rules
        if quantity_t <= 0:
            return Reason.NON_POSITIVE_QUANTITY
        if quantity_t % self.instrument.lot_t:
            return Reason.OFF_LOT
        if quantity_t < rules.min_quantity_t or (
            rules.max_quantity_t is not None and quantity_t > rules.max_quantity_t
        ):
            return Reason.SIZE_LIMIT
        return quantity_t

    def price(self, raw: PriceInput | None) -> int | Reason:
        """Return ``raw`` CNY as ticks inside today's band, or the reason it is not."""
        if raw is None:
            return Reason.MISSING_PRICE
        try:
            price_ticks = ticks_from_cny(raw, self.instrument.tick_fen)
        except MoneyError as error:
            return Reason(error.reason)
        if not self.band_low <= price_ticks <= self.band_high:
            return Reason.OUT_OF_BAND
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


def _crosses(state: InstrumentState, side: Side, price_ticks: int) -> bool:
    best = state.book.opposite(side).best
    return best is not None and (price_ticks >= best if side is Side.BUY else price_ticks <= best)


class MatchingEngine:
    """Order books of several instruments behind one command interface.

    >>> from datetime import datetime, timezone
    >>> from trading.calendar import ALWAYS_OPEN
    >>> from trading.instruments import LISTING_RULES, ModeRules
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
        order_id = getattr(command, "order_id", None)
        if command.seq <= self.last_seq:
            return [Rejected(command.seq, command.instrument_id, order_id, Reason.STALE_SEQUENCE)]
        if command.at.tzinfo is None:
            return [Rejected(command.seq, command.instrument_id, order_id, Reason.NAIVE_TIMESTAMP)]
        state = self.states.get(command.instrument_id)
        if state is None:
            return [Rejected(command.seq, command.instrument_id, order_id, Reason.UNKNOWN_INSTRUMENT)]
        events = self._handlers[type(command)](state, command)
        if type(events[0]) is not Rejected:
            self.last_seq = command.seq
        return events

    def handle_all(self, commands: Iterable[Command]) -> list[Event]:
        """Apply commands in order and return all their events."""
        events: list[Event] = []
        for command in commands:
            events.extend(self.handle(command))
        return events

    # Orders ----------------------------------------------------------------------------------------------

    def _trading_refusal(self, state: InstrumentState, command: PlaceOrder | AmendOrder | ClickOrder) -> Reason | None:
        if state.halted:
            return Reason.HALTED
        if not state.instrument.rules.calendar.is_open(command.at):
            return Reason.OUTSIDE_SESSION
        return None

    def _place(self, state: InstrumentState, cmd: PlaceOrder) -> list[Event]:
        def reject(reason: Reason) -> list[Event]:
            return [Rejected(cmd.seq, cmd.instrument_id, cmd.order_id, reason)]

        refusal = self._trading_refusal(state, cmd)
        if refusal is not None:
            return reject(refusal)
        quantity_t = state.quantity(cmd.quantity_t)
        if isinstance(quantity_t, Reason):
            return reject(quantity_t)
        is_market = cmd.order_type is OrderType.MARKET
        price_ticks = state.market_limit(cmd.side) if is_market else state.price(cmd.price_cny)
        if isinstance(price_ticks, Reason):
            return reject(price_ticks)
        if cmd.order_id in state.book.orders:
            return reject(Reason.DUPLICATE_ORDER_ID)
        style = state.instrument.style
        if style.is_click:
            if is_market or cmd.time_in_force not in _RESTING:
                return reject(Reason.UNSUPPORTED_IN_STYLE)
            if _crosses(state, cmd.side, price_ticks):
                return reject(Reason.CROSSES_BOOK)
        stp = cmd.stp or state.instrument.default_stp
        order = RestingOrder(
            cmd.order_id, cmd.account_id, cmd.side, price_ticks, quantity_t, cmd.seq, cmd.time_in_force, stp
        )
        if cmd.time_in_force is TimeInForce.FOK and not fok_fillable(state.book, order):
            return [
                Accepted(cmd.seq, cmd.instrument_id, cmd.order_id, cmd.account_id, cmd.side, price_ticks, quantity_t),
                Cancelled(cmd.seq, cmd.instrument_id, cmd.order_id, quantity_t, Reason.FOK_UNFILLED),
            ]
        events: list[Event] = [
            Accepted(cmd.seq, cmd.instrument_id, cmd.order_id, cmd.account_id, cmd.side, price_ticks, quantity_t)
        ]
        self._execute(state, order, events, is_market)
        return events

    def _execute(self, state: InstrumentState, order: RestingOrder, events: list[Event], is_market: bool) -> None:
        """Match a new or repriced order in a continuous style, then rest or cancel its remainder.

        The order's priority is the sequence number of the command that placed or repriced it.
        """
        if not state.instrument.style.is_click:
            self.next_trade_id = match_continuous(state, order, events, self.next_trade_id)
        if not order.remaining_t:
            return
        if is_market or order.tif not in _RESTING:
            reason = Reason.MARKET_REMAINDER if is_market else Reason.IOC_REMAINDER
            events.append(
                Cancelled(order.priority, state.instrument.instrument_id, order.order_id, order.remaining_t, reason)
            )
        else:
            state.book.rest(order)

    def _cancel(self, state: InstrumentState, cmd: CancelOrder) -> list[Event]:
        order = state.book.orders.get(cmd.order_id)
        if order is None or order.account_id != cmd.account_id:
            return [Rejected(cmd.seq, cmd.instrument_id, cmd.order_id, Reason.UNKNOWN_ORDER)]
        remaining_t = order.remaining_t
        state.book.remove(order)
        return [Cancelled(cmd.seq, cmd.instrument_id, cmd.order_id, remaining_t, Reason.REQUESTED)]

    def _amend(self, state: InstrumentState, cmd: AmendOrder) -> list[Event]:
        def reject(reason: Reason) -> list[Event]:
            return [Rejected(cmd.seq, cmd.instrument_id, cmd.order_id, reason)]

        refusal = self._trading_refusal(state, cmd)
        if refusal is not None:
            return reject(refusal)
        order = state.book.orders.get(cmd.order_id)
        if order is None or order.account_id != cmd.account_id:
            return reject(Reason.UNKNOWN_ORDER)
        quantity_t = order.remaining_t if cmd.quantity_t is None else state.quantity(cmd.quantity_t)
        price_ticks = order.price_ticks if cmd.price_cny is None else state.price(cmd.price_cny)
        if isinstance(quantity_t, Reason):
            return reject(quantity_t)
        if isinstance(price_ticks, Reason):
            return reject(price_ticks)
        if quantity_t == order.remaining_t and price_ticks == order.price_ticks:
            return reject(Reason.NO_CHANGE)
        if price_ticks == order.price_ticks and quantity_t < order.remaining_t:
            state.book.reduce(order, order.remaining_t - quantity_t)
            return [Amended(cmd.seq, cmd.instrument_id, cmd.order_id, price_ticks, quantity_t, True)]
        if state.instrument.style.is_click and _crosses(state, order.side, price_ticks):
            return reject(Reason.CROSSES_BOOK)
        state.book.remove(order)
        moved = RestingOrder(
            order.order_id, order.account_id, order.side, price_ticks, quantity_t, cmd.seq, order.tif, order.stp
        )
        events: list[Event] = [Amended(cmd.seq, cmd.instrument_id, cmd.order_id, price_ticks, quantity_t, False)]
        self._execute(state, moved, events, is_market=False)
        return events

    def _click(self, state: InstrumentState, cmd: ClickOrder) -> list[Event]:
        def reject(reason: Reason) -> list[Event]:
            return [Rejected(cmd.seq, cmd.instrument_id, cmd.order_id, reason)]

        if not state.instrument.style.is_click:
            return reject(Reason.UNSUPPORTED_IN_STYLE)
        refusal = self._trading_refusal(state, cmd)
        if refusal is not None:
            return reject(refusal)
        quantity_t = state.quantity(cmd.quantity_t)
        if isinstance(quantity_t, Reason):
            return reject(quantity_t)
        level_ticks = None if cmd.price_cny is None else state.price(cmd.price_cny)
        if isinstance(level_ticks, Reason):
            return reject(level_ticks)
        if cmd.order_id in state.book.orders:
            return reject(Reason.DUPLICATE_ORDER_ID)
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
        state.day_trades = []
        state.last_ticks = close_ticks
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
            state.day_trades = [(price, quantity) for price, quantity in saved["day_trades"]]
            state.book = OrderBook.restore(saved["book"])
        return engine
