"""Order entry with SHANHAI_MATCHER_PROCESS: batches run in a child process of the API process (ADR 018)."""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from core.auth import OrgKind, User, principal_of
from core.clock import FixedClock
from core.errors import ServiceUnavailable
from core.settings import Settings
from tests.e2e.test_trading_api import INSTRUMENT, Login, assert_conserved, balances, count, market, order
from trading.journal import MatcherCache, rebuild_book
from trading.models import MatcherCursor, TradeOrder
from trading.order_entry import OrderCommand, OrderEntry, PlaceOrderRequest, matcher, place_order

__all__ = ["market"]  # the fixture, imported from the order-entry tests


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"matcher_process": True})


def test_orders_run_in_the_matcher_process_with_the_same_answers(
    client: TestClient, login: Login, session: Session, market: dict[str, int], app: FastAPI
) -> None:
    entry: OrderEntry = app.state.order_entry
    assert entry.matcher is not None and entry.matcher.pid() != os.getpid()
    sell = order(client, login, "forestry_bureau", "sell", "60.00", 100)
    assert sell.status_code == 201, sell.text
    key = {"Idempotency-Key": "buy-1"}
    buy = order(client, login, "enterprise", "buy", "60.00", 40, headers=key)
    assert buy.status_code == 201 and buy.json()["status"] == "filled"
    assert order(client, login, "enterprise", "buy", "60.00", 40, headers=key).json() == buy.json()
    conflict = order(client, login, "enterprise", "buy", "60.00", 41, headers=key)
    assert conflict.status_code == 409 and conflict.headers["content-type"] == "application/problem+json"
    before = count(session, TradeOrder)
    broke = order(client, login, "forest_owner", "buy", "60.00", 1)  # no cash at all
    assert broke.status_code == 409 and "60.30 CNY" in broke.json()["detail"]
    assert broke.json()["needed_fen"] == 6_030  # the refusal's figures cross the process boundary too
    off_tick = order(client, login, "enterprise", "buy", "60.005", 1)
    assert off_tick.status_code == 422 and off_tick.json()["reason"]
    assert count(session, TradeOrder) == before  # refused orders left nothing
    sell_id = sell.json()["order_id"]
    amended = client.post(f"/api/v1/orders/{sell_id}/amend", json={"quantity_t": 50}, headers=login("forestry_bureau"))
    assert amended.status_code == 200 and amended.json()["remaining_t"] == 50, amended.text
    cancelled = client.post(f"/api/v1/orders/{sell_id}/cancel", headers=login("forestry_bureau"))
    assert cancelled.json()["status"] == "cancelled"
    notional = 40 * 6000
    assert balances(client, login, "enterprise")["available_fen"] == 1_000_000 - notional - notional * 50 // 10_000
    assert_conserved(session, 1_000_000)
    assert sorted(rebuild_book(session, INSTRUMENT).states[INSTRUMENT].book.orders) == []
    session.rollback()


def test_a_matcher_killed_inside_a_batch_answers_503_and_leaves_nothing_half_written(
    settings: Settings, session: Session, market: dict[str, int], app: FastAPI, clock: FixedClock
) -> None:
    entry: OrderEntry = app.state.order_entry
    assert entry.matcher is not None
    users = session.scalars(select(User)).all()
    bureau = principal_of(next(u for u in users if u.organisation.kind is OrgKind.FORESTRY_BUREAU), "test")
    session.rollback()
    before, pid = count(session, TradeOrder), entry.matcher.pid()
    # Hold SQLite's write lock so that the matcher's batch waits inside its transaction, then kill the matcher.
    database = settings.resolved_database_url.removeprefix("sqlite:///")
    blocker = sqlite3.connect(Path(database), isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    outcome: list[object] = []

    def sell() -> None:
        with app.state.session_factory() as own:
            try:
                outcome.append(place_order(own, PlaceOrderRequest(INSTRUMENT, "sell", "60.00", 10), actor=bureau,
                                           clock=clock, cache=app.state.matchers, entry=entry))  # fmt: skip
            except ServiceUnavailable as error:
                outcome.append(error)

    waiting = threading.Thread(target=sell)
    waiting.start()
    time.sleep(1.0)  # the batch is in the child, waiting for the lock
    os.kill(pid, signal.SIGKILL)
    waiting.join(timeout=30)
    blocker.execute("ROLLBACK")
    blocker.close()
    assert len(outcome) == 1 and isinstance(outcome[0], ServiceUnavailable), outcome
    assert "Idempotency-Key" in str(outcome[0])
    assert count(session, TradeOrder) == before  # the killed batch committed nothing
    # The next batch starts a new matcher process and goes through.
    with app.state.session_factory() as own:
        answer = place_order(own, PlaceOrderRequest(INSTRUMENT, "sell", "60.00", 10), actor=bureau, clock=clock,
                             cache=app.state.matchers, entry=entry)  # fmt: skip
    assert answer["status"] == "open" and entry.matcher.pid() != pid
    assert_conserved(session, 1_000_000)


def test_the_matcher_sends_back_errors_that_are_not_domain_errors_as_their_text(
    settings: Settings, session: Session, market: dict[str, int], clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A driver's or a replay's error may not pickle: it crosses as a RuntimeError naming its type."""
    monkeypatch.setattr(matcher, "_MATCHER", None)  # this process plays the child; restored afterwards
    users = session.scalars(select(User)).all()
    bureau = principal_of(next(u for u in users if u.organisation.kind is OrgKind.FORESTRY_BUREAU), "test")
    place_order(session, PlaceOrderRequest(INSTRUMENT, "sell", "60.00", 1), actor=bureau, clock=clock,
                cache=MatcherCache())  # fmt: skip
    session.execute(update(MatcherCursor).values(state_hash="0" * 64, hash_seq=1))  # a checkpoint no replay meets
    session.commit()
    matcher._start_matcher(settings.resolved_database_url, clock)  # in this process, as the child would
    command = OrderCommand("place", bureau, None, place=PlaceOrderRequest(INSTRUMENT, "sell", "60.00", 1))
    [(result, error)] = matcher._run_in_matcher([(INSTRUMENT, command)])
    assert result is None and type(error) is RuntimeError and str(error).startswith("RuntimeError: the journal")
    assert pickle.loads(pickle.dumps(error)).args == error.args
