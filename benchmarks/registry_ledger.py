"""Benchmark: transfers that split serial blocks, then verification of the audit log and the ledger.

Issues one batch, then makes N transfers of 1–50 t between three organisations (each splits a block,
journals a movement, appends an audit entry and commits), and finally runs ``verify_chain`` and the
conservation check over everything. Prints transfers/s and the verification times.

    .venv/bin/python benchmarks/registry_ledger.py [--transfers 100000] [--database-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, select

from carbon.ledger import CreditClass, HoldingBlock, IssueBatch, issue_batch, ledger_violations, transfer
from carbon.models import Scheme
from carbon.projects import CreateProject, create_project
from core.audit import verify_chain
from core.auth import Organisation, OrgKind, User, principal_of
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.errors import InsufficientUnits
from core.migrate import upgrade

CLOCK = FixedClock(datetime(2026, 11, 25, tzinfo=UTC))


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--transfers", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'ledger.db'}"
        upgrade(url)
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            who = {}
            for kind in (OrgKind.REGISTRY, OrgKind.FORESTRY_BUREAU, OrgKind.ENTERPRISE, OrgKind.FOREST_OWNER):
                org = Organisation(name=f"bench {kind.value}", kind=kind, province_code="64", created_at=CLOCK.now())
                user = User(organisation=org, username=f"bench-{kind.value}", display_name="b", password_hash="x",
                            created_at=CLOCK.now())  # fmt: skip
                session.add_all([org, user])
                session.flush()
                who[kind] = principal_of(user, "bench")
            session.commit()
            cmd = CreateProject(name="bench", scheme=Scheme.FORESTRY_CARBON_TICKET, province_code="64",
                                crediting_start=date(2021, 1, 1), crediting_end=date(2051, 1, 1))  # fmt: skip
            project = create_project(session, cmd, actor=who[OrgKind.FORESTRY_BUREAU], clock=CLOCK)
            issue = IssueBatch(project.id, "bench:1", CreditClass.FORESTRY_CARBON_TICKET, 2025, 10_000_000, 0)
            issue_batch(session, issue, actor=who[OrgKind.REGISTRY], clock=CLOCK)
            holders = [OrgKind.FORESTRY_BUREAU, OrgKind.ENTERPRISE, OrgKind.FOREST_OWNER]
            rng = random.Random(5)
            started, cpu_started = time.perf_counter(), time.process_time()
            done = 0
            factory = make_session_factory(engine)
            stop = []  # SIGTERM/SIGINT end the transfers early; the log made so far is still verified and reported
            signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
            signal.signal(signal.SIGINT, lambda *_: stop.append(True))
            for index in range(args.transfers):
                if stop:
                    print(f"  stopped by a signal after {index} attempted transfers", flush=True)
                    break
                a, b = rng.sample(holders, 2)
                with factory() as request_session:  # one session per transfer, as the API has per request
                    try:
                        transfer(request_session, from_organisation_id=who[a].organisation_id,
                                 to_organisation_id=who[b].organisation_id, quantity_t=rng.randint(1, 50),
                                 actor=who[a], clock=CLOCK)  # fmt: skip
                        done += 1
                    except InsufficientUnits:  # an emptied account is part of a random walk
                        request_session.rollback()
                if (index + 1) % 10_000 == 0:  # progress, so that a long run on a shared machine shows its pace
                    elapsed = time.perf_counter() - started
                    print(f"  {index + 1} attempted, {done} done, {elapsed:.0f} s, {done / elapsed:.0f}/s", flush=True)
            transfer_s, transfer_cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
            started = time.perf_counter()
            report = verify_chain(session)
            chain_s = time.perf_counter() - started
            started = time.perf_counter()
            violations = ledger_violations(session)
            ledger_s = time.perf_counter() - started
            all_count = session.scalar(select(func.count()).select_from(HoldingBlock))
            open_count = session.scalar(
                select(func.count()).select_from(HoldingBlock).where(HoldingBlock.closed_at.is_(None))
            )
        engine.dispose()
    print(
        f"machine: nproc={os.cpu_count()} {platform.machine()} python {platform.python_version()}, "
        f"load average at the end {os.getloadavg()[0]:.1f}"
    )
    print(f"open blocks at the end: {open_count} (of {all_count} block rows written)")
    print(f"database: {'SQLite' if args.database_url is None else args.database_url.split('://')[0]}")
    print(
        f"transfers: {done} in {transfer_s:.1f} s = {done / transfer_s:.0f} transfers/s "
        f"(process CPU {transfer_cpu_s:.1f} s = {1000 * transfer_cpu_s / done:.2f} ms per transfer)"
    )
    print(f"verify_chain: {report.entries} entries in {chain_s:.2f} s, ok={report.ok}")
    print(f"ledger invariants: {len(violations)} violations, {ledger_s:.2f} s")


if __name__ == "__main__":
    main()
