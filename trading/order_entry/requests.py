"""Order-entry commands as data: the requests and the picklable :class:`OrderCommand` a batch runs.

Data only (no database): a command crosses to the matcher process as it is (ADR 018); what runs it is
:func:`trading.order_entry.steps.job_of`.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.auth import Principal
from trading.orders import TimeInForce


@dataclass(frozen=True)
class PlaceOrderRequest:
    """Command: place a limit order on an instrument for the caller's organisation."""

    instrument_id: str
    side: str
    price_cny: str
    quantity_t: int
    time_in_force: str = TimeInForce.GTC.value
    retire_on_fill: bool = False
    beneficiary: str | None = None
    purpose: str | None = None


@dataclass(frozen=True)
class AmendOrderRequest:
    """Command: change a resting order's remaining quantity and/or price."""

    quantity_t: int | None = None
    price_cny: str | None = None


@dataclass(frozen=True)
class OrderCommand:
    """One order-entry command as data (picklable): what a batch job runs, here or in a matcher process."""

    op: str  # "place" | "cancel" | "amend"
    actor: Principal
    idempotency_key: str | None = None
    place: PlaceOrderRequest | None = None
    order_id: int | None = None
    amend: AmendOrderRequest | None = None

    @property
    def idempotency(self) -> tuple[int, str] | None:
        """Return ``(organisation, key)`` when the command carries an ``Idempotency-Key``."""
        return None if self.idempotency_key is None else (self.actor.organisation_id, self.idempotency_key)
