"""The Celery application: Redis (or any broker) when configured, in-process otherwise.

Without ``SHANHAI_BROKER_URL`` tasks run eagerly in the calling process, so the embedded default needs
no broker. With a broker, tasks are acknowledged late and rejected if the worker dies, so a task is
retried rather than lost; every task is idempotent and takes ids, not objects.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

from celery import Celery, Task
from sqlalchemy.orm import Session, sessionmaker

from api.witness_loop import run_witness_round
from carbon.imports import IMPORT_TASK, end_stale_imports, run_import
from carbon.plots import REMEASURE_TASK, remeasure_plot
from carbon.reversals import jobs as watch_jobs
from core.audit_tree import AuditTree, load_signing_key
from core.clock import Clock
from core.db import session_scope
from core.metrics import JobOutcome, timed_job
from core.settings import Settings
from core.witnessing import WitnessPolicy
from geodata.readers import ReadLimits
from gep.runs import run_tile, start_run
from trading.auctions import close_due
from trading.block_trades import expire_due
from trading.journal import MatcherCache

REMEASURE_PLOT = REMEASURE_TASK
IMPORT_PLOTS = IMPORT_TASK
IMPORT_SWEEP = "shanhai.plots.end_stale_imports"
START_GEP_RUN = "shanhai.gep.start_run"
GEP_TILE = "shanhai.gep.run_tile"
START_WATCH_RUN = "shanhai.reversals.start_watch"
WATCH_TILE = "shanhai.reversals.watch_tile"
TRADING_SWEEP = "shanhai.trading.sweep"
AUDIT_WITNESS = "shanhai.audit.witness"
#: How often the beat scheduler runs the trading sweep (seconds): auctions close and block proposals expire
#: at most this late after their time.
TRADING_SWEEP_SECONDS = 30.0
#: How often the beat scheduler ends plot imports whose worker died (seconds).
IMPORT_SWEEP_SECONDS = 60.0


def configure_gdal(settings: Settings, environ: MutableMapping[str, str] = os.environ) -> str:
    """Bound GDAL's block cache in this process (``GDAL_CACHEMAX`` wins when already set); return the value.

    Called before a worker touches any raster: GDAL reads the variable when it first sizes its cache.
    """
    return environ.setdefault("GDAL_CACHEMAX", str(settings.gdal_cache_mb))


def create_celery(settings: Settings, session_factory: sessionmaker[Session], clock: Clock) -> Celery:
    """Return a Celery app wired to the settings' broker and the given database."""
    eager = settings.broker_url is None
    schedule: dict[str, dict[str, Any]] = {
        "trading-sweep": {"task": TRADING_SWEEP, "schedule": TRADING_SWEEP_SECONDS},
        "import-sweep": {"task": IMPORT_SWEEP, "schedule": IMPORT_SWEEP_SECONDS},
    }
    if settings.audit_witnesses:
        schedule["audit-witness"] = {"task": AUDIT_WITNESS, "schedule": settings.audit_witness_seconds}
    celery = Celery(
        "shanhai",
        broker=settings.broker_url or "memory://",
        backend=settings.resolved_result_backend or "cache+memory://",
    )
    celery.conf.update(
        task_always_eager=eager,
        task_default_queue=settings.task_queue,
        task_store_eager_result=eager,
        task_eager_propagates=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        beat_schedule=schedule,
    )

    @celery.task(name=REMEASURE_PLOT, shared=False)
    def remeasure(plot_id: int) -> dict[str, Any]:
        with timed_job("plot_remeasure"), session_scope(session_factory) as session:
            return remeasure_plot(session, plot_id, actor="system:worker", clock=clock)

    limits = ReadLimits(max_expanded_bytes=settings.max_expanded_bytes, max_features=settings.max_features_per_file)

    @celery.task(name=IMPORT_PLOTS, shared=False)
    def import_plots(import_id: int) -> dict[str, Any]:
        with timed_job("plot_import") as outcome:
            return _reported(outcome, run_import(session_factory, import_id, clock=clock, limits=limits))

    @celery.task(name=IMPORT_SWEEP, shared=False)
    def import_sweep() -> dict[str, Any]:
        # Idempotent: an ended job is not stale any more.
        stale_after = timedelta(seconds=settings.import_stale_seconds)
        return {"ended_import_ids": end_stale_imports(session_factory, clock=clock, stale_after=stale_after)}

    @celery.task(name=START_GEP_RUN, shared=False)
    def start_gep_run(run_id: int) -> dict[str, Any]:
        # One task per tile: with a broker they spread over the workers; eagerly they run here in turn.
        with timed_job("gep_run_start"):
            pending = start_run(session_factory, run_id)
        for index in pending:
            celery.tasks[GEP_TILE].delay(run_id, index)
        return {"run_id": run_id, "tiles_queued": len(pending)}

    @celery.task(name=GEP_TILE, shared=False, bind=True)
    def gep_tile(self: Task[Any, Any], run_id: int, index: int) -> dict[str, Any]:
        with timed_job("gep_tile") as outcome:
            return _reported(
                outcome,
                run_tile(
                    session_factory,
                    run_id,
                    index,
                    raster_dir=settings.raster_dir,
                    data_dir=settings.data_dir,
                    clock=clock,
                    worker=None if self.request.is_eager else self.request.hostname,
                ),
            )

    @celery.task(name=START_WATCH_RUN, shared=False)
    def start_watch_run(run_id: int) -> dict[str, Any]:
        # One task per tile, as GEP runs: the same tiling (geodata.tiling), spread over the workers.
        with timed_job("watch_run_start"):
            pending = watch_jobs.start_run(session_factory, run_id)
        for index in pending:
            celery.tasks[WATCH_TILE].delay(run_id, index)
        return {"run_id": run_id, "tiles_queued": len(pending)}

    @celery.task(name=WATCH_TILE, shared=False)
    def watch_tile(run_id: int, index: int) -> dict[str, Any]:
        with timed_job("watch_tile") as outcome:
            result = watch_jobs.run_tile(session_factory, run_id, index, raster_dir=settings.raster_dir, clock=clock)
            return _reported(outcome, result)

    matchers = MatcherCache()

    @celery.task(name=TRADING_SWEEP, shared=False)
    def trading_sweep() -> dict[str, Any]:
        # Idempotent: a closed auction or an expired proposal is not due any more.
        with timed_job("trading_sweep"):
            with session_scope(session_factory) as session:
                closed = close_due(session, actor="system:scheduler", clock=clock, cache=matchers)
            with session_scope(session_factory) as session:
                expired = expire_due(session, actor="system:scheduler", clock=clock)
        return {"closed_auction_ids": closed, "expired_block_trade_ids": expired}

    audit_tree = AuditTree()

    @celery.task(name=AUDIT_WITNESS, shared=False)
    def audit_witness() -> dict[str, Any]:
        # Idempotent: a witness that cosigned the head is skipped; a stale submission gets a 409 and a retry.
        policy = WitnessPolicy.from_settings(settings)
        return run_witness_round(session_factory, audit_tree, load_signing_key(settings), clock, policy)

    return celery


def _reported(outcome: JobOutcome, result: dict[str, Any]) -> dict[str, Any]:
    """Take a job's outcome label from its answer's ``status`` (``succeeded``, ``failed``…); return the answer."""
    status = result.get("status")
    if isinstance(status, str):
        outcome.value = status
    return result
