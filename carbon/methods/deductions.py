"""Deductions between a net removal and the units a registry may issue (pure).

Order of application, each step recorded in the trace:

1. **Uncertainty** (AR-TOOL14 v04.2, reference §1.4): when the relative half-width ``U`` of the 90 %
   confidence interval exceeds 10 %, a share of the half-width (0/25/50/75/100 % by band, a class
   table of the parameter set) is subtracted from a project estimate and added to a baseline estimate.
2. **Leakage** is subtracted by the methodology before this module (it is a methodology quantity).
3. **Non-permanence buffer**: a share of the creditable quantity, from the project's risk rating
   (a parameter) unless an explicit share is given.
4. **Flooring**: serialised units are whole tonnes. The proponent's units are ``floor(creditable × (1 −
   share))``, so they never exceed the proponent's share and never grow when a deduction grows. The buffer
   gets ``ceil(creditable × share)`` whole tonnes, or all the whole tonnes left if fewer remain. The
   remainder (``0 ≤ remainder < 1`` t, or the whole quantity when it is not positive) is recorded, never
   rounded up.

Invariants: ``buffer_units + issuable_units + remainder_tco2e == creditable_tco2e``;
``issuable_units ≤ creditable × (1 − share)``, hence ``buffer_units + remainder ≥ creditable × share``
(the buffer and the unissued remainder always cover the share); the issuable units are monotone in the
creditable quantity, so a larger uncertainty never increases them.

>>> conservative_estimate(Decimal(60), Decimal(9), Decimal("0.25"), "project")
Decimal('57.75')
>>> conservative_estimate(Decimal(60), Decimal(9), Decimal("0.25"), "baseline")
Decimal('62.25')
>>> split_units(Decimal("1234.567"), Decimal("0.10"))
Issuance(creditable_tco2e=Decimal('1234.567'), buffer_units=123, issuable_units=1111, remainder_tco2e=Decimal('0.567'))
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal, Self

from pydantic import Field, model_validator

from carbon.methods.base import InputModel, Tracer
from carbon.parameters.models import ClassTable

ZERO = Decimal(0)
RiskRating = Literal["low", "medium", "high"]


def discount_fraction(relative_uncertainty: Decimal, bands: ClassTable) -> Decimal:
    """Return the share of the half-width to deduct for a relative uncertainty (upper bounds inclusive)."""
    return bands.lookup(relative_uncertainty).value


def conservative_estimate(
    estimate: Decimal, half_width: Decimal, fraction: Decimal, side: Literal["project", "baseline"]
) -> Decimal:
    """Return the discounted estimate: project − f × half-width, baseline + f × half-width."""
    adjustment = fraction * half_width
    return estimate - adjustment if side == "project" else estimate + adjustment


@dataclass(frozen=True, slots=True)
class Issuance:
    """How a creditable quantity splits into whole serialised units and a recorded remainder."""

    creditable_tco2e: Decimal
    buffer_units: int
    issuable_units: int
    remainder_tco2e: Decimal


def split_units(creditable_tco2e: Decimal, buffer_share: Decimal) -> Issuance:
    """Split a creditable quantity into buffer units, issuable units and a remainder.

    Nothing is issued from a quantity that is not positive (the remainder is then the quantity itself).
    """
    if creditable_tco2e <= ZERO:
        return Issuance(creditable_tco2e, 0, 0, creditable_tco2e)
    issuable_units = int((creditable_tco2e * (1 - buffer_share)).to_integral_value(rounding=ROUND_FLOOR))
    left = int((creditable_tco2e - issuable_units).to_integral_value(rounding=ROUND_FLOOR))
    buffer_units = min(int((creditable_tco2e * buffer_share).to_integral_value(rounding=ROUND_CEILING)), left)
    remainder = creditable_tco2e - buffer_units - issuable_units
    return Issuance(creditable_tco2e, buffer_units, issuable_units, remainder)


class BufferChoice(InputModel):
    """The project's non-permanence buffer: from its risk rating, or an explicit share with a reason."""

    risk_rating: RiskRating | None = "medium"
    share: Decimal | None = Field(default=None, ge=0, le=1)
    reason: str = ""

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.risk_rating is None) == (self.share is None):
            raise ValueError("give exactly one of risk_rating and share")
        if self.share is not None and not self.reason:
            raise ValueError("an explicit buffer share needs a reason")
        return self


def buffer_share(tracer: Tracer, choice: BufferChoice) -> Decimal:
    """Return the buffer share: explicit, or the parameter ``buffer_share.<risk_rating>``."""
    if choice.share is not None:
        return tracer.step("buffer_share", "explicit project share", choice.share, "1", reason=choice.reason)
    key = f"buffer_share.{choice.risk_rating}"
    return tracer.step("buffer_share", f"parameter {key}", tracer.parameter(key), "1")


def apply_uncertainty(tracer: Tracer, removal_tco2e: Decimal, relative_uncertainty: Decimal) -> Decimal:
    """Return the uncertainty deduction on a project removal, recording band and amount.

    ``deduction = f(U) × U × |removal|`` where ``U × |removal|`` is the 90 % half-width.
    """
    fraction = tracer.lookup("uncertainty_discount", relative_uncertainty)
    tracer.step(
        "uncertainty_discount_fraction", "band of U (AR-TOOL14 discount table)", fraction, "1", U=relative_uncertainty
    )
    half_width = relative_uncertainty * abs(removal_tco2e)
    return tracer.step(
        "uncertainty_deduction_tco2e",
        "f × U × |ΔC_P|",
        fraction * half_width,
        "t CO2e",
        f=fraction,
        U=relative_uncertainty,
        delta_C_P_tco2e=removal_tco2e,
    )


def settle(tracer: Tracer, net_tco2e: Decimal, deduction_tco2e: Decimal, choice: BufferChoice) -> Issuance:
    """Apply the uncertainty deduction and the buffer, floor to whole tonnes, record every step."""
    creditable = tracer.step(
        "creditable_tco2e",
        "net − uncertainty deduction",
        net_tco2e - deduction_tco2e,
        "t CO2e",
        net_tco2e=net_tco2e,
        deduction_tco2e=deduction_tco2e,
    )
    share = buffer_share(tracer, choice)
    issuance = split_units(creditable, share)
    tracer.step(
        "buffer_units_t",
        "min(ceil(creditable × share), floor(creditable − issuable units)); 0 if not positive",
        Decimal(issuance.buffer_units),
        "t CO2e",
        creditable_tco2e=creditable,
        share=share,
    )
    tracer.step("issuable_units_t", "floor(creditable × (1 − share))", Decimal(issuance.issuable_units), "t CO2e")
    tracer.step("remainder_tco2e", "creditable − buffer units − issuable units", issuance.remainder_tco2e, "t CO2e")
    return issuance


def issuance_quantities(issuance: Issuance) -> dict[str, Decimal]:
    """Return the issuance figures as result quantities."""
    return {
        "creditable_tco2e": issuance.creditable_tco2e,
        "buffer_units_t": Decimal(issuance.buffer_units),
        "issuable_units_t": Decimal(issuance.issuable_units),
        "remainder_tco2e": issuance.remainder_tco2e,
    }
