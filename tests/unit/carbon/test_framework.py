"""The methodology framework: parameter sets, registry, trace, hashing and provisional labels."""

from __future__ import annotations

import json
from decimal import Decimal, localcontext

import pytest
from pydantic import ValidationError

from carbon.methods.base import Registry, Tracer
from carbon.methods.ccer_14_001 import CCER_14_001
from carbon.methods.ipcc import IPCC_FOREST_LAND, IpccInputs
from carbon.methods.registry import default_registry
from carbon.parameters.loader import available_parameter_sets, load_parameter_set, parse_parameter_set
from core.errors import Conflict, NotFound
from tests.unit.carbon.helpers import CCER_PARAMS, ccer_inputs, params

MINIMAL = """
id: test-set
version: "1"
title: test
valid_from: 2024-01-01
provisional: false
parameters:
  a.b: {value: 0.1, unit: "1", valid_from: 2024-01-01, citation: somewhere, confirmation: confirmed}
"""


def test_every_packaged_set_loads_and_unconfirmed_sets_are_provisional() -> None:
    sets = available_parameter_sets()
    assert len(sets) == 5
    for set_id, version in sets:
        loaded = load_parameter_set(set_id, version)
        assert loaded.provisional == ("provisional" in version)
    assert load_parameter_set("ipcc-2006-2019-forest-land", "1").provisional is False


def test_numbers_are_read_as_exact_decimals() -> None:
    assert parse_parameter_set(MINIMAL).parameter("a.b").value == Decimal("0.1")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("confirmation: confirmed}", "confirmation: confirmed, colour: red}"), "Extra inputs are not permitted"),
        (("confirmation: confirmed}", "confirmation: unconfirmed}"), "require provisional"),
        (("provisional: false", "provisional: true"), "provisional_reason"),
        (("  a.b:", "  A-b:"), "dotted lower_snake_case"),
        (("citation: somewhere", "citation: ''"), "at least 1 character"),
    ],
)
def test_invalid_parameter_sets_are_refused(change: tuple[str, str], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_parameter_set(MINIMAL.replace(*change))


FIRST = "[{min: 0, min_inclusive: true, max: 10, max_inclusive: true, value: 1}"


def table_document(rows: str) -> str:
    return (
        MINIMAL
        + f"""tables:
  t:
    unit: "1"
    class_variable: x
    class_unit: m3/ha
    valid_from: 2024-01-01
    citation: somewhere
    confirmation: confirmed
    rows: {rows}
"""
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            FIRST + ", {min: 11, min_inclusive: false, value: 2}]",
            "does not start where",
        ),
        (
            FIRST + ", {min: 10, min_inclusive: true, value: 2}]",
            "exactly one of",
        ),
        ("[{min: 0, min_inclusive: true, max: 10, max_inclusive: true, value: 1}]", "unbounded above"),
    ],
)
def test_class_tables_must_partition(rows: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse_parameter_set(table_document(rows))


def test_class_lookup_below_the_first_class_is_an_error() -> None:
    table = parse_parameter_set(table_document("[{min: 5, min_inclusive: false, value: 1}]")).table("t")
    assert table.lookup(Decimal("5.01")).label == "(5, ∞)"
    with pytest.raises(ValueError, match="below the first class"):
        table.lookup(Decimal(5))


def test_missing_parameters_and_sets_are_named() -> None:
    ccer = params(*CCER_PARAMS)
    with pytest.raises(KeyError, match="not in parameter set ccer-14-001"):
        ccer.parameter("nope")
    with pytest.raises(KeyError, match="table 'nope'"):
        ccer.table("nope")
    with pytest.raises(KeyError, match="no parameter set"):
        load_parameter_set("nope", "1")


def test_registry_is_immutable_and_keyed_by_id_and_version() -> None:
    registry = default_registry()
    assert ("CCER-14-001", "V01") in registry.keys() and len(registry.keys()) == 6
    assert Registry().register(IPCC_FOREST_LAND).keys() == [("ipcc-2006-2019-forest-land", "1")]
    with pytest.raises(Conflict):
        registry.register(CCER_14_001)
    with pytest.raises(NotFound):
        registry.get("CCER-14-001", "V02")


def test_result_record_carries_trace_citations_and_provisional_label() -> None:
    result = CCER_14_001.compute(ccer_inputs(), params(*CCER_PARAMS))
    record = json.loads(result.canonical_json())
    assert record["methodology"] == {"id": "CCER-14-001", "version": "V01"}
    assert record["provisional"] is True and record["parameter_set"]["provisional_reason"]
    assert record["parameter_set"]["sha256"] == params(*CCER_PARAMS).sha256
    assert record["parameters"]["species.populus.wood_density"]["citation"].startswith("IPCC 2006")
    assert record["parameters"]["species.populus.wood_density"]["confirmation"] == "unconfirmed"
    assert [s["name"] for s in record["trace"]][-1] == "remainder_tco2e"
    assert record["inputs"]["parcels"][0]["area_m2"] == "10000"
    assert len(result.sha256) == 64


def test_hash_does_not_depend_on_the_callers_decimal_context() -> None:
    inputs = IpccInputs.model_validate(
        {
            "calculation": {
                "method": "stock_difference",
                "interval_years": "3",
                "strata": [
                    {
                        "stratum_id": "S",
                        "area_m2": "123456.7",
                        "forest_type": "hardwoods",
                        "growing_stock_start_m3_per_ha": "17",
                        "growing_stock_end_m3_per_ha": "151",
                    }
                ],
            }
        }
    )
    parameters = load_parameter_set("ipcc-2006-2019-forest-land", "1")
    expected = IPCC_FOREST_LAND.compute(inputs, parameters).sha256
    with localcontext() as context:
        context.prec = 6
        assert IPCC_FOREST_LAND.compute(inputs, parameters).sha256 == expected


def test_tracer_records_each_parameter_once() -> None:
    tracer = Tracer(params(*CCER_PARAMS))
    tracer.parameter("shrub.root_shoot")
    tracer.parameter("shrub.root_shoot")
    tracer.lookup("uncertainty_discount", Decimal("0.12"))
    tracer.lookup("uncertainty_discount", Decimal("0.13"))
    assert list(tracer.parameters_used) == ["shrub.root_shoot", "uncertainty_discount(0.10, 0.15]"]
