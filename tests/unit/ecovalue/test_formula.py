"""The settlement kernel by hand: direction, floor and cap, paying back, rounding, splitting; terms refused; serials."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from core.errors import InvalidInput
from ecovalue.formula import MET, MISSED, AgreementTerms, allocate_fen, annual_mean, settle
from ecovalue.serials import RightSerial, format_serial, parse_serial


def terms(**changes: Any) -> AgreementTerms:
    """Two parties, a monitored index (higher is better unless said), base 100 000 + 2 000 per unit."""
    formula = {"base_amount_yuan": "100000", "rate_yuan_per_unit": "2000"} | changes.pop("formula", {})
    document = {
        "code": "T-1",
        "title": "test",
        "parties": [
            {"region_code": "640424", "side": "provider", "organisation_id": 1},
            {"region_code": "640402", "side": "beneficiary", "organisation_id": 2},
        ],
        "basis": {"kind": "monitored", "section_code": "S", "indicator": "i", "unit": "u"},
        "benchmark_year": 2025,
        "period_start_year": 2026,
        "period_end_year": 2027,
        "formula": formula,
    } | changes
    return AgreementTerms.model_validate(document)


def results(settled: Any) -> dict[str, str]:
    return {term.name: term.result for term in settled.terms}


def test_met_benchmark_beneficiary_pays_base_plus_rate_times_improvement() -> None:
    # 100 000 + 2 000 × (57.5 − 50) = 115 000.00 CNY, from the beneficiary (640402) to the provider (640424)
    settled = settle(terms(), value=Decimal("57.5"), benchmark=Decimal("50"))
    assert settled.met and settled.direction == MET
    assert settled.amount_fen == 11_500_000
    assert [(o.payer_region, o.payee_region, o.amount_fen) for o in settled.obligations] == [
        ("640402", "640424", 11_500_000)
    ]
    assert results(settled) == {
        "change": "7.5",
        "improvement": "7.5",
        "benchmark_met": "true",
        "raw_amount": "115000",
        "bounded_amount": "115000",
        "owed_amount": "115000",
        "amount": "115000.00",
    }


def test_missed_benchmark_provider_pays_back() -> None:
    # lower is better: 0.93 against 0.85 is 0.08 worse; 100 000 + 2 000 × 0.08 = 100 160 from the provider
    settled = settle(terms(formula={"better": "lower"}), value=Decimal("0.93"), benchmark=Decimal("0.85"))
    assert not settled.met and settled.direction == MISSED
    assert settled.amount_fen == 10_016_000
    assert settled.obligations[0].payer_region == "640424" and settled.obligations[0].payee_region == "640402"


def test_no_payback_when_the_terms_say_so() -> None:
    settled = settle(terms(formula={"pays_back_when_missed": False}), value=Decimal(40), benchmark=Decimal(50))
    assert settled.amount_fen == 0 and settled.obligations == [] and settled.direction == MISSED


def test_floor_and_cap() -> None:
    capped = settle(terms(formula={"cap_yuan": "120000"}), value=Decimal(100), benchmark=Decimal(50))
    assert capped.amount_fen == 12_000_000  # 100 000 + 2 000 × 50 = 200 000, capped at 120 000
    floored = settle(
        terms(formula={"base_amount_yuan": "0", "floor_yuan": "30000"}), value=Decimal(51), benchmark=Decimal(50)
    )
    assert floored.amount_fen == 3_000_000  # 2 000 × 1 = 2 000, floored at 30 000


@pytest.mark.parametrize(("rounding", "fen"), [("ROUND_HALF_UP", 3), ("ROUND_HALF_EVEN", 2)])
def test_rounding_to_the_fen_is_the_stated_one(rounding: str, fen: int) -> None:
    # 0 + 0.005 × 5 = 0.025 CNY: half up 0.03, half even 0.02
    settled = settle(
        terms(formula={"base_amount_yuan": "0", "rate_yuan_per_unit": "0.005", "rounding": rounding}),
        value=Decimal(5),
        benchmark=Decimal(0),
    )
    assert settled.amount_fen == fen


def test_several_parties_split_by_share_products_to_the_fen() -> None:
    many = terms(
        parties=[
            {"region_code": "640424", "side": "provider", "share": "0.5", "organisation_id": 1},
            {"region_code": "640425", "side": "provider", "share": "0.5", "organisation_id": 3},
            {"region_code": "640402", "side": "beneficiary", "share": "0.333333", "organisation_id": 2},
            {"region_code": "640422", "side": "beneficiary", "share": "0.666667", "organisation_id": 4},
        ],
        formula={"base_amount_yuan": "100.01", "rate_yuan_per_unit": "0"},
    )
    settled = settle(many, value=Decimal(1), benchmark=Decimal(0))
    assert settled.amount_fen == 10_001
    assert sum(o.amount_fen for o in settled.obligations) == 10_001
    assert {o.payer_region for o in settled.obligations} == {"640402", "640422"}
    # 10 001 fen × share products: 1666.83, 1666.83, 3333.67, 3333.67 → floors 1666, 1666, 3333, 3333 (9 998);
    # the 3 fen left go to the largest remainders, the earlier pair first on a tie.
    assert [(o.payer_region, o.payee_region, o.amount_fen) for o in settled.obligations] == [
        ("640402", "640424", 1667),
        ("640402", "640425", 1667),
        ("640422", "640424", 3334),
        ("640422", "640425", 3333),
    ]


@given(st.integers(0, 10**12), st.lists(st.decimals(0, 1, places=6), min_size=1, max_size=8))
def test_allocation_always_adds_up(total: int, weights: list[Decimal]) -> None:
    if sum(weights) == 0:
        return
    parts = allocate_fen(total, weights)
    assert sum(parts) == total and all(p >= 0 for p in parts)


def test_annual_mean_is_rounded_half_even() -> None:
    assert annual_mean([Decimal("0.82"), Decimal("0.85"), Decimal("0.88"), Decimal("0.85")], 4) == Decimal("0.8500")
    assert annual_mean([Decimal("1"), Decimal("2")], 0) == Decimal("2")  # 1.5 → 2 (even)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"benchmark_year": 2026}, "the benchmark year must precede the period"),
        ({"period_end_year": 2025, "benchmark_year": 2020}, "the period ends before it starts"),
        (
            {"parties": [{"region_code": "640424", "side": "provider", "organisation_id": 1},
                         {"region_code": "640402", "side": "provider", "organisation_id": 2}]},
            "no beneficiary party",
        ),
        (
            {"parties": [{"region_code": "640424", "side": "provider", "share": "0.5", "organisation_id": 1},
                         {"region_code": "640402", "side": "beneficiary", "organisation_id": 2}]},
            "shares of the provider side do not add up to 1",
        ),
        ({"formula": {"floor_yuan": "10", "cap_yuan": "5"}}, "cap_yuan is below floor_yuan"),
    ],
)  # fmt: skip
def test_inconsistent_terms_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        terms(**changes)


def test_whole_gep_is_compared_by_value() -> None:
    basis = {"kind": "gep", "region_layer": "l", "region_codes": ["A"], "indicator": "gep", "benchmark_run_id": 1}
    with pytest.raises(ValidationError, match="by value"):
        terms(basis=basis)
    assert terms(basis=basis | {"measure": "value"}).basis.kind == "gep"


@given(st.from_regex(r"\d{6}", fullmatch=True), st.integers(1000, 9999), st.integers(1, 999_999))
def test_serials_round_trip(county: str, year: int, sequence: int) -> None:
    serial = RightSerial(county, year, sequence)
    assert parse_serial(format_serial(serial)) == serial


@pytest.mark.parametrize("text", ["SH-EPR-64042-2026-000001", "SH-EPR-640424-2026-1", "EPR-640424-2026-000001", ""])
def test_malformed_serials_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_serial(text)
