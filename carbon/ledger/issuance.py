"""Issuance: a batch of whole tonnes, serials ``1..quantity``, the buffer share in the registry's pool.

:func:`issue` writes the batch, its blocks, their movements and the ``batch.issued`` entry into a unit of
work (the workflow's issuance step composes it with its own step); :func:`issue_batch` is the registry's
command, one unit committed once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger.accounts import buffer_account, receiving_account
from carbon.ledger.serials import serials
from carbon.ledger.tables import Batch, BlockState, CreditClass, HoldingBlock, Movement
from carbon.ledger.unit_of_work import UnitOfWork
from carbon.models import Project
from core.auth import OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied


@dataclass(frozen=True)
class IssueBatch:
    """Command: issue whole tonnes for a project; ``buffer_t`` of them go to the registry's buffer pool."""

    project_id: int
    source: str
    credit_class: CreditClass
    vintage_year: int
    quantity_t: int
    buffer_t: int


def issue(uow: UnitOfWork, cmd: IssueBatch, *, actor: Principal) -> Batch:
    """Issue a batch: serials 1..quantity, the buffer share in the buffer pool, the rest to the proponent.

    Raises:
        PermissionDenied: The actor is not the registry.
        Conflict: The source (e.g. a monitoring report) has been issued already.
    """
    session = uow.session
    if actor.role is not OrgKind.REGISTRY:
        raise PermissionDenied("only the registry issues (rule: issuer is the registry)")
    for name in ("quantity_t", "buffer_t", "vintage_year"):
        value = getattr(cmd, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{name} must be a whole number, got {value!r}")
    if cmd.quantity_t <= 0 or not 0 <= cmd.buffer_t <= cmd.quantity_t:
        raise InvalidInput("issuance needs quantity > 0 and 0 <= buffer <= quantity")
    if session.scalars(select(Batch).where(Batch.source == cmd.source)).first() is not None:
        raise Conflict(f"{cmd.source} has been issued already (no double issuance)")
    project = session.get(Project, cmd.project_id)
    if project is None:
        raise NotFound(f"project {cmd.project_id} does not exist")
    now = uow.clock.now()
    number = (session.scalar(select(func.max(Batch.batch_number)).where(Batch.project_id == project.id)) or 0) + 1
    batch = Batch(
        project_id=project.id, batch_number=number, source=cmd.source, credit_class=cmd.credit_class,
        province_code=project.province_code, vintage_year=cmd.vintage_year, quantity_t=cmd.quantity_t,
        buffer_t=cmd.buffer_t, issued_at=now, issued_by_user_id=actor.user_id,
    )  # fmt: skip
    session.add(batch)
    session.flush()
    holder = receiving_account(uow, project.organisation_id)
    proponent_t = cmd.quantity_t - cmd.buffer_t
    parts = [(holder, 1, proponent_t), (buffer_account(uow), proponent_t + 1, cmd.quantity_t)]
    blocks = []
    for account, start, end in parts:
        if start > end:
            continue
        block = HoldingBlock(
            batch_id=batch.id, account_id=account.id, serial_start=start, serial_end=end,
            state=BlockState.TRADABLE, created_at=now,
        )  # fmt: skip
        session.add(block)
        session.add(
            Movement(kind="issue", batch_id=batch.id, serial_start=start, serial_end=end, from_account_id=None,
                     to_account_id=account.id, from_state=None, to_state="tradable", actor=actor.actor, created_at=now)
        )  # fmt: skip
        blocks.append(block)
    session.flush()
    payload = {"source": cmd.source, "quantity_t": cmd.quantity_t, "buffer_t": cmd.buffer_t, "serials": serials(blocks)}
    uow.record(actor.actor, "batch.issued", f"batch:{batch.id}", payload)
    return batch


def issue_batch(session: Session, cmd: IssueBatch, *, actor: Principal, clock: Clock) -> Batch:
    """The registry's command: :func:`issue` in one unit of work, committed."""
    uow = UnitOfWork(session, clock)
    batch = issue(uow, cmd, actor=actor)
    uow.commit()
    return batch
