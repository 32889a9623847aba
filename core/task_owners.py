"""Who queued each task: the owner store behind ``GET /api/v1/tasks/{id}``.

Celery cannot tell a task that never existed from one still waiting (both are ``PENDING``), nor who queued
it. So the id is chosen here, and the owner is stored with it — in the database, committed before the task
is queued — the same way with a broker and without one (tasks run in-process, eagerly). A task is visible to
its owner organisation and to the registry; any other caller, and any unknown id, gets ``404``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.auth import OrgKind, Principal
from core.clock import Clock
from core.db import Base
from core.errors import NotFound
from core.sqltypes import UtcDateTime


class TaskOwner(Base):
    """One queued task: its Celery id, what it runs, and the organisation (and user) that queued it."""

    __tablename__ = "task_owner"

    task_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    task_name: Mapped[str] = mapped_column(String(100))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    queued_at: Mapped[datetime] = mapped_column(UtcDateTime())


def record_task(session: Session, task_name: str, *, owner: Principal, clock: Clock) -> str:
    """Choose the id of a task about to be queued and store its owner in the caller's transaction.

    The caller commits before queueing, so a worker (or a reader) never sees a task without its owner.
    """
    task_id = str(uuid.uuid4())
    session.add(
        TaskOwner(task_id=task_id, task_name=task_name, organisation_id=owner.organisation_id,
                  user_id=owner.user_id, queued_at=clock.now())
    )  # fmt: skip
    session.flush()
    return task_id


def check_task_visible(session: Session, task_id: str, principal: Principal) -> TaskOwner:
    """Return the task's owner record when ``principal`` may read the task.

    Raises:
        NotFound: No task ``task_id`` was ever queued, or another organisation queued it (the registry
            sees every task).
    """
    owner = session.get(TaskOwner, task_id)
    if owner is None or (owner.organisation_id != principal.organisation_id and principal.role is not OrgKind.REGISTRY):
        raise NotFound(f"task {task_id} does not exist")
    return owner
