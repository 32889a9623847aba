"""Service: banks' lending policies, and rights pledged to banks as collateral, with the collateral alert.

A pledge is requested by the right's owner, then accepted or declined by the bank, and an active one released
or enforced by it; a re-valued right that falls below its bank's threshold raises an alert.

Loan-to-value (LTV) = loan ÷ the right's current value. A bank's policy states ``max_ltv`` (a pledge is accepted
only at or below it) and ``alert_ltv`` ≥ ``max_ltv``: when a re-valuation lifts a pledge's LTV above it (the value
fell below loan ÷ ``alert_ltv``, the *threshold value*), the bank and the owner each get an inbox message and the
audit log an ``eco_pledge.alert`` entry. Every change of a pledge is audited and announced in the other side's
inbox.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from core import audit, inbox
from core.auth import Organisation, OrgKind, Principal
from core.clock import Clock
from core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from core.money import Fen
from ecovalue.models import OPEN_PLEDGE, BankPolicy, Pledge, PledgeStatus, Right, RightStatus

Ratio = Annotated[Decimal, Field(gt=0, le=1, max_digits=5, decimal_places=4, allow_inf_nan=False)]


class SetPolicy(BaseModel):
    """Command: a bank's loan-to-value limit for new pledges and its alert level (alert ≥ limit)."""

    model_config = ConfigDict(extra="forbid")

    max_ltv: Ratio
    alert_ltv: Ratio

    @model_validator(mode="after")
    def _check(self) -> SetPolicy:
        if self.alert_ltv < self.max_ltv:
            raise ValueError("alert_ltv is below max_ltv")
        return self


class RequestPledge(BaseModel):
    """Command: the owner asks a bank to take the right as collateral for a loan."""

    model_config = ConfigDict(extra="forbid")

    bank_organisation_id: Annotated[int, Field(ge=1, le=2**31 - 1)]
    loan_cny: Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=2, allow_inf_nan=False)]
    comment: Annotated[str, Field(max_length=2000)] = ""


class BankDecision(BaseModel):
    """Command: a bank's note on accepting, declining, releasing or enforcing a pledge."""

    model_config = ConfigDict(extra="forbid")

    comment: Annotated[str, Field(max_length=2000)] = ""


def set_policy(session: Session, cmd: SetPolicy, *, actor: Principal, clock: Clock) -> BankPolicy:
    """Set the caller's bank's policy (replacing the previous one), with its audit entry."""
    policy = session.get(BankPolicy, actor.organisation_id)
    if policy is None:
        policy = BankPolicy(organisation_id=actor.organisation_id)
        session.add(policy)
    policy.max_ltv, policy.alert_ltv = cmd.max_ltv, cmd.alert_ltv
    policy.updated_by, policy.updated_at = actor.actor, clock.now()
    audit.append(
        session,
        actor=actor.actor,
        action="eco_bank_policy.set",
        subject=f"organisation:{actor.organisation_id}",
        payload={"max_ltv": str(cmd.max_ltv), "alert_ltv": str(cmd.alert_ltv)},
        clock=clock,
    )
    session.commit()
    return policy


def list_policies(session: Session) -> list[BankPolicy]:
    """Return every bank's policy, by organisation."""
    return list(session.scalars(select(BankPolicy).order_by(BankPolicy.organisation_id)))


def ltv(loan_fen: int, value_fen: int) -> Decimal | None:
    """Return loan ÷ value to four decimals, rounded up (``None`` when the value is zero).

    >>> ltv(600, 1000), ltv(1, 3), ltv(5, 0)
    (Decimal('0.6000'), Decimal('0.3334'), None)
    """
    if value_fen == 0:
        return None
    return (Decimal(loan_fen) / Decimal(value_fen)).quantize(Decimal("0.0001"), ROUND_CEILING)


def _event(
    session: Session, pledge: Pledge, action: str, payload: dict[str, Any], *, actor: Principal, clock: Clock,
    notify: int, title: str,
) -> None:  # fmt: skip
    subject = f"eco_pledge:{pledge.id}"
    audit.append(session, actor=actor.actor, action=action, subject=subject, payload=payload, clock=clock)
    inbox.post(session, organisation_id=notify, kind=action, subject=subject, title=title,
               body=pledge.comment, data=payload, clock=clock)  # fmt: skip


