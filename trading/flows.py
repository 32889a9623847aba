"""Cross-province flows, the exchange's part: every settled trade, added to a :class:`carbon.flows.FlowTally`.

The report itself (rows, totals, CSV and Excel) and its registry part (transfers, retirements) are
:mod:`carbon.flows`; :func:`flow_report` composes both for the API.

Every settled trade in the ``trade`` table counts, whatever made it (continuous order book, block trade,
auction), so long as it records its parties and the serial blocks it delivered. A trade is split over the
serial blocks it moved: each block names its batch (project number and batch number, ``carbon.serials``),
so its tonnes are attributed to the batch's project, the project's province and county (the origin) and
the batch's credit class, as the registry tells them (:func:`carbon.flows.batch_origins`: this module reads
no registry table); the destination is the buyer's province and county.

Rules:

- The month is the Asia/Shanghai trading month of the trade.
- CNY is the trade's gross value (price × tonnes), fees excluded; a block's share is the trade's
  notional × block tonnes / trade tonnes, exact in fen because the notional is price × tonnes.
- Tonnes a trade does not cover by serial blocks (none today) are reported under project ``null`` with
  the seller's province as origin rather than dropped, so the totals always equal Σ trade quantities.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from carbon import flows as registry_flows
from carbon.flows import FlowKey, FlowQuery, FlowTally, batch_origins, month_of
from carbon.serials import parse_block
from core.auth import Organisation
from trading.market_data import trading_day
from trading.models import Trade


def add_trade_flows(session: Session, query: FlowQuery, tally: FlowTally) -> None:
    """Add the settled trades that ``query`` admits to ``tally``, split over the serial blocks they delivered."""
    query.check()
    if query.kind not in (None, "trade"):
        return
    seller, buyer = aliased(Organisation), aliased(Organisation)
    statement = (
        select(Trade, seller.province_code, buyer.province_code, buyer.county_code)
        .join(seller, seller.id == Trade.seller_organisation_id)
        .join(buyer, buyer.id == Trade.buyer_organisation_id)
        .order_by(Trade.id)
    )
    if query.destination_province is not None:
        statement = statement.where(buyer.province_code == query.destination_province)
    trades = [(*row, [parse_block(serial) for serial in row[0].serials or []]) for row in session.execute(statement)]
    # The batches' origins come from the registry's public face, in one call (never from its tables).
    origins = batch_origins(session, {(b.project_number, b.batch) for *_, blocks in trades for b in blocks})
    for trade, seller_province, buyer_province, buyer_county, blocks in trades:
        day = trading_day(trade.created_at)
        covered = 0
        for block in blocks:
            origin = origins.get((block.project_number, block.batch))
            province = origin.province_code if origin else block.province
            covered += block.quantity
            if not query.admits("trade", day, province, buyer_province):
                continue
            key = FlowKey("trade", month_of(day), province, origin.county_code if origin else None, buyer_province,
                          buyer_county, origin.project_id if origin else None,
                          origin.credit_class if origin else block.credit_class)  # fmt: skip
            tally.add(key, block.quantity, trade.notional_fen * block.quantity // trade.quantity_t)  # fen × t / t
        rest = trade.quantity_t - covered
        if rest and query.admits("trade", day, seller_province, buyer_province):
            key = FlowKey("trade", month_of(day), seller_province, None, buyer_province, buyer_county, None, None)
            tally.add(key, rest, trade.notional_fen * rest // trade.quantity_t)


def flow_report(session: Session, query: FlowQuery) -> dict[str, Any]:
    """Return the whole flows report: the registry's transfers and retirements and the exchange's trades.

    Composed here, the lowest layer that sees both (``carbon`` never imports ``trading``); the API serves it.
    """
    tally = FlowTally()
    registry_flows.add_registry_flows(session, query, tally)
    add_trade_flows(session, query, tally)
    return registry_flows.flow_report(session, query, tally)
