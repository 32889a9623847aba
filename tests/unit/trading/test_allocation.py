"""One-way auction allocation (pure): price then time, uniform price vs pay as bid, the marginal bid, reserve."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.allocation import Allocation, Bid, Rule, allocate, ranking


def test_over_subscribed_with_a_price_tie_broken_by_time() -> None:
    bids = [Bid("late", 5500, 400, 3), Bid("early", 5500, 400, 1), Bid("high", 5800, 300, 2), Bid("low", 5200, 200, 4)]
    outcome = allocate(bids, 1_000, 5000, Rule.UNIFORM)
    assert outcome.allocations == (
        Allocation("high", 300, 5500),
        Allocation("early", 400, 5500),
        Allocation("late", 300, 5500),
    )
    assert (outcome.clearing_price_ticks, outcome.allocated_t, outcome.unfilled_t) == (5500, 1_000, 0)


def test_pay_as_bid_pays_each_bid_price() -> None:
    bids = [Bid("a", 4500, 200, 1), Bid("b", 4250, 300, 2), Bid("c", 4100, 250, 3), Bid("d", 4000, 100, 4)]
    outcome = allocate(bids, 600, 4000, Rule.PAY_AS_BID)
    assert outcome.allocations == (Allocation("a", 200, 4500), Allocation("b", 300, 4250), Allocation("c", 100, 4100))
    assert outcome.clearing_price_ticks is None


def test_uniform_price_is_the_lowest_accepted_bid_even_when_under_subscribed() -> None:
    outcome = allocate([Bid("a", 6000, 100, 1), Bid("b", 5100, 100, 2)], 300, 5000, Rule.UNIFORM)
    assert outcome.allocations == (Allocation("a", 100, 5100), Allocation("b", 100, 5100))
    assert (outcome.allocated_t, outcome.unfilled_t, outcome.reserve_met) == (200, 100, True)


def test_reserve_not_met_allocates_nothing() -> None:
    outcome = allocate([Bid("a", 6999, 100, 1)], 500, 7000, Rule.UNIFORM)
    assert outcome.allocations == () and not outcome.reserve_met
    assert (outcome.clearing_price_ticks, outcome.allocated_t, outcome.unfilled_t) == (None, 0, 500)
    assert allocate([], 500, 7000, Rule.PAY_AS_BID).unfilled_t == 500


def test_bids_below_the_reserve_are_skipped_not_the_ones_after() -> None:
    outcome = allocate([Bid("below", 4999, 100, 1), Bid("at", 5000, 50, 2)], 100, 5000, Rule.UNIFORM)
    assert outcome.allocations == (Allocation("at", 50, 5000),)


@pytest.mark.parametrize(("quantity", "reserve", "bids"), [(0, 1, []), (1, 0, []), (1, 1, [Bid("x", 1, 0, 1)]),
                                                           (1, 1, [Bid("x", 0, 1, 1)])])  # fmt: skip
def test_refuses_non_positive_terms(quantity: int, reserve: int, bids: list[Bid]) -> None:
    with pytest.raises(ValueError, match="positive"):
        allocate(bids, quantity, reserve, Rule.UNIFORM)


bid_lists = st.lists(
    st.builds(Bid, st.text(min_size=1, max_size=3), st.integers(1, 50), st.integers(1, 40), st.integers(0, 20)),
    max_size=12,
)


@given(bid_lists, st.integers(1, 200), st.integers(1, 50), st.sampled_from(list(Rule)))
def test_allocation_invariants(bids: list[Bid], quantity: int, reserve: int, rule: Rule) -> None:
    outcome = allocate(bids, quantity, reserve, rule)
    eligible = [b for b in bids if b.price_ticks >= reserve]
    # Tonnes are conserved, never more than offered nor than demanded.
    assert outcome.allocated_t + outcome.unfilled_t == quantity
    assert outcome.allocated_t == min(quantity, sum(b.quantity_t for b in eligible))
    assert sum(a.quantity_t for a in outcome.allocations) == outcome.allocated_t
    ranked = ranking(eligible)
    # Allocations are a prefix of the ranking; all but the last are filled in full.
    for allocation, bid in zip(outcome.allocations, ranked, strict=False):
        assert allocation.bid_id == bid.bid_id and 0 < allocation.quantity_t <= bid.quantity_t
        # Nobody pays more than its bid, nor less than the reserve.
        assert reserve <= allocation.price_ticks <= bid.price_ticks
    for allocation, bid in zip(outcome.allocations[:-1], ranked, strict=False):
        assert allocation.quantity_t == bid.quantity_t
    if rule is Rule.UNIFORM and outcome.allocations:
        assert {a.price_ticks for a in outcome.allocations} == {outcome.clearing_price_ticks}