def request_pledge(session: Session, right_id: int, cmd: RequestPledge, *, actor: Principal, clock: Clock) -> Pledge:
    """Ask a bank to take a right as collateral (requested), by the right's owner.

    Raises:
        NotFound: No such right.
        PermissionDenied: The caller's organisation does not own the right.
        InvalidInput: The named organisation is not a bank.
        Conflict: The right is enforced, or has an open pledge.
    """
    right = _right(session, right_id)
    if right.owner_organisation_id != actor.organisation_id:
        raise PermissionDenied("only the right's owner pledges it")
    bank = session.get(Organisation, cmd.bank_organisation_id)
    if bank is None or bank.kind is not OrgKind.BANK:
        raise InvalidInput("a pledge names a bank", [{"pointer": "/bank_organisation_id", "reason": "not-a-bank"}])
    if right.status is not RightStatus.REGISTERED:
        raise Conflict(f"right {right.serial} is {right.status.value}")
    _no_open_pledge(session, right)
    pledge = Pledge(
        right_id=right.id,
        bank_organisation_id=bank.id,
        pledgor_organisation_id=actor.organisation_id,
        loan_fen=Fen.from_cny(cmd.loan_cny).value,
        status=PledgeStatus.REQUESTED,
        comment=cmd.comment,
        created_by=actor.actor,
        created_at=clock.now(),
    )
    session.add(pledge)
    session.flush()
    payload = {"right": right.serial, "loan_fen": pledge.loan_fen, "value_fen": right.value_fen}
    _event(session, pledge, "eco_pledge.requested", payload, actor=actor, clock=clock, notify=bank.id,
           title=f"Pledge of {right.serial} requested for a loan of {Fen(pledge.loan_fen).cny} CNY")  # fmt: skip
    session.commit()
    return pledge


def _right(session: Session, right_id: int) -> Right:
    right = session.get(Right, right_id)
    if right is None:
        raise NotFound(f"ecological-product right {right_id} does not exist")
    session.refresh(right, with_for_update=True)
    return right


def _no_open_pledge(session: Session, right: Right) -> None:
    open_id = session.scalars(
        select(Pledge.id).where(Pledge.right_id == right.id, Pledge.status.in_(OPEN_PLEDGE))
    ).first()
    if open_id is not None:
        raise Conflict(f"right {right.serial} has an open pledge ({open_id})")


def get_pledge(session: Session, pledge_id: int) -> Pledge:
    """Return a pledge or raise :class:`NotFound`."""
    pledge = session.get(Pledge, pledge_id)
    if pledge is None:
        raise NotFound(f"pledge {pledge_id} does not exist")
    return pledge


def _bank_pledge(session: Session, pledge_id: int, actor: Principal, status: PledgeStatus) -> tuple[Pledge, Right]:
    pledge = get_pledge(session, pledge_id)
    right = _right(session, pledge.right_id)  # the right's lock orders pledge changes
    session.refresh(pledge)
    if pledge.bank_organisation_id != actor.organisation_id:
        raise PermissionDenied("only the pledgee bank decides on its pledge")
    if pledge.status is not status:
        raise Conflict(f"pledge {pledge.id} is {pledge.status.value}, not {status.value}")
    return pledge, right


def accept_pledge(session: Session, pledge_id: int, cmd: BankDecision, *, actor: Principal, clock: Clock) -> Pledge:
    """Accept a requested pledge (active) if the loan is within the bank's ``max_ltv`` of the right's value.

    Raises:
        InvalidInput: The bank has no policy.
        Conflict: The pledge is not requested; the loan exceeds the limit.
    """
    pledge, right = _bank_pledge(session, pledge_id, actor, PledgeStatus.REQUESTED)
    policy = session.get(BankPolicy, actor.organisation_id)
    if policy is None:
        raise InvalidInput("state the bank's loan-to-value policy first (PUT /api/v1/eco/bank-policy)")
    ratio = ltv(pledge.loan_fen, right.value_fen)
    if ratio is None or ratio > policy.max_ltv:
        raise Conflict(
            f"the loan of {Fen(pledge.loan_fen).cny} CNY is {ratio or 'infinite'} of the right's value "
            f"{Fen(right.value_fen).cny} CNY, above the bank's limit {policy.max_ltv}"
        )
    pledge.status, pledge.decided_at = PledgeStatus.ACTIVE, clock.now()
    pledge.comment = cmd.comment or pledge.comment
    payload = {"right": right.serial, "loan_fen": pledge.loan_fen, "value_fen": right.value_fen, "ltv": str(ratio)}
    _event(session, pledge, "eco_pledge.accepted", payload, actor=actor, clock=clock,
           notify=pledge.pledgor_organisation_id, title=f"Pledge of {right.serial} accepted")  # fmt: skip
    session.commit()
    return pledge


def _close(
    session: Session, pledge_id: int, cmd: BankDecision, *, actor: Principal, clock: Clock, status: PledgeStatus,
    to: PledgeStatus,
) -> Pledge:  # fmt: skip
    pledge, right = _bank_pledge(session, pledge_id, actor, status)
    now = clock.now()
    pledge.status = to
    if to is PledgeStatus.DECLINED:
        pledge.decided_at = now
    else:
        pledge.ended_at = now
    pledge.comment = cmd.comment or pledge.comment
    payload: dict[str, Any] = {"right": right.serial, "loan_fen": pledge.loan_fen, "comment": cmd.comment}
    if to is PledgeStatus.ENFORCED:  # the right passes to the bank
        payload["owner_before"] = right.owner_organisation_id
        right.owner_organisation_id, right.status = pledge.bank_organisation_id, RightStatus.ENFORCED
    _event(session, pledge, f"eco_pledge.{to.value}", payload, actor=actor, clock=clock,
           notify=pledge.pledgor_organisation_id, title=f"Pledge of {right.serial} {to.value}")  # fmt: skip
    session.commit()
    return pledge


