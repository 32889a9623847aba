"""ORM tables of the registry ledger.

Accounts, issuance batches, serial blocks, movements, retirements, pending transfers and the per-class rules.
The ledger package owns these tables (ADR 031); :mod:`carbon.models` keeps projects, plots, imports and
reports. Table names, columns and constraints are those of the migrations (``schema_diff`` stays empty).

Invariants (checked by :mod:`carbon.ledger.invariants`):

* every tonne of a batch is in exactly one *open* :class:`HoldingBlock`; open blocks of a batch never overlap
  and together cover serials ``1..quantity_t``;
* :class:`HoldingBlock` and :class:`Movement` rows are only inserted; a block that changes is closed and
  replaced (``closed_at``), a movement is never updated;
* a retirement's kept tree head is whole or absent (``tree_head_whole``).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from carbon.models import Project, Scheme
from core.auth import Organisation
from core.db import Base
from core.sqltypes import UtcDateTime
from core.tree_head import SignedTreeHead


def _values(kind: type[enum.Enum]) -> list[str]:
    return [str(member.value) for member in kind]


class CreditClass(enum.StrEnum):
    """Credit classes, with the code used in serial numbers (``carbon.serials``)."""

    FORESTRY_CARBON_TICKET = "FCT"
    CCER_AFFORESTATION = "CCA"
    ECOLOGICAL_RESTORATION = "ERS"
    OCEAN_FISHERY = "OFS"
    IPCC_INVENTORY = "IFL"


CLASS_OF_SCHEME = {
    Scheme.FORESTRY_CARBON_TICKET: CreditClass.FORESTRY_CARBON_TICKET,
    Scheme.CCER_AFFORESTATION: CreditClass.CCER_AFFORESTATION,
    Scheme.ECOLOGICAL_RESTORATION: CreditClass.ECOLOGICAL_RESTORATION,
    Scheme.OCEAN_FISHERY: CreditClass.OCEAN_FISHERY,
    Scheme.IPCC_INVENTORY: CreditClass.IPCC_INVENTORY,
}


#: Names of the credit classes on certificates (Chinese, English).
CLASS_LABELS = {
    CreditClass.FORESTRY_CARBON_TICKET: ("林业碳票", "Forestry carbon ticket"),
    CreditClass.CCER_AFFORESTATION: ("造林碳汇(CCER适格)", "CCER-eligible afforestation"),
    CreditClass.ECOLOGICAL_RESTORATION: ("生态修复碳汇(地方,暂行)", "Ecological restoration sink (local, provisional)"),
    CreditClass.OCEAN_FISHERY: ("海洋渔业碳汇", "Ocean fishery carbon sink"),
    CreditClass.IPCC_INVENTORY: ("IPCC清单法森林碳汇", "IPCC inventory forest-land sink"),
}
#: Classes whose methodology's parameter set is provisional (labelled so on every certificate).
PROVISIONAL_CLASSES = frozenset({CreditClass.ECOLOGICAL_RESTORATION, CreditClass.OCEAN_FISHERY})


class AccountKind(enum.StrEnum):
    """Holding accounts of organisations, and the registry's buffer pool."""

    HOLDING = "holding"
    BUFFER = "buffer"


class BlockState(enum.StrEnum):
    """The one state of every serial block."""

    TRADABLE = "tradable"
    ESCROWED = "escrowed"
    PLEDGED = "pledged"
    RETIRED = "retired"
    CANCELLED = "cancelled"
    PENDING = "pending"  # offered to a receiver who must accept it (stays in the sender's account)


class ReversalRule(enum.StrEnum):
    """Where a credit class takes a reversal (a loss reported after issuance) from."""

    BUFFER_ONLY = "buffer_only"  # the buffer pool alone; a shortfall is refused
    BUFFER_THEN_PROPONENT = "buffer_then_proponent"  # buffer first, shortfall from the proponent's tradable units


