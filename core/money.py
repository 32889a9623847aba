"""Money, prices and tonnes as integers: fen, price ticks and whole tonnes; never float.

Invariants:

- CNY is an ``int`` count of fen (asset scale 2: 1 CNY = 100 fen).
- A price is an ``int`` count of ticks; one tick is ``tick_fen`` fen (0.01 CNY by default), so
  ``price_fen = price_ticks × tick_fen``.
- Tradable quantities are whole tonnes (``int``), in multiples of the lot.
- A ``float`` is refused everywhere with :class:`FloatNotAllowed`: ``50.005`` has no exact binary form, so a
  float price could not be checked against the tick at all. Callers pass ``int``, ``Decimal`` or a decimal
  string.
- Rounding to the tick is half-up (四舍五入), away from zero on exact halves, as the Hubei rules state.

>>> ticks_from_cny("50.01")
5001
>>> ticks_from_cny(Decimal("50.005"))
Traceback (most recent call last):
...
core.money.OffTick: price 50.005 CNY is not a multiple of the tick (0.01 CNY)
>>> tonnes_from_quantity(Decimal("3.0"))
3
>>> Fen(150).cny
Decimal('1.50')
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any, ClassVar

from core.errors import InvalidInput

FEN_PER_CNY = 100


class MoneyError(InvalidInput):
    """A price, amount or quantity that is not an exact integer of its unit.

    Attributes:
        reason: Stable machine code (``float_not_allowed``, ``off_tick``, ``fractional_quantity``…); the
            matching engine uses it as the rejection reason.
    """

    slug = "core/invalid-amount"
    title = "Invalid amount"
    reason: ClassVar[str] = "invalid_amount"


class FloatNotAllowed(MoneyError):
    """A ``float`` was given where an exact amount is required."""

    slug = "core/float-not-allowed"
    title = "Float not allowed for money or quantities"
    reason = "float_not_allowed"


class OffTick(MoneyError):
    """A price is not a whole number of ticks."""

    slug = "core/off-tick"
    title = "Price not on the tick"
    reason = "off_tick"


class FractionalQuantity(MoneyError):
    """A quantity is not a whole number of tonnes."""

    slug = "core/fractional-quantity"
    title = "Fractional quantity"
    reason = "fractional_quantity"


def _exact(value: object, what: str) -> Decimal:
    """Return ``value`` as an exact finite ``Decimal`` or raise a :class:`MoneyError`."""
    if isinstance(value, float):
        raise FloatNotAllowed(f"{what} {value!r} is a float; pass an int, a Decimal or a decimal string")
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise MoneyError(f"{what} {value!r} is not a number")
    try:
        exact = Decimal(value)
    except InvalidOperation:
        raise MoneyError(f"{what} {value!r} is not a decimal number") from None
    if not exact.is_finite():
        raise MoneyError(f"{what} {value!r} is not finite")
    return exact


def ticks_from_cny(price_cny: int | Decimal | str, tick_fen: int = 1) -> int:
    """Return a CNY price as a whole number of ticks, refusing anything off the tick.

    Args:
        price_cny: The price in CNY per tonne (``int``, ``Decimal`` or decimal string).
        tick_fen: The tick size in fen (1 fen = 0.01 CNY).

    Raises:
        FloatNotAllowed: ``price_cny`` is a float.
        OffTick: The price is not a whole number of ticks.
        MoneyError: The value is not a finite number.

    >>> ticks_from_cny(60)
    6000
    >>> ticks_from_cny("0.05", tick_fen=5)
    1
    """
    if type(price_cny) is int:
        fen = price_cny * FEN_PER_CNY  # CNY × fen/CNY = fen
    else:
        scaled = _exact(price_cny, "price").scaleb(2)  # CNY → fen
        if scaled != scaled.to_integral_value():
            raise OffTick(f"price {price_cny} CNY is not a multiple of the tick ({cny_text(tick_fen)})")
        fen = int(scaled)
    if fen % tick_fen:
        raise OffTick(f"price {price_cny} CNY is not a multiple of the tick ({cny_text(tick_fen)})")
    return fen // tick_fen


def tonnes_from_quantity(quantity: int | Decimal | str) -> int:
    """Return a quantity as whole tonnes, refusing fractions and floats.

    Raises:
        FloatNotAllowed: ``quantity`` is a float.
        FractionalQuantity: The quantity has a fractional part.
        MoneyError: The value is not a finite number.

    >>> tonnes_from_quantity(100)
    100
    >>> tonnes_from_quantity("0.5")
    Traceback (most recent call last):
    ...
    core.money.FractionalQuantity: quantity 0.5 t is not a whole number of tonnes
    """
    if type(quantity) is int:
        return quantity
    exact = _exact(quantity, "quantity")
    if exact != exact.to_integral_value():
        raise FractionalQuantity(f"quantity {quantity} t is not a whole number of tonnes")
    return int(exact)


def round_half_up(value: Fraction | Decimal | int) -> int:
    """Return ``value`` rounded to the nearest integer, exact halves away from zero (四舍五入).

    >>> round_half_up(Fraction(49995, 10)), round_half_up(Fraction(-5, 2)), round_half_up(Decimal("2.49"))
    (5000, -3, 2)
    """
    if isinstance(value, int):
        return value
    if isinstance(value, Fraction):
        value = Decimal(value.numerator) / Decimal(value.denominator)
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _require_int(value: Any, what: str) -> int:
    if isinstance(value, float):
        raise FloatNotAllowed(f"{what} {value!r} is a float")
    if type(value) is not int:
        raise MoneyError(f"{what} {value!r} is not an int")
    return value


@dataclass(frozen=True, slots=True, order=True)
class Fen:
    """An amount of CNY as an integer count of fen.

    >>> Fen(5001) + Fen(99)
    Fen(value=5100)
    >>> Fen.from_cny("12.34")
    Fen(value=1234)
    """

    value: int

    def __post_init__(self) -> None:
        _require_int(self.value, "amount in fen")

    @classmethod
    def from_cny(cls, amount_cny: int | Decimal | str) -> Fen:
        """Return the exact amount in fen of a CNY amount (no rounding: a third decimal is an error)."""
        return cls(ticks_from_cny(amount_cny, tick_fen=1))

    @property
    def cny(self) -> Decimal:
        """The amount in CNY, with two decimals."""
        return Decimal(self.value).scaleb(-2)

    def __add__(self, other: Fen) -> Fen:
        return Fen(self.value + other.value)

    def __sub__(self, other: Fen) -> Fen:
        return Fen(self.value - other.value)


def cny_text(amount_fen: int) -> str:
    """Return an amount of fen as people read it: CNY with two decimals and thousands separators.

    >>> cny_text(123456789)
    '1,234,567.89 CNY'
    >>> cny_text(-5)
    '-0.05 CNY'
    """
    return f"{Fen(amount_fen).cny:,.2f} CNY"


@dataclass(frozen=True, slots=True, order=True)
class PriceTicks:
    """A price per tonne as an integer count of ticks of ``tick_fen`` fen.

    >>> PriceTicks.from_cny("55.55").value
    5555
    >>> PriceTicks(5001).cny
    Decimal('50.01')
    """

    value: int
    tick_fen: int = 1

    def __post_init__(self) -> None:
        _require_int(self.value, "price in ticks")
        if _require_int(self.tick_fen, "tick in fen") <= 0:
            raise MoneyError(f"tick {self.tick_fen} fen is not positive")

    @classmethod
    def from_cny(cls, price_cny: int | Decimal | str, tick_fen: int = 1) -> PriceTicks:
        """Return the price in ticks, refusing a price off the tick."""
        return cls(ticks_from_cny(price_cny, tick_fen), tick_fen)

    @property
    def fen(self) -> Fen:
        """The price per tonne in fen (ticks × fen/tick)."""
        return Fen(self.value * self.tick_fen)

    @property
    def cny(self) -> Decimal:
        """The price per tonne in CNY."""
        return self.fen.cny


@dataclass(frozen=True, slots=True, order=True)
class Tonnes:
    """A whole number of tonnes (t CO2e).

    >>> Tonnes.from_quantity(Decimal("100")).value
    100
    >>> Tonnes(2.5)
    Traceback (most recent call last):
    ...
    core.money.FloatNotAllowed: tonnes 2.5 is a float
    """

    value: int

    def __post_init__(self) -> None:
        _require_int(self.value, "tonnes")

    @classmethod
    def from_quantity(cls, quantity: int | Decimal | str) -> Tonnes:
        """Return the quantity as whole tonnes, refusing fractions."""
        return cls(tonnes_from_quantity(quantity))


def notional_fen(price: PriceTicks, quantity: Tonnes) -> Fen:
    """Return price × quantity in fen (fen/t × t = fen).

    >>> notional_fen(PriceTicks(5000), Tonnes(3))
    Fen(value=15000)
    """
    return Fen(price.value * price.tick_fen * quantity.value)
