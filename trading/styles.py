"""Matching styles: how a taker meets makers (registry-trading §4.1–4.4).

- ``PRICE_TIME``: the taker walks the opposite side best price first, earliest order first within a price,
  and trades at each maker's price while the maker's price is within the taker's limit.
- ``HUBEI_MID``: the same walk, but each trade prints at the middle of the bid, the ask and the last trade
  price (the previous close before the day's first trade). With bid ≥ ask that middle is
  ``max(ask, min(bid, last))``, always inside ``[ask, bid]``.
- ``LISTING_CLICK`` (national listing agreement): orders rest as listings and never cross; a taker clicks a
  maker within the best five levels of the opposite side, any maker at its level, and trades its declared
  quantity at the maker's price.
- ``GUANGDONG_CLICK``: as listing-click, but only the earliest maker at the best price may be clicked.

Self-trade prevention applies when a taker meets a maker of its own account: ``CANCEL_TAKER`` cancels the
taker's remainder and leaves the maker, ``CANCEL_MAKER`` cancels the maker and goes on, ``CANCEL_BOTH``
cancels both. A click on one's own listing is rejected.

>>> hubei_price(bid_ticks=6100, ask_ticks=5900, last_ticks=6000), hubei_price(6100, 5900, 5800)
(6000, 5900)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from trading.book import Level, OrderBook, RestingOrder
from trading.instruments import MatchingStyle, StpMode
from trading.orders import Accepted, Cancelled, ClickOrder, Event, Fill, Reason, Rejected, Side, make_event

_BUY = Side.BUY

if TYPE_CHECKING:
    from trading.engine import InstrumentState


def hubei_price(bid_ticks: int, ask_ticks: int, last_ticks: int) -> int:
    """Return the middle of bid, ask and last price, for a crossing pair (bid ≥ ask).

    >>> hubei_price(6100, 5900, 6500)
    6100
    """
    return max(ask_ticks, min(bid_ticks, last_ticks))


def match_continuous(
    state: InstrumentState,
    events: list[Event],
    trade_id: int,
    seq: int,
    taker_id: str,
    taker_account: str,
    taker_side: Side,
    limit: int,
    remaining: int,
    stp: StpMode,
) -> tuple[int, int]:
    """Trade a taker against the opposite side until it is filled, out of price, or stopped by STP.

    The taker is given by its fields (``seq`` is its priority, ``limit`` its price, ``remaining`` its
    remainder), so that a taker that fills completely never becomes a :class:`RestingOrder`. Appends fills (and
    STP cancellations) to ``events`` and returns the taker's remainder and the next free trade id; the caller
    rests or cancels the remainder. This is the engine's hot loop: the level's totals and the last price live
    in locals and are written back once per level.
    """
    book, instrument_id = state.book, state.instrument_id
    is_buy, hubei, last = taker_side is _BUY, state.hubei, state.last_ticks
    opposite = book.asks if is_buy else book.bids
    levels, orders, day_trade_log = opposite.levels, book.orders, state.day_trade_log
    while remaining:
        best = opposite.best
        if best is None or (best > limit if is_buy else best < limit):
            break
        level = levels[best]
        queue = level.queue
        live_count, remaining_at_level = level.live_count, remaining
        while remaining and live_count:
            maker = queue[0]
            maker_remaining = maker.remaining_t
            if not maker_remaining:  # dead: cancelled or amended away, skipped lazily
                queue.popleft()
                continue
            if maker.account_id == taker_account:
                level.quantity_t -= remaining_at_level - remaining
                level.live_count = live_count
                remaining = _prevent_self_trade(stp, seq, taker_id, remaining, level, orders, events, instrument_id)
                live_count, remaining_at_level = level.live_count, remaining
                continue
            if hubei:
                last = hubei_price(limit, best, last) if is_buy else hubei_price(best, limit, last)
            else:
                last = best
            if maker_remaining <= remaining:  # the maker leaves the book: level.take_front(orders), inlined
                quantity_t = maker_remaining
                queue.popleft()
                live_count -= 1
                del orders[maker.order_id]
            else:
                quantity_t = remaining
                maker.remaining_t = maker_remaining - remaining
            events.append(
                make_event(Fill, (seq, instrument_id, trade_id, last, quantity_t, taker_id, maker.order_id,
                            taker_account, maker.account_id, taker_side))
            )  # fmt: skip
            trade_id += 1
            day_trade_log.append(last)
            day_trade_log.append(quantity_t)
            remaining -= quantity_t
        # Every fill took its quantity from the taker and from this level alike.
        level.quantity_t -= remaining_at_level - remaining
        level.live_count = live_count
        if not live_count:
            opposite.drop_level(best)
    state.last_ticks = last
    return remaining, trade_id


def _prevent_self_trade(
    stp: StpMode,
    seq: int,
    taker_id: str,
    remaining: int,
    level: Level,
    orders: dict[str, RestingOrder],
    events: list[Event],
    instrument_id: str,
) -> int:
    """Apply the taker's STP mode against the maker at the front of ``level`` (same account).

    Returns the taker's remainder (zero once it is cancelled).
    """
    maker = level.queue[0]
    if stp is not StpMode.CANCEL_TAKER:
        events.append(Cancelled(seq, instrument_id, maker.order_id, maker.remaining_t, Reason.SELF_TRADE))
        level.take_front(orders)
    if stp is not StpMode.CANCEL_MAKER:
        events.append(Cancelled(seq, instrument_id, taker_id, remaining, Reason.SELF_TRADE))
        return 0
    return remaining


def fok_fillable(book: OrderBook, taker: RestingOrder) -> bool:
    """Return whether a fill-or-kill taker would fill completely, without changing anything.

    Liquidity is counted in matching order up to the taker's limit; a maker of the taker's own account is
    skipped under ``CANCEL_MAKER`` (it would be cancelled) and ends the count otherwise (the taker would be).
    """
    opposite, is_buy, available_t = book.opposite(taker.side), taker.side is Side.BUY, 0
    for price in opposite.prices_in_priority():
        if price > taker.price_ticks if is_buy else price < taker.price_ticks:
            return False
        for maker in opposite.levels[price].live_orders():
            if maker.account_id == taker.account_id:
                if taker.stp is StpMode.CANCEL_MAKER:
                    continue
                return False
            available_t += maker.remaining_t
            if available_t >= taker.remaining_t:
                return True
    return False


def _clicked_maker(state: InstrumentState, cmd: ClickOrder, level_ticks: int | None) -> RestingOrder | Reason:
    """Return the maker a click designates, or why it may not be clicked."""
    opposite = state.book.opposite(cmd.side)
    if cmd.maker_order_id is not None:
        maker = state.book.orders.get(cmd.maker_order_id)
        if maker is None or maker.side is cmd.side:
            return Reason.UNKNOWN_ORDER
    else:
        price = opposite.best if level_ticks is None else level_ticks
        level = None if price is None else opposite.levels.get(price)
        if level is None:
            return Reason.NO_SUCH_LEVEL
        maker = level.live_orders()[0]
    if state.instrument.style is MatchingStyle.GUANGDONG_CLICK:
        if maker.price_ticks != opposite.best or opposite.levels[maker.price_ticks].live_orders()[0] is not maker:
            return Reason.NOT_BEST_MAKER
    elif maker.price_ticks not in opposite.best_prices(state.instrument.click_depth_levels):
        return Reason.BEYOND_BEST_LEVELS
    return maker


def click(
    state: InstrumentState, cmd: ClickOrder, quantity_t: int, level_ticks: int | None, trade_id: int
) -> list[Event]:
    """Execute a listing click: the taker's declared quantity at the maker's price, or one rejection."""
    maker = _clicked_maker(state, cmd, level_ticks)
    if isinstance(maker, Reason):
        return [Rejected(cmd.seq, cmd.instrument_id, cmd.order_id, maker)]
    if maker.account_id == cmd.account_id:
        return [Rejected(cmd.seq, cmd.instrument_id, cmd.order_id, Reason.SELF_TRADE)]
    if quantity_t > maker.remaining_t:
        return [Rejected(cmd.seq, cmd.instrument_id, cmd.order_id, Reason.QUANTITY_EXCEEDS_MAKER)]
    price = maker.price_ticks
    state.book.reduce(maker, quantity_t)
    state.day_trade_log += (price, quantity_t)
    state.last_ticks = price
    return [
        Accepted(cmd.seq, cmd.instrument_id, cmd.order_id, cmd.account_id, cmd.side, price, quantity_t),
        Fill(cmd.seq, cmd.instrument_id, trade_id, price, quantity_t, cmd.order_id, maker.order_id,
             cmd.account_id, maker.account_id, cmd.side),
    ]  # fmt: skip
