"""Eco-compensation terms and the settlement kernel (pure): value and benchmark in, amount and its trace out.

An agreement's terms (:class:`AgreementTerms`) name the parties, the basis (a GEP indicator or a monitored one),
the benchmark year, the period and the formula. :func:`settle` applies the formula (ADR 039)::

    change      = value − benchmark
    improvement = change (higher is better) or −change (lower is better)
    met         = improvement ≥ 0
    amount      = min(max(base + rate × |improvement|, floor), cap)      (0 when missed and not paid back)
    amount_fen  = amount rounded to the fen with the terms' rounding

and returns every step as a :class:`Term` (name, formula, inputs, result, unit), then splits the amount among
payers × payees by :func:`allocate_fen` so the obligations add up to it exactly.

>>> terms = AgreementTerms.model_validate(EXAMPLE_TERMS)
>>> settled = settle(terms, value=Decimal("0.92"), benchmark=Decimal("1"))
>>> settled.amount_fen, settled.direction
(5400000000, 'beneficiaries_pay_providers')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

FEN = Decimal("0.01")
#: The largest amount a statement or a right carries, in fen (10 trillion CNY): beyond it a figure is a mistake,
#: and it stays inside BIGINT and RFC 8785's exact integers (2⁵³).
MAX_FEN = 10**15
ROUNDINGS = {"ROUND_HALF_UP": ROUND_HALF_UP, "ROUND_HALF_EVEN": ROUND_HALF_EVEN}
#: Direction of payment when the benchmark is met, and when it is missed.
MET = "beneficiaries_pay_providers"
MISSED = "providers_pay_beneficiaries"
#: The indicator code that stands for the whole GEP of the regions (every line's net value).
WHOLE_GEP = "gep"

RegionCode = Annotated[str, Field(pattern=r"^\d{6}$", description="GB/T 2260 six-digit division code.")]
NonNegative = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, max_digits=20, decimal_places=6)]


class PartySide(StrEnum):
    """A party's side: the provider of the service (upstream) or its beneficiary (downstream)."""

    PROVIDER = "provider"
    BENEFICIARY = "beneficiary"


class Better(StrEnum):
    """Which way the indicator improves (a GEP quantity: higher; a pollution index: lower)."""

    HIGHER = "higher"
    LOWER = "lower"


class Measure(StrEnum):
    """What of a GEP line is compared: its physical quantity or its net value in CNY."""

    QUANTITY = "quantity"
    VALUE = "value"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Party(_Frozen):
    """A region party to an agreement and the organisation that confirms for it."""

    region_code: RegionCode
    side: PartySide
    share: Annotated[Decimal, Field(gt=0, le=1, max_digits=7, decimal_places=6)] = Decimal(1)
    organisation_id: Annotated[int, Field(ge=1, le=2**31 - 1)]


class GepBasis(_Frozen):
    """A GEP indicator over regions of a run's region layer, compared with a pinned benchmark run."""

    kind: Literal["gep"] = "gep"
    region_layer: Annotated[str, Field(min_length=1, max_length=100)]
    region_codes: Annotated[list[Annotated[str, Field(min_length=1, max_length=50)]], Field(min_length=1)]
    indicator: Annotated[str, Field(min_length=1, max_length=60, description=f"An indicator code, or {WHOLE_GEP!r}.")]
    measure: Measure = Measure.QUANTITY
    benchmark_run_id: Annotated[int, Field(ge=1, le=2**31 - 1)]

    @model_validator(mode="after")
    def _check(self) -> GepBasis:
        if len(set(self.region_codes)) != len(self.region_codes):
            raise ValueError("region_codes repeat a code")
        if self.indicator == WHOLE_GEP and self.measure is not Measure.VALUE:
            raise ValueError("the whole GEP is compared by value (measure 'value')")
        return self


class MonitoredBasis(_Frozen):
    """A monitored, non-GEP indicator at a section: the mean of a year's readings against a standard or year."""

    kind: Literal["monitored"] = "monitored"
    section_code: Annotated[str, Field(min_length=1, max_length=60)]
    indicator: Annotated[str, Field(min_length=1, max_length=60)]
    unit: Annotated[str, Field(min_length=1, max_length=40)]
    decimals: Annotated[int, Field(ge=0, le=6, description="Decimals of the annual mean (ROUND_HALF_EVEN).")] = 4
    benchmark_value: Annotated[
        Decimal | None,
        Field(
            allow_inf_nan=False,
            max_digits=20,
            decimal_places=6,
            description="A fixed standard; none: the mean of the benchmark year.",
        ),
    ] = None


