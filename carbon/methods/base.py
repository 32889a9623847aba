"""The methodology framework: protocol, trace, result, eligibility refusals and the registry (pure).

A methodology is a versioned module exposing one object that satisfies :class:`Methodology`: an id and
version, a pydantic input model, the parameter set it uses by default, eligibility checks and a pure
``compute``. ``compute`` takes explicit inputs and a loaded
:class:`~carbon.parameters.models.ParameterSet` and returns a :class:`Result` that carries its own
trace: the inputs (as their canonical JSON), every parameter used with its citation, and every
equation step in order with its named terms. The canonical JSON of the result record is hashed; the
same inputs and parameters give byte-identical JSON and the same hash on any machine.

A record names its canonicalization scheme (ADR 033): a new record is hashed under RFC 8785 and holds
``"hash_scheme": "rfc8785"`` (its parameter-set reference too); a record without ``hash_scheme`` is under
``shanhai-json/1``, as every record before revision 0021 (and a new one holding an integer beyond
±(2**53 - 1), which RFC 8785 cannot write). :meth:`Result.under` rebuilds a result under a given scheme, so
an old record recomputes byte for byte.

Invariants:

* Arithmetic runs in :data:`DECIMAL_CONTEXT` (28 significant digits, half-even, traps on invalid
  operations), whatever the caller's thread context is; no float enters a computed quantity.
* A result's headline quantities are quantised to :data:`REPORTED_T` with ``ROUND_FLOOR`` (never
  rounded up) and its deductions with ``ROUND_CEILING`` (never rounded down); intermediates in the
  trace are unrounded.
* A refusal names the rule it applies (:class:`EligibilityProblem`); ``compute`` never returns a
  result for ineligible inputs.
* The registry is immutable; :meth:`Registry.register` returns a new registry.

>>> co2e_from_c(Decimal("2467.5"))
Decimal('9047.5')
>>> floor_t(Decimal("1.23456"))
Decimal('1.234')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, field_validator

from carbon.parameters.models import ParameterSet
from core.bounds import MAX_DECIMAL_INPUT
from core.canonical import JCS_SCHEME, LEGACY_SCHEME, SCHEMES, record_scheme, scheme_hash, scheme_json
from core.errors import Conflict, InvalidInput, NotFound
from core.units import CO2_PER_C

DECIMAL_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation, DivisionByZero, Overflow])
#: Reported quantities are kept to the kilogram (0.001 t), floored.
REPORTED_T = Decimal("0.001")
_CO2_NUMERATOR = Decimal(CO2_PER_C.numerator)
_CO2_DENOMINATOR = Decimal(CO2_PER_C.denominator)

InputT = TypeVar("InputT", bound=BaseModel, contravariant=True)


def co2e_from_c(carbon_tc: Decimal) -> Decimal:
    """Return t CO2e from t C (× 44/12, multiplied first so that exact inputs stay exact)."""
    return carbon_tc * _CO2_NUMERATOR / _CO2_DENOMINATOR


def floor_t(quantity_t: Decimal) -> Decimal:
    """Return a reported quantity: quantised to 0.001 t with ``ROUND_FLOOR`` (never rounded up)."""
    return quantity_t.quantize(REPORTED_T, rounding=ROUND_FLOOR)


def ceiling_t(deduction_t: Decimal) -> Decimal:
    """Return a reported deduction: quantised to 0.001 t with ``ROUND_CEILING`` (never rounded down).

    >>> ceiling_t(Decimal("0.0001"))
    Decimal('0.001')
    """
    return deduction_t.quantize(REPORTED_T, rounding=ROUND_CEILING)


def _bounded_number(value: Any) -> Any:
    """Return ``value`` if every number in it is finite and below :data:`MAX_DECIMAL_INPUT` in magnitude."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal | int | float):
        number = Decimal(value)
        if not number.is_finite():
            raise ValueError("the number must be finite")
        if abs(number) >= MAX_DECIMAL_INPUT:
            raise ValueError(f"the number must be below {MAX_DECIMAL_INPUT:.0E} in magnitude")
    elif isinstance(value, list | tuple):
        for item in value:
            _bounded_number(item)
    elif isinstance(value, Mapping):
        for item in value.values():
            _bounded_number(item)
    return value


