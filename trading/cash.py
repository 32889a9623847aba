"""Service: CNY cash accounts in integer fen — deposits, withdrawals, holds, and the fee account.

Every change is a pair of things in the caller's transaction: the account's running balances (locked
``FOR UPDATE``, never negative by ``CHECK``) and append-only :class:`~trading.models.CashEntry` rows, one per
bucket touched. An order's hold is a pending entry (``available`` −x, ``held`` +x) later posted by a fill or
voided by a cancel, as two-phase transfers are in TigerBeetle. Deposits and withdrawals stand in for the
settlement bank: the operator records them with the bank's reference.

Invariants: balances equal the sum of entries per bucket; Σ balances over all accounts = deposits −
withdrawals; nothing is ever negative (:func:`cash_violations`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from core import audit
from core.auth import Organisation, OrgKind, Principal
from core.bounds import INT64_MAX
from core.clock import Clock
from core.db import DEFERRED_WRITES, DeferredWrites, insert_rows
from core.errors import BalanceLimit, InsufficientFunds, InvalidInput, NotFound, PermissionDenied
from core.money import cny_text
from trading.models import CashAccount, CashEntry

TRADING, FEE = "trading", "fee"
AVAILABLE, HELD = "available", "held"
_ENTRIES = cast(Table, CashEntry.__table__)
_ACCOUNTS = cast(Table, CashAccount.__table__)


def cash_account(session: Session, organisation_id: int, kind: str = TRADING, *, now: datetime) -> CashAccount:
    """Return the organisation's cash account of ``kind``, locked for update, opening it on first use."""
    query = select(CashAccount).where(CashAccount.organisation_id == organisation_id, CashAccount.kind == kind)
    account = session.scalars(query.with_for_update()).one_or_none()
    if account is None:
        if session.get(Organisation, organisation_id) is None:
            raise NotFound(f"organisation {organisation_id} does not exist")
        account = CashAccount(organisation_id=organisation_id, kind=kind, available_fen=0, held_fen=0, created_at=now)
        session.add(account)
        session.flush()
    return account


def balances(session: Session, organisation_id: int, kind: str = TRADING) -> tuple[int, int]:
    """Return ``(available_fen, held_fen)`` of an organisation's account (zeros when it has none yet)."""
    query = select(CashAccount).where(CashAccount.organisation_id == organisation_id, CashAccount.kind == kind)
    account = session.scalars(query).one_or_none()
    return (0, 0) if account is None else (account.available_fen, account.held_fen)


def fee_account(session: Session, *, now: datetime) -> CashAccount:
    """Return the exchange's fee account (held by the first operator organisation)."""
    operator = session.scalars(
        select(Organisation).where(Organisation.kind == OrgKind.OPERATOR).order_by(Organisation.id)
    ).first()
    if operator is None:
        raise NotFound("no operator organisation exists")
    return cash_account(session, operator.id, FEE, now=now)


def holder_label(account: CashAccount) -> str:
    """Return how a message names the account's organisation (name and id) and the account itself."""
    session = object_session(account)
    organisation = session.get(Organisation, account.organisation_id) if session is not None else None
    holder = organisation.label if organisation is not None else f"organisation {account.organisation_id}"
    return f"{holder}, cash account {account.id} ({account.kind})"


def _shortfall(account: CashAccount, detail: str, *, needed_fen: int, available_fen: int) -> InsufficientFunds:
    """Return the refusal naming the organisation and the amounts in CNY (integer fen as extension members)."""
    return InsufficientFunds(
        f"{holder_label(account)}: {detail}", organisation_id=account.organisation_id, cash_account_id=account.id,
        needed_fen=needed_fen, available_fen=available_fen,
    )  # fmt: skip


def post(session: Session, account: CashAccount, bucket: str, amount_fen: int, kind: str, reference: str,
         now: datetime) -> None:  # fmt: skip
    """Add ``amount_fen`` (signed) to one bucket of ``account`` and record the entry."""
    if amount_fen == 0:
        return
    column = "available_fen" if bucket == AVAILABLE else "held_fen"
    balance = getattr(account, column) + amount_fen
    if balance > INT64_MAX:
        raise BalanceLimit(
            f"{cny_text(amount_fen)} would take account {account.id} {bucket} past the largest storable balance "
            f"({cny_text(INT64_MAX)}); nothing was written"
        )
    if balance < 0:
        have = getattr(account, column)
        raise _shortfall(
            account, f"{cny_text(-amount_fen)} needed from {bucket}, {cny_text(have)} {bucket}",
            needed_fen=-amount_fen, available_fen=have,
        )  # fmt: skip
    deferred: DeferredWrites | None = session.info.get(DEFERRED_WRITES)
    if deferred is None:
        setattr(account, column, balance)
    else:
        # An order-entry batch (ADR 015): the locked account's balance is written once, at the batch's end.
        set_committed_value(account, column, balance)
        deferred.increment(
            _ACCOUNTS, account.id, {column: amount_fen}, partial(_take_back, account, column, amount_fen)
        )
    insert_rows(session, _ENTRIES, [{"account_id": account.id, "bucket": bucket, "amount_fen": amount_fen, "kind": kind,
                                     "reference": reference, "created_at": now}])  # fmt: skip


