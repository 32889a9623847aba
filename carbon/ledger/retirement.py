"""Retirement: tonnes taken out of circulation for a beneficiary and a purpose, for good.

:func:`retire` is the one place a :class:`Retirement` row is made and tonnes become retired. The registry's
command :func:`retire_units` retires the actor's own tradable tonnes; the exchange's retire on fill
(``trading.settlement``) retires the seller's escrowed tonnes delivered to the buyer. Both check the use
(:data:`COMPLIANCE_RULES`) and record the ``units.retired`` entry whose payload the certificate shows and
checks (:func:`retired_payload`). A direct retirement keeps the signed tree head of the log ending with its
entry in its own transaction; a retirement on fill keeps it at the certificate's first read
(:func:`carbon.ledger.certificates.keep_tree_head`, ADR 023).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from carbon.certificate_font import check_printable
from carbon.ledger.accounts import account_in
from carbon.ledger.holdings import Piece, move, take
from carbon.ledger.serials import serials
from carbon.ledger.tables import Account, BlockState, CreditClass, HoldingBlock, Retirement
from carbon.ledger.unit_of_work import UnitOfWork
from core.audit_tree import Notary
from core.auth import Principal
from core.clock import Clock
from core.errors import InvalidInput


@dataclass(frozen=True)
class RetireUnits:
    """Command: retire tonnes for a beneficiary."""

    quantity_t: int
    beneficiary: str
    purpose: str
    reporting_year: int
    use: str = "voluntary"

    def check(self) -> None:
        """Refuse a retirement without a beneficiary or a purpose, or with text the certificate cannot print."""
        if not self.beneficiary.strip() or not self.purpose.strip():
            raise InvalidInput("a retirement names a beneficiary and a purpose")
        check_printable(beneficiary=self.beneficiary, purpose=self.purpose, use=self.use)


#: Compliance uses and what they accept (reference registry-trading §4.5: Fujian's market accepts only
#: CCER / FFCER generated in Fujian). Voluntary offsetting accepts every class.
COMPLIANCE_RULES: dict[str, tuple[frozenset[CreditClass], frozenset[str]]] = {
    "compliance:fujian": (
        frozenset({CreditClass.CCER_AFFORESTATION, CreditClass.FORESTRY_CARBON_TICKET}),
        frozenset({"35"}),
    ),
}


def check_use(use: str, pieces: list[Piece]) -> None:
    """Refuse tonnes that the use does not accept (every class is accepted for voluntary offsetting)."""
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


def retired_payload(retirement: Retirement, moved: list[HoldingBlock]) -> dict[str, Any]:
    """Return the ``units.retired`` entry's payload: what the retirement's certificate says and checks."""
    return {
        "quantity_t": retirement.quantity_t, "beneficiary": retirement.beneficiary, "purpose": retirement.purpose,
        "use": retirement.use, "reporting_year": retirement.reporting_year,
        "verification_code": retirement.verification_code, "serials": serials(moved),
    }  # fmt: skip


@dataclass(frozen=True)
class Retired:
    """What :func:`retire` did: the retirement and the retired ranges."""

    retirement: Retirement
    moved: list[HoldingBlock]


def retire(
    uow: UnitOfWork,
    cmd: RetireUnits,
    *,
    holder: Account,
    actor: str,
    user_id: int,
    source: Account | None = None,
    batch_ids: list[int] | None = None,
    reason: str | None = None,
) -> Retired:
    """Retire tonnes for ``holder`` (the account the retirement belongs to and its blocks end in).

    Without ``source`` the holder's own tradable tonnes are retired in place (the registry's retirement).
    With ``source`` a seller's *escrowed* tonnes of ``batch_ids`` are delivered to the holder as retired
    (retire on fill): the delivery's ``units.settled.retire`` entry comes first, as for any delivery. Either
    way the use is checked against the tonnes taken and the ``units.retired`` entry is recorded last.

    Raises:
        InsufficientUnits: Too few tonnes.
        InvalidInput: The use does not accept the tonnes taken.
    """
    now = uow.clock.now()
    state = BlockState.TRADABLE if source is None else BlockState.ESCROWED
    pieces = take(uow, source or holder, cmd.quantity_t, state, batch_ids)
    check_use(cmd.use, pieces)
    retirement = Retirement(
        account_id=holder.id, quantity_t=cmd.quantity_t, beneficiary=cmd.beneficiary, purpose=cmd.purpose,
        reporting_year=cmd.reporting_year, use=cmd.use, verification_code=secrets.token_hex(8).upper(),
        created_at=now, created_by_user_id=user_id,
    )  # fmt: skip
    uow.session.add(retirement)
    uow.session.flush()
    text = cmd.purpose if reason is None else reason
    changes: dict[str, Any] = {"state": BlockState.RETIRED, "retirement_id": retirement.id}
    if source is not None:
        changes["account_id"] = holder.id
    moved = move(uow, pieces, "retire", actor=actor, reason=text, **changes)
    if source is not None:
        payload = {"account": source.id, "to": holder.id, "quantity_t": cmd.quantity_t, "reason": text,
                   "serials": serials(moved)}  # fmt: skip
        uow.record(actor, "units.settled.retire", f"account:{source.id}", payload)
    uow.record(actor, "units.retired", f"retirement:{retirement.id}", retired_payload(retirement, moved))
    return Retired(retirement, moved)


def retire_units(
    session: Session, cmd: RetireUnits, *, actor: Principal, clock: Clock, notary: Notary | None = None
) -> Retirement:
    """The registry's command: retire tonnes of the actor's organisation for good, in one unit, committed.

    With ``notary`` the retirement keeps the signed tree head of the log ending with its audit entry,
    signed in the same transaction (what its certificate shows; ADR 023).
    """
    cmd.check()
    uow = UnitOfWork(session, clock)
    holder = account_in(uow, actor.organisation_id)
    retired = retire(uow, cmd, holder=holder, actor=actor.actor, user_id=actor.user_id)
    [entry] = uow.append_audit()
    if notary is not None:
        retired.retirement.keep_tree_head(notary.head_through(session, entry, clock))
    uow.commit()
    return retired.retirement