class InputModel(BaseModel):
    """Base of methodology input models: frozen, unknown keys refused, every number finite and bounded.

    A decimal such as ``1e400`` is a valid ``Decimal`` but no quantity of a methodology: it would overflow
    :data:`DECIMAL_CONTEXT` when quantised. Every number of every field (nested lists and mappings included)
    is refused at validation when it is not finite or reaches :data:`~core.bounds.MAX_DECIMAL_INPUT`.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _numbers_bounded(cls, value: Any) -> Any:
        return _bounded_number(value)


@dataclass(frozen=True, slots=True)
class TraceStep:
    """One equation step: ``name = equation`` evaluated with ``terms`` to ``value`` in ``unit``."""

    name: str
    equation: str
    terms: Mapping[str, str]
    value: Decimal
    unit: str

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form of the step."""
        return {
            "name": self.name,
            "equation": self.equation,
            "terms": dict(self.terms),
            "value": str(self.value),
            "unit": self.unit,
        }


@dataclass(frozen=True, slots=True)
class SanityWarning:
    """A plausibility warning from the reference's bands; the value is reported, never clipped."""

    code: str
    message: str

    def as_dict(self) -> dict[str, str]:
        """Return the JSON form of the warning."""
        return {"code": self.code, "message": self.message}


@dataclass(frozen=True, slots=True)
class EligibilityProblem:
    """Why an input is refused, naming the rule (e.g. ``CCER-14-001-V01 applicability (c)``)."""

    rule: str
    reason: str
    pointer: str = ""

    def as_dict(self) -> dict[str, str]:
        """Return the JSON form of the problem."""
        return {"rule": self.rule, "reason": self.reason, "pointer": self.pointer}


class Ineligible(InvalidInput):
    """The inputs fail a methodology's eligibility rules; ``problems`` names each rule and reason."""

    slug = "carbon/ineligible"
    title = "Not eligible under the methodology"


class Tracer:
    """Collects the parameters used and the equation steps of one ``compute`` call.

    It is created inside ``compute`` and discarded with it, so the calculation stays pure.
    """

    def __init__(self, parameters: ParameterSet) -> None:
        self._parameter_set = parameters
        self.parameters_used: dict[str, dict[str, Any]] = {}
        self.steps: list[TraceStep] = []

    def parameter(self, key: str) -> Decimal:
        """Return a parameter value and record it with its citation."""
        found = self._parameter_set.parameter(key)
        if key not in self.parameters_used:
            self.parameters_used[key] = found.cited()
        return found.value

    def lookup(self, table_key: str, x: Decimal) -> Decimal:
        """Return the value of the class ``x`` falls in, recording the table row used."""
        table = self._parameter_set.table(table_key)
        row = table.lookup(x)
        key = f"{table_key}{row.label}"
        if key not in self.parameters_used:
            self.parameters_used[key] = {
                "value": str(row.value),
                "unit": table.unit,
                "class": f"{table.class_variable} {row.label} {table.class_unit}",
                "valid_from": table.valid_from.isoformat(),
                "citation": table.citation,
                "confirmation": table.confirmation.value,
            }
        return row.value

    def step(self, name: str, equation: str, value: Decimal, unit: str, **terms: Decimal | str) -> Decimal:
        """Record one step and return its value."""
        self.steps.append(TraceStep(name, equation, {k: str(v) for k, v in terms.items()}, value, unit))
        return value


@dataclass(frozen=True)
class Result:
    """A methodology result with its full trace.

    Attributes:
        quantities: Headline quantities, name (unit last) → value (floored to 0.001 t where a tonnage).
        details: Other outputs (statuses, counts), JSON-ready.
        warnings: Sanity warnings; values are never clipped.
    """

    methodology_id: str
    methodology_version: str
    parameter_set: Mapping[str, Any]
    inputs: Mapping[str, Any]
    parameters: Mapping[str, Mapping[str, Any]]
    steps: tuple[TraceStep, ...]
    quantities: Mapping[str, Decimal]
    details: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[SanityWarning, ...] = ()
    hash_scheme: str = JCS_SCHEME

    @property
    def provisional(self) -> bool:
        """Return whether the parameter set is provisional (the label travels with the result)."""
        return bool(self.parameter_set["provisional"])

    def record(self) -> dict[str, Any]:
        """Return the canonical record: methodology, parameter set, inputs, parameters, trace, result.

        Under ``rfc8785`` the record names its scheme (``hash_scheme``, hashed with it); under
        ``shanhai-json/1`` it has no such key, exactly as records before revision 0021.
        """
        named = {"hash_scheme": self.hash_scheme} if self.hash_scheme != LEGACY_SCHEME else {}
        return {
            **named,
            "methodology": {"id": self.methodology_id, "version": self.methodology_version},
            "parameter_set": dict(self.parameter_set),
            "provisional": self.provisional,
            "inputs": self.inputs,
            "parameters": {k: dict(v) for k, v in self.parameters.items()},
            "trace": [s.as_dict() for s in self.steps],
            "result": {k: str(v) for k, v in self.quantities.items()},
            "details": dict(self.details),
            "warnings": [w.as_dict() for w in self.warnings],
        }

    def canonical_json(self) -> bytes:
        """Return the canonical JSON bytes of :meth:`record` under its :attr:`hash_scheme`."""
        return scheme_json(self.record(), self.hash_scheme)

    @property
    def sha256(self) -> str:
        """Return the SHA-256 of the canonical record (inputs + parameters + result + trace)."""
        return scheme_hash(self.record(), self.hash_scheme)

    def under(self, scheme: str, parameters: ParameterSet) -> Result:
        """Return this result hashed under ``scheme``, its parameter-set reference hashed under it too.

        Raises:
            ValueError: ``scheme`` is unknown.
        """
        if scheme not in SCHEMES:
            raise ValueError(f"unknown canonicalization scheme {scheme!r}")
        return replace(self, hash_scheme=scheme, parameter_set=parameters.reference(scheme))


