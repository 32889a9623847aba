"""Service: the registry ledger — issue, transfer, escrow, pledge, retire and cancel serial blocks.

Invariants (checked by :mod:`carbon.invariants` in tests and ``shanhai audit verify``):

* every tonne of a batch is in exactly one *open* block; open blocks of a batch never overlap and together
  cover serials ``1..quantity`` — so issued = Σ accounts (tradable + escrowed + pledged) + retired + cancelled;
* quantities are whole tonnes (integers); a block is split by closing it and opening the pieces;
* only tradable blocks move between accounts; escrow, pledge and their release are changes of state in
  place; retired and cancelled blocks never change again;
* every change is one transaction with its movement rows and audit entry (the caller never commits).

Blocks are taken oldest vintage first, then by batch and serial, unless the caller names blocks.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.invariants import BatchFacts, BlockFacts, Violation, check_invariants
from carbon.models import (
    Account,
    AccountKind,
    Batch,
    BlockState,
    CreditClass,
    HoldingBlock,
    Movement,
    Project,
    Retirement,
)
from carbon.serials import SerialBlock
from core import audit
from core.auth import Organisation, OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, InsufficientUnits, InvalidInput, NotFound, PermissionDenied

BLOCK_PAGE = 64
MOVABLE_FROM = {
    "transfer": BlockState.TRADABLE,
    "escrow": BlockState.TRADABLE,
    "release": BlockState.ESCROWED,
    "pledge": BlockState.TRADABLE,
    "unpledge": BlockState.PLEDGED,
    "enforce": BlockState.PLEDGED,
    "retire": BlockState.TRADABLE,
    "cancel": BlockState.TRADABLE,
}


#: Key of ``session.info`` under which a caller may keep a dict of accounts already read in its transaction
#: (the exchange does, per batch, ADR 015); the caller clears it whenever its transaction rolls back.
ACCOUNT_CACHE = "shanhai.registry_accounts"


def account_of(
    session: Session, organisation_id: int, kind: AccountKind = AccountKind.HOLDING, *, now: datetime
) -> Account:
    """Return the organisation's account of ``kind``, opening it on first use."""
    cache: dict[tuple[int, AccountKind], Account] | None = session.info.get(ACCOUNT_CACHE)
    if cache is not None and (organisation_id, kind) in cache:
        return cache[(organisation_id, kind)]
    account = session.scalars(
        select(Account).where(Account.organisation_id == organisation_id, Account.kind == kind)
    ).one_or_none()
    if account is None:
        if session.get(Organisation, organisation_id) is None:
            raise NotFound(f"organisation {organisation_id} does not exist")
        account = Account(organisation_id=organisation_id, kind=kind, created_at=now)
        session.add(account)
        session.flush()
    if cache is not None:
        cache[(organisation_id, kind)] = account
    return account


def buffer_account(session: Session, *, now: datetime) -> Account:
    """Return the registry's buffer-pool account (the registry organisation must exist)."""
    registry = session.scalars(
        select(Organisation).where(Organisation.kind == OrgKind.REGISTRY).order_by(Organisation.id)
    ).first()
    if registry is None:
        raise NotFound("no registry organisation exists")
    return account_of(session, registry.id, AccountKind.BUFFER, now=now)


@dataclass(frozen=True)
class Piece:
    """Part of an open block taken by an operation."""

    block: HoldingBlock
    quantity: int


def _open_blocks(
    session: Session, account: Account, state: BlockState, batch_ids: list[int] | None, *, offset: int, limit: int
) -> list[HoldingBlock]:
    query = (
        select(HoldingBlock)
        .join(Batch)
        .where(HoldingBlock.account_id == account.id, HoldingBlock.state == state, HoldingBlock.closed_at.is_(None))
        .order_by(Batch.vintage_year, Batch.id, HoldingBlock.serial_start)
        .with_for_update(of=HoldingBlock)
    )
    if batch_ids is not None:
        query = query.where(HoldingBlock.batch_id.in_(batch_ids))
    return list(session.scalars(query.offset(offset).limit(limit)))


