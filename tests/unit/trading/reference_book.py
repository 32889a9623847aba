"""A naive, obviously correct order book: the differential oracle for the engine's continuous styles.

Resting orders are one flat list. Every match sorts the whole list by (price priority, arrival) and walks
it; fill-or-kill runs the match on a deep copy and keeps it only if the order filled. Nothing is cached,
nothing is lazy, nothing is clever — it is slow on purpose, so that it is easy to believe.

Events are plain tuples:

- ``("accepted", order_id, price, quantity)``
- ``("fill", taker_id, maker_id, price, quantity)``
- ``("cancelled", order_id, remaining, reason)``
- ``("amended", order_id, price, quantity, priority_kept)``
- ``("rejected", order_id, reason)``
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

Event = tuple[object, ...]


@dataclass
class RefOrder:
    order_id: str
    account: str
    side: str  # "buy" | "sell"
    price: int
    remaining: int
    arrival: int
    stp: str  # "cancel_taker" | "cancel_maker" | "cancel_both"


class ReferenceBook:
    def __init__(self, *, hubei_last: int | None = None) -> None:
        self.resting: list[RefOrder] = []
        self.hubei_last = hubei_last  # None: price-time at the maker's price; else Hubei mid-of-three

    def _find(self, order_id: str, account: str) -> RefOrder | None:
        for order in self.resting:
            if order.order_id == order_id and order.account == account:
                return order
        return None

    def _crosses(self, taker: RefOrder, maker: RefOrder) -> bool:
        if maker.side == taker.side:
            return False
        return maker.price <= taker.price if taker.side == "buy" else maker.price >= taker.price

    def _match(self, taker: RefOrder, events: list[Event]) -> bool:
        """Trade the taker; return False if self-trade prevention killed it."""
        while taker.remaining > 0:
            makers = [m for m in self.resting if self._crosses(taker, m)]
            if not makers:
                return True
            sign = 1 if taker.side == "buy" else -1
            maker = min(makers, key=lambda m: (sign * m.price, m.arrival))
            if maker.account == taker.account:
                if taker.stp in ("cancel_maker", "cancel_both"):
                    events.append(("cancelled", maker.order_id, maker.remaining, "self_trade"))
                    self.resting.remove(maker)
                if taker.stp in ("cancel_taker", "cancel_both"):
                    events.append(("cancelled", taker.order_id, taker.remaining, "self_trade"))
                    taker.remaining = 0
                    return False
                continue
            quantity = min(taker.remaining, maker.remaining)
            price = maker.price
            if self.hubei_last is not None:
                bid, ask = (taker.price, maker.price) if taker.side == "buy" else (maker.price, taker.price)
                price = sorted([bid, ask, self.hubei_last])[1]
                self.hubei_last = price
            events.append(("fill", taker.order_id, maker.order_id, price, quantity))
            taker.remaining -= quantity
            maker.remaining -= quantity
            if maker.remaining == 0:
                self.resting.remove(maker)
        return True

    def place(
        self, arrival: int, order_id: str, account: str, side: str, price: int, quantity: int, tif: str, stp: str
    ) -> list[Event]:
        if any(o.order_id == order_id for o in self.resting):
            return [("rejected", order_id, "duplicate_order_id")]
        taker = RefOrder(order_id, account, side, price, quantity, arrival, stp)
        events: list[Event] = [("accepted", order_id, price, quantity)]
        if tif == "fok":
            trial = copy.deepcopy(self)
            trial_taker = copy.deepcopy(taker)
            trial_events: list[Event] = []
            if not trial._match(trial_taker, trial_events) or trial_taker.remaining > 0:
                return [*events, ("cancelled", order_id, quantity, "fok_unfilled")]
            self.resting, self.hubei_last = trial.resting, trial.hubei_last
            return events + trial_events
        self._finish(taker, tif, events)
        return events

    def _finish(self, taker: RefOrder, tif: str, events: list[Event]) -> None:
        self._match(taker, events)
        if taker.remaining > 0:
            if tif == "ioc":
                events.append(("cancelled", taker.order_id, taker.remaining, "ioc_remainder"))
            else:
                self.resting.append(taker)

    def cancel(self, order_id: str, account: str) -> list[Event]:
        order = self._find(order_id, account)
        if order is None:
            return [("rejected", order_id, "unknown_order")]
        self.resting.remove(order)
        return [("cancelled", order_id, order.remaining, "requested")]

    def amend(self, arrival: int, order_id: str, account: str, quantity: int | None, price: int | None) -> list[Event]:
        order = self._find(order_id, account)
        if order is None:
            return [("rejected", order_id, "unknown_order")]
        new_quantity = order.remaining if quantity is None else quantity
        new_price = order.price if price is None else price
        if (new_quantity, new_price) == (order.remaining, order.price):
            return [("rejected", order_id, "no_change")]
        if new_price == order.price and new_quantity < order.remaining:
            order.remaining = new_quantity
            return [("amended", order_id, new_price, new_quantity, True)]
        self.resting.remove(order)
        moved = RefOrder(order_id, account, order.side, new_price, new_quantity, arrival, order.stp)
        events: list[Event] = [("amended", order_id, new_price, new_quantity, False)]
        self._finish(moved, "gtc", events)
        return events

    def book(self) -> dict[str, list[tuple[int, list[tuple[str, int]]]]]:
        """Per side: (price, [(order id, remaining)…]) best level first, orders in arrival order."""
        result: dict[str, list[tuple[int, list[tuple[str, int]]]]] = {}
        for name, side, best_first in (("bids", "buy", True), ("asks", "sell", False)):
            orders = [o for o in self.resting if o.side == side]
            prices = sorted({o.price for o in orders}, reverse=best_first)
            result[name] = [
                (p, [(o.order_id, o.remaining) for o in sorted(orders, key=lambda o: o.arrival) if o.price == p])
                for p in prices
            ]
        return result
