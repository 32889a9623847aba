"""Block trades and auctions on PostgreSQL: the migration's tables in use, and two concurrent closes of one
auction settle it once (the instrument's advisory lock serialises them; the second finds it closed)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from api.seed import seed_demo
from carbon.ledger import CreditClass, IssueBatch, issue_batch, ledger_violations
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from tests.conftest import SAMPLES, fresh_postgres_database
from trading import auctions, block_trades, cash
from trading.journal import MatcherCache
from trading.listing import CreateInstrument, create_instrument
from trading.models import Trade

pytestmark = pytest.mark.postgres
AT_1330 = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)  # 13:30 in Shanghai, a Wednesday


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database("_auctions") as url:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            seed_demo(session, SAMPLES, clock=FixedClock(AT_1330))
        engine.dispose()
        yield url


def test_block_trade_and_concurrent_auction_closes(pg_url: str) -> None:
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    clock = FixedClock(AT_1330)
    with factory() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
        issue_batch(session, IssueBatch(1, "pg:auction", CreditClass.FORESTRY_CARBON_TICKET, 2025, 200_000, 0),
                    actor=who[OrgKind.REGISTRY], clock=clock)  # fmt: skip
        listing = CreateInstrument("FCT-2025", "FCT", 2025, "60", buyer_fee_bp=50, seller_fee_bp=30)
        create_instrument(session, listing, actor=who[OrgKind.OPERATOR], clock=clock)
        for kind in (OrgKind.ENTERPRISE, OrgKind.FOREST_OWNER):
            movement = cash.CashMovement(who[kind].organisation_id, 700_000_000, f"pg-{kind.value}")
            cash.deposit(session, movement, actor=who[OrgKind.OPERATOR], clock=clock)
        seller, buyer = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
        cache = MatcherCache()
        proposal = block_trades.ProposeBlockTrade("FCT-2025", "sell", buyer.organisation_id, 100_000, "65.00")
        block = block_trades.propose(session, proposal, actor=seller, clock=clock, cache=cache)
        settled = block_trades.confirm(session, block["block_trade_id"], actor=buyer, clock=clock, cache=cache)
        assert settled["status"] == "settled" and settled["trade"]["notional_fen"] == 650_000_000
        announced = auctions.announce(session, auctions.AnnounceAuction(
            "FCT-2025", 1_000, "50.00", clock.now(), clock.now() + timedelta(hours=1), "pay_as_bid"),
            actor=seller, clock=clock)  # fmt: skip
        aid = announced["auction_id"]
        auctions.place_bid(session, aid, auctions.PlaceBid("52.00", 600), actor=buyer, clock=clock)
        auctions.place_bid(session, aid, auctions.PlaceBid("51.00", 600), actor=who[OrgKind.FOREST_OWNER],
                           clock=clock)  # fmt: skip
    clock.advance(timedelta(hours=1))
    answers: list[dict[str, Any]] = []

    def close(barrier: threading.Barrier) -> None:
        with factory() as session:
            barrier.wait()
            answers.append(auctions.close(session, aid, actor="test", clock=clock, cache=MatcherCache()))

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=close, args=(barrier,)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 2 and answers[0]["results"] == answers[1]["results"]
    assert [(a["quantity_t"], a["price_cny"]) for a in answers[0]["results"]["allocations"]] == [
        (600, "52.00"), (400, "51.00")]  # fmt: skip
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Trade).where(Trade.mode == "auction")) == 2
        assert cash.cash_violations(session) == [] and ledger_violations(session) == []
    engine.dispose()
