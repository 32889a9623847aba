"""ORM models of ``ecovalue``: compensation agreements, readings, statements, obligations; rights and pledges.

Invariants (ADR 039):

* An agreement's ``terms`` are stored as their RFC 8785 text; ``terms_sha256`` is its SHA-256. Terms never
  change after creation; its parties' rows repeat the terms' parties for queries.
* A statement's ``record`` is the RFC 8785 text of its record and ``record_sha256`` its SHA-256; the record is
  never rewritten. At most one statement per agreement and year is *live* (issued or confirmed): the service
  checks it under a lock on the agreement row.
* Obligations exist only for confirmed statements; ``amount_fen`` > 0; the obligations of a statement add up
  to its ``amount_fen``.
* A right's ``value_fen`` and ``valuation_run_id`` are those of its newest valuation row. A right has at most one
  open pledge (requested or active), checked under a lock on the right row.
* Money is ``BIGINT`` fen; ratios and readings are ``NUMERIC``; nothing is float.
"""

from __future__ import annotations

import enum
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    Enum,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base
from core.sqltypes import ExactDecimal, UtcDateTime


def _enum(kind: type[enum.StrEnum], name: str) -> Enum:
    return Enum(kind, name=name, native_enum=False, length=20, values_callable=lambda k: [m.value for m in k])


class StatementStatus(enum.StrEnum):
    """Lifecycle of a statement: issued → confirmed (every party) or disputed (any party)."""

    ISSUED = "issued"
    CONFIRMED = "confirmed"
    DISPUTED = "disputed"


class Decision(enum.StrEnum):
    """A party's answer to a statement."""

    CONFIRM = "confirm"
    DISPUTE = "dispute"


class ObligationStatus(enum.StrEnum):
    """A payment obligation: due until the payee records the payment."""

    DUE = "due"
    PAID = "paid"


class RightStatus(enum.StrEnum):
    """A right: registered (its owner's), or enforced (passed to a pledgee bank)."""

    REGISTERED = "registered"
    ENFORCED = "enforced"


class PledgeStatus(enum.StrEnum):
    """A pledge: requested by the owner, then accepted (active) or declined; active until released or enforced."""

    REQUESTED = "requested"
    ACTIVE = "active"
    DECLINED = "declined"
    RELEASED = "released"
    ENFORCED = "enforced"


OPEN_PLEDGE = (PledgeStatus.REQUESTED, PledgeStatus.ACTIVE)


class Agreement(Base):
    """An eco-compensation agreement between regions."""

    __tablename__ = "eco_agreement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(60), unique=True)
    title: Mapped[str] = mapped_column(String(300))
    basis_kind: Mapped[str] = mapped_column(String(20))
    benchmark_year: Mapped[int] = mapped_column(Integer)
    period_start_year: Mapped[int] = mapped_column(Integer)
    period_end_year: Mapped[int] = mapped_column(Integer)
    terms: Mapped[str] = mapped_column(Text)
    terms_sha256: Mapped[str] = mapped_column(String(64))
    created_by_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    parties: Mapped[list[AgreementParty]] = relationship(order_by="AgreementParty.id")

    __table_args__ = (CheckConstraint("basis_kind IN ('gep', 'monitored')", name="basis_kind_known"),)


