"""Scenario M15: random streams of deposits, orders, cancels, amends and fills conserve cash and tonnes."""

from __future__ import annotations

import random
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from carbon.ledger import CreditClass, IssueBatch, issue_batch, ledger_violations
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import ShanhaiError
from trading import cash
from trading.journal import MatcherCache, rebuild_book
from trading.listing import CreateInstrument, create_instrument
from trading.models import CashAccount, CashEntry, TradeOrder
from trading.order_entry import AmendOrderRequest, PlaceOrderRequest, amend_order, cancel_order, end_of_day, place_order


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_m15_conservation(template_db: Path, tmp_path: Path, seed: int) -> None:
    path = tmp_path / "m15.db"
    shutil.copyfile(template_db, path)
    engine = make_engine(f"sqlite:///{path}")
    rng, clock = random.Random(seed), FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    cache = MatcherCache()
    with make_session_factory(engine)() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
        operator = who[OrgKind.OPERATOR]
        issue_batch(session, IssueBatch(1, "m15", CreditClass.FORESTRY_CARBON_TICKET, 2025, 2000, 0),
                    actor=who[OrgKind.REGISTRY], clock=clock)  # fmt: skip
        create_instrument(session, CreateInstrument("FCT-2025", "FCT", 2025, "60", always_open=True,
                                   resale_next_day=False, buyer_fee_bp=37, seller_fee_bp=53), actor=operator,
                                   clock=clock)  # fmt: skip
        traders = [who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE], who[OrgKind.FOREST_OWNER]]
        for step in range(120):
            trader = rng.choice(traders)
            action = rng.random()
            try:
                if action < 0.15:
                    cmd = cash.CashMovement(trader.organisation_id, rng.randint(1, 500_000), f"BANK-{step}")
                    cash.deposit(session, cmd, actor=operator, clock=clock)
                elif action < 0.75:
                    side = rng.choice(["buy", "sell"])
                    price = f"{rng.randint(5700, 6300) / 100:.2f}"
                    tif = rng.choice(["gtc", "gtc", "ioc", "fok", "day"])
                    request = PlaceOrderRequest("FCT-2025", side, price, rng.randint(1, 60), tif)
                    place_order(session, request, actor=trader, clock=clock, cache=cache)
                else:
                    session.rollback()
                    own = TradeOrder.organisation_id == trader.organisation_id
                    mine = session.scalars(select(TradeOrder.id).where(own, TradeOrder.status == "open")).all()
                    if not mine:
                        continue
                    target = rng.choice(mine)
                    if action < 0.9:
                        cancel_order(session, target, actor=trader, clock=clock, cache=cache)
                    else:
                        price = f"{rng.randint(5700, 6300) / 100:.2f}"
                        amend = AmendOrderRequest(quantity_t=rng.randint(1, 60), price_cny=price)
                        amend_order(session, target, amend, actor=trader, clock=clock, cache=cache)
            except ShanhaiError:
                session.rollback()
            if step % 20 == 0:
                end_of_day(session, "FCT-2025", actor=operator, clock=clock, cache=cache) if step == 60 else None
        session.rollback()
        assert cash.cash_violations(session) == []
        assert ledger_violations(session) == []
        total = session.scalar(select(func.sum(CashAccount.available_fen + CashAccount.held_fen)))
        external = session.scalar(
            select(func.sum(CashEntry.amount_fen)).where(CashEntry.kind.in_(["deposit", "withdrawal"]))
        )
        assert total == external
        # The book rebuilt from the journal alone equals the live one, and holds only open orders.
        rebuilt = rebuild_book(session, "FCT-2025").states["FCT-2025"].book
        live = cache.get("FCT-2025")
        assert live is not None and sorted(rebuilt.orders) == sorted(live.states["FCT-2025"].book.orders)
        open_ids = session.scalars(select(TradeOrder.id).where(TradeOrder.status == "open")).all()
        assert sorted(rebuilt.orders) == sorted(f"O{i}" for i in open_ids)
    engine.dispose()
