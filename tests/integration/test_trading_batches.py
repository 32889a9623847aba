"""Group commit (ADR 015): batches of order commands in one transaction.

A command refused inside a batch fails alone; an unexpected failure after matching makes every command of
the batch run again alone; a process killed while a batch is being committed loses nothing acknowledged
and leaves nothing of the batch; concurrent requests of one process share batches.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from carbon.ledger import BlockState, CreditClass, IssueBatch, issue_batch, ledger_violations, open_blocks
from core.audit import AuditEntry, verify_chain
from core.auth import OrgKind, Principal, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import IdempotencyConflict, InsufficientFunds, InsufficientUnits, OrderRejected
from trading import cash, journal, models
from trading.journal import MatcherCache, rebuild_book
from trading.listing import CreateInstrument, create_instrument
from trading.models import CashAccount, CashEntry, IdempotencyRecord, JournalEntry, Trade, TradeOrder
from trading.order_entry import (
    AmendOrderRequest,
    BatchContext,
    Job,
    OrderEntry,
    PlaceOrderRequest,
    Step,
    amend_step,
    cancel_step,
    place_step,
    run_batch,
)

INSTRUMENT = "FCT-2025"
CLOCK = FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))


@pytest.fixture
def market(
    template_db: Path, tmp_path: Path
) -> Iterator[tuple[Engine, sessionmaker[Session], dict[OrgKind, Principal]]]:
    path = tmp_path / "batches.db"
    shutil.copyfile(template_db, path)
    engine = make_engine(f"sqlite:///{path}")
    factory = make_session_factory(engine)
    with factory() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
        issue_batch(session, IssueBatch(1, "batches:1", CreditClass.FORESTRY_CARBON_TICKET, 2025, 1000, 0),
                    actor=who[OrgKind.REGISTRY], clock=CLOCK)  # fmt: skip
        listing = CreateInstrument(INSTRUMENT, "FCT", 2025, "60", always_open=True, buyer_fee_bp=50,
                                            seller_fee_bp=30)  # fmt: skip
        create_instrument(session, listing, actor=who[OrgKind.OPERATOR], clock=CLOCK)
        deposit = cash.CashMovement(who[OrgKind.ENTERPRISE].organisation_id, 1_000_000, "BANK-1")
        cash.deposit(session, deposit, actor=who[OrgKind.OPERATOR], clock=CLOCK)
    yield engine, factory, who
    engine.dispose()


def place(side: str, price: str, quantity: int) -> PlaceOrderRequest:
    return PlaceOrderRequest(INSTRUMENT, side, price, quantity)


def assert_consistent(session: Session) -> None:
    session.rollback()
    assert cash.cash_violations(session) == []
    assert ledger_violations(session) == []
    assert verify_chain(session).ok
    seqs = list(session.scalars(select(JournalEntry.seq).order_by(JournalEntry.seq)))
    assert seqs == list(range(1, len(seqs) + 1))
    open_ids = sorted(f"O{i}" for i in session.scalars(select(TradeOrder.id).where(TradeOrder.status == "open")))
    assert sorted(rebuild_book(session, INSTRUMENT).states[INSTRUMENT].book.orders) == open_ids
    session.rollback()


def test_a_refused_command_fails_alone(market: Any) -> None:
    _, factory, who = market
    bureau, enterprise, owner = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE], who[OrgKind.FOREST_OWNER]
    jobs = [
        Job(place_step(place("sell", "60.00", 100), bureau, "k-sell")),
        Job(place_step(place("buy", "60.00", 10), owner)),  # no cash at all
        Job(place_step(place("sell", "60.00", 5000), bureau)),  # more tonnes than held
        Job(place_step(place("buy", "60.005", 1), enterprise)),  # off tick: engine rejects
        Job(place_step(place("buy", "60.00", 40), enterprise, "k-buy")),  # fills 40 of the 100
        Job(place_step(place("sell", "60.00", 41), bureau, "k-sell")),  # key of another body
    ]
    cache = MatcherCache()
    with factory() as session:
        run_batch(session, cache, INSTRUMENT, jobs, clock=CLOCK)
        errors = [type(j.error) if j.error else None for j in jobs]
        assert errors == [None, InsufficientFunds, InsufficientUnits, OrderRejected, None, IdempotencyConflict]
        sell, buy = jobs[0].result, jobs[4].result
        assert sell is not None and buy is not None
        assert (sell["status"], sell["remaining_t"]) == ("open", 100)  # its answer is the state after its own step
        assert buy["status"] == "filled" and [f["quantity_t"] for f in buy["fills"]] == [40]
        # Everything of the good commands is committed, nothing of the refused ones.
        session.rollback()
        assert session.scalar(select(func.count()).select_from(TradeOrder)) == 2
        assert session.scalar(select(func.count()).select_from(Trade)) == 1
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 2
        assert [j.seq for j in session.scalars(select(JournalEntry).order_by(JournalEntry.seq))] == [1, 2]
        escrowed = sum(b.quantity for b in open_blocks(session) if b.state is BlockState.ESCROWED)
        assert escrowed == 60
        assert cash.balances(session, owner.organisation_id) == (0, 0)
        # The live engine equals the committed journal: the next batch goes on from it.
        assert cache.get(INSTRUMENT) is not None and cache.get(INSTRUMENT).last_seq == 2  # type: ignore[union-attr]
        assert_consistent(session)


def test_a_key_repeated_in_one_batch_is_answered_once_and_a_refused_command_leaves_no_deferred_row(
    market: Any,
) -> None:
    """Idempotency records are read once for the batch; journal, cash, balance and registry rows written at its end."""
    _, factory, who = market
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    sell = place_step(place("sell", "60.00", 100), bureau, "k-1")
    jobs = [
        Job(sell, (bureau.organisation_id, "k-1")),
        Job(place_step(place("sell", "60.00", 100), bureau, "k-1"), (bureau.organisation_id, "k-1")),
        # held cash (two deferred cash entries), then the engine refuses the price: both entries must go
        Job(place_step(place("buy", "60.005", 1), enterprise, "k-2"), (enterprise.organisation_id, "k-2")),
        Job(place_step(place("buy", "60.00", 10), enterprise, "k-3"), (enterprise.organisation_id, "k-3")),
        # tonnes enough, price off tick: refused by the engine before anything is escrowed; its order row goes
        Job(place_step(place("sell", "60.005", 5), bureau)),
    ]
    statements: list[str] = []
    with factory() as session:
        event.listen(session.get_bind(), "before_cursor_execute",
                     lambda *args: statements.append(" ".join(args[2].split())))  # fmt: skip
        run_batch(session, MatcherCache(), INSTRUMENT, jobs, clock=CLOCK)
        assert [type(j.error) if j.error else None for j in jobs] == [None, None, OrderRejected, None, OrderRejected]
        assert jobs[1].result == jobs[0].result  # the repeat got the first answer, nothing was placed again
        assert not any(s.startswith(("SAVEPOINT", "ROLLBACK TO")) for s in statements)  # refusals wrote nothing
        assert jobs[3].result is not None and jobs[3].result["filled_t"] == 10
        # one read of the batch's keys; one INSERT per append-only table, all at the end of the batch
        assert sum("FROM idempotency_record" in s for s in statements) == 1
        for table in ("order_journal", "idempotency_record", "cash_entry", "registry_movement"):
            assert sum(s.startswith(f"INSERT INTO {table} ") for s in statements) == 1, table
        # balances: one UPDATE … + delta per set of changed columns; the buyer's hold was filled, so its held
        # balance nets to 0 and all three accounts (buyer, seller, fees) change only what is available
        balance_updates = [s for s in statements if s.startswith("UPDATE cash_account ")]
        assert len(balance_updates) == 1 and "available_fen=(cash_account.available_fen +" in balance_updates[0]
        assert "held_fen" not in balance_updates[0]
        session.rollback()
        assert session.scalar(select(func.count()).select_from(TradeOrder)) == 2  # the rejected sell's row is gone
        assert sum(b.quantity for b in open_blocks(session) if b.state is BlockState.ESCROWED) == 90
        assert session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 2
        assert [j.seq for j in session.scalars(select(JournalEntry).order_by(JournalEntry.seq))] == [1, 2]
        references = set(session.scalars(select(CashEntry.reference).where(CashEntry.kind != "deposit")))
        assert all("order:" not in r or r.endswith(str(jobs[3].result["order_id"])) for r in references), references
        assert_consistent(session)


def test_a_failure_after_matching_reruns_each_command_alone(market: Any) -> None:
    _, factory, who = market
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    good = place_step(place("buy", "60.00", 30), enterprise)

    def broken(ctx: BatchContext) -> dict[str, Any]:
        place_step(place("buy", "60.00", 20), enterprise)(ctx)  # matched and settled, then:
        raise RuntimeError("disk on fire")

    jobs = [Job(place_step(place("sell", "60.00", 100), bureau)), Job(broken),
            Job(good)]  # fmt: skip
    statements: list[str] = []
    cache = MatcherCache()
    with factory() as session:
        event.listen(session.get_bind(), "commit", lambda _conn: statements.append("commit"))
        run_batch(session, cache, INSTRUMENT, jobs, clock=CLOCK)
        assert jobs[0].result is not None and jobs[2].result is not None
        assert isinstance(jobs[1].error, RuntimeError) and jobs[1].result is None
        assert jobs[2].result["filled_t"] == 30
        assert statements == ["commit", "commit"]  # the batch was thrown away; the two good ones ran alone
        session.rollback()
        assert session.scalar(select(func.sum(Trade.quantity_t))) == 30
        assert session.scalar(select(func.count()).select_from(TradeOrder)) == 2
        assert_consistent(session)


def test_concurrent_requests_share_batches(market: Any) -> None:
    engine, factory, who = market
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    commits: list[int] = []
    event.listen(engine, "commit", lambda _conn: commits.append(1))
    entry = OrderEntry(factory, CLOCK, MatcherCache())
    answers: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def trader(i: int) -> None:
        start.wait()
        for n in range(5):
            who, side = (bureau, "sell") if (i + n) % 2 else (enterprise, "buy")
            try:
                answers.append(entry.submit(INSTRUMENT, place_step(place(side, "60.00", 2), who)))
            except Exception as error:
                errors.append(error)

    threads = [threading.Thread(target=trader, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(answers) == 60
    assert len(commits) < 60  # some requests shared a commit
    with factory() as session:
        assert sorted(a["order_id"] for a in answers) == sorted(session.scalars(select(TradeOrder.id)))
        assert session.scalar(select(func.count()).select_from(JournalEntry)) == 60
        assert_consistent(session)


CHILD = textwrap.dedent(
    """
    import os, signal, sys, threading, time
    from datetime import UTC, datetime
    from sqlalchemy import select
    from core.auth import OrgKind, User, principal_of
    from core.clock import FixedClock
    from core.db import make_engine, make_session_factory
    from trading.journal import MatcherCache
    from trading.order_entry import OrderEntry, PlaceOrderRequest, place_step

    clock = FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    engine = make_engine(sys.argv[1])
    factory = make_session_factory(engine)
    with factory() as session:
        who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
    batches = []

    def hook() -> None:
        batches.append(1)
        if len(batches) == 2:  # the second batch: matched, settled, flushed, not committed
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGKILL)

    entry = OrderEntry(factory, clock, MatcherCache(), before_commit=hook)
    first = entry.submit("FCT-2025", place_step(
        PlaceOrderRequest("FCT-2025", "sell", "60.00", 100), who[OrgKind.FORESTRY_BUREAU]))
    print("ack", first["order_id"], flush=True)

    def buy() -> None:
        answer = entry.submit("FCT-2025", place_step(
            PlaceOrderRequest("FCT-2025", "buy", "60.00", 10), who[OrgKind.ENTERPRISE]))
        print("ack", answer["order_id"], flush=True)

    threads = [threading.Thread(target=buy) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("unreachable", flush=True)
    """
)


def test_a_crash_while_a_batch_commits_loses_nothing_acknowledged(market: Any) -> None:
    engine, factory, who = market
    url = str(engine.url)
    engine.dispose()
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.run([sys.executable, "-c", CHILD, url], cwd=repo, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(repo)}, timeout=120)  # fmt: skip
    assert child.returncode == -9, child.stderr
    acknowledged = [int(line.split()[1]) for line in child.stdout.splitlines() if line.startswith("ack")]
    assert len(acknowledged) >= 1 and "unreachable" not in child.stdout
    with factory() as session:
        orders = {o.id: o for o in session.scalars(select(TradeOrder))}
        assert set(acknowledged) <= set(orders)  # nothing acknowledged is lost
        # The killed batch left nothing: no trade, no hold, the acknowledged orders only.
        trades = session.scalar(select(func.count()).select_from(Trade))
        filled = sum(o.filled_t for o in orders.values() if o.side == "buy")
        assert trades == len([o for o in orders.values() if o.side == "buy"]) and filled == 10 * trades
        assert sorted(orders) == sorted(acknowledged)
        held = session.scalar(
            select(CashAccount.held_fen).where(CashAccount.organisation_id == who[OrgKind.ENTERPRISE].organisation_id)
        )
        assert held == 0
        assert session.scalar(select(func.count()).select_from(AuditEntry)) > 0
        assert_consistent(session)


def test_the_state_hash_is_a_checkpoint_that_a_replaying_process_checks(
    market: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cursor hashes the book when a batch crosses a multiple of STATE_HASH_EVERY; a cold replay checks it."""
    monkeypatch.setattr(journal, "STATE_HASH_EVERY", 4)
    _, factory, who = market
    bureau, enterprise = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]
    cache = MatcherCache()
    sizes, hashed = [3, 3, 1, 2], []
    with factory() as session:
        for size in sizes:  # commands 1-3, 4-6, 7, 8-9: the 2nd and 4th batches cross 4 and 8
            sides = [("sell", bureau) if i % 2 else ("buy", enterprise) for i in range(size)]
            jobs = [Job(place_step(place(side, "60.00", 1), trader)) for side, trader in sides]
            run_batch(session, cache, INSTRUMENT, jobs, clock=CLOCK)
            assert all(j.error is None for j in jobs)
            cursor = session.get(models.MatcherCursor, INSTRUMENT, populate_existing=True)
            assert cursor is not None
            hashed.append((cursor.applied_seq, cursor.hash_seq))
            session.rollback()
        assert hashed == [(3, 0), (6, 6), (7, 6), (9, 9)]
        assert cursor.state_hash == rebuild_book(session, INSTRUMENT).state_hash()
        # A process that never saw the instrument replays the journal and checks the checkpoint on the way.
        fresh = MatcherCache()
        job = Job(place_step(place("buy", "59.00", 1), enterprise))
        run_batch(session, fresh, INSTRUMENT, [job], clock=CLOCK)
        assert job.error is None and fresh.get(INSTRUMENT) is not None
        # A checkpoint the journal does not rebuild (a corrupt journal, or engines that disagree) stops the batch.
        session.execute(update(models.MatcherCursor).values(state_hash="0" * 64))
        session.commit()
        job = Job(place_step(place("buy", "59.00", 1), enterprise))
        run_batch(session, MatcherCache(), INSTRUMENT, [job], clock=CLOCK)
        assert isinstance(job.error, RuntimeError) and "state recorded at 9" in str(job.error)
        session.rollback()
        assert session.scalar(select(func.max(JournalEntry.seq))) == 10  # nothing more was committed