def _take(
    session: Session, account: Account, quantity: int, state: BlockState, batch_ids: list[int] | None
) -> list[Piece]:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity <= 0:
        raise InvalidInput(f"quantities are whole tonnes > 0, got {quantity!r}")
    pieces, needed, offset = [], quantity, 0
    # Read (and lock) the account's blocks a page at a time, oldest first, only as far as needed: an account
    # may hold many blocks after many splits, and an operation usually needs one or two of them.
    while needed:
        page = _open_blocks(session, account, state, batch_ids, offset=offset, limit=BLOCK_PAGE)
        for block in page:
            take = min(block.quantity, needed)
            pieces.append(Piece(block, take))
            needed -= take
            if needed == 0:
                break
        if len(page) < BLOCK_PAGE:
            break
        offset += BLOCK_PAGE
    if needed:
        available = quantity - needed
        raise InsufficientUnits(f"account {account.id} holds {available} t {state.value}, {quantity} t needed")
    return pieces


def _reopen(block: HoldingBlock, start: int, end: int, **changes: Any) -> HoldingBlock:
    values = {
        "batch_id": block.batch_id,
        "account_id": block.account_id,
        "state": block.state,
        "pledgee_organisation_id": block.pledgee_organisation_id,
        "retirement_id": block.retirement_id,
    } | changes
    return HoldingBlock(serial_start=start, serial_end=end, **values)


def _apply(
    session: Session,
    pieces: list[Piece],
    kind: str,
    *,
    actor: str,
    now: datetime,
    reason: str = "",
    **changes: Any,
) -> list[HoldingBlock]:
    """Close each taken block, open the moved piece with ``changes`` and the remainder unchanged."""
    moved = []
    for piece in pieces:
        block = piece.block
        block.closed_at = now
        cut = block.serial_start + piece.quantity - 1
        new = _reopen(block, block.serial_start, cut, created_at=now, **changes)
        session.add(new)
        if cut < block.serial_end:
            session.add(_reopen(block, cut + 1, block.serial_end, created_at=now))
        session.add(
            Movement(
                kind=kind, batch_id=block.batch_id, serial_start=block.serial_start, serial_end=cut,
                from_account_id=block.account_id, to_account_id=new.account_id, from_state=block.state.value,
                to_state=new.state.value, reason=reason, actor=actor, created_at=now,
            )
        )  # fmt: skip
        moved.append(new)
    session.flush()
    return moved


def serial_of(block: HoldingBlock) -> SerialBlock:
    """Return the serial range of a block (the one derivation of its serial string)."""
    batch = block.batch
    return SerialBlock(
        batch.credit_class.value, batch.province_code, batch.project_id, batch.vintage_year, batch.batch_number,
        block.serial_start, block.serial_end,
    )  # fmt: skip


def serials(blocks: list[HoldingBlock]) -> list[str]:
    """Return the serial strings of blocks."""
    return [serial_of(b).format() for b in blocks]


def _record(
    session: Session,
    action: str,
    subject: str,
    payload: dict[str, Any],
    actor: str,
    clock: Clock,
    sink: list[audit.Event] | None = None,
) -> None:
    """Append the audit entry now, or to ``sink`` for a caller that appends a whole batch at once."""
    if sink is not None:
        sink.append(audit.Event(actor, action, subject, payload))
        return
    audit.append(session, actor=actor, action=action, subject=subject, payload=payload, clock=clock)


@dataclass(frozen=True)
class IssueBatch:
    """Command: issue whole tonnes for a project; ``buffer_t`` of them go to the registry's buffer pool."""

    project_id: int
    source: str
    credit_class: CreditClass
    vintage_year: int
    quantity_t: int
    buffer_t: int


