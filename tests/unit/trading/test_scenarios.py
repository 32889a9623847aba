"""Acceptance scenarios of registry-trading §8.2, one test per scenario, named after it."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from tests.unit.trading.harness import Harness, fills, instrument, kinds
from trading.close_price import CloseRule, close_guangdong, close_hubei_last_5, close_price, close_vwap_day, open_price
from trading.instruments import BLOCK_RULES, LISTING_RULES, MatchingStyle, StpMode
from trading.orders import Cancelled, DayClosed, Expired, OrderType, Reason, Rejected, Side, TimeInForce


def only_rejection(events: list) -> Reason:  # type: ignore[type-arg]
    assert len(events) == 1 and isinstance(events[0], Rejected), events
    return events[0].reason


def test_m1_price_time_priority() -> None:
    h = Harness(instrument(reference="50.00"))
    h.sell("ask-t1", 100, "50.00")
    h.sell("ask-t2", 100, "50.00")
    events = h.buy("bid", 150, "50.00")
    assert fills(events) == [("bid", "ask-t1", 5000, 100), ("bid", "ask-t2", 5000, 50)]
    assert h.book() == {"bids": [], "asks": [(5000, [("ask-t2", 50)])]}


def test_m2_partial_fill_rests_the_remainder() -> None:
    h = Harness()
    h.sell("ask", 60, "60.00")
    events = h.buy("bid", 100, "60.00")
    assert fills(events) == [("bid", "ask", 6000, 60)]
    assert h.book() == {"bids": [(6000, [("bid", 40)])], "asks": []}


def test_m3_price_band_inclusive_and_rounded_half_up() -> None:
    h = Harness(instrument(reference="60.00"))
    before = h.engine.state_hash()
    assert only_rejection(h.buy("too-high", 1, "66.01")) is Reason.OUT_OF_BAND
    assert only_rejection(h.sell("too-low", 1, "53.99")) is Reason.OUT_OF_BAND
    assert h.engine.state_hash() == before
    assert kinds(h.buy("edge-high", 1, "66.00")) == ["Accepted"]
    assert kinds(h.sell("edge-low", 1, "54.00")) == ["Accepted", "Fill"]
    odd = Harness(instrument(reference="55.55"))
    state = odd.engine.states[odd.instrument.instrument_id]
    assert (state.band_low, state.band_high) == (5000, 6111)
    assert only_rejection(odd.buy("b", 1, "61.12")) is Reason.OUT_OF_BAND
    assert only_rejection(odd.buy("b", 1, "49.99")) is Reason.OUT_OF_BAND
    assert kinds(odd.buy("b", 1, "61.11")) == ["Accepted"]


def test_m4_block_mode_limits_within_the_engine() -> None:
    # Block-mode rules (band ±30 %, ≥ 100,000 t, 13:00–15:00); negotiation itself is the block-trade issue.
    afternoon = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)  # 14:00 in Shanghai
    h = Harness(instrument(reference="100.00", rules=BLOCK_RULES), at=afternoon)
    assert only_rejection(h.buy("small", 99_999, "100.00")) is Reason.SIZE_LIMIT
    assert only_rejection(h.buy("high", 100_000, "131.00")) is Reason.OUT_OF_BAND
    assert kinds(h.buy("edge", 100_000, "130.00")) == ["Accepted"]
    h.at = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00
    assert only_rejection(h.buy("morning", 100_000, "100.00")) is Reason.OUTSIDE_SESSION


def test_m5_listing_size_limit() -> None:
    h = Harness(instrument(rules=LISTING_RULES))
    assert only_rejection(h.buy("big", 100_000, "60.00")) is Reason.SIZE_LIMIT
    assert kinds(h.buy("ok", 99_999, "60.00")) == ["Accepted"]


@pytest.mark.parametrize(
    ("utc_hour", "utc_minute", "is_open"),
    [
        (1, 30, True),
        (3, 29, True),
        (3, 30, False),
        (3, 45, False),
        (5, 0, True),
        (6, 59, True),
        (7, 0, False),
        (7, 1, False),
    ],
)
def test_m6_sessions(utc_hour: int, utc_minute: int, is_open: bool) -> None:
    h = Harness(instrument(rules=LISTING_RULES), at=datetime(2026, 11, 25, utc_hour, utc_minute, tzinfo=UTC))
    events = h.buy("b", 1, "60.00")
    assert (kinds(events) == ["Accepted"]) is is_open
    if not is_open:
        assert only_rejection(events) is Reason.OUTSIDE_SESSION


def test_m6_resting_orders_survive_the_lunch_break_and_weekends_are_closed() -> None:
    h = Harness(instrument(rules=LISTING_RULES), at=datetime(2026, 11, 25, 3, 0, tzinfo=UTC))  # 11:00
    h.sell("ask", 10, "60.00")
    h.at = datetime(2026, 11, 25, 3, 45, tzinfo=UTC)  # 11:45: closed, cancels still allowed elsewhere
    assert only_rejection(h.buy("lunch", 10, "60.00")) is Reason.OUTSIDE_SESSION
    h.at = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)  # 13:30
    assert fills(h.buy("bid", 10, "60.00")) == [("bid", "ask", 6000, 10)]
    h.at = datetime(2026, 11, 28, 2, 0, tzinfo=UTC)  # Saturday 10:00
    assert only_rejection(h.buy("saturday", 10, "60.00")) is Reason.OUTSIDE_SESSION


@pytest.mark.parametrize(
    ("mode", "taker_cancelled", "maker_cancelled"),
    [(StpMode.CANCEL_TAKER, True, False), (StpMode.CANCEL_MAKER, False, True), (StpMode.CANCEL_BOTH, True, True)],
)
def test_m8_self_trade_prevention(mode: StpMode, taker_cancelled: bool, maker_cancelled: bool) -> None:
    h = Harness()
    h.sell("own-ask", 10, "60.00", account="acme")
    events = h.buy("own-bid", 10, "61.00", account="acme", stp=mode)
    assert fills(events) == []
    cancelled = {e.order_id for e in events if isinstance(e, Cancelled)}
    assert cancelled == {name for name, hit in (("own-bid", taker_cancelled), ("own-ask", maker_cancelled)) if hit}
    assert all(e.reason is Reason.SELF_TRADE for e in events if isinstance(e, Cancelled))
    book = h.book()
    assert (book["asks"] == [(6000, [("own-ask", 10)])]) is not maker_cancelled
    # cancel-maker leaves the taker free to rest (nothing else to trade with)
    assert (book["bids"] == [(6100, [("own-bid", 10)])]) is (mode is StpMode.CANCEL_MAKER)


def test_m8_default_is_cancel_taker_and_other_accounts_still_trade() -> None:
    h = Harness()
    h.sell("other", 5, "60.00", account="other")
    h.sell("own", 5, "60.00", account="acme")
    events = h.buy("bid", 10, "60.00", account="acme")
    assert fills(events) == [("bid", "other", 6000, 5)]
    assert [(e.order_id, e.remaining_t) for e in events if isinstance(e, Cancelled)] == [("bid", 5)]
    assert h.book()["asks"] == [(6000, [("own", 5)])]


def test_m9_ioc_and_fok() -> None:
    h = Harness()
    h.sell("ask", 60, "60.00")
    ioc = h.buy("ioc", 100, "60.00", time_in_force=TimeInForce.IOC)
    assert fills(ioc) == [("ioc", "ask", 6000, 60)]
    assert [(e.order_id, e.remaining_t, e.reason) for e in ioc if isinstance(e, Cancelled)] == [
        ("ioc", 40, Reason.IOC_REMAINDER)
    ]
    h.sell("ask2", 60, "60.00")
    fok = h.buy("fok", 100, "60.00", time_in_force=TimeInForce.FOK)
    assert fills(fok) == [] and kinds(fok) == ["Accepted", "Cancelled"]
    assert fok[-1].reason is Reason.FOK_UNFILLED
    assert h.book() == {"bids": [], "asks": [(6000, [("ask2", 60)])]}
    assert fills(h.buy("fok-ok", 60, "60.00", time_in_force=TimeInForce.FOK)) == [("fok-ok", "ask2", 6000, 60)]


def test_market_order_with_price_protection() -> None:
    h = Harness()
    h.sell("near", 10, "60.00")
    h.sell("far", 10, "63.01")  # beyond 60.00 + 5 % = 63.00
    events = h.buy("mkt", 30, order_type=OrderType.MARKET)
    assert fills(events) == [("mkt", "near", 6000, 10)]
    assert events[-1].reason is Reason.MARKET_REMAINDER and events[-1].remaining_t == 20
    assert h.book()["bids"] == []


def test_m11_cancel_after_partial_fill_cancels_only_the_remainder() -> None:
    h = Harness()
    h.buy("bid", 100, "60.00")
    h.sell("ask", 30, "60.00")
    events = h.cancel("bid")
    assert [(e.order_id, e.remaining_t, e.reason) for e in events] == [("bid", 70, Reason.REQUESTED)]
    assert fills(h.events) == [("ask", "bid", 6000, 30)]
    assert h.book() == {"bids": [], "asks": []}
    assert only_rejection(h.cancel("bid")) is Reason.UNKNOWN_ORDER


def test_m12_listing_click_national_and_guangdong() -> None:
    for style in (MatchingStyle.LISTING_CLICK, MatchingStyle.GUANGDONG_CLICK):
        h = Harness(instrument(style))
        for level, price in enumerate(["60.00", "60.01", "60.02", "60.03", "60.04", "60.05"]):
            h.sell(f"L{level}", 10, price)
        h.sell("L0-second", 10, "60.00")
        assert only_rejection(h.buy("crossing", 5, "60.00")) is Reason.CROSSES_BOOK
        national = style is MatchingStyle.LISTING_CLICK
        expected = "Fill" if national else Reason.NOT_BEST_MAKER
        fifth = h.click("c5", Side.BUY, 5, maker="L4")
        assert (kinds(fifth)[-1] if national else only_rejection(fifth)) == expected
        sixth = h.click("c6", Side.BUY, 5, maker="L5")
        assert only_rejection(sixth) is (Reason.BEYOND_BEST_LEVELS if national else Reason.NOT_BEST_MAKER)
        second = h.click("c-second", Side.BUY, 5, maker="L0-second")
        if national:
            assert fills(second) == [("c-second", "L0-second", 6000, 5)]
        else:
            assert only_rejection(second) is Reason.NOT_BEST_MAKER
        assert fills(h.click("c-first", Side.BUY, 10, maker="L0")) == [("c-first", "L0", 6000, 10)]
        assert only_rejection(h.click("too-much", Side.BUY, 11, price="60.00")) is Reason.QUANTITY_EXCEEDS_MAKER


def test_m13_hubei_mid_of_three() -> None:
    h = Harness(instrument(MatchingStyle.HUBEI_MID, reference="60.00"))
    h.sell("ask", 10, "59.00")
    assert fills(h.buy("bid", 10, "61.00")) == [("bid", "ask", 6000, 10)]  # last = previous close 60.00
    low = Harness(instrument(MatchingStyle.HUBEI_MID, reference="58.00"))
    low.sell("ask", 10, "59.00")
    assert fills(low.buy("bid", 10, "61.00")) == [("bid", "ask", 5900, 10)]  # last 58 → middle is the ask


def test_m14_close_price_functions() -> None:
    day = [(6000, 100), (6200, 100), (6100, 50)]
    assert close_vwap_day(day, 5900) == 6100 and close_vwap_day([], 5900) == 5900
    assert open_price(day, 5900) == 6000
    last_five = [(1000, 1000), (6000, 1), (6000, 1), (6000, 1), (6000, 1), (6500, 1)]
    assert close_hubei_last_5(last_five, 5900) == 6100
    assert close_hubei_last_5(day[:2], 5900) == 6100
    assert close_guangdong([(6000, 100)], open_ticks=5900, previous_close_ticks=5900) == 5900
    assert close_guangdong([(6000, 101)], open_ticks=5900, previous_close_ticks=5900) == 6000
    assert close_price(CloseRule.GUANGDONG, [], 5900) == 5900


def test_m14_end_of_day_expires_day_orders_and_moves_the_band() -> None:
    h = Harness(instrument(reference="60.00"))
    h.sell("ask", 10, "62.00")
    h.buy("bid", 10, "62.00")
    h.buy("day", 5, "55.00", time_in_force=TimeInForce.DAY)
    h.buy("gtc-low", 5, "55.50")
    h.buy("gtc", 5, "60.00")
    events = h.end_of_day()
    assert [type(e) for e in events] == [Expired, DayClosed, Cancelled]
    closed = events[1]
    assert (closed.open_ticks, closed.close_ticks, closed.volume_t) == (6200, 6200, 10)
    assert events[2].order_id == "gtc-low" and events[2].reason is Reason.OUT_OF_BAND  # band is now 55.80–68.20
    assert h.book()["bids"] == [(6000, [("gtc", 5)])]
    assert only_rejection(h.buy("old-band", 1, "55.00")) is Reason.OUT_OF_BAND


@pytest.mark.parametrize(
    ("price", "quantity", "reason"),
    [
        (Decimal("50.005"), 1, Reason.OFF_TICK),
        ("60.001", 1, Reason.OFF_TICK),
        (60.0, 1, Reason.FLOAT_NOT_ALLOWED),
        ("60.00", Decimal("1.5"), Reason.FRACTIONAL_QUANTITY),
        ("60.00", 1.0, Reason.FLOAT_NOT_ALLOWED),
        ("sixty", 1, Reason.INVALID_AMOUNT),
        ("60.00", 0, Reason.NON_POSITIVE_QUANTITY),
        (None, 1, Reason.MISSING_PRICE),
    ],
)
def test_m19_no_floats_and_exact_ticks(price: object, quantity: object, reason: Reason) -> None:
    h = Harness()
    h.sell("resting", 10, "60.00")
    before = h.engine.state_hash()
    assert only_rejection(h.buy("bad", quantity, price)) is reason
    assert h.engine.state_hash() == before


@pytest.mark.parametrize("bad_price", [60.0, True])
def test_m19_a_float_equal_to_a_cached_price_is_still_refused(bad_price: object) -> None:
    h = Harness(instrument(reference="1.00") if bad_price is True else instrument())
    h.sell("resting", 10, Decimal("60.00") if bad_price != 1 else Decimal("1.00"))
    assert only_rejection(h.buy("bad", 1, bad_price)) in (Reason.FLOAT_NOT_ALLOWED, Reason.INVALID_AMOUNT)
