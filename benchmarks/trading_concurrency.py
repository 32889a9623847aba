"""Concurrent order entry for one instrument on PostgreSQL: N processes × S seconds, one killed, then checks.

Usage::

    python benchmarks/trading_concurrency.py postgresql+psycopg://postgres@127.0.0.1:5432/shanhai_bench \
        --processes 8 --seconds 30

The database must exist, be migrated (``shanhai db upgrade``) and hold the demo data; the script lists the
instrument, issues tonnes and deposits cash if missing. Each worker prints one line per acknowledged command
(``place <order id> <filled t>`` or ``cancel <order id> <status>``), flushed before the next command, so the
parent knows exactly what was acknowledged even by a worker killed with ``SIGKILL``. After the run the parent
checks: every acknowledged order exists, no order is filled beyond its quantity or differently from its
trades, the journal's sequence numbers are consecutive, cash and tonnes are conserved, and the book rebuilt
from the journal holds exactly the open orders. ``tests/integration/test_trading_postgres.py`` runs the
short version (4 × 5 s) in CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from carbon.ledger import Batch, CreditClass, IssueBatch, issue_batch, ledger_violations  # noqa: E402  # noqa: E402
from core.auth import OrgKind, User, principal_of  # noqa: E402
from core.clock import FixedClock, SystemClock  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.errors import ShanhaiError  # noqa: E402
from trading import cash  # noqa: E402
from trading.journal import MatcherCache, rebuild_book  # noqa: E402
from trading.listing import CreateInstrument, create_instrument  # noqa: E402
from trading.models import InstrumentRow, JournalEntry, Trade, TradeOrder  # noqa: E402
from trading.order_entry import PlaceOrderRequest, cancel_order, place_order  # noqa: E402

INSTRUMENT = "FCT-2025"


def instruments(count: int) -> list[str]:
    """Return the ids of ``count`` instruments: ``FCT-2025``, then one per earlier vintage (``FCT-2024``, …)."""
    return [f"FCT-{2025 - i}" for i in range(count)]


def prepare(url: str, count: int = 1) -> list[str]:
    """List ``count`` instruments and deposit cash for the buyers (each once); return the instruments' ids.

    One instrument per vintage, from 2025 down; 1,000,000 t of each vintage are issued to the bureau.
    """
    engine = make_engine(url)
    clock = FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    ids = instruments(count)
    with make_session_factory(engine)() as session:
        who = {u.organisation.kind: principal_of(u, "load") for u in session.scalars(select(User))}
        for instrument_id in ids:
            vintage = int(instrument_id.removeprefix("FCT-"))
            source = "load:1" if vintage == 2025 else f"load:{vintage}"
            if session.scalars(select(Batch).where(Batch.source == source)).first() is None:
                cmd = IssueBatch(1, source, CreditClass.FORESTRY_CARBON_TICKET, vintage, 1_000_000, 0)
                issue_batch(session, cmd, actor=who[OrgKind.REGISTRY], clock=clock)
            if session.get(InstrumentRow, instrument_id) is None:
                listing = CreateInstrument(instrument_id, "FCT", vintage, "60", always_open=True,
                                           resale_next_day=False, buyer_fee_bp=50, seller_fee_bp=30)  # fmt: skip
                create_instrument(session, listing, actor=who[OrgKind.OPERATOR], clock=clock)
        if cash.balances(session, who[OrgKind.ENTERPRISE].organisation_id) == (0, 0):
            for kind in (OrgKind.ENTERPRISE, OrgKind.FOREST_OWNER):
                deposit = cash.CashMovement(who[kind].organisation_id, 10_000_000_000, f"BANK-{kind.value}")
                cash.deposit(session, deposit, actor=who[OrgKind.OPERATOR], clock=clock)
    engine.dispose()
    return ids


def worker(url: str, seed: int, seconds: float) -> None:
    """Place random crossing orders (10 % cancels) for ``seconds``, printing each acknowledgement."""
    engine = make_engine(url, pool_size=1)
    factory = make_session_factory(engine)
    rng, cache, clock = random.Random(seed), MatcherCache(), SystemClock()
    with factory() as session:
        who = {u.organisation.kind: principal_of(u, "load") for u in session.scalars(select(User))}
    sellers = [who[OrgKind.FORESTRY_BUREAU], who[OrgKind.ENTERPRISE]]
    buyers = [who[OrgKind.ENTERPRISE], who[OrgKind.FOREST_OWNER]]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        side = rng.choice(["buy", "sell"])
        trader = rng.choice(buyers if side == "buy" else sellers)
        with factory() as session:
            try:
                if rng.random() < 0.1:
                    own = TradeOrder.organisation_id == trader.organisation_id
                    target = session.scalar(select(TradeOrder.id).where(own, TradeOrder.status == "open").limit(1))
                    session.rollback()
                    if target is not None:
                        result = cancel_order(session, target, actor=trader, clock=clock, cache=cache)
                        print("cancel", result["order_id"], result["status"], flush=True)
                    continue
                price = f"{rng.randint(5950, 6050) / 100:.2f}"
                request = PlaceOrderRequest(INSTRUMENT, side, price, rng.randint(1, 20))
                result = place_order(session, request, actor=trader, clock=clock, cache=cache)
                print("place", result["order_id"], result["filled_t"], flush=True)
            except ShanhaiError:
                session.rollback()
    engine.dispose()


def spawn(url: str, seed: int, seconds: float) -> subprocess.Popen[str]:
    """Start one worker process."""
    return subprocess.Popen(
        [sys.executable, __file__, url, "--worker", str(seed), "--seconds", str(seconds)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def check(url: str, placed: set[int], instrument_ids: list[str] | None = None) -> dict[str, Any]:
    """Check the invariants after a run; return the figures (raises AssertionError on a violation).

    Journals and rebuilt books are checked for each of ``instrument_ids`` (default: ``FCT-2025``).
    """
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        orders = {o.id: o for o in session.scalars(select(TradeOrder))}
        lost = placed - set(orders)
        assert not lost, f"acknowledged orders lost: {sorted(lost)[:10]}"
        bought = dict(session.execute(select(Trade.buy_order_id, func.sum(Trade.quantity_t)).group_by(Trade.buy_order_id)).all())  # fmt: skip  # noqa: E501
        sold = dict(session.execute(select(Trade.sell_order_id, func.sum(Trade.quantity_t)).group_by(Trade.sell_order_id)).all())  # fmt: skip  # noqa: E501
        for order in orders.values():
            traded = int(bought.get(order.id, 0)) + int(sold.get(order.id, 0))
            assert order.filled_t == traded <= order.quantity_t, f"order {order.id} filled {order.filled_t}/{traded}"
        journal = 0
        for instrument_id in instrument_ids or [INSTRUMENT]:
            seqs = list(session.scalars(select(JournalEntry.seq).where(JournalEntry.instrument_id == instrument_id)
                                        .order_by(JournalEntry.seq)))  # fmt: skip
            assert seqs == list(range(1, len(seqs) + 1)), f"journal of {instrument_id} has gaps or repeats"
            journal += len(seqs)
            book = rebuild_book(session, instrument_id).states[instrument_id].book
            open_orders = sorted(f"O{o.id}" for o in orders.values()
                                 if o.status == "open" and o.instrument_id == instrument_id)  # fmt: skip
            assert sorted(book.orders) == open_orders, f"rebuilt book of {instrument_id} differs from the open orders"
        assert cash.cash_violations(session) == [], cash.cash_violations(session)
        assert ledger_violations(session) == []
        trades = session.scalar(select(func.count()).select_from(Trade))
    engine.dispose()
    return {"orders": len(orders), "trades": trades, "journal": journal, "acknowledged_places": len(placed)}


def run(url: str, processes: int, seconds: float, kill_after: float | None) -> dict[str, Any]:
    """Run ``processes`` workers (plus one to be killed and one restarted) and check the result."""
    prepare(url)
    started = time.monotonic()
    workers = [spawn(url, seed, seconds) for seed in range(processes)]
    extra = []
    if kill_after is not None:
        victim = spawn(url, 1_000, seconds)
        time.sleep(kill_after)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        extra = [victim, spawn(url, 1_001, max(seconds - kill_after, 1.0))]
    placed: set[int] = set()
    for process in [*workers, *extra]:
        out, _ = process.communicate(timeout=seconds + 120)
        for line in out.splitlines():
            kind, order_id, _value = line.split()
            if kind == "place":
                placed.add(int(order_id))
    elapsed = time.monotonic() - started
    return {**check(url, placed), "seconds": round(elapsed, 1), "processes": processes,
            "orders_per_s": round(len(placed) / elapsed, 1)}  # fmt: skip


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--kill-after", type=float, default=5.0)
    parser.add_argument("--worker", type=int)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.url, args.worker, args.seconds)
        return
    print(json.dumps(run(args.url, args.processes, args.seconds, args.kill_after), indent=2))


if __name__ == "__main__":
    main()
