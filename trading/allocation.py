"""One-way auction allocation (单向竞价): pure, deterministic, integer ticks and tonnes.

The reference (registry-trading §4.1) says only that the seller offers, the exchange announces and
qualified buyers bid within a set time; it states no allocation or pricing rule. Ours (ADR 013):

- Bids below the reserve take nothing (the service refuses them at entry; the allocator ignores them too).
- **Priority: price, then time.** Bids are ranked by price (highest first), then by their time key (the
  earlier first; the service uses the bid's id, the order in which bids were committed).
- Tonnes go down the ranking until the offered quantity is used up; the **marginal** bid — the one that
  meets the end of the quantity — is filled partially; every bid after it takes nothing.
- **Uniform price:** every winner pays the clearing price, the *lowest accepted bid price* (the price of the
  last bid that receives any tonnes). **Pay as bid:** every winner pays its own bid price.
- No bid at or above the reserve → no allocation: the reserve is not met and every tonne returns.

>>> bids = [Bid("a", 6000, 40, 1), Bid("b", 6200, 50, 2), Bid("c", 6000, 30, 3)]
>>> [(a.bid_id, a.quantity_t, a.price_ticks) for a in allocate(bids, 100, 5000, Rule.UNIFORM).allocations]
[('b', 50, 6000), ('a', 40, 6000), ('c', 10, 6000)]
>>> [(a.bid_id, a.quantity_t, a.price_ticks) for a in allocate(bids, 100, 5000, Rule.PAY_AS_BID).allocations]
[('b', 50, 6200), ('a', 40, 6000), ('c', 10, 6000)]
>>> allocate(bids, 100, 6500, Rule.UNIFORM).allocations
()
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Rule(StrEnum):
    """How winners pay."""

    UNIFORM = "uniform"
    PAY_AS_BID = "pay_as_bid"


@dataclass(frozen=True, slots=True)
class Bid:
    """A bid: price in ticks, quantity in whole tonnes, and its time key (smaller = earlier)."""

    bid_id: str
    price_ticks: int
    quantity_t: int
    time_key: int


@dataclass(frozen=True, slots=True)
class Allocation:
    """Tonnes awarded to one bid and the price per tonne it pays, in ticks."""

    bid_id: str
    quantity_t: int
    price_ticks: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of an auction: allocations in priority order, the clearing price (uniform) and totals."""

    allocations: tuple[Allocation, ...]
    clearing_price_ticks: int | None
    allocated_t: int
    unfilled_t: int

    @property
    def reserve_met(self) -> bool:
        """Whether anything was allocated."""
        return bool(self.allocations)


def ranking(bids: list[Bid]) -> list[Bid]:
    """Return the bids in priority order: price (highest first), then time (earliest first), then id.

    >>> [b.bid_id for b in ranking([Bid("late", 10, 1, 2), Bid("early", 10, 1, 1), Bid("high", 11, 1, 3)])]
    ['high', 'early', 'late']
    """
    return sorted(bids, key=lambda b: (-b.price_ticks, b.time_key, b.bid_id))


def allocate(bids: list[Bid], quantity_t: int, reserve_ticks: int, rule: Rule) -> Outcome:
    """Allocate ``quantity_t`` tonnes among ``bids`` by price then time.

    Raises:
        ValueError: A non-positive quantity or reserve, or a bid with a non-positive price or quantity.
    """
    if quantity_t <= 0 or reserve_ticks <= 0:
        raise ValueError("an auction offers a positive quantity at a positive reserve")
    if any(b.price_ticks <= 0 or b.quantity_t <= 0 for b in bids):
        raise ValueError("bids have positive prices and quantities")
    left = quantity_t
    awarded: list[tuple[Bid, int]] = []
    for bid in ranking([b for b in bids if b.price_ticks >= reserve_ticks]):
        if left == 0:
            break
        take = min(bid.quantity_t, left)
        awarded.append((bid, take))
        left -= take
    if not awarded:
        return Outcome((), None, 0, quantity_t)
    clearing = awarded[-1][0].price_ticks  # the lowest accepted bid price (ranking is by price, descending)
    allocations = tuple(
        Allocation(bid.bid_id, take, clearing if rule is Rule.UNIFORM else bid.price_ticks) for bid, take in awarded
    )
    return Outcome(allocations, clearing if rule is Rule.UNIFORM else None, quantity_t - left, left)
