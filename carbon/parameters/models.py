"""Frozen models of a cited, versioned parameter set (pure).

A parameter set is one data file: an id, a version, whether it is *provisional*, and its values. Each
value carries its unit, the date it is valid from, its citation, a note and how well the citation was
confirmed (the reference's ✅/🟡/❌ marks). Class tables (IPCC BCEF by growing-stock class, R by
above-ground-biomass class, uncertainty discount bands) state both bounds of every class and whether
each bound is inclusive, so boundary values are decided by data, not by code.

Invariants:

* Unknown keys anywhere are errors (``extra="forbid"``); models are frozen.
* A set holding any *unconfirmed* (❌) value must be labelled ``provisional`` with a reason.
* The rows of a class table partition ``[first minimum, ∞)`` with no gap and no overlap.

>>> row = ClassRow(min=Decimal(20), min_inclusive=False, max=Decimal(40), max_inclusive=True, value=Decimal("1.0"))
>>> row.label
'(20, 40]'
>>> row.contains(Decimal(40)), row.contains(Decimal(20))
(True, False)
"""

from __future__ import annotations

import enum
import re
from datetime import date
from decimal import Decimal
from functools import cached_property
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.canonical import JCS_SCHEME, LEGACY_SCHEME, scheme_hash

KEY_PATTERN = r"^[a-z0-9_]+(\.[a-z0-9_]+)*$"


class Confirmation(enum.StrEnum):
    """How the citation of a value was confirmed (the reference's marks)."""

    CONFIRMED = "confirmed"  # ✅ read in the primary source
    SECONDARY = "secondary"  # 🟡 read in a mirror or transcription
    UNCONFIRMED = "unconfirmed"  # ❌ not found in any source; background knowledge


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Parameter(_Frozen):
    """One cited value."""

    value: Decimal
    unit: str
    valid_from: date
    citation: str = Field(min_length=1)
    confirmation: Confirmation
    note: str = ""

    def cited(self) -> dict[str, Any]:
        """Return the value with its unit and citation, as recorded in a trace."""
        return {
            "value": str(self.value),
            "unit": self.unit,
            "valid_from": self.valid_from.isoformat(),
            "citation": self.citation,
            "confirmation": self.confirmation.value,
        }


class ClassRow(_Frozen):
    """One class of a class table: ``min``..``max`` with explicit inclusivity; ``max=None`` is unbounded."""

    min: Decimal
    min_inclusive: bool
    max: Decimal | None = None
    max_inclusive: bool = False
    value: Decimal

    @property
    def label(self) -> str:
        """Return the interval in mathematical notation, e.g. ``(40, 100]``."""
        left = "[" if self.min_inclusive else "("
        if self.max is None:
            return f"{left}{self.min}, ∞)"
        return f"{left}{self.min}, {self.max}{']' if self.max_inclusive else ')'}"

    def contains(self, x: Decimal) -> bool:
        """Return whether ``x`` falls in this class."""
        above = x >= self.min if self.min_inclusive else x > self.min
        if self.max is None:
            return above
        below = x <= self.max if self.max_inclusive else x < self.max
        return above and below


class ClassTable(_Frozen):
    """A value looked up by the class a variable falls in."""

    unit: str
    class_variable: str
    class_unit: str
    valid_from: date
    citation: str = Field(min_length=1)
    confirmation: Confirmation
    note: str = ""
    rows: tuple[ClassRow, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _partition(self) -> Self:
        for previous, row in zip(self.rows, self.rows[1:], strict=False):
            if previous.max is None or previous.max != row.min:
                raise ValueError(f"class {row.label} does not start where {previous.label} ends")
            if previous.max_inclusive == row.min_inclusive:
                raise ValueError(f"bound {row.min} must belong to exactly one of {previous.label} and {row.label}")
        if self.rows[-1].max is not None:
            raise ValueError("the last class must be unbounded above")
        return self

    def lookup(self, x: Decimal) -> ClassRow:
        """Return the class ``x`` falls in.

        Raises:
            ValueError: ``x`` is below the first class.
        """
        for row in self.rows:
            if row.contains(x):
                return row
        raise ValueError(f"{self.class_variable} {x} {self.class_unit} is below the first class {self.rows[0].label}")


class ParameterSet(_Frozen):
    """A versioned, cited parameter set, selectable per project."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")
    version: str = Field(min_length=1)
    title: str
    valid_from: date
    provisional: bool
    provisional_reason: str = ""
    parameters: dict[str, Parameter] = Field(default_factory=dict)
    tables: dict[str, ClassTable] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _labelled(self) -> Self:
        for key in [*self.parameters, *self.tables]:
            if not _valid_key(key):
                raise ValueError(f"parameter key {key!r} must be dotted lower_snake_case")
        unconfirmed = [k for k, p in self.parameters.items() if p.confirmation is Confirmation.UNCONFIRMED]
        unconfirmed += [k for k, t in self.tables.items() if t.confirmation is Confirmation.UNCONFIRMED]
        if unconfirmed and not self.provisional:
            raise ValueError(f"unconfirmed values {sorted(unconfirmed)} require provisional: true")
        if self.provisional and not self.provisional_reason:
            raise ValueError("a provisional parameter set must state its provisional_reason")
        return self

    @property
    def ref(self) -> dict[str, Any]:
        """Return the identity of the set as recorded in new traces, reports and certificates (RFC 8785)."""
        return self.reference(JCS_SCHEME)

    def reference(self, scheme: str) -> dict[str, Any]:
        """Return the identity of the set with its hash under ``scheme``.

        Under ``rfc8785`` the reference names its scheme (``hash_scheme``); under ``shanhai-json/1`` it is
        exactly the reference records held before revision 0021, so they recompute unchanged (ADR 033).
        """
        named = {"hash_scheme": scheme} if scheme != LEGACY_SCHEME else {}
        return {
            "id": self.id,
            "version": self.version,
            "provisional": self.provisional,
            "provisional_reason": self.provisional_reason,
            "sha256": self.sha256 if scheme == JCS_SCHEME else self.content_hash(scheme),
            **named,
        }

    @cached_property
    def sha256(self) -> str:
        """Return the SHA-256 of the RFC 8785 canonical JSON of the whole set (as :attr:`ref` names it)."""
        return self.content_hash(JCS_SCHEME)

    def content_hash(self, scheme: str) -> str:
        """Return the SHA-256 of the whole set's canonical JSON under ``scheme``."""
        return scheme_hash(self.model_dump(mode="json"), scheme)

    def parameter(self, key: str) -> Parameter:
        """Return a parameter or raise ``KeyError`` naming the set."""
        try:
            return self.parameters[key]
        except KeyError:
            raise KeyError(f"parameter {key!r} is not in parameter set {self.id} {self.version}") from None

    def table(self, key: str) -> ClassTable:
        """Return a class table or raise ``KeyError`` naming the set."""
        try:
            return self.tables[key]
        except KeyError:
            raise KeyError(f"table {key!r} is not in parameter set {self.id} {self.version}") from None


def _valid_key(key: str) -> bool:
    return re.fullmatch(KEY_PATTERN, key) is not None
