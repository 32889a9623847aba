"""Latency of the market-data stream: from an order's commit in one process to its update at a client.

Usage::

    python benchmarks/market_stream.py                       # SQLite in a temporary directory, poll 0.5 s
    python benchmarks/market_stream.py --poll 0.1 --commands 200
    python benchmarks/market_stream.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/shanhai_bench

The script migrates and seeds a database (SQLite in a temporary directory unless a URL of an empty PostgreSQL
database is given), lists an instrument, starts ``uvicorn`` on it as a subprocess, follows the stream with
``api.stream_client.MarketStream`` on a thread, and places orders from this process through the service
(another process than the server's, as with several API processes). The latency of a command is the time
between ``place_order`` returning (committed) and the client receiving the update with its sequence number;
commands are spaced by a random 0–200 ms so that they do not line up with the polls. It prints the median,
95th percentile and maximum over the commands, and checks that every seq arrived once, in order.
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from api.seed import seed_demo  # noqa: E402
from api.stream_client import MarketStream  # noqa: E402
from carbon.ledger import (  # noqa: E402
    CreditClass,
    IssueBatch,
    issue_batch,
)
from core.auth import OrgKind, User, principal_of  # noqa: E402
from core.clock import FixedClock, SystemClock  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from trading import cash  # noqa: E402
from trading.journal import MatcherCache  # noqa: E402
from trading.listing import CreateInstrument, create_instrument  # noqa: E402
from trading.order_entry import PlaceOrderRequest, place_order  # noqa: E402

INSTRUMENT = "FCT-2025"
SECRET = "benchmark-secret-key-that-is-long-enough-0123456789"


def free_port() -> int:
    """Return a free TCP port on the loopback interface."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(url: str, data_dir: Path, poll_s: float, commands: int) -> dict[str, float]:
    """Measure commit-to-client latencies over ``commands`` order commands; return the figures in seconds."""
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    setup_clock = FixedClock(datetime(2026, 11, 25, 2, 0, tzinfo=UTC))
    with factory() as session:
        seed_demo(session, REPO / "samples", clock=setup_clock)
        who = {u.organisation.kind: principal_of(u, "bench") for u in session.scalars(select(User))}
        issue_batch(session, IssueBatch(1, "bench:stream", CreditClass.FORESTRY_CARBON_TICKET, 2025, 100_000, 0),
                    actor=who[OrgKind.REGISTRY], clock=setup_clock)  # fmt: skip
        listing = CreateInstrument(INSTRUMENT, "FCT", 2025, "60", always_open=True, resale_next_day=False)
        create_instrument(session, listing, actor=who[OrgKind.OPERATOR], clock=setup_clock)
        cash.deposit(session, cash.CashMovement(who[OrgKind.ENTERPRISE].organisation_id, 10**10, "BENCH"),
                     actor=who[OrgKind.OPERATOR], clock=setup_clock)  # fmt: skip
    port = free_port()
    env = os.environ | {
        "SHANHAI_ENVIRONMENT": "test", "SHANHAI_DATA_DIR": str(data_dir), "SHANHAI_DATABASE_URL": url,
        "SHANHAI_SECRET_KEY": SECRET, "SHANHAI_MARKET_STREAM_POLL_SECONDS": str(poll_s),
    }  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "shanhai.app:create_app", "--port", str(port),
         "--log-level", "warning"],
        env=env, cwd=REPO,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    arrived: dict[int, float] = {}
    order: list[int] = []
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/health", timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        stream = MarketStream(base, INSTRUMENT, timeout=60, reconnect=False)

        ready = threading.Event()

        def follow() -> None:
            for event in stream:
                ready.set()  # the snapshot (seq 0) has arrived
                if event.kind == "update":
                    arrived[event.seq] = time.monotonic()
                    order.append(event.seq)

        reader = threading.Thread(target=follow, daemon=True)
        reader.start()
        if not ready.wait(timeout=60):
            raise SystemExit("no snapshot from the stream within 60 s")
        committed: dict[int, float] = {}
        clock = SystemClock()
        cache = MatcherCache()
        rng = random.Random(8)
        with factory() as session:
            for seq in range(1, commands + 1):
                side, kind = ("sell", OrgKind.FORESTRY_BUREAU) if seq % 2 else ("buy", OrgKind.ENTERPRISE)
                request = PlaceOrderRequest(INSTRUMENT, side, "60.00", 10)
                place_order(session, request, actor=who[kind], clock=clock, cache=cache)
                committed[seq] = time.monotonic()
                time.sleep(rng.uniform(0, 0.2))
        deadline = time.monotonic() + 30
        while len(arrived) < commands and time.monotonic() < deadline:
            time.sleep(0.05)
        stream.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
        engine.dispose()
    if order != list(range(1, commands + 1)):
        missing = sorted(set(range(1, commands + 1)) - set(order))
        raise SystemExit(f"updates missing or out of order: got {len(order)} of {commands}, missing {missing}")
    latencies = sorted(arrived[seq] - committed[seq] for seq in committed)
    return {
        "median_s": statistics.median(latencies),
        "p95_s": latencies[int(0.95 * (len(latencies) - 1))],
        "max_s": latencies[-1],
    }


def main() -> None:
    """Parse the arguments, run once, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an empty PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--poll", type=float, default=0.5, help="SHANHAI_MARKET_STREAM_POLL_SECONDS")
    parser.add_argument("--commands", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        figures = run(url, Path(tmp), args.poll, args.commands)
    print(f"poll {args.poll} s, {args.commands} commands, {url.split(':')[0]}: "
          f"median {figures['median_s'] * 1000:.0f} ms, p95 {figures['p95_s'] * 1000:.0f} ms, "
          f"max {figures['max_s'] * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
