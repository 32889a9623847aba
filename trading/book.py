"""The order book of one instrument: price levels of FIFO queues, and an index by order id.

Structure (chosen for flat per-order cost, see ``benchmarks/README.md``):

- Per side, ``levels`` maps a price to a :class:`Level` holding a ``deque`` of orders in time priority,
  the level's live quantity and count. A binary heap of prices (negated for bids) finds the best level;
  the best price is cached, so most orders never touch the heap.
- ``orders`` maps order id → :class:`RestingOrder`, for O(1) cancel and amend.
- Deletion is lazy: a cancelled order gets a zero remainder (that is what "dead" means) and its level's
  totals drop at once, but it leaves the deque only when it reaches the front (or when the level compacts
  itself because dead entries outnumber live ones). A maker taken in full by a match is at the front already
  and leaves the deque and the index at once. An emptied level leaves ``levels`` at once and the heap lazily;
  a price sits in the heap at most once. The emptied level itself is kept aside (``spare``) and reused when
  its price fills again, the same day.

Invariants (checked by :func:`check_book` in the tests):

- every live order is in ``orders`` and in its level's deque, in priority order;
- a level's ``quantity_t`` and ``live_count`` are the sums over its live orders, both positive;
- ``best`` is the best price among ``levels`` (highest bid, lowest ask), ``None`` when the side is empty;
- a spare level is empty and its price has no level on the book.
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush, nsmallest
from typing import Any

from trading.instruments import StpMode
from trading.orders import Side, TimeInForce

_BUY = Side.BUY


class RestingOrder:
    """An order on the book (mutable: its remainder shrinks as it trades; zero means it has left the book)."""

    __slots__ = ("account_id", "order_id", "price_ticks", "priority", "remaining_t", "side", "stp", "tif")

    def __init__(
        self,
        order_id: str,
        account_id: str,
        side: Side,
        price_ticks: int,
        remaining_t: int,
        priority: int,
        tif: TimeInForce,
        stp: StpMode,
    ) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.side = side
        self.price_ticks = price_ticks
        self.remaining_t = remaining_t
        self.priority = priority
        self.tif = tif
        self.stp = stp

    def record(self) -> list[Any]:
        """Return the order's canonical form for snapshots: ``[id, account, remaining, priority, tif, stp]``."""
        return [self.order_id, self.account_id, self.remaining_t, self.priority, str(self.tif), str(self.stp)]


class Level:
    """All live orders at one price of one side, in time priority."""

    __slots__ = ("live_count", "price_ticks", "quantity_t", "queue")

    def __init__(self, price_ticks: int) -> None:
        self.price_ticks = price_ticks
        self.queue: deque[RestingOrder] = deque()
        self.quantity_t = 0
        self.live_count = 0

    def live_orders(self) -> list[RestingOrder]:
        """Return the live orders in priority order."""
        return [order for order in self.queue if order.remaining_t]

    def take_front(self, orders: dict[str, RestingOrder]) -> RestingOrder:
        """Remove and return the (live) order at the front; the caller drops the level once it is empty."""
        order = self.queue.popleft()
        self.quantity_t -= order.remaining_t
        order.remaining_t = 0
        self.live_count -= 1
        del orders[order.order_id]
        return order

    def compact(self) -> None:
        """Drop dead entries once they outnumber the live ones (keeps memory linear in live orders)."""
        if len(self.queue) > 2 * self.live_count + 8:
            self.queue = deque(self.live_orders())


class BookSide:
    """The bids or the asks of a book."""

    __slots__ = ("best", "heap", "in_heap", "is_buy", "levels", "spare")

    def __init__(self, is_buy: bool) -> None:
        self.is_buy = is_buy
        self.levels: dict[int, Level] = {}
        self.heap: list[int] = []  # heap keys: -price for bids, price for asks
        self.in_heap: set[int] = set()  # prices present in the heap, live or stale
        self.best: int | None = None
        #: Emptied levels kept for reuse by price (empty queue, zero totals): prices near the touch empty and
        #: refill all the time, and reusing a level costs a fraction of building one. Not part of the state.
        self.spare: dict[int, Level] = {}

    def level_for(self, price_ticks: int) -> Level:
        """Return the level at ``price_ticks``, creating it (and updating the best price) if absent."""
        level = self.levels.get(price_ticks)
        if level is None:
            level = self.spare.pop(price_ticks, None) or Level(price_ticks)
            self.levels[price_ticks] = level
            if price_ticks not in self.in_heap:
                self.in_heap.add(price_ticks)
                heappush(self.heap, -price_ticks if self.is_buy else price_ticks)
            best = self.best
            if best is None or (price_ticks > best if self.is_buy else price_ticks < best):
                self.best = price_ticks
        return level

    def drop_level(self, price_ticks: int) -> None:
        """Remove an emptied level; if it was the best, find the next best through the heap."""
        levels = self.levels
        level = levels.pop(price_ticks)
        level.queue.clear()  # only dead entries are left
        self.spare[price_ticks] = level
        if price_ticks != self.best:
            return
        heap, in_heap = self.heap, self.in_heap
        if self.is_buy:
            while heap and -heap[0] not in levels:
                in_heap.discard(-heappop(heap))
            self.best = -heap[0] if heap else None
        else:
            while heap and heap[0] not in levels:
                in_heap.discard(heappop(heap))
            self.best = heap[0] if heap else None

    def best_prices(self, count: int) -> list[int]:
        """Return up to ``count`` best prices, best first (O(levels); used by clicks and FOK checks)."""
        if self.is_buy:
            return [-key for key in nsmallest(count, (-price for price in self.levels))]
        return nsmallest(count, self.levels)

    def prices_in_priority(self) -> list[int]:
        """Return every price level, best first."""
        return sorted(self.levels, reverse=self.is_buy)