def decline_pledge(session: Session, pledge_id: int, cmd: BankDecision, *, actor: Principal, clock: Clock) -> Pledge:
    """Decline a requested pledge, by the bank."""
    return _close(session, pledge_id, cmd, actor=actor, clock=clock, status=PledgeStatus.REQUESTED,
                  to=PledgeStatus.DECLINED)  # fmt: skip


def release_pledge(session: Session, pledge_id: int, cmd: BankDecision, *, actor: Principal, clock: Clock) -> Pledge:
    """Release an active pledge (the loan is repaid), by the bank."""
    return _close(session, pledge_id, cmd, actor=actor, clock=clock, status=PledgeStatus.ACTIVE,
                  to=PledgeStatus.RELEASED)  # fmt: skip


def enforce_pledge(session: Session, pledge_id: int, cmd: BankDecision, *, actor: Principal, clock: Clock) -> Pledge:
    """Enforce an active pledge (the loan defaulted): the right passes to the bank."""
    return _close(session, pledge_id, cmd, actor=actor, clock=clock, status=PledgeStatus.ACTIVE,
                  to=PledgeStatus.ENFORCED)  # fmt: skip


def check_alerts(session: Session, right: Right, *, actor: Principal, clock: Clock) -> list[Pledge]:
    """Alert the bank and owner of each active pledge on ``right`` whose LTV now passes the bank's ``alert_ltv``.

    Runs in the caller's transaction (no commit); returns the pledges alerted.
    """
    alerted = []
    pledges = session.scalars(select(Pledge).where(Pledge.right_id == right.id, Pledge.status == PledgeStatus.ACTIVE))
    for pledge in pledges:
        policy = session.get(BankPolicy, pledge.bank_organisation_id)
        if policy is None:
            continue
        ratio = ltv(pledge.loan_fen, right.value_fen)
        if ratio is not None and ratio <= policy.alert_ltv:
            continue
        threshold_fen = int((Decimal(pledge.loan_fen) / policy.alert_ltv).to_integral_value(ROUND_CEILING))
        payload = {
            "right": right.serial,
            "pledge_id": pledge.id,
            "loan_fen": pledge.loan_fen,
            "value_fen": right.value_fen,
            "ltv": None if ratio is None else str(ratio),
            "alert_ltv": str(policy.alert_ltv),
            "threshold_value_fen": threshold_fen,
            "valuation_run_id": right.valuation_run_id,
        }
        subject = f"eco_pledge:{pledge.id}"
        audit.append(session, actor=actor.actor, action="eco_pledge.alert", subject=subject, payload=payload,
                     clock=clock)  # fmt: skip
        title = (
            f"Collateral alert: {right.serial} re-valued at {Fen(right.value_fen).cny} CNY, below the threshold "
            f"{Fen(threshold_fen).cny} CNY (loan {Fen(pledge.loan_fen).cny} CNY, "
            f"LTV {ratio or '∞'} > {policy.alert_ltv})"
        )
        body = f"GEP run {right.valuation_run_id} re-valued the right on {right.valuation_date.isoformat()}."
        for organisation_id in (pledge.bank_organisation_id, pledge.pledgor_organisation_id):
            inbox.post(session, organisation_id=organisation_id, kind="eco_pledge.alert", subject=subject,
                       title=title, body=body, data=payload, clock=clock)  # fmt: skip
        alerted.append(pledge)
    return alerted


def list_pledges(session: Session, *, organisation_id: int | None = None) -> list[Pledge]:
    """Return the pledges (where ``organisation_id`` is the bank or the pledgor, when given), by id."""
    query = select(Pledge).order_by(Pledge.id)
    if organisation_id is not None:
        query = query.where(
            (Pledge.bank_organisation_id == organisation_id) | (Pledge.pledgor_organisation_id == organisation_id)
        )
    return list(session.scalars(query))


def describe(pledge: Pledge) -> dict[str, Any]:
    """Return a pledge as JSON-ready data with its right's current value and LTV."""
    ratio = ltv(pledge.loan_fen, pledge.right.value_fen)
    return {
        "id": pledge.id,
        "right_id": pledge.right_id,
        "right_serial": pledge.right.serial,
        "bank_organisation_id": pledge.bank_organisation_id,
        "pledgor_organisation_id": pledge.pledgor_organisation_id,
        "loan_fen": pledge.loan_fen,
        "value_fen": pledge.right.value_fen,
        "ltv": None if ratio is None else str(ratio),
        "status": pledge.status.value,
        "comment": pledge.comment,
        "created_at": pledge.created_at.isoformat(),
        "decided_at": pledge.decided_at.isoformat() if pledge.decided_at else None,
        "ended_at": pledge.ended_at.isoformat() if pledge.ended_at else None,
    }