class CreditClassPolicy(Base):
    """Per-class registry rules: receiver acceptance of transfers and where reversals are taken from.

    One row per credit class, seeded by the migration; the registry changes a class's rules by updating its row.
    """

    __tablename__ = "credit_class_policy"

    credit_class: Mapped[str] = mapped_column(String(10), primary_key=True)
    requires_acceptance: Mapped[bool] = mapped_column()
    acceptance_days: Mapped[int] = mapped_column(Integer)
    reversal_rule: Mapped[ReversalRule] = mapped_column(
        Enum(ReversalRule, name="reversal_rule", native_enum=False, length=30, values_callable=_values)
    )
    note: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (CheckConstraint("acceptance_days >= 1", name="acceptance_window_positive"),)


class TransferStatus(enum.StrEnum):
    """Lifecycle of a transfer that waits for the receiver: pending → accepted | rejected | expired."""

    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"


class PendingTransfer(Base):
    """A transfer of a class that requires the receiver's acceptance; its blocks are ``pending`` meanwhile."""

    __tablename__ = "pending_transfer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_account_id: Mapped[int] = mapped_column(ForeignKey("registry_account.id"), index=True)
    to_account_id: Mapped[int] = mapped_column(ForeignKey("registry_account.id"), index=True)
    quantity_t: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[TransferStatus] = mapped_column(
        Enum(TransferStatus, name="transfer_status", native_enum=False, length=20, values_callable=_values),
        index=True,
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (CheckConstraint("quantity_t > 0", name="quantity_positive"),)


class Account(Base):
    """A registry account of an organisation."""

    __tablename__ = "registry_account"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisation.id"), index=True)
    kind: Mapped[AccountKind] = mapped_column(
        Enum(AccountKind, name="account_kind", native_enum=False, length=20, values_callable=_values)
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())

    organisation: Mapped[Organisation] = relationship(lazy="joined")

    __table_args__ = (Index("uq_registry_account_org_kind", "organisation_id", "kind", unique=True),)


class Batch(Base):
    """An issuance: whole tonnes of one class and vintage from one project, serials 1..quantity."""

    __tablename__ = "issuance_batch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("project.id"), index=True)
    batch_number: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(100), unique=True)  # e.g. "monitoring_report:7"
    credit_class: Mapped[CreditClass] = mapped_column(
        Enum(CreditClass, name="credit_class", native_enum=False, length=10, values_callable=_values)
    )
    province_code: Mapped[str] = mapped_column(String(2))
    vintage_year: Mapped[int] = mapped_column(Integer)
    quantity_t: Mapped[int] = mapped_column(BigInteger)
    buffer_t: Mapped[int] = mapped_column(BigInteger)
    issued_at: Mapped[datetime] = mapped_column(UtcDateTime())
    issued_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))

    project: Mapped[Project] = relationship(lazy="joined")

    __table_args__ = (
        Index("uq_issuance_batch_project_number", "project_id", "batch_number", unique=True),
        CheckConstraint("quantity_t > 0", name="quantity_positive"),
        CheckConstraint("buffer_t >= 0 AND buffer_t <= quantity_t", name="buffer_within_quantity"),
    )