def test_an_order_changed_earlier_in_a_batch_is_amended_and_cancelled_from_its_in_memory_state(market: Any) -> None:
    """Order rows are written once per batch: later commands, even after a refused one, see the batch's values."""
    _, factory, who = market
    bureau, enterprise, owner = who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE], who[OrgKind.FOREST_OWNER]
    jobs: list[Job] = []

    def on_the_sell(make: Any) -> Step:
        return lambda ctx: make(jobs[0].result["order_id"])(ctx)  # type: ignore[index]

    jobs.extend([
        Job(place_step(place("sell", "60.00", 100), bureau)),
        Job(place_step(place("buy", "60.00", 30), enterprise)),  # fills 30: 70 left, in memory
        Job(place_step(place("buy", "60.00", 10), owner)),  # no cash: refused, savepoint undone
        Job(on_the_sell(lambda i: amend_step(i, AmendOrderRequest(quantity_t=50), bureau))),
        Job(on_the_sell(lambda i: cancel_step(i, bureau))),
    ])  # fmt: skip
    statements: list[str] = []
    with factory() as session:
        event.listen(session.get_bind(), "before_cursor_execute", lambda *args: statements.append(args[2].split()[0:2]))
        run_batch(session, MatcherCache(), INSTRUMENT, jobs, clock=CLOCK)
        assert [type(j.error) if j.error else None for j in jobs] == [None, None, InsufficientFunds, None, None]
        assert jobs[3].result is not None and jobs[3].result["remaining_t"] == 50  # amended from 70, not from 100
        assert jobs[4].result is not None and jobs[4].result["status"] == "cancelled"
        session.rollback()
        sell = session.get(TradeOrder, jobs[0].result["order_id"])  # type: ignore[index]
        assert sell is not None
        assert (sell.status, sell.filled_t, sell.remaining_t, sell.quantity_t) == ("cancelled", 30, 0, 80)
        assert sum(b.quantity for b in open_blocks(session) if b.state is BlockState.ESCROWED) == 0
        assert_consistent(session)
        assert sum(s == ["UPDATE", "trade_order"] for s in statements) <= 3  # one per set of changed columns
