"""Water purification 水质净化: COD and NH₃-N taken up by wetlands (pure).

Each pollutant is its own indicator line, valued at its treatment cost (price keys
``treatment_cost_cod``, ``treatment_cost_nh3n``). The removal math is
:mod:`gep.indicators.purification`.

>>> water_purification_t({WaterPollutant.COD: 5000.0}, {WaterPollutant.COD: 5424.0})
{<WaterPollutant.COD: 'cod'>: 5000.0}
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from core.errors import InvalidInput
from gep.indicators.purification import removed_t


class WaterPollutant(StrEnum):
    """Water pollutants accounted by the prevention-cost method."""

    COD = "cod"
    NH3N = "nh3n"

    @property
    def indicator_code(self) -> str:
        """Return the indicator code of this pollutant's line."""
        return f"water_purification_{self.value}"


def water_purification_t(
    capacity_t: Mapping[WaterPollutant, float], emission_t: Mapping[WaterPollutant, float]
) -> dict[WaterPollutant, float]:
    """Return the credited removal per pollutant: min(regional capacity, regional discharge).

    Raises:
        InvalidInput: A pollutant has a capacity but no discharge figure.
    """
    missing = [str(p) for p in capacity_t if p not in emission_t]
    if missing:
        raise InvalidInput(
            f"no discharge figure for {missing}",
            [{"input": "emission_t", "reason": "missing", "pollutant": p} for p in missing],
        )
    return {pollutant: removed_t(capacity, emission_t[pollutant]) for pollutant, capacity in capacity_t.items()}
