"""Edge paths: lots, quantities as decimals, level compaction, sell-side clicks, amend and click refusals,
close-price and calendar guards."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal

import pytest

from tests.unit.trading.harness import Harness, fills, instrument
from trading.book import check_book
from trading.calendar import SHANGHAI_SESSIONS, SessionCalendar
from trading.close_price import CloseRule, close_price, vwap_ticks
from trading.instruments import LISTING_RULES, MatchingStyle
from trading.orders import Reason, Rejected, Side


def rejection(events: list) -> Reason:  # type: ignore[type-arg]
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    return events[0].reason


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [(15, Reason.OFF_LOT), (Decimal("15"), Reason.OFF_LOT), (Decimal("0"), Reason.NON_POSITIVE_QUANTITY),
     (-10, Reason.NON_POSITIVE_QUANTITY), (Decimal("100000"), Reason.SIZE_LIMIT), (True, Reason.INVALID_AMOUNT)],
)  # fmt: skip
def test_lots_and_size_limits(quantity: object, reason: Reason) -> None:
    h = Harness(instrument(rules=LISTING_RULES, lot_t=10))
    assert rejection(h.buy("b", quantity, "60.00")) is reason
    assert [type(e).__name__ for e in h.buy("ok", Decimal("20"), "60.00")] == ["Accepted"]


def test_levels_compact_when_cancelled_orders_pile_up() -> None:
    h = Harness()
    for i in range(40):
        h.sell(f"s{i}", 1, "60.00")
    for i in range(1, 40):
        if i % 10:
            h.cancel(f"s{i}")
    book = h.engine.states[h.instrument.instrument_id].book
    level = book.asks.levels[6000]
    assert len(level.queue) <= 2 * level.live_count + 8 and check_book(book) == []
    assert fills(h.buy("b", 5, "60.00")) == [("b", f"s{i}", 6000, 1) for i in (0, 10, 20, 30)]


def test_sell_side_click_within_the_best_five_bids() -> None:
    h = Harness(instrument(MatchingStyle.LISTING_CLICK))
    for level in range(6):
        h.buy(f"b{level}", 10, f"{60 - level / 100:.2f}")
    assert fills(h.click("c", Side.SELL, 3, maker="b4")) == [("c", "b4", 5996, 3)]
    assert rejection(h.click("c2", Side.SELL, 3, maker="b5")) is Reason.BEYOND_BEST_LEVELS


def test_amend_and_click_refusals() -> None:
    h = Harness(instrument(MatchingStyle.LISTING_CLICK))
    h.sell("ask", 10, "60.00")
    assert rejection(h.amend("ask", quantity=Decimal("0.5"))) is Reason.FRACTIONAL_QUANTITY
    assert rejection(h.amend("ask", price="60.001")) is Reason.OFF_TICK
    assert rejection(h.click("c", Side.BUY, 0)) is Reason.NON_POSITIVE_QUANTITY
    assert rejection(h.click("ask", Side.BUY, 1)) is Reason.DUPLICATE_ORDER_ID
    h.halt()
    assert rejection(h.click("c", Side.BUY, 1)) is Reason.HALTED


def test_close_price_and_calendar_guards() -> None:
    with pytest.raises(ValueError):
        vwap_ticks([])
    assert close_price(CloseRule.HUBEI_LAST_5, [(6000, 1)], 5900) == 6000
    with pytest.raises(ValueError):
        SessionCalendar(sessions=((time(15, 0), time(13, 0)),))
    with pytest.raises(ValueError):
        SHANGHAI_SESSIONS.trading_date(datetime(2026, 1, 1))
    assert SHANGHAI_SESSIONS.trading_date(datetime(2026, 1, 1, tzinfo=UTC)).isoformat() == "2026-01-01"
