"""Matching-engine benchmark: orders/s against pyorderbook on one seeded stream, and per-order cost by depth.

Run from the repository root, with the dev extra installed:

    .venv/bin/python benchmarks/trading_engine.py [--orders 50000] [--runs 5]

1. **Throughput.** The same seeded stream of random limit orders (``tests/unit/trading/streams.py``: prices
   95.00–105.00 CNY, 1–100 t) goes through the engine and through pyorderbook in the same run. Inputs are
   built before the clock starts (engine commands; pyorderbook ``Order`` objects, whose constructor draws a
   uuid4), so each side is timed on matching alone. The two alternate run by run (engine, peer, engine,
   peer…), each on a fresh book, so that both see the same machine load; the figures are medians of
   ``--runs`` runs, and the ratio is the median of the per-pair ratios.
2. **Depth.** The book is first filled with 10, 1,000 or 100,000 resting orders outside the active range
   (bids 90.00–94.99, asks 105.01–110.00), then the same kind of stream runs through it; the figure is the
   median cost per order in microseconds.

Time is the process's CPU time (``time.process_time``), not wall time: on a shared machine this keeps other
processes' load out of the figures (a run that is descheduled does not look slower).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyorderbook

from tests.unit.trading.streams import STREAM_INSTRUMENT, limit_order_stream, place_commands
from trading.engine import MatchingEngine
from trading.orders import Side

SEED = 20
DEPTHS = (10, 1_000, 100_000)


def time_engine(stream: list[tuple[Side, Decimal, int]]) -> float:
    """Return seconds to match ``stream`` on a fresh engine."""
    engine = MatchingEngine([STREAM_INSTRUMENT])
    commands = place_commands(stream)
    handle = engine.handle
    start = time.process_time()
    for command in commands:
        handle(command)
    return time.process_time() - start


def time_pyorderbook(stream: list[tuple[Side, Decimal, int]]) -> float:
    """Return seconds to match ``stream`` on a fresh pyorderbook ``Book``."""
    book = pyorderbook.Book()
    orders = [
        pyorderbook.Order(pyorderbook.Side.BID if side is Side.BUY else pyorderbook.Side.ASK, "X", price, quantity)  # type: ignore[arg-type]
        for side, price, quantity in stream
    ]
    match = book.match
    start = time.process_time()
    for order in orders:
        match(order)
    return time.process_time() - start


def depth_cost_us(depth: int, stream: list[tuple[Side, Decimal, int]]) -> float:
    """Return microseconds per order for ``stream`` on a book holding ``depth`` resting orders out of its range."""
    rng = random.Random(depth)
    engine = MatchingEngine([STREAM_INSTRUMENT])
    resting = [
        (Side.BUY, Decimal(rng.randint(9000, 9499)).scaleb(-2), rng.randint(1, 100))
        if i % 2
        else (Side.SELL, Decimal(rng.randint(10501, 11000)).scaleb(-2), rng.randint(1, 100))
        for i in range(depth)
    ]
    engine.handle_all(place_commands(resting, prefix="deep"))
    commands = place_commands(stream, first_seq=depth + 1)
    handle = engine.handle
    start = time.process_time()
    for command in commands:
        handle(command)
    return (time.process_time() - start) / len(stream) * 1e6


def cpu_model() -> str:
    """Return the CPU model name from /proc/cpuinfo, or the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    """Run both benchmarks and print a Markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("pyorderbook").setLevel(logging.WARNING)
    stream = limit_order_stream(SEED, args.orders)

    pairs = [(time_engine(stream), time_pyorderbook(stream)) for _ in range(args.runs)]
    engine_s = statistics.median(engine for engine, _ in pairs)
    peer_s = statistics.median(peer for _, peer in pairs)
    ratio = statistics.median(peer / engine for engine, peer in pairs)
    print(f"machine: {cpu_model()}, {platform.python_implementation()} {platform.python_version()}, nproc={_nproc()}")
    print(f"stream: {args.orders} limit orders, seed {SEED}, median of {args.runs} runs")
    print("| engine | orders/s |")
    print("| --- | ---: |")
    print(f"| shanhai trading.engine | {args.orders / engine_s:,.0f} |")
    print(f"| pyorderbook {pyorderbook.__version__} | {args.orders / peer_s:,.0f} |")
    print(f"ratio (median of per-pair ratios): {ratio:.2f}x")
    depth_stream = limit_order_stream(SEED + 1, 20_000)
    print("| resting orders | µs/order (median) |")
    print("| ---: | ---: |")
    for depth in DEPTHS:
        cost = statistics.median(depth_cost_us(depth, depth_stream) for _ in range(args.runs))
        print(f"| {depth:,} | {cost:.2f} |")


def _nproc() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main()