class Formula(_Frozen):
    """Base amount, rate per unit of improvement, floor and cap (CNY), direction and rounding."""

    base_amount_yuan: NonNegative = Decimal(0)
    rate_yuan_per_unit: NonNegative = Decimal(0)
    floor_yuan: NonNegative = Decimal(0)
    cap_yuan: NonNegative | None = None
    better: Better = Better.HIGHER
    pays_back_when_missed: bool = Field(default=True, description="Whether providers pay when the benchmark is missed.")
    rounding: Literal["ROUND_HALF_UP", "ROUND_HALF_EVEN"] = "ROUND_HALF_UP"

    @model_validator(mode="after")
    def _check(self) -> Formula:
        if self.cap_yuan is not None and self.cap_yuan < self.floor_yuan:
            raise ValueError("cap_yuan is below floor_yuan")
        return self


class AgreementTerms(_Frozen):
    """The whole of an agreement's terms; its RFC 8785 hash is the agreement's ``terms_sha256``."""

    code: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,59}$")]
    title: Annotated[str, Field(min_length=1, max_length=300)]
    parties: Annotated[list[Party], Field(min_length=2, max_length=20)]
    basis: Annotated[GepBasis | MonitoredBasis, Field(discriminator="kind")]
    benchmark_year: Annotated[int, Field(ge=1990, le=2100)]
    period_start_year: Annotated[int, Field(ge=1990, le=2100)]
    period_end_year: Annotated[int, Field(ge=1990, le=2100)]
    formula: Formula
    currency: Literal["CNY"] = "CNY"

    @model_validator(mode="after")
    def _check(self) -> AgreementTerms:
        problems = term_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def side(self, side: PartySide) -> list[Party]:
        """Return the parties of one side, in the order given."""
        return [p for p in self.parties if p.side is side]


def term_problems(terms: AgreementTerms) -> list[str]:
    """Return what is inconsistent in a set of terms (empty when consistent)."""
    problems = []
    regions = [p.region_code for p in terms.parties]
    if len(set(regions)) != len(regions):
        problems.append("a region is named as a party twice")
    for side in PartySide:
        parties = terms.side(side)
        if not parties:
            problems.append(f"no {side.value} party")
        elif sum((p.share for p in parties), Decimal(0)) != 1:
            problems.append(f"the shares of the {side.value} side do not add up to 1")
    if terms.period_start_year > terms.period_end_year:
        problems.append("the period ends before it starts")
    if terms.benchmark_year >= terms.period_start_year:
        problems.append("the benchmark year must precede the period")
    if terms.period_end_year - terms.period_start_year >= 30:
        problems.append("a period is at most 30 years")
    return problems


@dataclass(frozen=True)
class Term:
    """One step of a statement: what it is, where it comes from, the formula, its inputs and result."""

    name: str
    source: str
    formula: str
    inputs: Mapping[str, str]
    result: str
    unit: str

    def as_dict(self) -> dict[str, Any]:
        """Return the term as JSON-ready data (decimals as strings)."""
        return {
            "name": self.name,
            "source": self.source,
            "formula": self.formula,
            "inputs": dict(self.inputs),
            "result": self.result,
            "unit": self.unit,
        }


@dataclass(frozen=True)
class Obligation:
    """A payer region owes a payee region an amount in fen."""

    payer_region: str
    payee_region: str
    amount_fen: int


@dataclass(frozen=True)
class Settlement:
    """The result of :func:`settle`: the terms in order, the amount, its direction and the obligations."""

    terms: list[Term]
    amount_fen: int
    direction: str
    met: bool
    obligations: list[Obligation] = field(default_factory=list)


def allocate_fen(total_fen: int, weights: Sequence[Decimal]) -> list[int]:
    """Split ``total_fen`` by ``weights`` in whole fen, largest remainder first (ties: earlier first).

    >>> allocate_fen(100, [Decimal("0.5"), Decimal("0.5")])
    [50, 50]
    >>> allocate_fen(100, [Decimal(1) / 3] * 3)
    [34, 33, 33]
    """
    if total_fen < 0 or not weights or any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("allocate a non-negative total by non-negative weights that do not all vanish")
    scale = sum(weights)
    exact = [Decimal(total_fen) * w / scale for w in weights]
    floors = [int(e) for e in exact]
    left = total_fen - sum(floors)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return floors


def _text(value: Decimal) -> str:
    """Return a decimal as plain text, never in exponent form, without trailing zeros beyond the point."""
    return "0" if value == 0 else format(value.normalize(), "f")


