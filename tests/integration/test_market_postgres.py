"""Market data on PostgreSQL: a match that is computed but not yet committed is invisible to the book and
the feed while its transaction is open (MVCC lets the reader run beside it), and shows once it commits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.seed import seed_demo
from carbon.flows import FlowQuery, totals_by
from carbon.ledger import (
    CreditClass,
    IssueBatch,
    RetireUnits,
    decide_transfer,
    issue_batch,
    pending_transfer_of,
    retire_units,
    transfer,
)
from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from tests.conftest import SAMPLES, fresh_postgres_database
from trading import market_data
from trading.cash import CashMovement, deposit
from trading.flows import flow_report
from trading.journal import MatcherCache
from trading.listing import CreateInstrument, create_instrument
from trading.order_entry import PlaceOrderRequest, place_order

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def market_pg_url() -> Iterator[str]:
    with fresh_postgres_database("_market") as url:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            seed_demo(session, SAMPLES, clock=FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC)))
        engine.dispose()
        yield url


def test_an_open_transaction_s_match_is_not_shown(market_pg_url: str) -> None:
    engine = make_engine(market_pg_url)
    factory = make_session_factory(engine)
    clock = FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    cache, replicas = MatcherCache(), market_data.BookReplicas()
    with factory() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
        issue_batch(session, IssueBatch(1, "pg:market", CreditClass.FORESTRY_CARBON_TICKET, 2025, 1000, 0),
                    actor=who[OrgKind.REGISTRY], clock=clock)  # fmt: skip
        create_instrument(session, CreateInstrument("FCT-2025", "FCT", 2025, "60", always_open=True),
                                   actor=who[OrgKind.OPERATOR], clock=clock)  # fmt: skip
        deposit(session, CashMovement(who[OrgKind.ENTERPRISE].organisation_id, 1_000_000, "BANK-PG"),
                actor=who[OrgKind.OPERATOR], clock=clock)  # fmt: skip
        place_order(session, PlaceOrderRequest("FCT-2025", "sell", "60.00", 10),
                             actor=who[OrgKind.FORESTRY_BUREAU], clock=clock, cache=cache)  # fmt: skip

    matched, release = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def wait_before_commit() -> None:
        matched.set()  # the fill is computed, settled and flushed, but not committed
        assert release.wait(timeout=30)

    def buy() -> None:
        with factory() as session:
            outcome["order"] = place_order(
                session, PlaceOrderRequest("FCT-2025", "buy", "60.00", 4), actor=who[OrgKind.ENTERPRISE],
                clock=clock, cache=cache, before_commit=wait_before_commit,
            )  # fmt: skip

    def read() -> tuple[dict[str, Any], market_data.FeedRead]:
        with factory() as session:
            book = market_data.read_book(session, replicas, "FCT-2025")
            session.rollback()
            feed = market_data.read_feed(session, replicas, "FCT-2025", 0)
            session.rollback()
            return book, feed

    thread = threading.Thread(target=buy)
    thread.start()
    try:
        assert matched.wait(timeout=30)
        book, feed = read()
        assert book["seq"] == 1 and book["asks"] == [{"price_cny": "60.00", "quantity_t": 10, "orders": 1}]
        assert [u.seq for u in feed.updates] == [1] and feed.updates[0].data["trades"] == []
    finally:
        release.set()
        thread.join(timeout=30)
    assert outcome["order"]["filled_t"] == 4
    book, feed = read()
    assert book["seq"] == 2 and book["asks"] == [{"price_cny": "60.00", "quantity_t": 6, "orders": 1}]
    assert [u.seq for u in feed.updates] == [1, 2]
    assert [(t["price_cny"], t["quantity_t"]) for t in feed.updates[1].data["trades"]] == [("60.00", 4)]
    assert feed.updates[1].data["book"] == book
    with factory() as session:
        assert _flows_by_kind(session) == [{"kind": "trade", "tonnes": 4, "cny": Decimal("240.00")}]
        # A registry transfer Ningxia → Fujian and a Fujian retirement of Ningxia tonnes count beside it.
        bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
        moved = transfer(
            session,
            from_organisation_id=bureau.organisation_id,
            to_organisation_id=enterprise.organisation_id,
            quantity_t=300,
            actor=bureau,
            clock=clock,
        )
        if (offer := pending_transfer_of(moved)) is not None:
            decide_transfer(session, offer, accept=True, actor=enterprise, clock=clock)
        retire_units(session, RetireUnits(120, "Xiamen Haicang port logistics", "offsetting", 2026),
                     actor=enterprise, clock=clock)  # fmt: skip
        assert _flows_by_kind(session) == [
            {"kind": "retirement", "tonnes": 120, "cny": None},
            {"kind": "trade", "tonnes": 4, "cny": Decimal("240.00")},
            {"kind": "transfer", "tonnes": 300, "cny": None},
        ]
    engine.dispose()


def _flows_by_kind(session: Session) -> list[dict[str, Any]]:
    """The flows report's Ningxia → Fujian totals by kind, as the API serves them."""
    report = flow_report(session, FlowQuery("64", "35"))
    assert report["totals"]["kind"] == totals_by(report["rows"], ("kind",))
    by_kind: list[dict[str, Any]] = report["totals"]["kind"]
    return by_kind
