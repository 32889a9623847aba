"""Air purification 大气净化: SO₂, NOₓ and dust taken up by ecosystems (pure).

Each pollutant is its own indicator line, valued at its treatment cost (price keys
``treatment_cost_so2``, ``treatment_cost_nox``, ``treatment_cost_dust``, 2003 排污费 standard in the
Ganzi study). The removal math is :mod:`gep.indicators.purification`.

>>> [p.indicator_code for p in AirPollutant]
['air_purification_so2', 'air_purification_nox', 'air_purification_dust']
>>> air_purification_t({AirPollutant.SO2: 2000.0}, {AirPollutant.SO2: 1137.0})
{<AirPollutant.SO2: 'so2'>: 1137.0}
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from core.errors import InvalidInput
from gep.indicators.purification import removed_t


class AirPollutant(StrEnum):
    """Air pollutants accounted by the prevention-cost method."""

    SO2 = "so2"
    NOX = "nox"
    DUST = "dust"

    @property
    def indicator_code(self) -> str:
        """Return the indicator code of this pollutant's line."""
        return f"air_purification_{self.value}"


def air_purification_t(
    capacity_t: Mapping[AirPollutant, float], emission_t: Mapping[AirPollutant, float]
) -> dict[AirPollutant, float]:
    """Return the credited removal per pollutant: min(regional capacity, regional emission).

    Raises:
        InvalidInput: A pollutant has a capacity but no emission figure (the cap would be unknown).
    """
    missing = [str(p) for p in capacity_t if p not in emission_t]
    if missing:
        raise InvalidInput(
            f"no emission figure for {missing}",
            [{"input": "emission_t", "reason": "missing", "pollutant": p} for p in missing],
        )
    return {pollutant: removed_t(capacity, emission_t[pollutant]) for pollutant, capacity in capacity_t.items()}
