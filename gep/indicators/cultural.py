"""Cultural services 文化服务 (recreation, landscape) from tourism statistics (pure).

Recreation is valued from statistics, not rasters: visitor numbers × a per-visit value (travel cost),
or tourism revenue taken as is (a quantity in 元 at price 1). Both are
:class:`~gep.indicators.provisioning.StatisticalItem` lines with ``service_class = cultural`` and go
through the same quantity × price arithmetic, including the out-of-region deduction.

>>> from decimal import Decimal as D
>>> item = recreation_item(visits=D(3_586_800), price_key="travel_cost_per_visit")
>>> item.service_class.value, item.unit
('cultural', 'visit')
"""

from __future__ import annotations

from decimal import Decimal

from gep.indicators.provisioning import StatisticalItem
from gep.valuation import ServiceClass


def recreation_item(*, visits: Decimal, price_key: str, out_of_region_visits: Decimal = Decimal(0)) -> StatisticalItem:
    """Return the recreation line: visits valued at ``price_key`` (元/visit)."""
    return StatisticalItem(
        code="recreation",
        name="休闲旅游",
        service_class=ServiceClass.CULTURAL,
        quantity=visits,
        out_of_region_quantity=out_of_region_visits,
        unit="visit",
        price_key=price_key,
    )
