"""Order entry: requests in, batches of one instrument's commands matched and settled in one transaction.

Modules, bottom up (the "order_entry layers" contract keeps them acyclic):

* :mod:`~trading.order_entry.requests` — the commands as data (picklable, for the matcher process);
* :mod:`~trading.order_entry.batch` — one batch in one transaction: lock, catch up, steps, cursor, commit;
* :mod:`~trading.order_entry.events` — what the engine's events cause (order states, releases, DvP fills);
* :mod:`~trading.order_entry.answers` — orders and trades as their parties see them;
* :mod:`~trading.order_entry.steps` — place, cancel, amend, close the day, inside a batch;
* :mod:`~trading.order_entry.matcher` — the child process that runs batches (ADR 018);
* :mod:`~trading.order_entry.entry` — the calls the API makes and the group commit (ADR 015).
"""

from trading.order_entry.answers import list_fills, list_orders, order_out, read_order, trade_out
from trading.order_entry.batch import BatchContext, Job, Step, run_batch
from trading.order_entry.entry import OrderEntry, amend_order, cancel_order, end_of_day, place_order
from trading.order_entry.matcher import MatcherProcess
from trading.order_entry.requests import AmendOrderRequest, OrderCommand, PlaceOrderRequest
from trading.order_entry.steps import amend_step, cancel_step, job_of, place_step

__all__ = [
    "AmendOrderRequest", "BatchContext", "Job", "MatcherProcess", "OrderCommand", "OrderEntry", "PlaceOrderRequest",
    "Step", "amend_order", "amend_step", "cancel_order", "cancel_step", "end_of_day", "job_of", "list_fills",
    "list_orders", "order_out", "place_order", "place_step", "read_order", "run_batch", "trade_out",
]  # fmt: skip