def issue_batch(session: Session, cmd: IssueBatch, *, actor: Principal, clock: Clock, commit: bool = True) -> Batch:
    """Issue a batch: serials 1..quantity, the buffer share in the buffer pool, the rest to the proponent.

    Raises:
        PermissionDenied: The actor is not the registry.
        Conflict: The source (e.g. a monitoring report) has been issued already.
    """
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
    now = clock.now()
    number = (session.scalar(select(func.max(Batch.batch_number)).where(Batch.project_id == project.id)) or 0) + 1
    batch = Batch(
        project_id=project.id, batch_number=number, source=cmd.source, credit_class=cmd.credit_class,
        province_code=project.province_code, vintage_year=cmd.vintage_year, quantity_t=cmd.quantity_t,
        buffer_t=cmd.buffer_t, issued_at=now, issued_by_user_id=actor.user_id,
    )  # fmt: skip
    session.add(batch)
    session.flush()
    holder = account_of(session, project.organisation_id, now=now)
    proponent_t = cmd.quantity_t - cmd.buffer_t
    parts = [(holder, 1, proponent_t), (buffer_account(session, now=now), proponent_t + 1, cmd.quantity_t)]
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
    _record(session, "batch.issued", f"batch:{batch.id}", payload, actor.actor, clock)
    if commit:
        session.commit()
    return batch


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
    """Move tradable tonnes (oldest vintage first) from one organisation's holding account to another's."""
    if actor.organisation_id != from_organisation_id:
        raise PermissionDenied("only the holder transfers its units")
    if from_organisation_id == to_organisation_id:
        raise InvalidInput("a transfer needs two different organisations")
    now = clock.now()
    source = account_of(session, from_organisation_id, now=now)
    target = account_of(session, to_organisation_id, now=now)
    pieces = _take(session, source, quantity_t, BlockState.TRADABLE, batch_ids)
    moved = _apply(session, pieces, "transfer", actor=actor.actor, now=now, account_id=target.id)
    payload = {"from": source.id, "to": target.id, "quantity_t": quantity_t, "serials": serials(moved)}
    _record(session, "units.transferred", f"account:{source.id}", payload, actor.actor, clock)
    session.commit()
    return moved


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
    """Escrow, release, pledge, unpledge, enforce a pledge, or cancel tonnes of an organisation's account.

    ``enforce`` moves pledged tonnes to the pledgee bank as tradable; ``cancel`` (registry only, with a
    reason) takes them out of circulation for good. With ``audit_events`` the audit entry is collected there
    for the caller to append (with :func:`core.audit.append_many`, in the same transaction) instead of now.
    """
    if kind not in MOVABLE_FROM or kind in ("transfer", "retire"):
        raise InvalidInput(f"unknown state change {kind!r}")
    now = clock.now()
    account = account_of(session, organisation_id, account_kind, now=now)
    pieces = _take(session, account, quantity_t, MOVABLE_FROM[kind], batch_ids)
    changes: dict[str, Any] = _state_changes(
        session, kind, account, pieces, actor, pledgee_organisation_id, reason, now
    )
    moved = _apply(session, pieces, kind, actor=actor.actor, now=now, reason=reason, **changes)
    payload = {"account": account.id, "quantity_t": quantity_t, "reason": reason, "serials": serials(moved)}
    _record(session, f"units.{kind}", f"account:{account.id}", payload, actor.actor, clock, audit_events)
    if commit:
        session.commit()
    return moved