class OrderBook:
    """Both sides of one instrument's book and the index of its live orders."""

    __slots__ = ("asks", "bids", "orders")

    def __init__(self) -> None:
        self.bids = BookSide(is_buy=True)
        self.asks = BookSide(is_buy=False)
        self.orders: dict[str, RestingOrder] = {}

    def side(self, side: Side) -> BookSide:
        """Return the book side holding orders of ``side``."""
        return self.bids if side is Side.BUY else self.asks

    def opposite(self, side: Side) -> BookSide:
        """Return the book side a ``side`` taker trades against."""
        return self.asks if side is Side.BUY else self.bids

    def rest(self, order: RestingOrder) -> None:
        """Put an order at the back of its price level."""
        book_side = self.bids if order.side is _BUY else self.asks
        level = book_side.levels.get(order.price_ticks) or book_side.level_for(order.price_ticks)
        level.queue.append(order)
        level.quantity_t += order.remaining_t
        level.live_count += 1
        self.orders[order.order_id] = order

    def remove(self, order: RestingOrder) -> None:
        """Take a live order off the book wherever it stands (lazy: the deque entry is skipped later)."""
        book_side = self.side(order.side)
        level = book_side.levels[order.price_ticks]
        level.quantity_t -= order.remaining_t
        order.remaining_t = 0
        level.live_count -= 1
        del self.orders[order.order_id]
        if level.live_count == 0:
            book_side.drop_level(order.price_ticks)
        else:
            level.compact()

    def reduce(self, order: RestingOrder, quantity_t: int) -> None:
        """Take ``quantity_t`` from a live order's remainder in place (keeps priority); remove it at zero."""
        if quantity_t >= order.remaining_t:
            self.remove(order)
            return
        order.remaining_t -= quantity_t
        self.side(order.side).levels[order.price_ticks].quantity_t -= quantity_t

    def snapshot(self) -> dict[str, Any]:
        """Return the book in canonical form: per side, ``[price, [order record…]]`` best level first."""
        return {
            name: [
                [price, [order.record() for order in book_side.levels[price].live_orders()]]
                for price in book_side.prices_in_priority()
            ]
            for name, book_side in (("bids", self.bids), ("asks", self.asks))
        }

    @classmethod
    def restore(cls, snapshot: dict[str, Any]) -> OrderBook:
        """Rebuild a book from :meth:`snapshot` output, keeping every order's priority."""
        book = cls()
        for name, side in (("bids", Side.BUY), ("asks", Side.SELL)):
            for price, records in snapshot[name]:
                for order_id, account_id, remaining_t, priority, tif, stp in records:
                    order = RestingOrder(
                        order_id, account_id, side, price, remaining_t, priority, TimeInForce(tif), StpMode(stp)
                    )
                    book.rest(order)
        return book


def check_book(book: OrderBook) -> list[str]:
    """Return every violated invariant of ``book`` (empty when sound); used by the property tests."""
    problems: list[str] = []
    seen: set[str] = set()
    for book_side in (book.bids, book.asks):
        for price, level in book_side.levels.items():
            live = level.live_orders()
            if not live or level.live_count != len(live) or level.quantity_t != sum(o.remaining_t for o in live):
                problems.append(f"level {price}: totals do not match its live orders")
            if [o.priority for o in live] != sorted(o.priority for o in live):
                problems.append(f"level {price}: orders out of priority")
            for order in live:
                seen.add(order.order_id)
                if book.orders.get(order.order_id) is not order or order.remaining_t <= 0:
                    problems.append(f"order {order.order_id}: not indexed or empty")
        for price, level in book_side.spare.items():
            if level.queue or level.quantity_t or level.live_count or price in book_side.levels:
                problems.append(f"spare level {price}: not empty, or also on the book")
        expected = book_side.prices_in_priority()[0] if book_side.levels else None
        if book_side.best != expected:
            problems.append(f"cached best {book_side.best} != {expected}")
    if seen != set(book.orders):
        problems.append("index holds orders that are not on the book")
    return problems
