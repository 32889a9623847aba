"""Shared builders for the carbon methodology tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from carbon.methods.ccer_14_001 import CcerInputs
from carbon.methods.fujian_ticket import TicketInputs
from carbon.parameters.loader import load_parameter_set
from carbon.parameters.models import ParameterSet


def params(set_id: str, version: str) -> ParameterSet:
    return load_parameter_set(set_id, version)


CCER_PARAMS = ("ccer-14-001", "1-provisional")
TICKET_PARAMS = ("fujian-forestry-carbon-ticket", "1-provisional")


def ccer_document(project: dict[str, Any] | None = None, parcel: dict[str, Any] | None = None) -> dict[str, Any]:
    """An eligible CCER project (dry Ningxia poplar afforestation), with patches."""
    document: dict[str, Any] = {
        "project_start": "2023-03-01",
        "crediting_period_years": 30,
        "forest_category": "protection",
        "mean_annual_precipitation_mm": "280",
        "parcels": [
            {
                "parcel_id": "P1",
                "area_m2": "10000",
                "land_class": "planned_afforestation_land",
                "years_non_forest_before_start": "5",
                **(parcel or {}),
            }
        ],
        "monitoring_start": "2023-03-01",
        "monitoring_end": "2028-03-01",
        "strata": [
            {
                "stratum_id": "S1",
                "area_m2": "300",
                "species": "populus",
                "start": {"stand_volume_m3_per_ha": "0"},
                "end": {"stand_volume_m3_per_ha": "30"},
            }
        ],
        "relative_uncertainty": "0.08",
    }
    document.update(project or {})
    return document


def ccer_inputs(project: dict[str, Any] | None = None, parcel: dict[str, Any] | None = None) -> CcerInputs:
    return CcerInputs.model_validate(ccer_document(project, parcel))


def ticket_document(increments_m3_per_ha: list[str], area_m2: str = "10000", **changes: Any) -> dict[str, Any]:
    """A ticket report with one sub-compartment per increment, each from 80 m³/ha."""
    document: dict[str, Any] = {
        "monitoring_start": "2021-01-01",
        "monitoring_end": "2025-12-31",
        "sub_compartments": [
            {
                "sub_compartment_id": f"XB-{i:04d}",
                "area_m2": area_m2,
                "species": "pinus",
                "start": {"stock_volume_m3_per_ha": "80"},
                "end": {"stock_volume_m3_per_ha": _add("80", increment)},
            }
            for i, increment in enumerate(increments_m3_per_ha)
        ],
    }
    document.update(changes)
    return document


def _add(a: str, b: str) -> str:
    return str(Decimal(a) + Decimal(b))


def ticket_inputs(increments_m3_per_ha: list[str], area_m2: str = "10000", **changes: Any) -> TicketInputs:
    return TicketInputs.model_validate(ticket_document(increments_m3_per_ha, area_m2, **changes))
