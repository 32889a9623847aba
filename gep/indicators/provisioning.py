"""Provisioning 物质供给 items from statistical tables: quantity × price, net of imports (pure).

Provisioning products (crops, livestock, forestry and fishery products, water supplied, hydropower)
come from statistical yearbooks, not rasters. Each item is valued at a cited price::

    gross [元]          = quantity × price
    out_of_region [元]  = quantity from outside the region × price
    net [元]            = gross − out_of_region

GB/T 46869-2025 defines GEP net of ecological products sourced from outside the region
(生产属地, reference gep.md §0.2), so an item carries the out-of-region quantity and the tables show
the deduction as its own line. Money is Decimal throughout.

>>> from decimal import Decimal as D
>>> from gep.prices import load_table
>>> item = StatisticalItem(code="water_supply_domestic", name="生活用水", quantity=D("1.36e8"),
...     unit="m3", price_key="water_price_domestic")
>>> value_item(item, load_table("prices_ganzi_2010")).net_yuan
Decimal('353600000.00')
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.errors import InvalidInput
from gep.prices import ParameterTable
from gep.valuation import ServiceClass

#: Money in tables is quantised to the fen (0.01 元), half-even.
FEN = Decimal("0.01")


class StatisticalItem(BaseModel):
    """One line of a statistical table: a product or service with its quantity and price key."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(min_length=1)
    name: str = ""
    service_class: ServiceClass = ServiceClass.PROVISIONING
    quantity: Decimal = Field(ge=0)
    out_of_region_quantity: Decimal = Field(default=Decimal(0), ge=0)
    unit: str = Field(min_length=1)
    price_key: str = Field(min_length=1)

    @model_validator(mode="after")
    def _imports_within_quantity(self) -> StatisticalItem:
        if self.out_of_region_quantity > self.quantity:
            raise ValueError("out_of_region_quantity exceeds quantity")
        if self.service_class is ServiceClass.REGULATING:
            raise ValueError("statistical items are provisioning or cultural, not regulating")
        return self


class ItemValue(BaseModel):
    """The value of one statistical item (元, quantised to the fen)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    item: StatisticalItem
    price_yuan_per_unit: Decimal
    gross_yuan: Decimal
    out_of_region_yuan: Decimal

    @property
    def net_yuan(self) -> Decimal:
        """Return gross minus out-of-region value."""
        return self.gross_yuan - self.out_of_region_yuan


def value_item(item: StatisticalItem, prices: ParameterTable) -> ItemValue:
    """Value one item with its price in ``yuan/<item unit>``.

    Raises:
        InvalidInput: The price is missing or its unit does not match the item's unit.
    """
    price = prices.value(item.price_key, unit=f"yuan/{item.unit}")
    return ItemValue(
        item=item,
        price_yuan_per_unit=price,
        gross_yuan=(item.quantity * price).quantize(FEN, ROUND_HALF_EVEN),
        out_of_region_yuan=(item.out_of_region_quantity * price).quantize(FEN, ROUND_HALF_EVEN),
    )


def value_items(items: list[StatisticalItem], prices: ParameterTable) -> list[ItemValue]:
    """Value every item, collecting every missing or mis-united price before failing once.

    Raises:
        InvalidInput: One or more prices are missing or in the wrong unit (all are listed).
    """
    values: list[ItemValue] = []
    problems: list[dict[str, object]] = []
    for index, item in enumerate(items):
        try:
            values.append(value_item(item, prices))
        except InvalidInput as error:
            problems.extend({**problem, "item_index": index, "item": item.code} for problem in error.problems)
    if problems:
        raise InvalidInput(f"{len(problems)} statistical items cannot be valued", problems)
    return values
