"""ADR 015's lock order in every settling path on PostgreSQL (the merge of group commit with ADR 013).

The row locks (``SELECT … FOR UPDATE``) each transaction takes are recorded from the SQL it sends. Block
trades and auctions — which settle through the same DvP path as book fills but outside the batcher — must
take: trading cash accounts in organisation order, then the fee account, then registry account rows and their
blocks, and the audit head once, last. A book batch must lock the audit head once, last (its cash accounts
follow first use across commands, see ADR 015).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine

from api.seed import seed_demo
from carbon.ledger import CreditClass, IssueBatch, issue_batch, ledger_violations
from core.audit import verify_chain
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from tests.conftest import SAMPLES, fresh_postgres_database
from trading import auctions, block_trades, cash
from trading.journal import MatcherCache
from trading.listing import CreateInstrument, create_instrument
from trading.order_entry import Job, PlaceOrderRequest, place_step, run_batch

pytestmark = pytest.mark.postgres
AT_1330 = datetime(2026, 11, 25, 5, 30, tzinfo=UTC)  # 13:30 in Shanghai, a Wednesday
INSTRUMENT = "FCT-2025"


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with fresh_postgres_database("_lock_order") as url:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            seed_demo(session, SAMPLES, clock=FixedClock(AT_1330))
        engine.dispose()
        yield url


class Locks:
    """The row locks of the statements sent since the last :meth:`take`, as (what, organisation) pairs."""

    def __init__(self, engine: Engine) -> None:
        self.seen: list[tuple[str, Any]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if "FOR UPDATE" not in statement and "FOR NO KEY UPDATE" not in statement:
            return
        values = list(parameters.values()) if isinstance(parameters, dict) else list(parameters or ())
        if "FROM cash_account" in statement:
            kind = next(v for v in values if isinstance(v, str))
            organisation = next(v for v in values if isinstance(v, int))
            self.seen.append(("fee" if kind == cash.FEE else "cash", organisation))
        elif "FROM registry_account" in statement:
            self.seen.append(("registry", None))  # a registry account's row, right before its blocks (ADR 022)
        elif "holding_block" in statement:
            self.seen.append(("blocks", None))
        elif "FROM audit_head" in statement:
            self.seen.append(("audit", None))
        elif "FROM auction_bid" in statement:
            self.seen.append(("bids", None))  # an auction's own bids, taken right after the instrument lock
        else:
            self.seen.append(("other", statement.split("FROM", 1)[-1][:40]))

    def take(self) -> list[tuple[str, Any]]:
        seen, self.seen = self.seen, []
        return seen


def assert_adr_015_order(locks: list[tuple[str, Any]], *, blocks: bool) -> None:
    kinds = [kind for kind, _ in locks]
    assert kinds.count("audit") == 1 and kinds[-1] == "audit", locks
    assert "other" not in kinds, locks
    rank = {"bids": 0, "cash": 1, "fee": 2, "registry": 3, "blocks": 3, "audit": 4}
    assert [rank[k] for k in kinds] == sorted(rank[k] for k in kinds), locks
    organisations = [org for kind, org in locks if kind == "cash"]
    assert organisations == sorted(organisations) and len(organisations) >= 2, locks
    assert ("blocks" in kinds) is blocks and ("registry" in kinds) is blocks, locks


def test_block_trades_auctions_and_book_fills_lock_in_one_order(pg_url: str) -> None:
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    clock = FixedClock(AT_1330)
    with factory() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
        issue_batch(session, IssueBatch(1, "pg:locks", CreditClass.FORESTRY_CARBON_TICKET, 2025, 300_000, 0),
                    actor=who[OrgKind.REGISTRY], clock=clock)  # fmt: skip
        listing = CreateInstrument(INSTRUMENT, "FCT", 2025, "60", always_open=True, buyer_fee_bp=50,
                                            seller_fee_bp=30, resale_next_day=False)  # fmt: skip
        create_instrument(session, listing, actor=who[OrgKind.OPERATOR], clock=clock)
        for kind in (OrgKind.ENTERPRISE, OrgKind.FOREST_OWNER):
            movement = cash.CashMovement(who[kind].organisation_id, 2_000_000_000, f"locks-{kind.value}")
            cash.deposit(session, movement, actor=who[OrgKind.OPERATOR], clock=clock)
    seller, buyer, owner = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE], who[OrgKind.FOREST_OWNER]
    cache = MatcherCache()
    locks = Locks(engine)
    with factory() as session:
        # Block, the counterparty buys: it holds cash at confirmation (both parties locked first).
        offer = block_trades.ProposeBlockTrade(INSTRUMENT, "sell", buyer.organisation_id, 100_000, "60.00")
        block = block_trades.propose(session, offer, actor=seller, clock=clock, cache=cache)
        locks.take()
        confirmed = block_trades.confirm(session, block["block_trade_id"], actor=buyer, clock=clock, cache=cache)
        assert confirmed["status"] == "settled"
        assert_adr_015_order(locks.take(), blocks=True)
        # Block, the counterparty sells: it escrows tonnes at confirmation, after every cash lock.
        bid = block_trades.ProposeBlockTrade(INSTRUMENT, "buy", seller.organisation_id, 100_000, "61.00")
        block = block_trades.propose(session, bid, actor=buyer, clock=clock, cache=cache)
        locks.take()
        confirmed = block_trades.confirm(session, block["block_trade_id"], actor=seller, clock=clock, cache=cache)
        assert confirmed["status"] == "settled"
        assert_adr_015_order(locks.take(), blocks=True)
        # Auction close: seller and bidders, fee account, blocks (delivery and the unfilled rest), audit.
        announced = auctions.announce(session, auctions.AnnounceAuction(
            INSTRUMENT, 2_000, "50.00", clock.now(), clock.now() + timedelta(hours=1), "uniform"),
            actor=seller, clock=clock)  # fmt: skip
        auctions.place_bid(session, announced["auction_id"], auctions.PlaceBid("52.00", 600), actor=buyer,
                           clock=clock)  # fmt: skip
        auctions.place_bid(session, announced["auction_id"], auctions.PlaceBid("51.00", 600), actor=owner,
                           clock=clock)  # fmt: skip
    clock.advance(timedelta(hours=1))
    with factory() as session:
        locks.take()
        closed = auctions.close(session, announced["auction_id"], actor="test", clock=clock, cache=cache)
        assert closed["results"]["allocated_t"] == 1_200
        assert_adr_015_order(locks.take(), blocks=True)
        # A book batch: a resting sell and a crossing buy in one transaction; the audit head once, last.
        jobs = [Job(place_step(PlaceOrderRequest(INSTRUMENT, "sell", "60.00", 500),
                                                 seller)),
                Job(place_step(PlaceOrderRequest(INSTRUMENT, "buy", "60.00", 500),
                                                 buyer))]  # fmt: skip
        run_batch(session, cache, INSTRUMENT, jobs, clock=clock)
        assert [job.error for job in jobs] == [None, None]
        assert jobs[1].result is not None and jobs[1].result["filled_t"] == 500
        batch = locks.take()
        assert [kind for kind, _ in batch].count("audit") == 1 and batch[-1][0] == "audit", batch
        # Nothing lost on the way: cash, registry and the audit chain are whole.
        assert cash.cash_violations(session) == [] and ledger_violations(session) == []
        assert verify_chain(session).ok
        session.rollback()
    engine.dispose()