class AgreementParty(Base):
    """A party region of an agreement, its side and share, and the organisation that answers for it."""

    __tablename__ = "eco_agreement_party"
    __table_args__ = (UniqueConstraint("agreement_id", "region_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("eco_agreement.id"), index=True)
    region_code: Mapped[str] = mapped_column(String(6), index=True)
    side: Mapped[str] = mapped_column(String(20))
    share: Mapped[Decimal] = mapped_column(ExactDecimal(7, 6))
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)


class Reading(Base):
    """A monitored reading of an indicator at a section (a water-quality index at a boundary section, say)."""

    __tablename__ = "eco_reading"
    __table_args__ = (UniqueConstraint("section_code", "indicator", "sampled_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    section_code: Mapped[str] = mapped_column(String(60), index=True)
    indicator: Mapped[str] = mapped_column(String(60))
    sampled_on: Mapped[date] = mapped_column(Date)
    value: Mapped[Decimal] = mapped_column(ExactDecimal(20, 6))
    unit: Mapped[str] = mapped_column(String(40))
    method: Mapped[str] = mapped_column(String(300))
    recorded_by_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    recorded_by: Mapped[str] = mapped_column(String(200))
    recorded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Statement(Base):
    """A settlement statement of an agreement for one year: its hashed record and status."""

    __tablename__ = "eco_statement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("eco_agreement.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    status: Mapped[StatementStatus] = mapped_column(_enum(StatementStatus, "eco_statement_status"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    direction: Mapped[str] = mapped_column(String(40))
    record: Mapped[str] = mapped_column(Text)
    record_sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    agreement: Mapped[Agreement] = relationship()
    responses: Mapped[list[StatementResponse]] = relationship(order_by="StatementResponse.id")

    __table_args__ = (CheckConstraint("amount_fen >= 0", name="amount_not_negative"),)


class StatementResponse(Base):
    """A party organisation's confirmation or dispute of a statement, with its comment."""

    __tablename__ = "eco_statement_response"
    __table_args__ = (UniqueConstraint("statement_id", "organisation_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("eco_statement.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    decision: Mapped[Decision] = mapped_column(_enum(Decision, "eco_decision"))
    comment: Mapped[str] = mapped_column(Text)
    responded_by: Mapped[str] = mapped_column(String(200))
    responded_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Obligation(Base):
    """A payment obligation in CNY from a confirmed statement: payer region and organisation to payee."""

    __tablename__ = "eco_obligation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("eco_statement.id"), index=True)
    payer_region: Mapped[str] = mapped_column(String(6), index=True)
    payer_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    payee_region: Mapped[str] = mapped_column(String(6), index=True)
    payee_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    status: Mapped[ObligationStatus] = mapped_column(_enum(ObligationStatus, "eco_obligation_status"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    payment_reference: Mapped[str | None] = mapped_column(String(200), nullable=True)

    statement: Mapped[Statement] = relationship()

    __table_args__ = (
        CheckConstraint("amount_fen > 0", name="amount_positive"),
        CheckConstraint("currency = 'CNY'", name="currency_cny"),
    )


class Right(Base):
    """An ecological-product right registered by an ecology bureau, valued by a GEP run."""

    __tablename__ = "eco_right"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)
    owner_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    county_code: Mapped[str] = mapped_column(String(6), index=True)
    region_layer: Mapped[str] = mapped_column(String(100))
    region_codes: Mapped[list[str]] = mapped_column(JSON)
    indicators: Mapped[list[str]] = mapped_column(JSON)
    area_m2: Mapped[Decimal] = mapped_column(ExactDecimal(20, 2))
    method: Mapped[str] = mapped_column(String(300))
    status: Mapped[RightStatus] = mapped_column(_enum(RightStatus, "eco_right_status"))
    valuation_run_id: Mapped[int] = mapped_column(ForeignKey("gep_run.id"))
    valuation_date: Mapped[date] = mapped_column(Date)
    value_fen: Mapped[int] = mapped_column(BigInteger)
    registered_by_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"))
    registered_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    valuations: Mapped[list[RightValuation]] = relationship(order_by="RightValuation.id")

    __table_args__ = (CheckConstraint("value_fen >= 0", name="value_not_negative"),)


class RightValuation(Base):
    """One valuation of a right by a run: value, date, method and the hashed record tracing it to run lines."""

    __tablename__ = "eco_right_valuation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    right_id: Mapped[int] = mapped_column(ForeignKey("eco_right.id"), index=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("gep_run.id"))
    valuation_date: Mapped[date] = mapped_column(Date)
    value_fen: Mapped[int] = mapped_column(BigInteger)
    record: Mapped[str] = mapped_column(Text)
    record_sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class BankPolicy(Base):
    """A bank's lending rules for ecological-product rights: the loan-to-value limit and the alert level."""

    __tablename__ = "eco_bank_policy"

    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), primary_key=True)
    max_ltv: Mapped[Decimal] = mapped_column(ExactDecimal(5, 4))
    alert_ltv: Mapped[Decimal] = mapped_column(ExactDecimal(5, 4))
    updated_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())

    __table_args__ = (
        CheckConstraint("max_ltv > 0 AND max_ltv <= 1", name="max_ltv_range"),
        CheckConstraint("alert_ltv >= max_ltv AND alert_ltv <= 1", name="alert_ltv_range"),
    )


class Pledge(Base):
    """A right pledged to a bank as collateral for a loan."""

    __tablename__ = "eco_pledge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    right_id: Mapped[int] = mapped_column(ForeignKey("eco_right.id"), index=True)
    bank_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    pledgor_organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    loan_fen: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[PledgeStatus] = mapped_column(_enum(PledgeStatus, "eco_pledge_status"))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), nullable=True)

    right: Mapped[Right] = relationship()

    __table_args__ = (CheckConstraint("loan_fen > 0", name="loan_positive"),)


def terms_of(agreement: Agreement) -> dict[str, Any]:
    """Return an agreement's stored terms as data."""
    loaded: dict[str, Any] = json.loads(agreement.terms)
    return loaded
