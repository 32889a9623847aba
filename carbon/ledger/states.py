"""Changes of state: escrow and release, pledge, unpledge and enforce, cancel; and the exchange's settlement.

Each is a named operation on a unit of work (the caller commits):

* :func:`escrow` / :func:`release` — tradable ⇄ escrowed in place, by the holder or the exchange operator;
* :func:`pledge` — tradable → pledged to a bank, by the holder; :func:`unpledge` — back to tradable, by the
  pledgee bank; :func:`enforce` — to the pledgee bank's account as tradable, by the bank;
* :func:`cancel` — tradable → cancelled for good, by the registry with a reason;
* :func:`deliver` / :func:`settle_release` — the exchange's side of escrow: escrowed tonnes to a buyer as
  tradable, or back to tradable in place (an order cancelled, expired or left over). Retire on fill is
  :func:`carbon.ledger.retirement.retire`.

:func:`change_state` is the registry's command for the HTTP routes and older callers: it looks the named
operation up by its name (the movement kind) and commits one unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from carbon.ledger.accounts import account_in, receiving_account
from carbon.ledger.holdings import Piece, first_tonnes, move, move_apart, take
from carbon.ledger.serials import serials
from carbon.ledger.tables import Account, AccountKind, BlockState, HoldingBlock
from carbon.ledger.unit_of_work import UnitOfWork
from core import audit
from core.auth import Organisation, OrgKind, Principal
from core.clock import Clock
from core.errors import InvalidInput, PermissionDenied


def _change(
    uow: UnitOfWork,
    kind: str,
    state: BlockState,
    changes: Callable[[list[Piece]], dict[str, Any]],
    *,
    organisation_id: int,
    quantity_t: int,
    actor: str,
    reason: str,
    batch_ids: list[int] | None,
    account_kind: AccountKind = AccountKind.HOLDING,
    action: str | None = None,
) -> list[HoldingBlock]:
    """Take ``quantity_t`` tonnes in ``state``, check and compute the ``changes``, move, record the entry."""
    account = account_in(uow, organisation_id, account_kind)
    pieces = take(uow, account, quantity_t, state, batch_ids)
    values = changes(pieces)
    moved = move(uow, pieces, kind, actor=actor, reason=reason, **values)
    payload = {"account": account.id, "quantity_t": quantity_t, "reason": reason, "serials": serials(moved)}
    if action is not None:  # the exchange's settlement entries also name the receiving account
        payload = {"account": account.id, "to": values.get("account_id"), "quantity_t": quantity_t,
                   "reason": reason, "serials": serials(moved)}  # fmt: skip
    uow.record(actor, action or f"units.{kind}", f"account:{account.id}", payload)
    return moved


def _holder_or_operator(organisation_id: int, actor: Principal, kind: str) -> None:
    if organisation_id != actor.organisation_id and not (
        actor.role is OrgKind.OPERATOR and kind in ("escrow", "release")
    ):
        raise PermissionDenied("only the holder (or the exchange operator, for escrow) changes its units' state")


def _by_pledgee(pieces: list[Piece], actor: Principal) -> None:
    if {p.block.pledgee_organisation_id for p in pieces} != {actor.organisation_id}:
        raise PermissionDenied("only the pledgee bank releases or enforces its pledge")


def escrow(
    uow: UnitOfWork,
    *,
    organisation_id: int,
    quantity_t: int,
    actor: Principal,
    reason: str = "",
    batch_ids: list[int] | None = None,
    account_kind: AccountKind = AccountKind.HOLDING,
) -> list[HoldingBlock]:
    """Escrow tradable tonnes in place (the holder, or the exchange operator for an order)."""

    def changes(pieces: list[Piece]) -> dict[str, Any]:
        _holder_or_operator(organisation_id, actor, "escrow")
        return {"state": BlockState.ESCROWED}

    return _change(uow, "escrow", BlockState.TRADABLE, changes, organisation_id=organisation_id, quantity_t=quantity_t,
                   actor=actor.actor, reason=reason, batch_ids=batch_ids, account_kind=account_kind)  # fmt: skip


@dataclass(frozen=True)
class Escrowable:
    """Tradable tonnes read and locked for an escrow that may follow (:func:`escrowable`, :func:`escrow_taken`)."""

    account: Account
    pieces: list[Piece]
    quantity_t: int


def escrowable(
    uow: UnitOfWork, *, organisation_id: int, quantity_t: int, batch_ids: list[int] | None, spare_t: int = 0
) -> Escrowable:
    """Read and lock what an escrow of ``quantity_t`` would take — the check and the escrow's one read (ADR 035).

    The account's row is locked, then its oldest tradable blocks are read (and locked) as far as
    ``quantity_t + spare_t`` tonnes: ``spare_t`` more must be there without being taken (tonnes that may not
    be sold yet, such as those bought today under T+1). Nothing is written: :func:`escrow_taken` escrows
    the first ``quantity_t`` of them later in the same transaction, or nothing happens.

    Raises:
        InsufficientUnits: The account holds fewer tradable tonnes (``available_t``: how many it holds).
    """
    account = account_in(uow, organisation_id)
    pieces = take(uow, account, quantity_t + spare_t, BlockState.TRADABLE, batch_ids)
    return Escrowable(account, first_tonnes(pieces, quantity_t), quantity_t)


def escrow_taken(uow: UnitOfWork, taken: Escrowable, *, actor: Principal, reason: str = "") -> list[HoldingBlock]:
    """Escrow in place what :func:`escrowable` read, as :func:`escrow` would (``units.escrow``), without coalescing.

    The escrowed piece stays a block of its own until it is delivered or released (an order's escrow, ADR
    035): no neighbour is read, so the escrow costs the read, one close and one open.
    """
    _holder_or_operator(taken.account.organisation_id, actor, "escrow")
    moved = move_apart(uow, taken.pieces, "escrow", actor=actor.actor, reason=reason, state=BlockState.ESCROWED)
    payload = {"account": taken.account.id, "quantity_t": taken.quantity_t, "reason": reason,
               "serials": serials(moved)}  # fmt: skip
    uow.record(actor.actor, "units.escrow", f"account:{taken.account.id}", payload)
    return moved


def release(
    uow: UnitOfWork,
    *,
    organisation_id: int,
    quantity_t: int,
    actor: Principal,
    reason: str = "",
    batch_ids: list[int] | None = None,
    account_kind: AccountKind = AccountKind.HOLDING,
) -> list[HoldingBlock]:
    """Release escrowed tonnes back to tradable in place (the holder, or the exchange operator)."""

    def changes(pieces: list[Piece]) -> dict[str, Any]:
        _holder_or_operator(organisation_id, actor, "release")
        return {"state": BlockState.TRADABLE}

    return _change(uow, "release", BlockState.ESCROWED, changes, organisation_id=organisation_id,
                   quantity_t=quantity_t, actor=actor.actor, reason=reason, batch_ids=batch_ids,
                   account_kind=account_kind)  # fmt: skip


def pledge(
    uow: UnitOfWork,
    *,
    organisation_id: int,
    quantity_t: int,
    actor: Principal,
    pledgee_organisation_id: int | None,
    reason: str = "",
    batch_ids: list[int] | None = None,
    account_kind: AccountKind = AccountKind.HOLDING,
) -> list[HoldingBlock]:
    """Pledge tradable tonnes to a bank (质押), by their holder."""

    def changes(pieces: list[Piece]) -> dict[str, Any]:
        _holder_or_operator(organisation_id, actor, "pledge")
        bank = uow.session.get(Organisation, pledgee_organisation_id) if pledgee_organisation_id is not None else None
        if bank is None or bank.kind is not OrgKind.BANK:
            raise InvalidInput("a pledge names a bank organisation as pledgee")
        return {"state": BlockState.PLEDGED, "pledgee_organisation_id": bank.id}

    return _change(uow, "pledge", BlockState.TRADABLE, changes, organisation_id=organisation_id, quantity_t=quantity_t,
                   actor=actor.actor, reason=reason, batch_ids=batch_ids, account_kind=account_kind)  # fmt: skip


def unpledge(
    uow: UnitOfWork,
    *,
    organisation_id: int,
    quantity_t: int,
    actor: Principal,
    reason: str = "",
    batch_ids: list[int] | None = None,
    account_kind: AccountKind = AccountKind.HOLDING,
) -> list[HoldingBlock]:
    """The pledgee bank releases pledged tonnes of a pledgor back to tradable."""

    def changes(pieces: list[Piece]) -> dict[str, Any]:
        _by_pledgee(pieces, actor)
        return {"state": BlockState.TRADABLE, "pledgee_organisation_id": None}

    return _change(uow, "unpledge", BlockState.PLEDGED, changes, organisation_id=organisation_id,
                   quantity_t=quantity_t, actor=actor.actor, reason=reason, batch_ids=batch_ids,
                   account_kind=account_kind)  # fmt: skip


def enforce(
    uow: UnitOfWork,
    *,
    organisation_id: int,
    quantity_t: int,
    actor: Principal,
    reason: str = "",
    batch_ids: list[int] | None = None,
    account_kind: AccountKind = AccountKind.HOLDING,
) -> list[HoldingBlock]:
    """The pledgee bank takes pledged tonnes of a pledgor into its own account, as tradable."""

    def changes(pieces: list[Piece]) -> dict[str, Any]:
        _by_pledgee(pieces, actor)
        return {"state": BlockState.TRADABLE, "pledgee_organisation_id": None,
                "account_id": receiving_account(uow, actor.organisation_id).id}  # fmt: skip

    return _change(uow, "enforce", BlockState.PLEDGED, changes, organisation_id=organisation_id,
                   quantity_t=quantity_t, actor=actor.actor, reason=reason, batch_ids=batch_ids,
                   account_kind=account_kind)  # fmt: skip


def cancel(
    uow: UnitOfWork,
    *,
    organisation_id: int,
    quantity_t: int,
    actor: Principal,
    reason: str = "",
    batch_ids: list[int] | None = None,
    account_kind: AccountKind = AccountKind.HOLDING,
) -> list[HoldingBlock]:
    """The registry takes tradable tonnes out of circulation for good, always with a reason."""

    def changes(pieces: list[Piece]) -> dict[str, Any]:
        if actor.role is not OrgKind.REGISTRY or not reason.strip():
            raise PermissionDenied("only the registry cancels units, and always with a reason")
        return {"state": BlockState.CANCELLED}

    return _change(uow, "cancel", BlockState.TRADABLE, changes, organisation_id=organisation_id, quantity_t=quantity_t,
                   actor=actor.actor, reason=reason, batch_ids=batch_ids, account_kind=account_kind)  # fmt: skip


def deliver(
    uow: UnitOfWork,
    *,
    organisation_id: int,
    quantity_t: int,
    batch_ids: list[int],
    to_organisation_id: int,
    actor: str,
    reason: str = "",
) -> list[HoldingBlock]:
    """The exchange delivers a seller's escrowed tonnes (oldest eligible batch first) to a buyer, as tradable.

    Only the exchange calls this, inside the transaction that records the trade (``units.settled.transfer``).
    """

    def changes(pieces: list[Piece]) -> dict[str, Any]:
        return {"state": BlockState.TRADABLE, "account_id": receiving_account(uow, to_organisation_id).id}

    return _change(uow, "transfer", BlockState.ESCROWED, changes, organisation_id=organisation_id,
                   quantity_t=quantity_t, actor=actor, reason=reason, batch_ids=batch_ids,
                   action="units.settled.transfer")  # fmt: skip


def settle_release(
    uow: UnitOfWork, *, organisation_id: int, quantity_t: int, batch_ids: list[int], actor: str, reason: str = ""
) -> list[HoldingBlock]:
    """The exchange returns a seller's escrowed tonnes to tradable in place (``units.settled.release``)."""
    return _change(uow, "release", BlockState.ESCROWED, lambda pieces: {"state": BlockState.TRADABLE},
                   organisation_id=organisation_id, quantity_t=quantity_t, actor=actor, reason=reason,
                   batch_ids=batch_ids, action="units.settled.release")  # fmt: skip


