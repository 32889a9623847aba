"""Property tests of the methodologies and deductions (Hypothesis)."""

from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from carbon.methods.base import Result
from carbon.methods.ccer_14_001 import CCER_14_001, CcerInputs
from carbon.methods.deductions import split_units
from carbon.methods.fujian_ticket import FORESTRY_CARBON_TICKET, TicketInputs
from tests.unit.carbon.helpers import CCER_PARAMS, TICKET_PARAMS, ccer_document, params, ticket_inputs

TICKET = params(*TICKET_PARAMS)
CCER = params(*CCER_PARAMS)
increments = st.decimals(min_value=0, max_value=200, places=2, allow_nan=False, allow_infinity=False)
areas = st.decimals(min_value=400, max_value=10_000_000, places=1, allow_nan=False, allow_infinity=False)
factors = st.integers(min_value=2, max_value=1000)
uncertainties = st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False)


def step(result: Result, name: str) -> Decimal:
    return next(s.value for s in result.steps if s.name == name)


def ticket(increment: Decimal, area_m2: Decimal = Decimal(10_000), **changes: object) -> Result:
    return FORESTRY_CARBON_TICKET.compute(ticket_inputs([str(increment)], str(area_m2), **changes), TICKET)


@settings(max_examples=40, deadline=None)
@given(areas, factors, increments)
def test_ticket_removals_scale_linearly_with_area(area_m2: Decimal, k: int, increment: Decimal) -> None:
    one, scaled = ticket(increment, area_m2), ticket(increment, area_m2 * k)
    assert abs(step(scaled, "net_removal_tco2e") - k * step(one, "net_removal_tco2e")) <= Decimal("1e-18") * k * (
        1 + abs(step(one, "net_removal_tco2e"))
    )


@settings(max_examples=25, deadline=None)
@given(st.decimals(min_value=400, max_value=100_000, places=0), factors)
def test_ccer_removals_scale_linearly_with_area(area_m2: Decimal, k: int) -> None:
    def run(area: Decimal) -> Decimal:
        document = ccer_document(parcel={"area_m2": str(area)})
        document["strata"][0]["area_m2"] = str(area)
        return step(CCER_14_001.compute(CcerInputs.model_validate(document), CCER), "delta_c_p_tco2e")

    assert abs(run(area_m2 * k) - k * run(area_m2)) <= Decimal("1e-18") * k * (1 + run(area_m2))


@settings(max_examples=40, deadline=None)
@given(increments, increments)
def test_ticket_is_monotone_in_stock_increment(a: Decimal, b: Decimal) -> None:
    low, high = sorted((a, b))
    smaller, larger = ticket(low), ticket(high)
    assert step(smaller, "net_removal_tco2e") <= step(larger, "net_removal_tco2e")
    assert smaller.quantities["issuable_units_t"] <= larger.quantities["issuable_units_t"]


@settings(max_examples=20, deadline=None)
@given(areas, st.sampled_from(["low", "medium", "high"]))
def test_zero_increment_gives_zero_tickets(area_m2: Decimal, rating: str) -> None:
    result = ticket(Decimal(0), area_m2, buffer={"risk_rating": rating})
    assert result.quantities["net_removal_tco2e"] == 0
    assert result.quantities["issuable_units_t"] == 0 and result.quantities["buffer_units_t"] == 0


@settings(max_examples=40, deadline=None)
@given(increments, uncertainties, uncertainties)
def test_uncertainty_deduction_never_increases_issuable_quantity(increment: Decimal, u1: Decimal, u2: Decimal) -> None:
    low, high = sorted((u1, u2))
    none = ticket(increment, relative_uncertainty="0")
    less, more = ticket(increment, relative_uncertainty=str(low)), ticket(increment, relative_uncertainty=str(high))
    assert (
        more.quantities["issuable_units_t"]
        <= less.quantities["issuable_units_t"]
        <= none.quantities["issuable_units_t"]
    )
    assert more.quantities["creditable_tco2e"] <= less.quantities["creditable_tco2e"]


@settings(max_examples=60, deadline=None)
@given(st.decimals(min_value=-1000, max_value=10**9, places=3), st.decimals(min_value=0, max_value=1, places=2))
def test_split_units_conserves_the_creditable_quantity(creditable: Decimal, share: Decimal) -> None:
    issuance = split_units(creditable, share)
    assert Decimal(issuance.buffer_units + issuance.issuable_units) + issuance.remainder_tco2e == creditable
    if creditable > 0:
        assert 0 <= issuance.remainder_tco2e < 1
        assert issuance.issuable_units <= creditable * (1 - share)
        assert issuance.buffer_units + issuance.remainder_tco2e >= creditable * share
    else:
        assert issuance.buffer_units == issuance.issuable_units == 0


@settings(max_examples=60, deadline=None)
@given(
    st.decimals(min_value=0, max_value=10**6, places=3),
    st.decimals(min_value=0, max_value=10**6, places=3),
    st.decimals(min_value=0, max_value=1, places=2),
)
def test_issuable_units_are_monotone_in_the_creditable_quantity(a: Decimal, b: Decimal, share: Decimal) -> None:
    low, high = sorted((a, b))
    assert split_units(low, share).issuable_units <= split_units(high, share).issuable_units


@settings(max_examples=25, deadline=None)
@given(st.lists(increments, min_size=1, max_size=5), uncertainties)
def test_recomputation_from_serialised_inputs_reproduces_the_hash(values: list[Decimal], u: Decimal) -> None:
    stored = FORESTRY_CARBON_TICKET.compute(
        ticket_inputs([str(v) for v in values], relative_uncertainty=str(u)), TICKET
    ).canonical_json()
    record = json.loads(stored)
    again = FORESTRY_CARBON_TICKET.compute(TicketInputs.model_validate(record["inputs"]), TICKET)
    assert again.canonical_json() == stored