def _state_changes(
    session: Session,
    kind: str,
    account: Account,
    pieces: list[Piece],
    actor: Principal,
    pledgee: int | None,
    reason: str,
    now: datetime,
) -> dict[str, Any]:
    if kind == "cancel":
        if actor.role is not OrgKind.REGISTRY or not reason.strip():
            raise PermissionDenied("only the registry cancels units, and always with a reason")
        return {"state": BlockState.CANCELLED}
    if kind in ("enforce", "unpledge"):
        pledgees = {p.block.pledgee_organisation_id for p in pieces}
        if pledgees != {actor.organisation_id}:
            raise PermissionDenied("only the pledgee bank releases or enforces its pledge")
        if kind == "unpledge":
            return {"state": BlockState.TRADABLE, "pledgee_organisation_id": None}
        return {"state": BlockState.TRADABLE, "pledgee_organisation_id": None,
                "account_id": account_of(session, actor.organisation_id, now=now).id}  # fmt: skip
    operator_escrow = actor.role is OrgKind.OPERATOR and kind in ("escrow", "release")
    if account.organisation_id != actor.organisation_id and not operator_escrow:
        raise PermissionDenied("only the holder (or the exchange operator, for escrow) changes its units' state")
    if kind == "pledge":
        bank = session.get(Organisation, pledgee) if pledgee is not None else None
        if bank is None or bank.kind is not OrgKind.BANK:
            raise InvalidInput("a pledge names a bank organisation as pledgee")
        return {"state": BlockState.PLEDGED, "pledgee_organisation_id": bank.id}
    return {"state": BlockState.ESCROWED if kind == "escrow" else BlockState.TRADABLE}


@dataclass(frozen=True)
class RetireUnits:
    """Command: retire tonnes for a beneficiary."""

    quantity_t: int
    beneficiary: str
    purpose: str
    reporting_year: int
    use: str = "voluntary"


#: Compliance uses and what they accept (reference registry-trading §4.5: Fujian's market accepts only
#: CCER / FFCER generated in Fujian). Voluntary offsetting accepts every class.
COMPLIANCE_RULES: dict[str, tuple[frozenset[CreditClass], frozenset[str]]] = {
    "compliance:fujian": (
        frozenset({CreditClass.CCER_AFFORESTATION, CreditClass.FORESTRY_CARBON_TICKET}),
        frozenset({"35"}),
    ),
}


def _check_use(use: str, pieces: list[Piece]) -> None:
    if use == "voluntary":
        return
    if use not in COMPLIANCE_RULES:
        raise InvalidInput(f"unknown use {use!r}; use 'voluntary' or one of {', '.join(sorted(COMPLIANCE_RULES))}")
    classes, provinces = COMPLIANCE_RULES[use]
    for piece in pieces:
        batch = piece.block.batch
        if batch.credit_class not in classes or batch.province_code not in provinces:
            raise InvalidInput(
                f"{use} accepts only {', '.join(sorted(c.value for c in classes))} generated in province(s) "
                f"{', '.join(sorted(provinces))}; batch {batch.id} is {batch.credit_class.value} "
                f"from {batch.province_code}"
            )


def retire_units(session: Session, cmd: RetireUnits, *, actor: Principal, clock: Clock) -> Retirement:
    """Retire tonnes of the actor's organisation for good; returns the retirement (with its code)."""
    if not cmd.beneficiary.strip() or not cmd.purpose.strip():
        raise InvalidInput("a retirement names a beneficiary and a purpose")
    now = clock.now()
    account = account_of(session, actor.organisation_id, now=now)
    pieces = _take(session, account, cmd.quantity_t, BlockState.TRADABLE, None)
    _check_use(cmd.use, pieces)
    retirement = Retirement(
        account_id=account.id, quantity_t=cmd.quantity_t, beneficiary=cmd.beneficiary, purpose=cmd.purpose,
        reporting_year=cmd.reporting_year, use=cmd.use, verification_code=secrets.token_hex(8).upper(),
        created_at=now, created_by_user_id=actor.user_id,
    )  # fmt: skip
    session.add(retirement)
    session.flush()
    moved = _apply(
        session, pieces, "retire", actor=actor.actor, now=now, reason=cmd.purpose,
        state=BlockState.RETIRED, retirement_id=retirement.id,
    )  # fmt: skip
    payload = {
        "quantity_t": cmd.quantity_t, "beneficiary": cmd.beneficiary, "purpose": cmd.purpose, "use": cmd.use,
        "reporting_year": cmd.reporting_year, "verification_code": retirement.verification_code,
        "serials": serials(moved),
    }  # fmt: skip
    _record(session, "units.retired", f"retirement:{retirement.id}", payload, actor.actor, clock)
    session.commit()
    return retirement