class HoldingBlock(Base):
    """A contiguous serial range of one batch in one account and one state.

    Rows are never deleted: a block that is split or moved is *closed* (``closed_at``) and replaced by new
    rows, so the open blocks are the current holdings and the closed ones their history.
    """

    __tablename__ = "holding_block"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("issuance_batch.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("registry_account.id"), index=True)
    serial_start: Mapped[int] = mapped_column(BigInteger)
    serial_end: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[BlockState] = mapped_column(
        Enum(BlockState, name="block_state", native_enum=False, length=20, values_callable=_values)
    )
    pledgee_organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisation.id"))
    retirement_id: Mapped[int | None] = mapped_column(ForeignKey("retirement.id"))
    pending_transfer_id: Mapped[int | None] = mapped_column(ForeignKey("pending_transfer.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)

    batch: Mapped[Batch] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint("serial_start >= 1 AND serial_start <= serial_end", name="range_ordered"),
        # Current holdings only (closed rows are history): an account's blocks of one state, in serial order,
        # and a batch's blocks by first serial (the neighbours that coalescing looks up).
        Index("ix_holding_block_open_holdings", "account_id", "state", "batch_id", "serial_start",
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
        Index("ix_holding_block_open_serials", "batch_id", "serial_start",
              sqlite_where=text("closed_at IS NULL"), postgresql_where=text("closed_at IS NULL")),
    )  # fmt: skip

    @property
    def quantity(self) -> int:
        """Return the tonnes in the block."""
        return self.serial_end - self.serial_start + 1


class Movement(Base):
    """Append-only journal of every change to holdings (inserted, never updated)."""

    __tablename__ = "registry_movement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), index=True)
    batch_id: Mapped[int] = mapped_column(ForeignKey("issuance_batch.id"), index=True)
    serial_start: Mapped[int] = mapped_column(BigInteger)
    serial_end: Mapped[int] = mapped_column(BigInteger)
    from_account_id: Mapped[int | None] = mapped_column(ForeignKey("registry_account.id"))
    to_account_id: Mapped[int | None] = mapped_column(ForeignKey("registry_account.id"))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


#: A kept tree head is whole or absent (``0014``).
TREE_HEAD_WHOLE = " AND ".join(
    f"(audit_seq IS NULL) = ({column} IS NULL)"
    for column in ("tree_head_timestamp", "tree_head_root_hash", "tree_head_key_id", "tree_head_signature")
)


class Retirement(Base):
    """Tonnes retired for a beneficiary; the certificate is verified by ``verification_code``."""

    __tablename__ = "retirement"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("registry_account.id"), index=True)
    quantity_t: Mapped[int] = mapped_column(BigInteger)
    beneficiary: Mapped[str] = mapped_column(String(300))
    purpose: Mapped[str] = mapped_column(Text)
    reporting_year: Mapped[int] = mapped_column(Integer)
    use: Mapped[str] = mapped_column(String(100))
    verification_code: Mapped[str] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    # The signed tree head that first included the retirement's audit entry (seq ``audit_seq`` = its size),
    # signed once in the retirement's own transaction and shown as kept by the answer, the public page and
    # the PDF (ADR 023). NULL until kept: retirements on fill and those from before migration 0014 keep the
    # head of the log's prefix ending with their entry at the certificate's first read (keep_tree_head).
    audit_seq: Mapped[int | None] = mapped_column(BigInteger)
    tree_head_timestamp: Mapped[str | None] = mapped_column(String(40))
    tree_head_root_hash: Mapped[str | None] = mapped_column(String(64))
    tree_head_key_id: Mapped[str | None] = mapped_column(String(64))
    tree_head_signature: Mapped[str | None] = mapped_column(String(128))

    __table_args__ = (
        CheckConstraint("quantity_t > 0", name="quantity_positive"),
        CheckConstraint(TREE_HEAD_WHOLE, name="tree_head_whole"),
    )

    def keep_tree_head(self, head: SignedTreeHead) -> None:
        """Keep ``head``, the signed head of the log ending with this retirement's audit entry."""
        self.audit_seq = head.tree_size
        self.tree_head_timestamp = head.timestamp
        self.tree_head_root_hash = head.root_hash
        self.tree_head_key_id = head.key_id
        self.tree_head_signature = head.signature

    @property
    def kept_tree_head(self) -> SignedTreeHead | None:
        """Return the kept signed tree head, or ``None`` when none was kept."""
        if self.audit_seq is None or self.tree_head_signature is None:
            return None
        return SignedTreeHead(
            tree_size=self.audit_seq,
            root_hash=self.tree_head_root_hash or "",
            timestamp=self.tree_head_timestamp or "",
            key_id=self.tree_head_key_id or "",
            signature=self.tree_head_signature,
        )
