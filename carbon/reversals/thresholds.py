"""Loss thresholds per credit class: cited defaults from a data file, overridden by the registry (audited).

The defaults (``data/loss_thresholds.yaml``) carry a unit, a citation and how well it was confirmed for every
value. The registry sets a class's own values with a reason (:func:`set_thresholds`); a watch run resolves
the thresholds of every class once, when it is created, and stores them, so a later change never alters a run.

>>> DEFAULTS.classes["FCT"].ndvi_drop.value, DEFAULTS.classes["ERS"].min_before_ndvi.value
(Decimal('0.20'), Decimal('0.20'))
>>> round(thresholds_from(DEFAULTS.classes["FCT"]).min_area_m2, 3)
666.667
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from carbon.ledger import CreditClass
from carbon.reversals.models import LossThresholdPolicy
from core import audit
from core.auth import OrgKind, Principal
from core.clock import Clock
from core.errors import InvalidInput, PermissionDenied

#: 1 mu = 10 000 / 15 m² exactly (DESIGN.md, units).
M2_PER_MU = Decimal(10_000) / Decimal(15)
DATA_FILE = Path(__file__).parent / "data" / "loss_thresholds.yaml"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CitedValue(_Frozen):
    """One default with its unit and citation."""

    value: Decimal
    unit: str
    citation: str
    confirmation: str = Field(pattern=r"^(confirmed|secondary|unconfirmed)$")
    note: str = ""


class ClassDefaults(_Frozen):
    """A credit class's default thresholds."""

    season_window_days: CitedValue
    min_before_ndvi: CitedValue
    ndvi_drop: CitedValue
    relative_drop: CitedValue
    min_area_mu: CitedValue


class DefaultsFile(_Frozen):
    """The defaults data file."""

    id: str
    version: str
    valid_from: str
    citations: dict[str, str]
    classes: dict[str, ClassDefaults]


@cache
def _load() -> DefaultsFile:
    loaded = DefaultsFile.model_validate(yaml.safe_load(DATA_FILE.read_text(encoding="utf-8")))
    missing = {c.value for c in CreditClass} - set(loaded.classes)
    if missing:
        raise ValueError(f"loss thresholds have no defaults for classes {sorted(missing)}")
    return loaded


DEFAULTS = _load()


@dataclass(frozen=True)
class Thresholds:
    """The thresholds one run applies to the plots of one credit class."""

    season_window_days: int
    min_before_ndvi: float
    ndvi_drop: float
    relative_drop: float
    min_area_m2: float
    source: str  # "default:<file id>@<version>" or "registry"

    def as_json(self) -> dict[str, Any]:
        """Return the thresholds as stored with a run and an event."""
        return asdict(self)


def thresholds_from(defaults: ClassDefaults, source: str = f"default:{DEFAULTS.id}@{DEFAULTS.version}") -> Thresholds:
    """Return the thresholds of a class's defaults."""
    return Thresholds(
        season_window_days=int(defaults.season_window_days.value),
        min_before_ndvi=float(defaults.min_before_ndvi.value),
        ndvi_drop=float(defaults.ndvi_drop.value),
        relative_drop=float(defaults.relative_drop.value),
        min_area_m2=float(defaults.min_area_mu.value * M2_PER_MU),  # mu × (10 000/15 m²/mu) = m²
        source=source,
    )


def effective_thresholds(session: Session) -> dict[str, Thresholds]:
    """Return the thresholds in force for every credit class: the registry's row, else the cited default."""
    rows = {row.credit_class: row for row in session.scalars(select(LossThresholdPolicy))}
    found: dict[str, Thresholds] = {}
    for credit_class in CreditClass:
        row = rows.get(credit_class.value)
        if row is None:
            found[credit_class.value] = thresholds_from(DEFAULTS.classes[credit_class.value])
        else:
            found[credit_class.value] = Thresholds(
                season_window_days=row.season_window_days,
                min_before_ndvi=float(row.min_before_ndvi),
                ndvi_drop=float(row.ndvi_drop),
                relative_drop=float(row.relative_drop),
                min_area_m2=float(row.min_area_mu * M2_PER_MU),
                source="registry",
            )
    return found


class SetThresholds(BaseModel):
    """Command: the registry's thresholds for one credit class, with its reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    season_window_days: int = Field(ge=1, le=120, description="Largest day-of-year gap between composites.")
    min_before_ndvi: Decimal = Field(ge=Decimal(-1), le=Decimal(1), max_digits=6, decimal_places=3)
    ndvi_drop: Decimal = Field(gt=Decimal(0), le=Decimal(2), max_digits=6, decimal_places=3)
    relative_drop: Decimal = Field(ge=Decimal(0), le=Decimal(1), max_digits=6, decimal_places=3)
    min_area_mu: Decimal = Field(ge=Decimal(0), le=Decimal(1_000_000), max_digits=12, decimal_places=3)
    reason: str = Field(min_length=1, max_length=2000)


def set_thresholds(
    session: Session, credit_class: str, cmd: SetThresholds, *, actor: Principal, clock: Clock
) -> LossThresholdPolicy:
    """Set a class's thresholds (the registry only), audited with the values before and after; commits."""
    if actor.role is not OrgKind.REGISTRY:
        raise PermissionDenied("only the registry sets loss thresholds")
    if credit_class not in {c.value for c in CreditClass}:
        raise InvalidInput(f"unknown credit class {credit_class!r}", [{"pointer": "/credit_class"}])
    if not cmd.reason.strip():
        raise InvalidInput("a change of thresholds states its reason", [{"pointer": "/reason"}])
    before = effective_thresholds(session)[credit_class].as_json()
    row = session.get(LossThresholdPolicy, credit_class) or LossThresholdPolicy(credit_class=credit_class)
    values = cmd.model_dump(exclude={"reason"})
    for name, value in values.items():
        setattr(row, name, value)
    row.reason, row.updated_at, row.updated_by_user_id = cmd.reason, clock.now(), actor.user_id
    session.add(row)
    session.flush()
    after = effective_thresholds(session)[credit_class].as_json()
    payload = {"credit_class": credit_class, "before": before, "after": after, "reason": cmd.reason}
    audit.append(session, actor=actor.actor, action="loss_thresholds.set", subject=f"credit_class:{credit_class}",
                 payload=payload, clock=clock)  # fmt: skip
    session.commit()
    return row


def defaults_document() -> dict[str, Any]:
    """Return the cited defaults as JSON (values as strings, with citations resolved)."""
    classes = {
        name: {
            key: {**cited.model_dump(mode="json"), "citation": DEFAULTS.citations.get(cited.citation, cited.citation)}
            for key, cited in defaults
        }
        for name, defaults in DEFAULTS.classes.items()
    }
    return {"id": DEFAULTS.id, "version": DEFAULTS.version, "valid_from": DEFAULTS.valid_from, "classes": classes}
