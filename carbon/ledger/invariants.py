"""Conservation invariants of the registry ledger, as a pure check over a snapshot.

For every batch, the open blocks cover serials ``1..quantity`` exactly once — no gap, no overlap — so
issued = Σ over all accounts (buffer included) of tradable + escrowed + pledged, + retired + cancelled.
Retired and cancelled blocks are never closed again (they never move). Every block is a whole, non-empty
range. Used by property tests and by ``shanhai audit verify``.

>>> check_invariants([BatchFacts(1, 10)], [BlockFacts(1, 1, 4, "tradable"), BlockFacts(1, 5, 10, "retired")])
[]
>>> [v.rule for v in check_invariants([BatchFacts(1, 10)], [BlockFacts(1, 1, 4, "tradable")])]
['conservation']
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

FINAL_STATES = frozenset({"retired", "cancelled"})


@dataclass(frozen=True)
class BatchFacts:
    """What the check needs of a batch."""

    batch_id: int
    quantity_t: int


@dataclass(frozen=True)
class BlockFacts:
    """What the check needs of a block."""

    batch_id: int
    start: int
    end: int
    state: str
    closed: bool = False


@dataclass(frozen=True)
class Violation:
    """A broken invariant."""

    rule: str
    batch_id: int | None
    detail: str


def _check_batch(batch: BatchFacts, blocks: list[BlockFacts]) -> list[Violation]:
    found: list[Violation] = []
    expected = 1
    for block in sorted(blocks, key=lambda b: b.start):
        if block.start < expected:
            found.append(Violation("no-overlap", batch.batch_id, f"serials {block.start}..{block.end} overlap"))
        elif block.start > expected:
            found.append(Violation("no-gap", batch.batch_id, f"serials {expected}..{block.start - 1} are in no block"))
        expected = max(expected, block.end + 1)
    total = sum(b.end - b.start + 1 for b in blocks)
    if total != batch.quantity_t or expected - 1 != batch.quantity_t:
        found.append(Violation("conservation", batch.batch_id, f"issued {batch.quantity_t} t, held {total} t"))
    return found


def check_invariants(batches: Iterable[BatchFacts], blocks: Iterable[BlockFacts]) -> list[Violation]:
    """Return every violation (empty when the ledger is consistent)."""
    violations: list[Violation] = []
    open_by_batch: dict[int, list[BlockFacts]] = defaultdict(list)
    for block in blocks:
        if block.start < 1 or block.end < block.start:
            violations.append(Violation("whole-range", block.batch_id, f"bad range {block.start}..{block.end}"))
        if block.closed and block.state in FINAL_STATES:
            violations.append(Violation("final-states-never-move", block.batch_id, f"{block.state} block was closed"))
        if not block.closed:
            open_by_batch[block.batch_id].append(block)
    known = set()
    for batch in batches:
        known.add(batch.batch_id)
        violations.extend(_check_batch(batch, open_by_batch.get(batch.batch_id, [])))
    for batch_id in sorted(set(open_by_batch) - known):
        violations.append(Violation("unknown-batch", batch_id, "blocks of a batch that does not exist"))
    return violations
