"""Bad commands are rejected with a reason and change nothing; amend, halt/resume, day orders."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from tests.unit.trading.harness import Harness, fills, instrument, kinds
from trading.book import check_book
from trading.calendar import SHANGHAI_SESSIONS
from trading.engine import MatchingEngine
from trading.instruments import LISTING_RULES, Instrument, MatchingStyle, ModeRules
from trading.orders import Amended, PlaceOrder, Reason, Rejected, Side, TimeInForce, event_record


def rejection(events: list) -> Reason:  # type: ignore[type-arg]
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    return events[0].reason


def test_rejections_change_nothing() -> None:
    h = Harness(instrument(rules=LISTING_RULES))
    h.sell("ask", 10, "60.00")
    h.buy("bid", 10, "59.00")
    before, last_seq = h.engine.state_hash(), h.engine.last_seq
    closed = Harness(instrument(rules=LISTING_RULES), at=datetime.fromisoformat("2026-11-25T04:00:00+00:00"))
    assert rejection(closed.buy("lunch", 1, "60.00")) is Reason.OUTSIDE_SESSION
    cases = [
        (lambda: h.buy("x", 1, "60.005"), Reason.OFF_TICK),
        (lambda: h.buy("x", "0.5", "60.00"), Reason.FRACTIONAL_QUANTITY),
        (lambda: h.buy("x", 1, "66.01"), Reason.OUT_OF_BAND),
        (lambda: h.place_on("NOPE-2023", "x"), Reason.UNKNOWN_INSTRUMENT),
        (lambda: h.buy("bid", 1, "59.00"), Reason.DUPLICATE_ORDER_ID),
        (lambda: h.cancel("bid", account="someone-else"), Reason.UNKNOWN_ORDER),
        (lambda: h.amend("bid", quantity=10), Reason.NO_CHANGE),
        (lambda: h.amend("missing", quantity=1), Reason.UNKNOWN_ORDER),
        (lambda: h.click("c", Side.BUY, 1), Reason.UNSUPPORTED_IN_STYLE),
        (lambda: h.resume(), Reason.NOT_HALTED),
    ]
    for run, reason in cases:
        assert rejection(run()) is reason
        assert (h.engine.state_hash(), h.engine.last_seq) == (before, last_seq)


def test_halted_instrument_rejects_orders_but_allows_cancels() -> None:
    h = Harness()
    h.buy("bid", 10, "59.00")
    assert kinds(h.halt()) == ["Halted"]
    before = h.engine.state_hash()
    assert rejection(h.buy("x", 1, "60.00")) is Reason.HALTED
    assert rejection(h.amend("bid", quantity=5)) is Reason.HALTED
    assert rejection(h.halt()) is Reason.HALTED
    assert h.engine.state_hash() == before
    assert kinds(h.cancel("bid")) == ["Cancelled"]
    assert kinds(h.resume()) == ["Resumed"]
    assert kinds(h.buy("y", 1, "60.00")) == ["Accepted"]


def test_stale_sequence_and_naive_timestamp_are_rejected() -> None:
    h = Harness()
    h.buy("a", 1, "60.00")
    cmd = PlaceOrder(
        seq=1, at=h.at, instrument_id=h.instrument.instrument_id, order_id="b", account_id="b", side=Side.BUY,
        quantity_t=1, price_cny="60.00",
    )  # fmt: skip
    assert rejection(h.run(cmd)) is Reason.STALE_SEQUENCE
    assert rejection(h.run(replace(cmd, seq=99, at=datetime(2026, 11, 25, 10)))) is Reason.NAIVE_TIMESTAMP


def test_amend_quantity_down_keeps_priority_and_price_change_loses_it() -> None:
    h = Harness()
    h.sell("first", 10, "60.00")
    h.sell("second", 10, "60.00")
    assert h.amend("first", quantity=4)[0] == Amended(3, h.instrument.instrument_id, "first", 6000, 4, True)
    assert h.book()["asks"] == [(6000, [("first", 4), ("second", 10)])]
    assert h.amend("first", quantity=6)[0].priority_kept is False  # quantity up goes to the back
    assert h.book()["asks"] == [(6000, [("second", 10), ("first", 6)])]
    h.amend("second", price="60.01")
    assert h.book()["asks"] == [(6000, [("first", 6)]), (6001, [("second", 10)])]
    h.buy("bid", 5, "59.00")
    events = h.amend("bid", price="60.00")  # repriced into the ask: trades at once
    assert fills(events) == [("bid", "first", 6000, 5)]
    assert rejection(h.amend("second", price="70.00")) is Reason.OUT_OF_BAND
    assert check_book(h.engine.states[h.instrument.instrument_id].book) == []


def test_amend_in_click_style_may_not_cross() -> None:
    h = Harness(instrument(MatchingStyle.LISTING_CLICK))
    h.sell("ask", 10, "60.00")
    h.buy("bid", 10, "59.00")
    assert rejection(h.amend("bid", price="60.00")) is Reason.CROSSES_BOOK
    assert rejection(h.buy("ioc", 1, "59.00", time_in_force=TimeInForce.IOC)) is Reason.UNSUPPORTED_IN_STYLE
    assert rejection(h.click("c", Side.BUY, 1, maker="bid")) is Reason.UNKNOWN_ORDER
    assert rejection(h.click("c", Side.BUY, 1, price="59.50")) is Reason.NO_SUCH_LEVEL
    assert rejection(h.click("c", Side.BUY, 1, price="59.995")) is Reason.OFF_TICK
    assert fills(h.click("c", Side.BUY, 1)) == [("c", "ask", 6000, 1)]  # no maker named: the best one


def test_click_on_own_listing_is_a_self_trade() -> None:
    h = Harness(instrument(MatchingStyle.GUANGDONG_CLICK))
    h.sell("ask", 10, "60.00", account="acct-me")
    assert rejection(h.click("me", Side.BUY, 1, maker="ask")) is Reason.SELF_TRADE


def test_calendar_holidays_and_engine_configuration() -> None:
    holiday = replace(SHANGHAI_SESSIONS, closed_dates=frozenset({datetime(2026, 10, 1).date()}))
    rules = ModeRules(band_bp=1000, min_quantity_t=1, max_quantity_t=None, calendar=holiday)
    h = Harness(instrument(rules=rules), at=datetime.fromisoformat("2026-10-01T02:00:00+00:00"))
    assert rejection(h.buy("x", 1, "60.00")) is Reason.OUTSIDE_SESSION
    with pytest.raises(ValueError):
        MatchingEngine([instrument(), instrument()])
    with pytest.raises(ValueError):
        Instrument("X", "FFCER", 2023, 0)
    with pytest.raises(ValueError):
        SHANGHAI_SESSIONS.is_open(datetime(2026, 1, 1))
    assert event_record(Rejected(1, "X", None, Reason.HALTED))["reason"] == "halted"
