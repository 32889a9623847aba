"""Transfers between organisations, and the pending transfers a class's rules make wait for the receiver.

When a class of the tonnes taken requires the receiver's acceptance (``credit_class_policy``), a transfer
waits: its blocks become ``pending`` in the sender's account, linked to a :class:`PendingTransfer` that the
receiver accepts or rejects before it expires. Each operation writes into a unit of work; the registry's
commands (:func:`transfer`, :func:`decide_transfer`, :func:`expire_transfers`) commit theirs once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from carbon.ledger.accounts import accounts_in, check_receiver
from carbon.ledger.holdings import move, take
from carbon.ledger.serials import serials
from carbon.ledger.tables import (
    Account,
    BlockState,
    CreditClass,
    CreditClassPolicy,
    HoldingBlock,
    PendingTransfer,
    TransferStatus,
)
from carbon.ledger.unit_of_work import UnitOfWork
from core.auth import Principal
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied

_POLICIES = select(CreditClassPolicy).where(CreditClassPolicy.credit_class.in_(bindparam("classes", expanding=True)))


def class_policies(session: Session, classes: set[CreditClass]) -> dict[CreditClass, CreditClassPolicy]:
    """Return the registry's rules for each credit class (every class has a row, seeded by the migration)."""
    rows = session.scalars(_POLICIES, {"classes": sorted(c.value for c in classes)}).all()
    found = {CreditClass(r.credit_class): r for r in rows}
    missing = classes - set(found)
    if missing:
        raise NotFound(f"no registry rules for credit class(es) {', '.join(sorted(c.value for c in missing))}")
    return found


def send(
    uow: UnitOfWork,
    *,
    from_organisation_id: int,
    to_organisation_id: int,
    quantity_t: int,
    actor: Principal,
    batch_ids: list[int] | None = None,
) -> list[HoldingBlock]:
    """Move tradable tonnes (oldest vintage first) from one organisation's holding account to another's.

    When a class of the tonnes taken requires the receiver's acceptance, the whole transfer waits instead
    (:func:`decide`, :func:`expire`); the returned blocks then have state ``pending``.
    """
    if actor.organisation_id != from_organisation_id:
        raise PermissionDenied("only the holder transfers its units")
    if from_organisation_id == to_organisation_id:
        raise InvalidInput("a transfer needs two different organisations")
    check_receiver(uow, to_organisation_id)
    now = uow.clock.now()
    source, target = accounts_in(uow, [from_organisation_id, to_organisation_id])
    pieces = take(uow, source, quantity_t, BlockState.TRADABLE, batch_ids)
    policies = class_policies(uow.session, {p.block.batch.credit_class for p in pieces})
    if any(policy.requires_acceptance for policy in policies.values()):
        days = min(p.acceptance_days for p in policies.values() if p.requires_acceptance)
        offer = PendingTransfer(
            from_account_id=source.id, to_account_id=target.id, quantity_t=quantity_t,
            status=TransferStatus.PENDING, created_at=now, created_by_user_id=actor.user_id,
            expires_at=now + timedelta(days=days),
        )  # fmt: skip
        uow.session.add(offer)
        uow.session.flush()
        moved = move(uow, pieces, "offer", actor=actor.actor, state=BlockState.PENDING, pending_transfer_id=offer.id)
        payload = {"from": source.id, "to": target.id, "quantity_t": quantity_t, "serials": serials(moved),
                   "pending_transfer": offer.id, "expires_at": offer.expires_at.isoformat()}  # fmt: skip
        uow.record(actor.actor, "units.transfer_offered", f"pending_transfer:{offer.id}", payload)
    else:
        moved = move(uow, pieces, "transfer", actor=actor.actor, account_id=target.id)
        payload = {"from": source.id, "to": target.id, "quantity_t": quantity_t, "serials": serials(moved)}
        uow.record(actor.actor, "units.transferred", f"account:{source.id}", payload)
    return moved


def transfer(
    session: Session,
    *,
    from_organisation_id: int,
    to_organisation_id: int,
    quantity_t: int,
    actor: Principal,
    clock: Clock,
    batch_ids: list[int] | None = None,
) -> list[HoldingBlock]:
    """The registry's command: :func:`send` in one unit of work, committed."""
    uow = UnitOfWork(session, clock)
    moved = send(uow, from_organisation_id=from_organisation_id, to_organisation_id=to_organisation_id,
                 quantity_t=quantity_t, actor=actor, batch_ids=batch_ids)  # fmt: skip
    uow.commit()
    return moved


