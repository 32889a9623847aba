"""Group batches (ADR 035): the queued orders of several instruments matched and settled in ONE transaction.

A batch takes its instruments' locks in instrument order, keeps each book's journal and cursor apart, and
commits once; a refused command still fails alone, an unexpected failure still reruns every command alone,
and each instrument's tonnes come only from its own vintage. :class:`OrderEntry` splits instruments into
groups by a stable hash; each group batches on its own.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from carbon.ledger import Batch, CreditClass, IssueBatch, issue_batch, ledger_violations, open_blocks
from core.audit import verify_chain
from core.auth import OrgKind, Principal, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import InsufficientUnits, OrderRejected
from trading import cash
from trading.journal import MatcherCache, rebuild_book
from trading.listing import CreateInstrument, create_instrument
from trading.models import JournalEntry, MatcherCursor, Trade, TradeOrder
from trading.order_entry import Job, OrderEntry, PlaceOrderRequest, place_step, run_batch
from trading.order_entry.entry import group_of

A, B = "FCT-2025", "FCT-2024"
CLOCK = FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


@pytest.fixture
def market(
    template_db: Path, tmp_path: Path
) -> Iterator[tuple[Engine, sessionmaker[Session], dict[OrgKind, Principal]]]:
    path = tmp_path / "groups.db"
    shutil.copyfile(template_db, path)
    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    with factory() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
        for instrument_id, vintage in ((A, 2025), (B, 2024)):
            issue_batch(session, IssueBatch(1, f"groups:{vintage}", CreditClass.FORESTRY_CARBON_TICKET, vintage, 1000,
                                            0), actor=who[OrgKind.REGISTRY], clock=CLOCK)  # fmt: skip
            listing = CreateInstrument(instrument_id, "FCT", vintage, "60", always_open=True, buyer_fee_bp=50,
                                       seller_fee_bp=30)  # fmt: skip
            create_instrument(session, listing, actor=who[OrgKind.OPERATOR], clock=CLOCK)
        deposit = cash.CashMovement(who[OrgKind.ENTERPRISE].organisation_id, 1_000_000, "BANK-1")
        cash.deposit(session, deposit, actor=who[OrgKind.OPERATOR], clock=CLOCK)
    yield engine, factory, who
    engine.dispose()


def job(instrument_id: str, side: str, price: str, quantity: int, who: Principal, key: str | None = None) -> Job:
    request = PlaceOrderRequest(instrument_id, side, price, quantity)
    return Job(place_step(request, who, key), None if key is None else (who.organisation_id, key), instrument_id)


def assert_consistent(session: Session) -> None:
    session.rollback()
    assert cash.cash_violations(session) == []
    assert ledger_violations(session) == []
    assert verify_chain(session).ok
    for instrument_id in (A, B):
        seqs = list(session.scalars(select(JournalEntry.seq).where(JournalEntry.instrument_id == instrument_id)
                                    .order_by(JournalEntry.seq)))  # fmt: skip
        assert seqs == list(range(1, len(seqs) + 1))
        cursor = session.get(MatcherCursor, instrument_id)
        assert cursor is not None and cursor.applied_seq == len(seqs)
        open_ids = sorted(
            f"O{i}"
            for i in session.scalars(
                select(TradeOrder.id).where(TradeOrder.status == "open", TradeOrder.instrument_id == instrument_id)
            )
        )
        assert sorted(rebuild_book(session, instrument_id).states[instrument_id].book.orders) == open_ids
    session.rollback()


def test_one_transaction_matches_and_settles_orders_of_two_instruments(market: Any) -> None:
    engine, factory, who = market
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    jobs = [
        job(A, "sell", "60.00", 30, bureau, "a-sell"),
        job(B, "sell", "61.00", 20, bureau, "b-sell"),
        job(A, "buy", "60.00", 10, enterprise, "a-buy"),
        job(B, "buy", "61.00", 20, enterprise, "b-buy"),
        job(A, "buy", "60.00", 5, enterprise),
    ]
    with factory() as session:
        run_batch(session, MatcherCache(), None, jobs, clock=CLOCK)
    assert [j.error for j in jobs] == [None] * 5
    assert len(commits) == 1
    assert [j.result["filled_t"] for j in jobs if j.result] == [0, 0, 10, 20, 5]
    with factory() as session:
        vintage = dict(session.execute(select(Batch.id, Batch.vintage_year)).all())
        bought: dict[int, int] = {}
        for block in open_blocks(session, enterprise.organisation_id):
            bought[vintage[block.batch_id]] = bought.get(vintage[block.batch_id], 0) + block.quantity
        assert bought == {2025: 15, 2024: 20}  # each instrument delivered its own vintage only
        trades = {t.instrument_id: t.quantity_t for t in session.scalars(select(Trade).where(Trade.quantity_t == 20))}
        assert trades == {B: 20}
        assert session.scalar(select(func.count()).select_from(Trade).where(Trade.instrument_id == A)) == 2
        assert_consistent(session)


def test_a_refused_command_of_one_instrument_fails_alone_in_a_group_batch(market: Any) -> None:
    _, factory, who = market
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    jobs = [
        job(A, "sell", "60.00", 10, bureau),
        job(B, "sell", "60.00", 5000, bureau),  # more of the 2024 vintage than the bureau holds
        job(B, "buy", "60.005", 1, enterprise),  # off tick: the engine of B refuses
        job(B, "sell", "60.00", 10, bureau),
        job(A, "buy", "60.00", 10, enterprise),
    ]
    with factory() as session:
        run_batch(session, MatcherCache(), None, jobs, clock=CLOCK)
    assert [type(j.error) if j.error else None for j in jobs] == [None, InsufficientUnits, OrderRejected, None, None]
    assert jobs[4].result is not None and jobs[4].result["filled_t"] == 10
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(TradeOrder)) == 3
        assert_consistent(session)


def test_a_failure_before_the_commit_reruns_every_command_of_every_instrument_alone(market: Any) -> None:
    _, factory, who = market
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    cache = MatcherCache()
    with factory() as session:  # both engines cached at seq 1
        run_batch(session, cache, None, [job(A, "sell", "60.00", 10, bureau), job(B, "sell", "60.00", 10, bureau)],
                  clock=CLOCK)  # fmt: skip
    failures = ["disk on fire"]

    def fail_once() -> None:
        if failures:
            raise RuntimeError(failures.pop())

    jobs = [job(A, "buy", "60.00", 4, enterprise, "k-a"), job(B, "buy", "60.00", 6, enterprise, "k-b"),
            job(A, "sell", "60.10", 3, bureau)]  # fmt: skip
    with factory() as session:
        run_batch(session, cache, None, jobs, clock=CLOCK, before_commit=fail_once)
    assert [j.error for j in jobs] == [None, None, None]  # each ran again alone and committed
    assert [j.result["filled_t"] for j in jobs if j.result] == [4, 6, 0]
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Trade)) == 2
        assert_consistent(session)


def test_order_entry_batches_the_instruments_of_a_group_together(market: Any) -> None:
    engine, factory, who = market
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    entry = OrderEntry(factory, CLOCK, MatcherCache())  # one group: both instruments batch together
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def trader(i: int) -> None:
        start.wait()
        instrument_id = A if i % 2 else B
        for n in range(5):
            principal, side = (bureau, "sell") if (i // 2 + n) % 2 else (enterprise, "buy")
            request = PlaceOrderRequest(instrument_id, side, "60.00", 2)
            try:
                answers.append(entry.submit(instrument_id, place_step(request, principal)))
            except Exception as error:
                errors.append(error)

    threads = [threading.Thread(target=trader, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(answers) == 60
    assert len(commits) < 60  # orders of both instruments shared commits
    with factory() as session:
        assert sorted(a["order_id"] for a in answers) == sorted(session.scalars(select(TradeOrder.id)))
        assert_consistent(session)


def test_instrument_groups_are_a_stable_hash_and_each_group_runs_on_its_own(market: Any) -> None:
    _, factory, who = market
    assert group_of(A, 1) == group_of(B, 1) == 0
    assert [group_of(f"FCT-{2000 + i}", 4) for i in range(8)] == [group_of(f"FCT-{2000 + i}", 4) for i in range(8)]
    assert {group_of(f"FCT-{2000 + i}", 4) for i in range(64)} == {0, 1, 2, 3}  # every group gets instruments
    with pytest.raises(ValueError, match="at least one"):
        OrderEntry(factory, CLOCK, MatcherCache(), groups=0)
    entry = OrderEntry(factory, CLOCK, MatcherCache(), groups=8)
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    for instrument_id in (A, B):
        entry.submit(instrument_id, place_step(PlaceOrderRequest(instrument_id, "sell", "60.00", 3), bureau))
        answer = entry.submit(instrument_id, place_step(PlaceOrderRequest(instrument_id, "buy", "60.00", 3),
                                                        enterprise))  # fmt: skip
        assert answer["filled_t"] == 3
    with factory() as session:
        assert_consistent(session)


def test_a_deadlock_victim_batch_runs_again_whole(market: Any) -> None:
    """PostgreSQL aborts one of two batches that lock the same accounts in different orders: it runs again."""
    from psycopg.errors import DeadlockDetected
    from sqlalchemy.exc import OperationalError

    _, factory, who = market
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    victims = [OperationalError("SELECT … FOR NO KEY UPDATE", {}, DeadlockDetected("deadlock detected"))] * 2

    def deadlocked() -> None:
        if victims:
            raise victims.pop()

    jobs = [job(A, "sell", "60.00", 10, bureau, "k-1")]
    with factory() as session:
        run_batch(session, MatcherCache(), None, jobs, clock=CLOCK, before_commit=deadlocked)
    assert jobs[0].error is None and jobs[0].result is not None and victims == []  # twice aborted, then committed
    always = OperationalError("SELECT 1", {}, DeadlockDetected("deadlock detected"))
    jobs = [job(B, "buy", "60.00", 1, enterprise)]
    with factory() as session:
        run_batch(session, MatcherCache(), None, jobs, clock=CLOCK, before_commit=lambda: (_ for _ in ()).throw(always))
    assert jobs[0].error is always  # after DEADLOCK_RETRIES more attempts the error is reported
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(TradeOrder)) == 1
        assert_consistent(session)