def _take_back(account: CashAccount, column: str, amount_fen: int) -> None:
    set_committed_value(account, column, getattr(account, column) - amount_fen)


def check_hold(account: CashAccount, amount_fen: int) -> None:
    """Refuse a hold of ``amount_fen`` that the account's available balance does not cover.

    Raises:
        InsufficientFunds: Less than ``amount_fen`` is available.
    """
    if amount_fen > account.available_fen:
        raise _shortfall(
            account, f"the order needs a hold of {cny_text(amount_fen)}; {cny_text(account.available_fen)} available",
            needed_fen=amount_fen, available_fen=account.available_fen,
        )  # fmt: skip


def hold(session: Session, account: CashAccount, amount_fen: int, reference: str, now: datetime) -> None:
    """Move ``amount_fen`` from available to held (an order's pending entry).

    Raises:
        InsufficientFunds: Less than ``amount_fen`` is available.
    """
    check_hold(account, amount_fen)
    post(session, account, AVAILABLE, -amount_fen, "hold", reference, now)
    post(session, account, HELD, amount_fen, "hold", reference, now)


def release(session: Session, account: CashAccount, amount_fen: int, reference: str, now: datetime) -> None:
    """Move ``amount_fen`` from held back to available (a voided part of a hold)."""
    post(session, account, HELD, -amount_fen, "release", reference, now)
    post(session, account, AVAILABLE, amount_fen, "release", reference, now)


@dataclass(frozen=True)
class CashMovement:
    """Command: the operator records a deposit or withdrawal with the settlement bank's reference."""

    organisation_id: int
    amount_fen: int
    reference: str


def _check(cmd: CashMovement, actor: Principal) -> None:
    if actor.role is not OrgKind.OPERATOR:
        raise PermissionDenied("only the exchange operator records deposits and withdrawals")
    if isinstance(cmd.amount_fen, bool) or not isinstance(cmd.amount_fen, int) or cmd.amount_fen <= 0:
        raise InvalidInput(f"amounts are whole fen > 0, got {cmd.amount_fen!r}")
    if not cmd.reference.strip():
        raise InvalidInput("a deposit or withdrawal carries the bank's reference")


def deposit(session: Session, cmd: CashMovement, *, actor: Principal, clock: Clock) -> CashAccount:
    """Credit an organisation's trading account with money received by the settlement bank."""
    _check(cmd, actor)
    now = clock.now()
    account = cash_account(session, cmd.organisation_id, now=now)
    post(session, account, AVAILABLE, cmd.amount_fen, "deposit", cmd.reference, now)
    payload = {"amount_fen": cmd.amount_fen, "reference": cmd.reference}
    audit.append(session, actor=actor.actor, action="cash.deposited", subject=f"cash:{account.id}", payload=payload,
                 clock=clock)  # fmt: skip
    session.commit()
    return account


def withdraw(session: Session, cmd: CashMovement, *, actor: Principal, clock: Clock) -> CashAccount:
    """Debit available money paid out by the settlement bank.

    Raises:
        InsufficientFunds: Less than the amount is available (held money stays with its orders).
    """
    _check(cmd, actor)
    now = clock.now()
    account = cash_account(session, cmd.organisation_id, now=now)
    if cmd.amount_fen > account.available_fen:
        raise _shortfall(
            account, f"{cny_text(cmd.amount_fen)} asked; {cny_text(account.available_fen)} available",
            needed_fen=cmd.amount_fen, available_fen=account.available_fen,
        )  # fmt: skip
    post(session, account, AVAILABLE, -cmd.amount_fen, "withdrawal", cmd.reference, now)
    payload = {"amount_fen": cmd.amount_fen, "reference": cmd.reference}
    audit.append(session, actor=actor.actor, action="cash.withdrawn", subject=f"cash:{account.id}", payload=payload,
                 clock=clock)  # fmt: skip
    session.commit()
    return account


def cash_violations(session: Session) -> list[str]:
    """Return every broken cash invariant (empty when the books balance)."""
    problems = []
    sums = {
        (account_id, bucket): total
        for account_id, bucket, total in session.execute(
            select(CashEntry.account_id, CashEntry.bucket, func.sum(CashEntry.amount_fen)).group_by(
                CashEntry.account_id, CashEntry.bucket
            )
        )
    }
    total_balances = 0
    for account in session.scalars(select(CashAccount)):
        total_balances += account.available_fen + account.held_fen
        for bucket, balance in ((AVAILABLE, account.available_fen), (HELD, account.held_fen)):
            if balance < 0:
                problems.append(f"account {account.id} {bucket} is negative: {balance}")
            if int(sums.get((account.id, bucket), 0)) != balance:
                problems.append(f"account {account.id} {bucket} {balance} != entries {sums.get((account.id, bucket))}")
    flows = session.execute(
        select(CashEntry.kind, func.sum(CashEntry.amount_fen)).where(CashEntry.kind.in_(["deposit", "withdrawal"]))
        .group_by(CashEntry.kind)
    ).all()  # fmt: skip
    external = sum(int(total) for _, total in flows)
    if external != total_balances:
        problems.append(f"balances {total_balances} fen != deposits - withdrawals {external} fen")
    return problems
