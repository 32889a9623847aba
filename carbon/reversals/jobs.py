"""The watch job's orchestration: start a run, compute its tiles (any worker, any order), finish or fail it.

Celery tasks (``api.worker``) are one-line calls into :func:`start_run` and :func:`run_tile`; without a broker
:func:`execute_in_process` runs every tile here. A tile is recorded once (a repeated task is harmless); the call
that records the last tile raises the run's events (:func:`carbon.reversals.proposals.raise_events`). Any error
fails the run cleanly, with the problem stored and audited, and drops the partial tile results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from carbon.reversals.models import RunStatus, WatchRun, WatchRunTile
from carbon.reversals.proposals import raise_events
from carbon.reversals.watch import FINISHED, compute_tile, get_run
from core import audit
from core.clock import Clock
from core.db import session_scope
from core.errors import ShanhaiError


def start_run(factory: sessionmaker[Session], run_id: int) -> list[int]:
    """Mark a queued run running; return the indexes of its tiles still to compute (none if finished)."""
    with session_scope(factory) as session:
        run = get_run(session, run_id)
        if run.status in FINISHED:
            return []
        run.status = RunStatus.RUNNING
        session.commit()
        pending = session.scalars(
            select(WatchRunTile.index).where(WatchRunTile.run_id == run_id, WatchRunTile.done.is_(False))
        )
        return sorted(pending)


def run_tile(
    factory: sessionmaker[Session], run_id: int, index: int, *, raster_dir: Path, clock: Clock
) -> dict[str, Any]:
    """Compute one tile and record it once; the call that records the last tile finishes the run."""
    try:
        with session_scope(factory) as session:
            run = get_run(session, run_id)
            if run.status is not RunStatus.RUNNING:
                return {"run_id": run_id, "tile": index, "status": run.status.value}
            result = compute_tile(session, run, index, raster_dir=raster_dir)
            session.rollback()
        with session_scope(factory) as session:
            tile = session.scalars(
                select(WatchRunTile).where(WatchRunTile.run_id == run_id, WatchRunTile.index == index).with_for_update()
            ).one()
            if tile.done:
                return {"run_id": run_id, "tile": index, "status": "already-done"}
            tile.done, tile.result = True, {"plots": result}
            session.execute(update(WatchRun).where(WatchRun.id == run_id).values(tiles_done=WatchRun.tiles_done + 1))
            session.flush()
            done, total = session.execute(
                select(WatchRun.tiles_done, WatchRun.tiles_total).where(WatchRun.id == run_id)
            ).one()
            session.commit()
        if done == total:
            with session_scope(factory) as session:
                raise_events(session, run_id, raster_dir=raster_dir, clock=clock)
    except ShanhaiError as error:
        fail_run(factory, run_id, error, clock=clock)
    except Exception as error:  # a raster library error must still fail the run cleanly
        fail_run(factory, run_id, ShanhaiError(f"{type(error).__name__}: {error}"), clock=clock)
    with session_scope(factory) as session:
        return {"run_id": run_id, "tile": index, "status": get_run(session, run_id).status.value}


def fail_run(factory: sessionmaker[Session], run_id: int, error: ShanhaiError, *, clock: Clock) -> None:
    """Mark a run failed with the problem and drop its partial tile results (idempotent)."""
    with session_scope(factory) as session:
        run = get_run(session, run_id)
        if run.status in FINISHED:
            return
        run.status, run.finished_at = RunStatus.FAILED, clock.now()
        run.error = to_jsonable_python({"slug": error.slug, "title": error.title, "detail": error.detail,
                                        **error.extensions()})  # fmt: skip
        for tile in session.scalars(select(WatchRunTile).where(WatchRunTile.run_id == run_id)):
            tile.result = None
        audit.append(session, actor="system:worker", action="watch_run.failed", subject=f"watch_run:{run_id}",
                     payload={"slug": error.slug, "detail": error.detail}, clock=clock)  # fmt: skip
        session.commit()


def execute_in_process(factory: sessionmaker[Session], run_id: int, *, raster_dir: Path, clock: Clock) -> None:
    """Run every tile of a run in this process (demo, tests, benchmarks)."""
    for index in start_run(factory, run_id):
        run_tile(factory, run_id, index, raster_dir=raster_dir, clock=clock)
