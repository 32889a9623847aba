"""Reversals: tonnes lost after issuance (fire, logging) covered by cancelling as many, buffer pool first."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger.accounts import account_in, buffer_account, lock_accounts
from carbon.ledger.holdings import move, take, tradable_t
from carbon.ledger.serials import serials
from carbon.ledger.tables import (
    Account,
    AccountKind,
    Batch,
    BlockState,
    CreditClass,
    HoldingBlock,
    ReversalRule,
)
from carbon.ledger.transfers import class_policies
from carbon.ledger.unit_of_work import UnitOfWork
from carbon.models import Project
from core.auth import Organisation, OrgKind, Principal
from core.clock import Clock
from core.errors import InsufficientUnits, InvalidInput, NotFound, PermissionDenied


@dataclass(frozen=True)
class Reversal:
    """What a reversal cancelled: from the buffer pool, and (per class rules) from the proponent's holdings."""

    rule: ReversalRule
    from_buffer: list[HoldingBlock]
    from_proponent: list[HoldingBlock]


def cover(uow: UnitOfWork, project_id: int, quantity_t: int, reason: str, *, actor: Principal) -> Reversal:
    """Cover a reversal of a project by cancelling as many tonnes as were lost, with the reason.

    The tonnes come from the buffer pool (the project's batches, oldest first). When the pool holds too few,
    the class rule (``credit_class_policy.reversal_rule``) decides: ``buffer_then_proponent`` cancels the
    shortfall from the proponent's *tradable* tonnes of the project (escrowed and pledged tonnes are promised
    to others and retired ones are final); ``buffer_only`` refuses. If the tonnes cannot all be covered the
    reversal is refused as a whole and nothing changes. A project whose batches are of several classes takes
    the strictest rule (``buffer_only`` if any class has it).
    """
    session = uow.session
    if actor.role is not OrgKind.REGISTRY:
        raise PermissionDenied("only the registry records reversals")
    if isinstance(quantity_t, bool) or not isinstance(quantity_t, int) or quantity_t <= 0:
        raise InvalidInput(f"quantities are whole tonnes > 0, got {quantity_t!r}")
    if not reason.strip():
        raise InvalidInput("a reversal states its reason")
    project, batch_ids, rule = _project_rule(session, project_id)
    pool = buffer_account(uow)
    holder = account_in(uow, project.organisation_id)
    lock_accounts(uow, [pool, holder])  # before the balances are read, so that they hold until the commit
    from_buffer_t = min(quantity_t, tradable_t(session, pool, batch_ids))
    shortfall_t = quantity_t - from_buffer_t
    if shortfall_t and rule is ReversalRule.BUFFER_ONLY:
        raise InsufficientUnits(
            f"the buffer pool holds {from_buffer_t} t of project {project_id}, {quantity_t} t lost; "
            f"class rule {rule.value} takes nothing from holders"
        )
    if shortfall_t and tradable_t(session, holder, batch_ids) < shortfall_t:
        raise InsufficientUnits(
            f"the buffer pool holds {from_buffer_t} t and the proponent {tradable_t(session, holder, batch_ids)} t "
            f"tradable of project {project_id}; {quantity_t} t lost"
        )
    text = f"reversal: {reason}"
    buffer_pieces = take(uow, pool, from_buffer_t, BlockState.TRADABLE, batch_ids) if from_buffer_t else []
    holder_pieces = take(uow, holder, shortfall_t, BlockState.TRADABLE, batch_ids) if shortfall_t else []
    cancelled = {"state": BlockState.CANCELLED}
    from_buffer = move(uow, buffer_pieces, "cancel", actor=actor.actor, reason=text, **cancelled)
    from_holder = move(uow, holder_pieces, "cancel", actor=actor.actor, reason=text, **cancelled)
    for account, moved in ((pool, from_buffer), (holder, from_holder)):
        if moved:
            payload = {"project": project_id, "account": account.id, "quantity_t": sum(b.quantity for b in moved),
                       "lost_t": quantity_t, "rule": rule.value, "reason": text, "serials": serials(moved)}  # fmt: skip
            uow.record(actor.actor, "units.reversed", f"account:{account.id}", payload)
    return Reversal(rule, from_buffer, from_holder)


