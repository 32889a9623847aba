"""Scenario M16 (redefined in issue 7): the process is killed between computing a match and committing it.

A child process places a resting sell, then a crossing buy whose commit is interrupted by ``SIGKILL`` after
the engine matched and every settlement row was written (but not committed). After the "restart" neither
leg, nor the trade, exists; the resting order is intact and the book rebuilt from the journal holds it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from sqlalchemy import func, select

from carbon.ledger import BlockState, ledger_violations, open_blocks
from core.audit import verify_chain
from core.db import make_engine, make_session_factory
from trading.cash import cash_violations
from trading.journal import rebuild_book
from trading.models import CashAccount, Trade, TradeOrder

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime
    from sqlalchemy import select
    from carbon.ledger import IssueBatch, issue_batch
    from carbon.ledger import CreditClass
    from core.auth import OrgKind, User, principal_of
    from core.clock import FixedClock
    from core.db import make_engine, make_session_factory
    from trading import cash
    from trading.order_entry import PlaceOrderRequest, place_order
    from trading.journal import MatcherCache
    from trading.listing import CreateInstrument, create_instrument

    clock = FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    engine = make_engine(sys.argv[1])
    session = make_session_factory(engine)()
    who = {u.organisation.kind: principal_of(u, "test") for u in session.scalars(select(User))}
    issue_batch(session, IssueBatch(1, "crash:1", CreditClass.FORESTRY_CARBON_TICKET, 2025, 500, 0),
                actor=who[OrgKind.REGISTRY], clock=clock)
    create_instrument(session, CreateInstrument("FCT-2025", "FCT", 2025, "60", always_open=True,
                               buyer_fee_bp=50, seller_fee_bp=30), actor=who[OrgKind.OPERATOR], clock=clock)
    enterprise = who[OrgKind.ENTERPRISE].organisation_id
    cash.deposit(session, cash.CashMovement(enterprise, 1_000_000, "BANK-1"), actor=who[OrgKind.OPERATOR], clock=clock)
    cache = MatcherCache()
    place_order(session, PlaceOrderRequest("FCT-2025", "sell", "60.00", 100),
                         actor=who[OrgKind.FORESTRY_BUREAU], clock=clock, cache=cache)
    print("sell committed", flush=True)

    def die() -> None:
        session.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    place_order(session, PlaceOrderRequest("FCT-2025", "buy", "60.00", 100),
                         actor=who[OrgKind.ENTERPRISE], clock=clock, cache=cache, before_commit=die)
    print("unreachable", flush=True)
    """
)


def test_m16_crash_between_match_and_commit(template_db: Path, tmp_path: Path) -> None:
    path = tmp_path / "crash.db"
    shutil.copyfile(template_db, path)
    url = f"sqlite:///{path}"
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.run([sys.executable, "-c", CHILD, url], cwd=repo, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(repo)}, timeout=120)  # fmt: skip
    assert child.returncode == -9, child.stderr
    assert child.stdout.split() == ["sell", "committed"]
    # Restart: a new process (engine) opens the database.
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        assert session.scalar(select(func.count()).select_from(Trade)) == 0
        [sell] = session.scalars(select(TradeOrder)).all()
        assert (sell.side, sell.status, sell.remaining_t, sell.filled_t) == ("sell", "open", 100, 0)
        enterprise_cash = session.scalars(select(CashAccount).where(CashAccount.kind == "trading")).all()
        assert sorted((a.available_fen, a.held_fen) for a in enterprise_cash) == [(1_000_000, 0)]
        escrowed = sum(b.quantity for b in open_blocks(session) if b.state is BlockState.ESCROWED)
        assert escrowed == 100
        book = rebuild_book(session, "FCT-2025").states["FCT-2025"].book
        assert list(book.orders) == [sell.engine_id]
        assert cash_violations(session) == [] and ledger_violations(session) == []
        assert verify_chain(session).ok
    engine.dispose()
