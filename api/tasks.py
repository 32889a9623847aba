"""Enqueueing tasks from the API and reading their state."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.result import AsyncResult, EagerResult
from fastapi import APIRouter
from pydantic import BaseModel

from access.deps import CeleryDep, CurrentUser, SessionDep
from api.worker import IMPORT_PLOTS, REMEASURE_PLOT, START_GEP_RUN, START_WATCH_RUN
from core.task_owners import check_task_visible


class TaskRef(BaseModel):
    """A queued (or, without a broker, already finished) task."""

    task_id: str
    state: str
    result: dict[str, Any] | None = None


def _ref(result: AsyncResult[Any] | EagerResult[Any]) -> TaskRef:
    ready = result.ready()
    value = result.result if ready and result.successful() else None
    return TaskRef(task_id=result.id, state=result.state, result=value if isinstance(value, dict) else None)


def enqueue_remeasure(celery: Celery, task_id: str, plot_id: int) -> TaskRef:
    """Queue the re-measurement of a plot under ``task_id`` (its owner is stored: ``core.task_owners``)."""
    return _ref(celery.tasks[REMEASURE_PLOT].apply_async((plot_id,), task_id=task_id))


def enqueue_import(celery: Celery, import_id: int) -> TaskRef:
    """Queue the processing of an uploaded plot file."""
    return _ref(celery.tasks[IMPORT_PLOTS].delay(import_id))


def enqueue_gep_run(celery: Celery, run_id: int) -> TaskRef:
    """Queue an accounting run (it queues one task per tile)."""
    return _ref(celery.tasks[START_GEP_RUN].delay(run_id))


def enqueue_watch_run(celery: Celery, run_id: int) -> TaskRef:
    """Queue a reversal-monitoring run (it queues one task per tile)."""
    return _ref(celery.tasks[START_WATCH_RUN].delay(run_id))


router = APIRouter(prefix="/api/v1", tags=["tasks"])


@router.get("/tasks/{task_id}")
def read_task(task_id: str, session: SessionDep, celery: CeleryDep, principal: CurrentUser) -> TaskRef:
    """Return a task's state and, once it succeeded, its result.

    Only the organisation that queued the task, and the registry, see it; an id never queued is ``404``.
    """
    check_task_visible(session, task_id, principal)
    session.rollback()  # end the read before asking the result backend
    return _ref(AsyncResult(task_id, app=celery))
