"""Deterministic replay: rebuild an engine from a command journal, optionally starting from a snapshot.

The engine's state is a function of its instruments and the journal, so a matcher that lost its in-memory
book (a crash, a failed commit, ADR 005) rebuilds it here and checks the state hash it recorded.

Invariant (scenario M17): for any journal and any N, ``replay(journal[N:], snapshot=snapshot_at(N))`` yields
the same events for the commands after N and the same state hash as ``replay(journal)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from trading.engine import MatchingEngine
from trading.instruments import Instrument
from trading.orders import Command, Event


def replay(
    instruments: Sequence[Instrument], commands: Iterable[Command], *, snapshot: dict[str, Any] | None = None
) -> tuple[MatchingEngine, list[Event]]:
    """Return the engine after applying ``commands`` (from ``snapshot``, or from empty books) and their events."""
    engine = MatchingEngine(instruments) if snapshot is None else MatchingEngine.from_snapshot(instruments, snapshot)
    return engine, engine.handle_all(commands)


def rebuild(
    instruments: Sequence[Instrument],
    commands: Iterable[Command],
    *,
    snapshot: dict[str, Any] | None,
    expected_hash: str,
) -> MatchingEngine:
    """Replay and check the result against the state hash recorded when the journal was written.

    Raises:
        ValueError: The rebuilt state does not have ``expected_hash`` (a corrupt journal or snapshot, or a
            non-deterministic change to the engine).
    """
    engine, _ = replay(instruments, commands, snapshot=snapshot)
    actual = engine.state_hash()
    if actual != expected_hash:
        raise ValueError(f"rebuilt state hash {actual} != recorded {expected_hash}")
    return engine