class Methodology(Protocol[InputT]):
    """What every methodology module exposes."""

    id: str
    version: str
    title: str
    credit_class: str
    default_parameter_set: tuple[str, str]

    @property
    def input_model(self) -> type[BaseModel]:
        """Return the pydantic input model."""
        ...

    def check(self, inputs: InputT, parameters: ParameterSet) -> list[EligibilityProblem]:
        """Return every eligibility problem (empty when eligible)."""
        ...

    def compute(self, inputs: InputT, parameters: ParameterSet) -> Result:
        """Return the result with its trace; raise :class:`Ineligible` on any problem."""
        ...


def run_checked(
    methodology_id: str,
    problems: list[EligibilityProblem],
    calculate: Callable[[], Result],
) -> Result:
    """Refuse when there are problems, else run ``calculate`` in :data:`DECIMAL_CONTEXT`.

    Raises:
        Ineligible: ``problems`` is not empty; every problem is listed.
    """
    if problems:
        reasons = "; ".join(p.reason for p in problems)
        raise Ineligible(
            f"{methodology_id}: {len(problems)} eligibility problem(s): {reasons}", [p.as_dict() for p in problems]
        )
    with localcontext(DECIMAL_CONTEXT):
        try:
            return calculate()
        except (Overflow, InvalidOperation) as error:
            # Bounded inputs can still combine into a quantity beyond 28 significant digits (e.g. a huge area
            # times a huge stock quantised to 0.001 t): the inputs are out of range, not the server.
            raise InvalidInput(
                f"{methodology_id}: the inputs give a quantity beyond the computable range (28 significant digits)",
                [{"reason": f"decimal arithmetic trapped {type(error).__name__}"}],
            ) from error


def build_result(
    methodology: Methodology[Any],
    parameters: ParameterSet,
    inputs: BaseModel,
    tracer: Tracer,
    quantities: Mapping[str, Decimal],
    details: Mapping[str, Any] | None = None,
    warnings: list[SanityWarning] | None = None,
) -> Result:
    """Assemble a :class:`Result` from a finished tracer, hashed under RFC 8785 whenever it can be written so."""
    result = Result(
        methodology_id=methodology.id,
        methodology_version=methodology.version,
        parameter_set=parameters.ref,
        inputs=inputs.model_dump(mode="json"),
        parameters=tracer.parameters_used,
        steps=tuple(tracer.steps),
        quantities=quantities,
        details=details or {},
        warnings=tuple(warnings or ()),
        hash_scheme=JCS_SCHEME,
    )
    scheme = record_scheme(result.record())
    return result if scheme == JCS_SCHEME else result.under(scheme, parameters)


@dataclass(frozen=True)
class Registry:
    """An immutable registry of methodologies keyed by ``(id, version)``.

    >>> Registry().keys()
    []
    """

    _entries: Mapping[tuple[str, str], Methodology[Any]] = field(default_factory=lambda: MappingProxyType({}))

    kind: ClassVar[str] = "methodology"

    def register(self, methodology: Methodology[Any]) -> Registry:
        """Return a new registry that also holds ``methodology``.

        Raises:
            Conflict: The ``(id, version)`` is already registered.
        """
        key = (methodology.id, methodology.version)
        if key in self._entries:
            raise Conflict(f"methodology {key[0]} {key[1]} is already registered")
        return Registry(MappingProxyType({**self._entries, key: methodology}))

    def get(self, methodology_id: str, version: str) -> Methodology[Any]:
        """Return a registered methodology.

        Raises:
            NotFound: No such ``(id, version)``.
        """
        try:
            return self._entries[(methodology_id, version)]
        except KeyError:
            raise NotFound(f"methodology {methodology_id} {version} is not registered") from None

    def keys(self) -> list[tuple[str, str]]:
        """Return the registered ``(id, version)`` pairs, sorted."""
        return sorted(self._entries)
