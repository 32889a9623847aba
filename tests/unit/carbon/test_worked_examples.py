"""Runner of the reference's worked examples (T1–T10, T13–T15), stored as YAML cases in ``cases/``.

Each file states its citation, tolerance and cases; each case has inputs and expected outputs. A
methodology case reads ``result.<quantity>`` from the result and ``step.<name>`` from the unrounded trace.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from carbon.methods.base import Ineligible, Result, co2e_from_c
from carbon.methods.ccer_14_001 import additionality
from carbon.methods.deductions import conservative_estimate, discount_fraction
from carbon.methods.inventory import StratumSample, stratified_uncertainty
from carbon.methods.registry import default_registry
from core.units import M2_PER_HA, M2_PER_MU
from tests.unit.carbon.helpers import CCER_PARAMS, ccer_inputs, params

CASES = Path(__file__).parent / "cases"
REGISTRY = default_registry()


def _load() -> list[Any]:
    found = []
    for path in sorted(CASES.glob("*.yaml")):
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert {"id", "title", "citation", "kind", "tolerance", "cases"} <= set(document), path.name
        for case in document["cases"]:
            found.append(pytest.param(document, case, id=f"{document['id']}: {case['name']}"))
    return found


def _methodology(document: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    methodology = REGISTRY.get(*document["methodology"])
    inputs = methodology.input_model.model_validate(case["inputs"])
    result: Result = methodology.compute(inputs, params(*methodology.default_parameter_set))
    outputs: dict[str, Any] = {f"result.{k}": v for k, v in result.quantities.items()}
    outputs |= {f"step.{s.name}": s.value for s in result.steps}
    outputs["warnings"] = [w.code for w in result.warnings]
    return outputs


def _uncertainty(document: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    strata = [
        StratumSample(Decimal(s["weight"]), Decimal(s["mean"]), Decimal(s["sd"]), s["n"])
        for s in case["inputs"]["strata"]
    ]
    found = stratified_uncertainty(strata)
    bands = params(*CCER_PARAMS).table("uncertainty_discount")
    return {
        "standard_error": found.standard_error,
        "t_value": found.t_value,
        "half_width": found.half_width,
        "relative": found.relative,
        "discount_fraction": discount_fraction(found.relative, bands),
    }


def _discount(document: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    estimate, half_width = Decimal(case["inputs"]["estimate"]), Decimal(case["inputs"]["half_width"])
    relative = half_width / estimate
    fraction = discount_fraction(relative, params(*CCER_PARAMS).table("uncertainty_discount"))
    return {
        "relative": relative,
        "discount_fraction": fraction,
        "deduction": fraction * half_width,
        "project": conservative_estimate(estimate, half_width, fraction, "project"),
        "baseline": conservative_estimate(estimate, half_width, fraction, "baseline"),
    }


def _discount_band(document: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    bands = params(*CCER_PARAMS).table("uncertainty_discount")
    return {"discount_fraction": discount_fraction(Decimal(case["inputs"]["relative"]), bands)}


def _c_to_co2(document: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    return {"co2_tco2e": co2e_from_c(Decimal(case["inputs"]["carbon_tc"]))}


def _area(document: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    given = case["inputs"]
    if "area_mu" in given:  # mu × (m²/mu) / (m²/ha) = ha
        return {
            "area_ha": Decimal(given["area_mu"])
            * Decimal(M2_PER_MU.numerator)
            / Decimal(M2_PER_MU.denominator)
            / Decimal(M2_PER_HA.numerator)
        }
    return {
        "area_mu": Decimal(given["area_ha"])
        * Decimal(M2_PER_HA.numerator)
        * Decimal(M2_PER_MU.denominator)
        / Decimal(M2_PER_MU.numerator)
    }


def _ccer_eligibility(document: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    inputs = ccer_inputs(case["inputs"].get("project"), case["inputs"].get("parcel"))
    problems = REGISTRY.get("CCER-14-001", "V01").check(inputs, params(*CCER_PARAMS))
    exempt, _ = additionality(inputs, params(*CCER_PARAMS))
    return {
        "eligible": not problems,
        "rules": sorted({p.rule for p in problems}),
        "reason": " | ".join(p.reason for p in problems),
        "exempt": exempt,
    }


KINDS: dict[str, Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]] = {
    "methodology": _methodology,
    "uncertainty": _uncertainty,
    "discount": _discount,
    "discount_band": _discount_band,
    "c_to_co2": _c_to_co2,
    "area": _area,
    "ccer_eligibility": _ccer_eligibility,
    "ccer_additionality": _ccer_eligibility,
}


@pytest.mark.parametrize(("document", "case"), _load())
def test_worked_example(document: dict[str, Any], case: dict[str, Any]) -> None:
    outputs = KINDS[document["kind"]](document, case)
    tolerance = Decimal(str(case.get("tolerance", document["tolerance"])))
    for key, expected in case["expected"].items():
        actual = outputs[key]
        if key == "reason":
            assert expected in actual, (key, actual)
        elif isinstance(expected, bool | list):
            assert actual == expected, (key, actual)
        else:
            assert abs(Decimal(actual) - Decimal(str(expected))) <= tolerance, (key, actual, expected)


def test_every_reference_example_is_covered() -> None:
    ids = {yaml.safe_load(p.read_text(encoding="utf-8"))["id"] for p in CASES.glob("*.yaml")}
    assert ids == {"T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8-T9", "T10", "T13", "T14", "T15"}


def test_ineligible_compute_raises_with_named_rule() -> None:
    methodology = REGISTRY.get("CCER-14-001", "V01")
    with pytest.raises(Ineligible) as raised:
        methodology.compute(ccer_inputs(parcel={"area_m2": "399"}), params(*CCER_PARAMS))
    assert raised.value.slug == "carbon/ineligible"
    assert raised.value.problems[0]["rule"] == "CCER-14-001-V01 applicability (c)"
    assert "399 m² < 400 m² minimum of CCER-14-001-V01" in raised.value.detail
