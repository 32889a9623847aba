"""The registry of shipped methodologies, built explicitly.

Each module holds one methodology object (``IPCC_FOREST_LAND``, ``CCER_14_001``,
``FORESTRY_CARBON_TICKET``, ``ECOLOGICAL_RESTORATION`` and its version 2 ``ECOLOGICAL_RESTORATION_COVER``,
``OCEAN_FISHERY``); :func:`default_registry`
lists them explicitly (nothing registers itself on import). Adding a methodology means adding its
module, its parameter file in ``carbon/parameters/data`` and one line to :func:`default_registry`.

>>> default_registry().get("CCER-14-001", "V01").default_parameter_set
('ccer-14-001', '1-provisional')
"""

from __future__ import annotations

from carbon.methods.base import Registry
from carbon.methods.ccer_14_001 import CCER_14_001
from carbon.methods.fujian_ticket import FORESTRY_CARBON_TICKET
from carbon.methods.ipcc import IPCC_FOREST_LAND
from carbon.methods.ocean_fishery import OCEAN_FISHERY
from carbon.methods.restoration import ECOLOGICAL_RESTORATION
from carbon.methods.restoration_cover import ECOLOGICAL_RESTORATION_COVER


def default_registry() -> Registry:
    """Return the registry of the shipped methodologies, keyed by ``(id, version)``."""
    registry = Registry()
    shipped = (
        IPCC_FOREST_LAND,
        CCER_14_001,
        FORESTRY_CARBON_TICKET,
        ECOLOGICAL_RESTORATION,
        ECOLOGICAL_RESTORATION_COVER,
        OCEAN_FISHERY,
    )
    for methodology in shipped:
        registry = registry.register(methodology)
    return registry
