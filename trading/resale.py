"""Resale: the T+1 rule (tonnes bought today are sold from the next trading day) and escrow for a sale.

Every sale escrows the seller's tonnes first (registry ``escrow``): an order on the book, a block trade's
sell side, an auction's lot. :func:`check_escrowable` refuses, reading only, what that escrow would refuse —
too few tradable tonnes, or tonnes bought today on an instrument with ``resale_next_day`` — so that order
entry can refuse a command before it writes anything.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carbon.ledger import Escrowable, UnitOfWork, account_in, escrow, escrowable, tradable_t
from core.auth import Principal
from core.clock import Clock
from core.db import pending_objects
from core.errors import InsufficientUnits
from trading.listing import eligible_batch_ids
from trading.models import InstrumentRow, Trade
from trading.settlement import Settlement

#: China Standard Time: the trading day (and so T+1 resale) is counted in Beijing time, which has no DST.
BEIJING = timezone(timedelta(hours=8))


def bought_today_t(session: Session, row: InstrumentRow, organisation_id: int, now: datetime) -> int:
    """Return the tonnes an organisation bought (and kept) on an instrument since Beijing midnight."""
    # In UTC: SQLite stores an aware datetime by its wall-clock fields, so a +08:00 bound would be 8 h off there.
    midnight = now.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)
    total = session.scalar(
        select(func.coalesce(func.sum(Trade.quantity_t), 0)).where(
            Trade.instrument_id == row.instrument_id, Trade.buyer_organisation_id == organisation_id,
            Trade.retirement_id.is_(None), Trade.created_at >= midnight,
        )
    )  # fmt: skip
    # In an order-entry batch, the batch's own trades are written at its end (ADR 035): count them from memory.
    pending = sum(t.quantity_t for t in pending_objects(session, Trade)
                  if t.instrument_id == row.instrument_id and t.buyer_organisation_id == organisation_id
                  and t.retirement_id is None and t.created_at >= midnight)  # fmt: skip
    return int(total or 0) + int(pending)


def check_escrowable(ledger: UnitOfWork, row: InstrumentRow, organisation_id: int, quantity_t: int, *,
                     batch_ids: list[int]) -> None:  # fmt: skip
    """Refuse a sale the registry's escrow would refuse (too few tradable tonnes, or T+1), reading only.

    Raises:
        InsufficientUnits: Not enough tradable tonnes, or some were bought today (T+1).
    """
    session, now = ledger.session, ledger.clock.now()
    account = account_in(ledger, organisation_id)
    tradable = tradable_t(session, account, batch_ids)
    if row.resale_next_day:
        locked_t = bought_today_t(session, row, organisation_id, now)
        if locked_t and tradable - locked_t < quantity_t:
            raise InsufficientUnits(
                f"{account.organisation.label}: {locked_t} t of the {tradable} t tradable were bought today and "
                f"may be sold from the next trading day (T+1); {quantity_t} t cannot be sold now",
                organisation_id=organisation_id, account_id=account.id, available_t=tradable - locked_t,
                needed_t=quantity_t,
            )  # fmt: skip
    if tradable < quantity_t:
        raise InsufficientUnits(
            f"{account.organisation.label} holds {tradable} t tradable in its holding account {account.id}; "
            f"{quantity_t} t needed",
            organisation_id=organisation_id, account_id=account.id, state="tradable", available_t=tradable,
            needed_t=quantity_t,
        )  # fmt: skip


def escrowable_for_sale(ledger: UnitOfWork, row: InstrumentRow, organisation_id: int, quantity_t: int, *,
                        batch_ids: list[int]) -> Escrowable:  # fmt: skip
    """Read and lock the tonnes a sale would escrow, refusing what :func:`check_escrowable` refuses (ADR 035).

    One read for the check and the escrow: the account's row, then its oldest tradable blocks as far as the
    sale needs (plus the tonnes bought today under T+1, which must be there but stay); the caller escrows
    them with ``carbon.ledger.escrow_taken`` once the engine has taken the order, or writes nothing.

    Raises:
        InsufficientUnits: Not enough tradable tonnes, or some were bought today (T+1).
    """
    locked_t = bought_today_t(ledger.session, row, organisation_id, ledger.clock.now()) if row.resale_next_day else 0
    try:
        return escrowable(ledger, organisation_id=organisation_id, quantity_t=quantity_t, batch_ids=batch_ids,
                          spare_t=locked_t)  # fmt: skip
    except InsufficientUnits as short:
        tradable = int(short.facts.get("available_t", 0))
        if not locked_t or tradable < quantity_t:
            account = account_in(ledger, organisation_id)
            raise InsufficientUnits(
                f"{account.organisation.label} holds {tradable} t tradable in its holding account {account.id}; "
                f"{quantity_t} t needed",
                organisation_id=organisation_id, account_id=account.id, state="tradable", available_t=tradable,
                needed_t=quantity_t,
            ) from None  # fmt: skip
        account = account_in(ledger, organisation_id)
        raise InsufficientUnits(
            f"{account.organisation.label}: {locked_t} t of the {tradable} t tradable were bought today and "
            f"may be sold from the next trading day (T+1); {quantity_t} t cannot be sold now",
            organisation_id=organisation_id, account_id=account.id, available_t=tradable - locked_t,
            needed_t=quantity_t,
        ) from None  # fmt: skip


def escrow_for_sale(session: Session, row: InstrumentRow, organisation_id: int, quantity_t: int, reason: str, *,
                    actor: Principal, clock: Clock, scope: Settlement | None = None) -> None:  # fmt: skip
    """Escrow a seller's tonnes of the instrument (registry ``escrow``), refusing tonnes bought today under T+1.

    With ``scope`` (the :class:`Settlement` of a block trade or auction) the deliverable batches come from its
    per-transaction look-up and the audit entry goes to its sink; without it the entry is appended now.

    Raises:
        InsufficientUnits: Not enough tradable tonnes, or some were bought today (T+1).
    """
    ledger = scope.ledger if scope is not None else UnitOfWork(session, clock)
    batch_ids = scope.batch_ids() if scope is not None else eligible_batch_ids(session, row)
    check_escrowable(ledger, row, organisation_id, quantity_t, batch_ids=batch_ids)
    escrow(
        ledger, organisation_id=organisation_id, quantity_t=quantity_t, actor=actor, batch_ids=batch_ids, reason=reason
    )
    if scope is None:
        ledger.append_audit()
