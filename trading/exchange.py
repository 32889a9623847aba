"""Compatibility for ``api.routers``: the order-entry and listing names the routes call as ``exchange.…``.

The exchange hub was split (issue 18): listing in :mod:`trading.listing`, the journal in
:mod:`trading.journal`, settlement in :mod:`trading.settlement`, the T+1 rule in :mod:`trading.resale`,
order entry in :mod:`trading.order_entry`. Only ``api`` imports this module (a contract says so), so that the
routes' bodies stay as they are while other work on them merges; new code imports the homes directly.
"""

from trading.journal import MatcherCache
from trading.listing import CreateInstrument, create_instrument
from trading.order_entry import (
    AmendOrderRequest,
    OrderEntry,
    PlaceOrderRequest,
    amend_order,
    cancel_order,
    end_of_day,
    list_fills,
    list_orders,
    place_order,
    read_order,
)

__all__ = [
    "AmendOrderRequest", "CreateInstrument", "MatcherCache", "OrderEntry", "PlaceOrderRequest", "amend_order",
    "cancel_order", "create_instrument", "end_of_day", "list_fills", "list_orders", "place_order", "read_order",
]  # fmt: skip
