"""Recomputing any methodology from its stored (serialised) record reproduces the record byte for byte."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from api.problems import status_for
from carbon.methods.base import Ineligible
from carbon.methods.ipcc import IPCC_FOREST_LAND, IpccInputs
from carbon.methods.registry import default_registry
from core.errors import InvalidInput
from tests.unit.carbon.helpers import ccer_document, params, ticket_document

REGISTRY = default_registry()
CASES = Path(__file__).parent / "cases"


def methodology_inputs() -> list[Any]:
    examples: list[Any] = [
        pytest.param(("CCER-14-001", "V01"), ccer_document(), id="ccer"),
        pytest.param(("FJ-FORESTRY-CARBON-TICKET", "1"), ticket_document(["3.7", "11", "0"]), id="ticket"),
    ]
    for path in sorted(CASES.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if document["kind"] == "methodology":
            for case in document["cases"]:
                examples.append(
                    pytest.param(tuple(document["methodology"]), case["inputs"], id=f"{document['id']}: {case['name']}")
                )
    return examples


@pytest.mark.parametrize(("key", "document"), methodology_inputs())
def test_recomputation_reproduces_the_stored_record(key: tuple[str, str], document: dict[str, Any]) -> None:
    methodology = REGISTRY.get(*key)
    parameters = params(*methodology.default_parameter_set)
    stored = methodology.compute(methodology.input_model.model_validate(document), parameters)
    stored_bytes, stored_hash = stored.canonical_json(), stored.sha256
    record = json.loads(stored_bytes)
    assert record["parameter_set"]["sha256"] == parameters.sha256
    again = methodology.compute(methodology.input_model.model_validate(record["inputs"]), parameters)
    assert again.canonical_json() == stored_bytes and again.sha256 == stored_hash


@pytest.mark.parametrize(
    ("table", "agb", "expected"),
    [
        ("2006", "49.99", "0.40"),
        ("2006", "50", "0.29"),
        ("2006", "150", "0.29"),
        ("2006", "150.01", "0.20"),
        ("2019_asia", "125", "0.224"),
        ("2019_asia", "125.01", "0.232"),
    ],
)
def test_root_shoot_class_boundaries(table: str, agb: str, expected: str) -> None:
    # V × BCEF_S = AGB with the D × BEF route (D = 1, BEF = 1) isolates the R lookup.
    inputs = IpccInputs.model_validate(
        {
            "calculation": {
                "method": "stock_difference",
                "interval_years": "1",
                "root_shoot_table": table,
                "strata": [
                    {
                        "stratum_id": "S",
                        "area_m2": "10000",
                        "forest_type": "pines",
                        "growing_stock_start_m3_per_ha": "0",
                        "growing_stock_end_m3_per_ha": agb,
                        "wood_density_t_per_m3": "1",
                        "bef": "1",
                    }
                ],
            }
        }
    )
    result = IPCC_FOREST_LAND.compute(inputs, params("ipcc-2006-2019-forest-land", "1"))
    biomass = next(s for s in result.steps if s.name == "stratum[S].t2.biomass_t_per_ha")
    assert biomass.terms["R"] == expected and biomass.value == Decimal(agb) * (1 + Decimal(expected))


def test_ineligible_is_an_invalid_input_problem() -> None:
    error = Ineligible("x", [{"rule": "r", "reason": "y", "pointer": ""}])
    assert isinstance(error, InvalidInput) and status_for(error) == status_for(InvalidInput("x"))
    assert error.extensions() == {"errors": [{"rule": "r", "reason": "y", "pointer": ""}]}