def settle(terms: AgreementTerms, *, value: Decimal, benchmark: Decimal, unit: str = "") -> Settlement:
    """Apply the formula of ``terms`` to the year's ``value`` against ``benchmark`` (in ``unit``).

    The steps are the module docstring's; each becomes a :class:`Term` of the result.
    """
    formula = terms.formula
    if not unit:
        unit = terms.basis.unit if isinstance(terms.basis, MonitoredBasis) else _gep_unit(terms.basis)
    change = value - benchmark
    improvement = change if formula.better is Better.HIGHER else -change
    met = improvement >= 0
    raw = formula.base_amount_yuan + formula.rate_yuan_per_unit * abs(improvement)
    bounded = max(raw, formula.floor_yuan)
    if formula.cap_yuan is not None:
        bounded = min(bounded, formula.cap_yuan)
    owed = bounded if met or formula.pays_back_when_missed else Decimal(0)
    amount = owed.quantize(FEN, ROUNDINGS[formula.rounding])
    amount_fen = int(amount * 100)
    direction = MET if met else MISSED
    cap = "none" if formula.cap_yuan is None else _text(formula.cap_yuan)
    steps = [
        Term("change", "value and benchmark above", "value − benchmark",
             {"value": _text(value), "benchmark": _text(benchmark)}, _text(change), unit),
        Term("improvement", f"terms: {formula.better.value} is better",
             "change" if formula.better is Better.HIGHER else "−change", {"change": _text(change)},
             _text(improvement), unit),
        Term("benchmark_met", "improvement", "improvement ≥ 0", {"improvement": _text(improvement)},
             "true" if met else "false", "boolean"),
        Term("raw_amount", "terms: base amount and rate", "base + rate × |improvement|",
             {"base": _text(formula.base_amount_yuan), "rate": _text(formula.rate_yuan_per_unit),
              "improvement": _text(improvement)}, _text(raw), "CNY"),
        Term("bounded_amount", "terms: floor and cap", "min(max(raw, floor), cap)",
             {"raw": _text(raw), "floor": _text(formula.floor_yuan), "cap": cap}, _text(bounded), "CNY"),
        Term("owed_amount", "terms: pays back when missed", "bounded if met or pays back, else 0",
             {"bounded": _text(bounded), "met": "true" if met else "false",
              "pays_back_when_missed": "true" if formula.pays_back_when_missed else "false"}, _text(owed), "CNY"),
        Term("amount", f"terms: rounding {formula.rounding}", "owed rounded to 0.01",
             {"owed": _text(owed)}, format(amount, "f"), "CNY"),
    ]  # fmt: skip
    payers, payees = (
        (terms.side(PartySide.BENEFICIARY), terms.side(PartySide.PROVIDER))
        if met
        else (terms.side(PartySide.PROVIDER), terms.side(PartySide.BENEFICIARY))
    )
    obligations: list[Obligation] = []
    if amount_fen > 0:
        pairs = [(payer, payee) for payer in payers for payee in payees]
        split = allocate_fen(amount_fen, [payer.share * payee.share for payer, payee in pairs])
        obligations = [
            Obligation(payer.region_code, payee.region_code, fen)
            for (payer, payee), fen in zip(pairs, split, strict=True)
            if fen > 0
        ]
    return Settlement(steps, amount_fen, direction, met, obligations)


def _gep_unit(basis: GepBasis) -> str:
    return "CNY" if basis.measure is Measure.VALUE else f"unit of {basis.indicator}"


def annual_mean(values: Sequence[Decimal], decimals: int) -> Decimal:
    """Return the mean of a year's readings rounded to ``decimals`` (ROUND_HALF_EVEN).

    >>> annual_mean([Decimal("0.91"), Decimal("0.94"), Decimal("0.96")], 4)
    Decimal('0.9367')
    """
    if not values:
        raise ValueError("no readings")
    return (sum(values, Decimal(0)) / len(values)).quantize(Decimal(1).scaleb(-decimals), ROUND_HALF_EVEN)


#: A worked set of terms (the Xin'an River shape: lower index is better), used by the doctest above.
EXAMPLE_TERMS: dict[str, Any] = {
    "code": "EXAMPLE-WQ",
    "title": "Example water-quality compensation",
    "parties": [
        {"region_code": "640424", "side": "provider", "organisation_id": 1},
        {"region_code": "640402", "side": "beneficiary", "organisation_id": 2},
    ],
    "basis": {"kind": "monitored", "section_code": "S1", "indicator": "p_index", "unit": "index"},
    "benchmark_year": 2025,
    "period_start_year": 2026,
    "period_end_year": 2028,
    "formula": {"base_amount_yuan": "50000000", "rate_yuan_per_unit": "50000000", "better": "lower"},
}