def _project_rule(session: Session, project_id: int) -> tuple[Project, list[int], ReversalRule]:
    """Return the project, its batches and the reversal rule that applies to it (the strictest of its classes)."""
    project = session.get(Project, project_id)
    batches = session.execute(select(Batch.id, Batch.credit_class).where(Batch.project_id == project_id)).all()
    if project is None or not batches:
        raise NotFound(f"project {project_id} has no issued batches")
    policies = class_policies(session, {CreditClass(c) for _, c in batches})
    rules = {p.reversal_rule for p in policies.values()}
    rule = ReversalRule.BUFFER_ONLY if ReversalRule.BUFFER_ONLY in rules else ReversalRule.BUFFER_THEN_PROPONENT
    return project, [b for b, _ in batches], rule


@dataclass(frozen=True)
class CoverPreview:
    """What :func:`cover` would cancel now: from the buffer pool, from the proponent, or why it would refuse."""

    quantity_t: int
    rule: ReversalRule
    buffer_t: int
    proponent_t: int
    from_buffer_t: int
    from_proponent_t: int
    refusal: str | None


def _tradable_of(session: Session, organisation_id: int, kind: AccountKind, batch_ids: list[int]) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(HoldingBlock.serial_end - HoldingBlock.serial_start + 1), 0))
        .join(Account, Account.id == HoldingBlock.account_id)
        .where(Account.organisation_id == organisation_id, Account.kind == kind,
               HoldingBlock.state == BlockState.TRADABLE, HoldingBlock.closed_at.is_(None),
               HoldingBlock.batch_id.in_(batch_ids))
    )  # fmt: skip
    return int(total or 0)


def cover_preview(session: Session, project_id: int, quantity_t: int) -> CoverPreview:
    """Return what covering ``quantity_t`` lost tonnes of the project would cancel now, by :func:`cover`'s rules.

    Reads only (no account is opened, no row locked): the page's confirmation names these tonnes; the step itself
    decides on the balances it then locks.
    """
    project, batch_ids, rule = _project_rule(session, project_id)
    registry = session.scalars(
        select(Organisation.id).where(Organisation.kind == OrgKind.REGISTRY).order_by(Organisation.id)
    ).first()
    buffer_t = _tradable_of(session, registry, AccountKind.BUFFER, batch_ids) if registry is not None else 0
    proponent_t = _tradable_of(session, project.organisation_id, AccountKind.HOLDING, batch_ids)
    from_buffer_t = min(max(quantity_t, 0), buffer_t)
    shortfall_t = max(quantity_t, 0) - from_buffer_t
    refusal = None
    if shortfall_t and rule is ReversalRule.BUFFER_ONLY:
        refusal = (f"the buffer pool holds {from_buffer_t} t of project {project_id}, {quantity_t} t lost; "
                   f"class rule {rule.value} takes nothing from holders")  # fmt: skip
    elif shortfall_t > proponent_t:
        refusal = (f"the buffer pool holds {from_buffer_t} t and the proponent {proponent_t} t tradable of "
                   f"project {project_id}; {quantity_t} t lost")  # fmt: skip
    return CoverPreview(quantity_t, rule, buffer_t, proponent_t, from_buffer_t,
                        0 if refusal else shortfall_t, refusal)  # fmt: skip


def reverse(
    session: Session, project_id: int, quantity_t: int, reason: str, *, actor: Principal, clock: Clock
) -> Reversal:
    """The registry's command: :func:`cover` in one unit of work, committed."""
    uow = UnitOfWork(session, clock)
    reversal = cover(uow, project_id, quantity_t, reason, actor=actor)
    uow.commit()
    return reversal
