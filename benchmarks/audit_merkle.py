"""Benchmark the verifiable audit log: Merkle proofs at 1,000,000 entries and full-log verification.

Two parts:

1. **Pure tree** (``core.merkle``), synthetic leaves: leaf data ``i`` is SHA-256 of the decimal ``i`` (32
   bytes, like an entry hash). Builds the tree of ``--leaves`` leaves, then times ``--samples`` inclusion
   proofs (random leaf, tree of all leaves), consistency proofs (random older size to all), and both
   verifiers, one call at a time.
2. **Database log** (SQLite, migrated schema): ``--entries`` chained entries are inserted directly (with
   correct hashes), then ``verify_chain``, a cold ``AuditTree.sync`` (what the API does on its first
   request), ``export_log`` and the offline ``verify_export`` are timed over the whole log.

Every figure is the median of ``--runs`` runs. Run::

    .venv/bin/python benchmarks/audit_merkle.py
    .venv/bin/python benchmarks/audit_merkle.py --leaves 100000 --entries 20000 --runs 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert, update

from core.audit import GENESIS_HASH, AuditEntry, AuditHead, entry_hash, verify_chain
from core.audit_export import export_log, verify_export
from core.audit_tree import AuditTree
from core.canonical import canonical_json
from core.clock import FixedClock
from core.db import make_engine, make_session_factory
from core.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion
from core.migrate import upgrade


def machine() -> str:
    """Return nproc, CPU model and Python version."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"nproc = {os.cpu_count()}, {model}, Python {platform.python_version()}"


def per_call_ms(calls: list[Callable[[], object]]) -> float:
    """Return the median time of one call, in ms."""
    times = []
    for call in calls:
        start = time.perf_counter_ns()
        call()
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1e6


def pure_part(leaves: int, samples: int, runs: int, rng: random.Random) -> None:
    """Time building, proving and verifying on synthetic leaves."""
    build_s = []
    tree = MerkleTree()
    for _ in range(runs):
        start = time.perf_counter()
        tree = MerkleTree.from_leaf_hashes(leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(leaves))
        build_s.append(time.perf_counter() - start)
    root = tree.root()
    print(f"build tree of {leaves:,} leaves: median {statistics.median(build_s):.2f} s ({runs} runs)")

    inclusion, consistency, verify_inc, verify_con = [], [], [], []
    for _ in range(runs):
        indices = [rng.randrange(leaves) for _ in range(samples)]
        firsts = [rng.randrange(1, leaves) for _ in range(samples)]
        inclusion.append(per_call_ms([lambda i=i: tree.inclusion_proof(i, leaves) for i in indices]))
        consistency.append(per_call_ms([lambda m=m: tree.consistency_proof(m, leaves) for m in firsts]))
        paths = [(i, tree.inclusion_proof(i, leaves)) for i in indices[:200]]
        verify_inc.append(
            per_call_ms([lambda i=i, p=p: verify_inclusion(tree.leaf_hash_at(i), i, leaves, p, root) for i, p in paths])
        )
        proofs = [(m, tree.root(m), tree.consistency_proof(m, leaves)) for m in firsts[:200]]
        verify_con.append(
            per_call_ms([lambda m=m, r=r, p=p: verify_consistency(m, leaves, r, root, p) for m, r, p in proofs])
        )
    median = statistics.median
    print(f"inclusion proof at {leaves:,} leaves: median {median(inclusion):.3f} ms; runs {runs_fmt(inclusion)}")
    print(f"consistency proof to {leaves:,}: median {median(consistency):.3f} ms; runs {runs_fmt(consistency)}")
    print(f"verify inclusion: median {median(verify_inc):.3f} ms; verify consistency: {median(verify_con):.3f} ms")


def runs_fmt(values: list[float]) -> str:
    """Return the run medians, comma-separated."""
    return ", ".join(f"{v:.3f}" for v in values)


def fill_log(url: str, entries: int) -> None:
    """Insert ``entries`` chained entries directly (correct hashes, no ORM per row)."""
    engine = make_engine(url)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows, prev_hash = [], GENESIS_HASH
    for seq in range(1, entries + 1):
        fields = {
            "seq": seq,
            "recorded_at": (start + timedelta(seconds=seq)).isoformat(),
            "actor": f"user:{seq % 17}",
            "action": "benchmark.recorded",
            "subject": f"thing:{seq}",
            "payload": {"seq": seq, "tonnes": seq % 1000},
        }
        digest = entry_hash(**fields, prev_hash=prev_hash)
        rows.append(
            {
                **fields,
                "payload": canonical_json(fields["payload"]).decode(),
                "prev_hash": prev_hash,
                "entry_hash": digest,
            }
        )
        prev_hash = digest
    with engine.begin() as connection:
        for offset in range(0, len(rows), 10_000):
            connection.execute(insert(AuditEntry), rows[offset : offset + 10_000])
        # The migration inserted the head row (id = 1); move it to the last entry.
        connection.execute(update(AuditHead).values(seq=entries, entry_hash=prev_hash))
    engine.dispose()


def database_part(entries: int, runs: int) -> None:
    """Time chain verification, a cold tree sync, export and offline verification."""
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        upgrade(url)
        fill_log(url, entries)
        engine = make_engine(url)
        factory = make_session_factory(engine)
        key, clock = Ed25519PrivateKey.generate(), FixedClock(datetime(2026, 11, 25, tzinfo=UTC))
        figures: dict[str, list[float]] = {
            "verify_chain": [],
            "AuditTree.sync (cold)": [],
            "export_log": [],
            "verify_export": [],
        }
        for run in range(runs):
            with factory() as session:
                figures["verify_chain"].append(timed(lambda s=session: verify_chain(s).ok))
                figures["AuditTree.sync (cold)"].append(timed(lambda s=session: AuditTree().sync(s)))
                out = Path(folder) / f"export{run}"
                figures["export_log"].append(timed(lambda s=session, o=out: export_log(s, o, key=key, clock=clock)))
            figures["verify_export"].append(timed(lambda o=out: verify_export(o).ok))
        engine.dispose()
    for name, seconds in figures.items():
        median = statistics.median(seconds)
        print(f"{name} over {entries:,} entries: median {median:.2f} s = {entries / median:,.0f} entries/s")


def timed(call: Callable[[], object]) -> float:
    """Return the seconds ``call`` takes; fail if it reports failure."""
    start = time.perf_counter()
    result = call()
    elapsed = time.perf_counter() - start
    if result is False:
        raise SystemExit("verification failed during the benchmark")
    return elapsed


def main() -> None:
    """Run both parts and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leaves", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    pure_part(args.leaves, args.samples, args.runs, random.Random(6962))
    database_part(args.entries, args.runs)


if __name__ == "__main__":
    main()