#: The registry's state changes by the name of their movement kind (the HTTP routes' ``change_state``).
STATE_CHANGES: dict[str, Callable[..., list[HoldingBlock]]] = {
    "escrow": escrow, "release": release, "pledge": pledge, "unpledge": unpledge, "enforce": enforce, "cancel": cancel,
}  # fmt: skip


def change_state(
    session: Session,
    kind: str,
    *,
    organisation_id: int,
    quantity_t: int,
    actor: Principal,
    clock: Clock,
    pledgee_organisation_id: int | None = None,
    reason: str = "",
    batch_ids: list[int] | None = None,
    commit: bool = True,
    account_kind: AccountKind = AccountKind.HOLDING,
    audit_events: list[audit.Event] | None = None,
) -> list[HoldingBlock]:
    """The registry's command: one of :data:`STATE_CHANGES` in one unit of work, committed.

    Kept for the HTTP routes and the tests that name the change; code composes the named operations in a
    unit of work of its own instead. ``commit=False`` and ``audit_events`` are that older way and stay only
    here (ADR 031): without ``commit`` the entry is appended but not committed; with ``audit_events`` it is
    collected there instead.
    """
    operation = STATE_CHANGES.get(kind)
    if operation is None:
        raise InvalidInput(f"unknown state change {kind!r}")
    uow = UnitOfWork(session, clock, audit_events=audit_events)
    extra = {"pledgee_organisation_id": pledgee_organisation_id} if operation is pledge else {}
    moved = operation(uow, organisation_id=organisation_id, quantity_t=quantity_t, actor=actor, reason=reason,
                      batch_ids=batch_ids, account_kind=account_kind, **extra)  # fmt: skip
    if audit_events is None:
        uow.append_audit()
    if commit:
        session.commit()
    return moved


def settle_escrowed(
    session: Session,
    *,
    organisation_id: int,
    quantity_t: int,
    batch_ids: list[int],
    actor: str,
    clock: Clock,
    to_organisation_id: int | None = None,
    reason: str = "",
    audit_events: list[audit.Event] | None = None,
) -> list[HoldingBlock]:
    """:func:`deliver` (with ``to_organisation_id``) or :func:`settle_release` in the caller's transaction.

    The caller commits; without ``audit_events`` the entry is appended now, with it collected there.
    """
    uow = UnitOfWork(session, clock, audit_events=audit_events)
    if to_organisation_id is None:
        moved = settle_release(uow, organisation_id=organisation_id, quantity_t=quantity_t, batch_ids=batch_ids,
                               actor=actor, reason=reason)  # fmt: skip
    else:
        moved = deliver(uow, organisation_id=organisation_id, quantity_t=quantity_t, batch_ids=batch_ids,
                        to_organisation_id=to_organisation_id, actor=actor, reason=reason)  # fmt: skip
    if audit_events is None:
        uow.append_audit()
    return moved