def pending_transfer_of(moved: list[HoldingBlock]) -> int | None:
    """Return the pending transfer the blocks returned by :func:`transfer` wait in, if any."""
    return moved[0].pending_transfer_id if moved else None


def _settle_offer(
    uow: UnitOfWork, offer: PendingTransfer, status: TransferStatus, *, actor: str, reason: str
) -> list[HoldingBlock]:
    session = uow.session
    source = session.get(Account, offer.from_account_id)
    assert source is not None  # a foreign key
    pieces = take(uow, source, None, BlockState.PENDING, None, pending_transfer_id=offer.id)
    accepted = status is TransferStatus.ACCEPTED
    if accepted:  # an offer made before the hold rule may name a receiver that may not hold
        receiver = session.get(Account, offer.to_account_id)
        assert receiver is not None  # a foreign key
        check_receiver(uow, receiver.organisation_id, receiver.kind)
    account_id = offer.to_account_id if accepted else offer.from_account_id
    moved = move(uow, pieces, "transfer" if accepted else "return", actor=actor, reason=reason,
                 state=BlockState.TRADABLE, pending_transfer_id=None, account_id=account_id)  # fmt: skip
    offer.status, offer.decided_at, offer.decided_by, offer.reason = status, uow.clock.now(), actor, reason
    return moved


def decide(
    uow: UnitOfWork, transfer_id: int, *, accept: bool, actor: Principal, reason: str = ""
) -> list[HoldingBlock]:
    """The receiver accepts a pending transfer (the blocks move to it as tradable) or rejects it (they return).

    Raises:
        NotFound: No such transfer, or the actor's organisation is not its receiver.
        Conflict: The transfer was decided already or has expired (its blocks then return to the sender).
    """
    session = uow.session
    offer = session.scalars(
        select(PendingTransfer).where(PendingTransfer.id == transfer_id).with_for_update()
    ).one_or_none()
    receiver = session.get(Account, offer.to_account_id) if offer is not None else None
    if offer is None or receiver is None or receiver.organisation_id != actor.organisation_id:
        raise NotFound(f"no pending transfer {transfer_id} to your organisation")
    if offer.status is not TransferStatus.PENDING:
        raise Conflict(f"transfer {transfer_id} is {offer.status.value} already")
    if uow.clock.now() >= _aware(offer.expires_at):
        raise Conflict(
            f"transfer {transfer_id} expired at {offer.expires_at.isoformat()}; its units return to the sender"
        )
    status = TransferStatus.ACCEPTED if accept else TransferStatus.REJECTED
    moved = _settle_offer(uow, offer, status, actor=actor.actor, reason=reason)
    payload = {"from": offer.from_account_id, "to": offer.to_account_id, "quantity_t": offer.quantity_t,
               "reason": reason, "serials": serials(moved)}  # fmt: skip
    uow.record(actor.actor, f"units.transfer_{status.value}", f"pending_transfer:{offer.id}", payload)
    return moved


def decide_transfer(
    session: Session, transfer_id: int, *, accept: bool, actor: Principal, clock: Clock, reason: str = ""
) -> list[HoldingBlock]:
    """The registry's command: :func:`decide` in one unit of work, committed."""
    uow = UnitOfWork(session, clock)
    moved = decide(uow, transfer_id, accept=accept, actor=actor, reason=reason)
    uow.commit()
    return moved


def expire(uow: UnitOfWork, *, actor: str) -> list[int]:
    """Return the blocks of every pending transfer past its deadline to its sender; one audit entry each."""
    offers = uow.session.scalars(
        select(PendingTransfer)
        .where(PendingTransfer.status == TransferStatus.PENDING, PendingTransfer.expires_at <= uow.clock.now())
        .order_by(PendingTransfer.id)
        .with_for_update()
    ).all()
    for offer in offers:
        moved = _settle_offer(uow, offer, TransferStatus.EXPIRED, actor=actor, reason="expired")
        payload = {"from": offer.from_account_id, "to": offer.to_account_id, "quantity_t": offer.quantity_t,
                   "serials": serials(moved)}  # fmt: skip
        uow.record(actor, "units.transfer_expired", f"pending_transfer:{offer.id}", payload)
    return [o.id for o in offers]


def expire_transfers(session: Session, *, actor: str, clock: Clock) -> list[int]:
    """The registry's command: :func:`expire` in one unit of work, committed."""
    uow = UnitOfWork(session, clock)
    expired = expire(uow, actor=actor)
    uow.commit()
    return expired


def _aware(moment: datetime) -> datetime:
    # SQLite returns naive datetimes for timezone-aware columns; they were written in UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
