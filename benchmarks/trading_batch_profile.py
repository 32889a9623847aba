"""Where an order's time goes, service level: SQL statements, commits and CPU per order, by batch size.

Usage::

    python benchmarks/trading_batch_profile.py postgresql+psycopg://postgres@127.0.0.1:5432/<empty db> \
        --orders 400 --batch 1 --batch 16

The database is migrated, seeded and given the market of ``trading_concurrency.prepare``. The script then
sends ``--orders`` random crossing limit orders (the HTTP benchmark's stream, with idempotency keys) through
:func:`trading.order_entry.run_batch` in batches of each ``--batch`` size (``0`` = one ``place_order`` call per
order, the pre-group-commit path), in one process. It counts statements sent (an ``executemany`` counts
once), commits, wall time and process CPU time (the client side of PostgreSQL, not the server), and prints
them per order. CPU time is the figure to compare on a shared machine; wall time moves with the load.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import event, select

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from trading_concurrency import INSTRUMENT, check, prepare  # noqa: E402

from api.seed import seed_demo  # noqa: E402
from core.auth import OrgKind, User, principal_of  # noqa: E402
from core.clock import SystemClock  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.errors import ShanhaiError  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from trading.journal import MatcherCache  # noqa: E402
from trading.order_entry import Job, PlaceOrderRequest, place_order, place_step, run_batch  # noqa: E402


def statement_kind(statement: str) -> str:
    """Name a statement by its verb and first table (``SELECT holding_block``), for the ``--statements`` table."""
    words = statement.replace("(", " ").replace(",", " ").split()
    verb = words[0].upper() if words else "?"
    marker = {"SELECT": "FROM", "INSERT": "INTO", "UPDATE": "UPDATE", "DELETE": "FROM"}.get(verb)
    upper = [w.upper() for w in words]
    if marker is None or marker not in upper:
        return " ".join(words[:3])
    table = words[upper.index(marker) + 1]
    text = " ".join(upper)
    lock = " FOR UPDATE" if "FOR UPDATE" in text else " FOR KEY SHARE" if "FOR KEY SHARE" in text else ""
    lock += " SKIP LOCKED" if "SKIP LOCKED" in text else ""
    return f"{verb} {table}{lock}"


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--batch", type=int, action="append", default=[])
    parser.add_argument("--statements", action="store_true",
                        help="also print statements per order and wall ms per order by kind of statement")  # fmt: skip
    args = parser.parse_args()
    upgrade(args.url)
    engine = make_engine(args.url)
    factory = make_session_factory(engine)
    with factory() as session:
        seed_demo(session, REPO / "samples", clock=SystemClock())
    prepare(args.url)
    counts = {"statements": 0, "commits": 0}
    kinds: dict[str, list[float]] = {}  # kind of statement -> [count, seconds]
    started: list[float] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _count(*_args: Any) -> None:
        counts["statements"] += 1
        started.append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def _time(_connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if args.statements and started:
            figures = kinds.setdefault(statement_kind(statement), [0, 0.0])
            figures[0] += 1
            figures[1] += time.perf_counter() - started.pop()
        started.clear()

    @event.listens_for(engine, "commit")
    def _commit(*_args: Any) -> None:
        counts["commits"] += 1

    with factory() as session:
        who = {u.organisation.kind: principal_of(u, "bench") for u in session.scalars(select(User))}
    rng, clock, cache = random.Random(7), SystemClock(), MatcherCache()
    placed: set[int] = set()
    report = []
    for size in args.batch or [0, 1, 16]:
        counts.update(statements=0, commits=0)
        kinds.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        done = 0
        while done < args.orders:
            steps = []
            for _ in range(max(size, 1)):
                side = rng.choice(["buy", "sell"])
                pool = [OrgKind.ENTERPRISE, OrgKind.FOREST_OWNER] if side == "buy" else [OrgKind.FORESTRY_BUREAU,
                                                                                        OrgKind.ENTERPRISE]  # fmt: skip
                trader = who[rng.choice(pool)]
                request = PlaceOrderRequest(INSTRUMENT, side, f"{rng.randint(5950, 6050) / 100:.2f}",
                                                     rng.randint(1, 20))  # fmt: skip
                steps.append((request, trader))
            with factory() as session:
                if size == 0:
                    request, trader = steps[0]
                    try:
                        answers = [place_order(session, request, actor=trader, clock=clock, cache=cache,
                                                        idempotency_key=uuid.uuid4().hex)]  # fmt: skip
                    except ShanhaiError:
                        answers = []
                else:
                    keys = [uuid.uuid4().hex for _ in steps]
                    jobs = [Job(place_step(r, t, k), (t.organisation_id, k))
                            for (r, t), k in zip(steps, keys, strict=True)]  # fmt: skip
                    run_batch(session, cache, INSTRUMENT, jobs, clock=clock)
                    answers = [j.result for j in jobs if j.result is not None]
            placed.update(a["order_id"] for a in answers)
            done += len(steps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        report.append({"batch": size, "orders": done, "statements_per_order": round(counts["statements"] / done, 1),
                       "commits_per_order": round(counts["commits"] / done, 3),
                       "cpu_ms_per_order": round(cpu * 1000 / done, 2),
                       "wall_ms_per_order": round(wall * 1000 / done, 2)})  # fmt: skip
        if args.statements:
            report[-1]["by_statement"] = {
                kind: {"per_order": round(n / done, 2), "wall_ms_per_order": round(seconds * 1000 / done, 3)}
                for kind, (n, seconds) in sorted(kinds.items(), key=lambda item: -item[1][1])
            }
    engine.dispose()
    print(json.dumps({"runs": report, "checks": check(args.url, placed)}, indent=2))


if __name__ == "__main__":
    main()
