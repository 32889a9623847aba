"""M20: on a seeded stream of 50,000 random limit orders, the engine agrees with pyorderbook on every order's
remaining quantity, the total traded quantity and the final book (registry-trading §5.3: compare those, not
fill counts or average prices)."""

from __future__ import annotations

import logging

import pyorderbook

from tests.unit.trading.streams import STREAM_INSTRUMENT, limit_order_stream, place_commands
from trading.engine import MatchingEngine
from trading.orders import Fill, Side


def test_m20_differential_against_pyorderbook() -> None:
    logging.getLogger("pyorderbook").setLevel(logging.WARNING)
    stream = limit_order_stream(seed=20, count=50_000)

    engine = MatchingEngine([STREAM_INSTRUMENT])
    traded_t = 0
    for command in place_commands(stream):
        traded_t += sum(e.quantity_t for e in engine.handle(command) if isinstance(e, Fill))
    book = engine.states[STREAM_INSTRUMENT.instrument_id].book
    remaining = [book.orders[f"o{i}"].remaining_t if f"o{i}" in book.orders else 0 for i in range(len(stream))]

    peer = pyorderbook.Book()
    peer_orders = [
        pyorderbook.Order(pyorderbook.Side.BID if side is Side.BUY else pyorderbook.Side.ASK, "X", price, quantity)  # type: ignore[arg-type]
        for side, price, quantity in stream
    ]
    peer_traded_t = sum(trade.fill_quantity for order in peer_orders for trade in peer.match(order).trades)
    index = {order.id: i for i, order in enumerate(peer_orders)}

    assert traded_t == peer_traded_t > 0
    assert remaining == [order.quantity for order in peer_orders]
    ours = book.snapshot()
    for name, peer_side in (("bids", pyorderbook.Side.BID), ("asks", pyorderbook.Side.ASK)):
        levels = peer.level_map["X"][peer_side]
        theirs = [
            [int(price * 100), [[f"o{index[o.id]}", o.quantity] for o in levels[price].orders.values()]]
            for price in sorted(levels, reverse=peer_side is pyorderbook.Side.BID)
            if levels[price].orders
        ]
        assert [[price, [[r[0], r[2]] for r in records]] for price, records in ours[name]] == theirs