def open_blocks(session: Session, organisation_id: int | None = None) -> list[HoldingBlock]:
    """Return the open blocks (current holdings), of one organisation or of everyone."""
    query = (
        select(HoldingBlock)
        .where(HoldingBlock.closed_at.is_(None))
        .order_by(HoldingBlock.batch_id, HoldingBlock.serial_start)
    )
    if organisation_id is not None:
        query = query.join(Account).where(Account.organisation_id == organisation_id)
    return list(session.scalars(query))


def ledger_violations(session: Session) -> list[Violation]:
    """Check the conservation invariants over the whole ledger (``carbon.invariants``)."""
    # Plain columns, not ORM objects: the check reads every block ever written.
    batches = [BatchFacts(i, q) for i, q in session.execute(select(Batch.id, Batch.quantity_t))]
    rows = session.execute(
        select(
            HoldingBlock.batch_id,
            HoldingBlock.serial_start,
            HoldingBlock.serial_end,
            HoldingBlock.state,
            HoldingBlock.closed_at.is_not(None),
        )
    )
    blocks = [BlockFacts(b, s, e, BlockState(state).value, bool(closed)) for b, s, e, state, closed in rows]
    return check_invariants(batches, blocks)


def reverse(
    session: Session, project_id: int, quantity_t: int, reason: str, *, actor: Principal, clock: Clock
) -> list[HoldingBlock]:
    """Cover a reversal (fire, logging) of a project by cancelling tonnes of its batches from the buffer pool.

    The registry names the reason; the buffer pool must hold enough of the project's batches (a shortfall is
    refused rather than silently taken from holders, whose units may already be sold).
    """
    if actor.role is not OrgKind.REGISTRY:
        raise PermissionDenied("only the registry records reversals")
    batch_ids = list(session.scalars(select(Batch.id).where(Batch.project_id == project_id)))
    if not batch_ids:
        raise NotFound(f"project {project_id} has no issued batches")
    return change_state(
        session, "cancel", organisation_id=actor.organisation_id, quantity_t=quantity_t, actor=actor, clock=clock,
        reason=f"reversal: {reason}", batch_ids=batch_ids, account_kind=AccountKind.BUFFER,
    )  # fmt: skip


def settle_escrowed(
    session: Session,
    *,
    organisation_id: int,
    quantity_t: int,
    batch_ids: list[int],
    actor: str,
    clock: Clock,
    to_organisation_id: int | None = None,
    retirement: Retirement | None = None,
    reason: str = "",
    audit_events: list[audit.Event] | None = None,
) -> list[HoldingBlock]:
    """The exchange's side of escrow: deliver escrowed tonnes to a buyer, or release them to their holder.

    With ``to_organisation_id`` the tonnes (oldest eligible batch first) move to the buyer's holding account
    as tradable — or as retired under ``retirement`` (retire on fill); without it they return to tradable
    in place (an order cancelled, expired or left over). Only the exchange calls this, inside the
    transaction that records the trade or the cancellation (the caller commits; with ``audit_events`` the
    audit entry is collected there for the caller's :func:`core.audit.append_many`).
    """
    now = clock.now()
    account = account_of(session, organisation_id, now=now)
    pieces = _take(session, account, quantity_t, BlockState.ESCROWED, batch_ids)
    changes: dict[str, Any] = {"state": BlockState.TRADABLE}
    kind = "release"
    if to_organisation_id is not None:
        kind = "transfer"
        changes["account_id"] = account_of(session, to_organisation_id, now=now).id
        if retirement is not None:
            kind = "retire"
            changes |= {"state": BlockState.RETIRED, "retirement_id": retirement.id}
    moved = _apply(session, pieces, kind, actor=actor, now=now, reason=reason, **changes)
    payload = {"account": account.id, "to": changes.get("account_id"), "quantity_t": quantity_t,
               "reason": reason, "serials": serials(moved)}  # fmt: skip
    _record(session, f"units.settled.{kind}", f"account:{account.id}", payload, actor, clock, audit_events)
    return moved
